"""The demo (`python -m worker run`) on its two embedded Redis kinds, side by side: a throwaway
redis-server, and fakeredis's server in the same process (the fallback when no redis-server is
installed). Interleaved rounds, each a fresh process with REDIS_URL unset, as a user runs it.

    .venv/bin/python scripts/bench_run.py [--rounds 7]

Prints, per kind, the median (min-max) of the whole process's wall time and of the run itself
(enqueue to the last prospect's end, from the run's --json output), and the ratio of medians.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("redis-server", "fakeredis")


def one_run(kind: str) -> tuple[float, float]:
    # As a user who named no Redis: the run starts its own (the kind chosen here).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PW_") and k != "REDIS_URL"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "worker", "run", "--embedded", kind, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{kind}: exit {done.returncode}\n{done.stderr}")
    summary = orjson.loads(done.stdout)
    assert summary["job"]["run"]["queued"] == 50, summary
    return wall, float(summary["elapsed_s"])


def main(rounds: int) -> None:
    walls: dict[str, list[float]] = {kind: [] for kind in KINDS}
    runs: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(rounds):
        for kind in KINDS:
            wall, run = one_run(kind)
            walls[kind].append(wall)
            runs[kind].append(run)
    print(f"python -m worker run, {rounds} interleaved rounds, median (min-max):")
    for kind in KINDS:
        w, r = walls[kind], runs[kind]
        print(
            f"  {kind:13s} whole process {statistics.median(w):6.2f} s ({min(w):.2f}-{max(w):.2f})"
            f"   the run {statistics.median(r):6.2f} s ({min(r):.2f}-{max(r):.2f})"
        )
    ratio_wall = statistics.median(walls["fakeredis"]) / statistics.median(walls["redis-server"])
    ratio_run = statistics.median(runs["fakeredis"]) / statistics.median(runs["redis-server"])
    print(f"  fakeredis / redis-server: whole process {ratio_wall:.2f}x, the run {ratio_run:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    main(parser.parse_args().rounds)
