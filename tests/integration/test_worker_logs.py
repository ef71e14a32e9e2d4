"""What a real worker process tells the operator in its log: start-up against a Redis it cannot
use, an outage, the ready line, and one line per job outcome (issue 15)."""

import re
import time
from collections import Counter
from pathlib import Path

from tests.support.processes import RedisServer, WorkerProcess, env_for

# How often a repeated warning may show during an outage in these tests (30 s by default).
REPEAT_S = 2.0
OUTAGE_S = 6.0
WARNING = re.compile(r" WARNING [\w.]+: (.*)$")


def wait_for_line(worker: WorkerProcess, text: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in worker.output(current=True):
        assert worker.running, worker.output()
        assert time.monotonic() < deadline, f"no {text!r} in {timeout_s} s:\n{worker.output()}"
        time.sleep(0.05)


def warnings_between(output: str, first: str, last: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if first in line)
    end = next(i for i, line in enumerate(lines) if last in line and i > start)
    return [m.group(1) for line in lines[start + 1 : end] if (m := WARNING.search(line))]


def test_a_redis_outage_repeats_each_warning_at_most_once_per_interval(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        env = env_for(server.url, PW_LOG_REPEAT_S=str(REPEAT_S))
        with WorkerProcess(env, tmp_path / "worker.log") as worker:
            worker.wait_ready()
            server.kill()
            wait_for_line(worker, "Redis unavailable")
            time.sleep(OUTAGE_S)  # the outage itself: Redis stays away this long
            server.start()
            wait_for_line(worker, "Redis is back after")
            code, output = worker.stop()
    assert code == 0, output
    repeated = warnings_between(output, "Redis unavailable", "Redis is back after")
    # Each kind of warning, told apart by its text before any count or figure.
    kinds = Counter(re.sub(r"[\d.]+|\(.*", "", line).strip() for line in repeated)
    back = re.search(r"Redis is back after ([\d.]+) s", output)
    assert back is not None, output
    most = 1 + int(float(back.group(1)) / REPEAT_S)  # the first line, then one per interval
    assert kinds, output
    assert max(kinds.values()) <= most, (kinds, output)
    # What was held back is counted, not lost.
    assert any(re.search(r"\d+ more in the last", line) for line in repeated), output
