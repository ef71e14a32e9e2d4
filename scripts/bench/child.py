"""One benchmark worker process: `python -m scripts.bench.child KIND [flags]` (the parent runs it).

KIND is `arq`, `pw` (scripts/bench/arq_side.py), `saq` (saq_side.py) or `taskiq`
(taskiq_side.py, run by the interpreter of its own environment). Each drains `--jobs` jobs that
sleep `--sleep` seconds (0: an async no-op) with `--concurrency` at once, then prints its result
(scripts/bench/probe.py). Imports only the side it runs, so the taskiq environment never meets
the project's modules.
"""

import argparse
import asyncio
import importlib

from scripts.bench.probe import emit

SIDES = {"arq": "arq_side", "pw": "arq_side", "saq": "saq_side", "taskiq": "taskiq_side"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(SIDES))
    parser.add_argument("--redis", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--limit", type=int, default=0, help="pw: the type limit (0: concurrency)")
    parser.add_argument("--enqueue", action="store_true", help="enqueue the jobs itself")
    parser.add_argument("--profile", help="pyinstrument: write the drain's profile here")
    args = parser.parse_args()
    side = importlib.import_module(f"scripts.bench.{SIDES[args.kind]}")
    emit(asyncio.run(side.drain(args)))


if __name__ == "__main__":
    main()
