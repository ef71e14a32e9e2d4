"""The parent side of a drain: start worker processes, hand them the go together, read Redis's
counters around the drain, and turn the children's results into per-job figures.

Redis figures (INFO of the throwaway server) cover the go to the last child's end: Redis CPU
per job (`used_cpu_user + used_cpu_sys`), commands per job (INFO commandstats: script-internal
calls and both halves of MULTI/EXEC included, INFO itself excluded). Worker CPU and client round
trips (a pipeline counting once) are summed over the worker processes.
"""

import asyncio
import fcntl
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis

from scripts.bench import arq_side
from scripts.bench.probe import GO, READY, RESULT
from worker.local.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
TASKIQ_ENV = ROOT / ".venv-taskiq"
TASKIQ_LOCK = ROOT / ".venv-taskiq.lock"
TASKIQ_REQUIREMENTS = Path(__file__).with_name("taskiq-requirements.txt")
PEERS_ENQUEUE_THEMSELVES = ("saq", "taskiq")


def taskiq_python() -> Path:
    """The interpreter of taskiq's own environment, made with uv from the pinned set if missing."""
    python = TASKIQ_ENV / "bin" / "python"
    marker = TASKIQ_ENV / ".requirements"
    wanted = TASKIQ_REQUIREMENTS.read_text()
    # Two suites at once (the smoke tests' cases on parallel workers) build it once between them.
    with TASKIQ_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (python.exists() and marker.exists() and marker.read_text() == wanted):
            build_taskiq_env(wanted)
    return python


def build_taskiq_env(requirements: str) -> None:
    uv = Path(sys.executable).with_name("uv")
    print("bench: building taskiq's environment (.venv-taskiq) with uv", file=sys.stderr)
    env = {**os.environ, "VIRTUAL_ENV": str(TASKIQ_ENV), "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(
        [uv, "venv", "-q", "--allow-existing", "--python", sys.executable, TASKIQ_ENV],
        check=True,
        env=env,
    )
    subprocess.run([uv, "pip", "install", "-q", "-r", TASKIQ_REQUIREMENTS], check=True, env=env)
    (TASKIQ_ENV / ".requirements").write_text(requirements)


@dataclass
class Drain:
    """One drain: `kind` on `processes` worker processes, `jobs` jobs of `sleep` seconds."""

    kind: str
    jobs: int
    sleep: float = 0.0
    concurrency: int = 100
    processes: int = 1
    limit: int = 0
    profile: Path | None = None
    tree: Path | None = None  # pw from another checkout of the project (None: this one)
    env: dict[str, str] = field(default_factory=dict)


def child_env(url: str, drain: Drain) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PW_") and k != "REDIS_URL"}
    return {
        **env,
        **(arq_side.pw_env(drain.concurrency) if drain.kind == "pw" else {}),
        **drain.env,
        "REDIS_URL": url,
        # A port of its own, so the metrics server cannot clash with a neighbour's.
        "PW_METRICS_PORT": str(free_port()),
        # The other checkout's packages first; this suite's modules from here (a namespace
        # package, `scripts`, merges the two).
        "PYTHONPATH": f"{drain.tree}:{ROOT}" if drain.tree else str(ROOT),
    }


def child_argv(url: str, drain: Drain) -> list[str]:
    python = taskiq_python() if drain.kind == "taskiq" else Path(sys.executable)
    argv = [
        str(python),
        "-m",
        "scripts.bench.child",
        drain.kind,
        "--redis",
        url,
        "--jobs",
        str(drain.jobs),
        "--sleep",
        str(drain.sleep),
        "--concurrency",
        str(drain.concurrency),
        "--limit",
        str(drain.limit),
    ]
    if drain.kind in PEERS_ENQUEUE_THEMSELVES:
        argv.append("--enqueue")
    if drain.profile is not None:
        argv += ["--profile", str(drain.profile)]
    return argv


async def redis_counters(redis: Redis) -> tuple[float, int]:
    """(Redis CPU seconds, commands run), not counting INFO itself."""
    cpu = await redis.info("cpu")
    stats = await redis.info("commandstats")
    commands = sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"], commands


async def read_until(process: asyncio.subprocess.Process, prefix: str, log: Path) -> str:
    assert process.stdout is not None
    while line := (await process.stdout.readline()).decode():
        if line.startswith(prefix):
            return line
    await process.wait()
    tail = "".join(log.read_text().splitlines(keepends=True)[-40:])  # noqa: ASYNC240 - the error path
    raise RuntimeError(f"worker exited ({process.returncode}) before {prefix.strip()}:\n{tail}")


def drain_lines(log: Path) -> list[str]:
    """The log lines a child wrote from its go on."""
    lines = log.read_text().splitlines()
    return lines[lines.index(GO) + 1 :] if GO in lines else []


async def run_drain(url: str, drain: Drain) -> dict[str, Any]:
    """Figures of one drain on a flushed Redis; raises if any job did not complete."""
    redis = Redis.from_url(url)
    await redis.flushall()
    if drain.kind in ("arq", "pw"):
        await arq_side.enqueue(url, drain.kind, drain.jobs, drain.sleep)
    env = child_env(url, drain)
    logs = [
        Path(tempfile.gettempdir()) / f"bench-{os.getpid()}-{drain.kind}-{n}.log"
        for n in range(drain.processes)
    ]
    processes = []
    for log in logs:
        with log.open("w") as sink:  # the child keeps its own handle
            processes.append(
                await asyncio.create_subprocess_exec(
                    *child_argv(url, drain),
                    cwd=drain.tree or ROOT,  # `python -m` puts the working directory first
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=sink,
                )
            )
    try:
        await asyncio.gather(
            *(read_until(p, READY, log) for p, log in zip(processes, logs, strict=True))
        )
        cpu0, commands0 = await redis_counters(redis)
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
        await asyncio.gather(*(p.stdin.drain() for p in processes if p.stdin))
        lines = await asyncio.gather(
            *(read_until(p, RESULT, log) for p, log in zip(processes, logs, strict=True))
        )
        cpu1, commands1 = await redis_counters(redis)
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
            await process.wait()
        await redis.aclose()
    drained = [line for log in logs for line in drain_lines(log)]
    results = [orjson.loads(line[len(RESULT) :]) for line in lines]
    done = sum(r["done"] for r in results)
    if done != drain.jobs or any(r.get("failed") for r in results):
        raise RuntimeError(f"{drain.kind}: {done} of {drain.jobs} jobs done: {results}")
    jobs = drain.jobs
    makespan = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {
        "makespan_s": makespan,
        "jobs_s": jobs / makespan,
        "cpu_us": sum(r["cpu_s"] for r in results) / jobs * 1e6,
        "redis_cpu_us": (cpu1 - cpu0) / jobs * 1e6,
        "commands": (commands1 - commands0) / jobs,
        "round_trips": sum(r["round_trips"] for r in results) / jobs,
        "rss_mb": max(r["rss_mb"] for r in results),
        "deferred": sum(r.get("deferred", 0.0) for r in results),
        "retried": sum(r.get("retried", 0) for r in results),
        "log_lines": len(drained),
        "defer_log_lines": sum("defer" in line.lower() for line in drained),
    }
