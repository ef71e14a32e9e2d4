"""The benchmark suite, one command: `python3 dev.py bench [flags]` (or, in the project's
environment, `python -m scripts.bench [flags]`).

It starts its own throwaway redis-server on a free loopback port (and its own fake providers,
for the cases that need them), runs each case with its baselines interleaved in the same run,
several rounds, and prints one markdown table per case (medians, min-max, ratios) and writes the
same figures as JSON (`--json`, default bench-results.json).

    python3 dev.py bench                   every case, full size (long: see docs/benchmarks.md)
    python3 dev.py bench --quick           every case, smaller sizes
    python3 dev.py bench --tiny            every case at a size that only proves it runs
    python3 dev.py bench --case drain --rounds 5
    python3 dev.py bench --skip taskiq     without a peer (taskiq needs its own environment,
                                           built once into .venv-taskiq with uv)

Cases: drain, io, pipeline, churn, scale, latency, profile (one module each in scripts/bench/).
The machine's other work moves absolute figures by tens of percent: compare ratios in one run.
"""

import argparse
import asyncio
import importlib
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import orjson

from scripts.bench.context import SIZES, Context
from scripts.bench.report import Table
from worker.local.embedded import free_port, redis_server

CASES = ("drain", "io", "pipeline", "churn", "scale", "latency", "profile")
PEERS = ("saq", "taskiq")


def machine() -> dict[str, object]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "load": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


async def run_cases(args: argparse.Namespace, url: str) -> list[Table]:
    ctx = Context(url, args.size, args.rounds, skip=tuple(args.skip), before=args.before)
    tables: list[Table] = []
    for case in args.case or CASES:
        module = importlib.import_module(f"scripts.bench.{case}")
        started = time.monotonic()
        ctx.say(f"case {case} ({args.size}, {args.rounds} rounds)")
        tables += await module.run(ctx)
        ctx.say(f"case {case} took {time.monotonic() - started:.0f} s")
    return tables


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", action="append", choices=CASES, help="repeatable; default all")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--size", choices=SIZES, default="full")
    sizes.add_argument("--quick", dest="size", action="store_const", const="quick")
    sizes.add_argument("--tiny", dest="size", action="store_const", const="tiny")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per case")
    parser.add_argument("--skip", action="append", default=[], choices=PEERS, help="a peer")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout of the project: its worker runs beside this one's as `pw before`",
    )
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        print("bench: redis-server is not installed", file=sys.stderr)
        return 1
    about = machine()
    with redis_server(binary, free_port()) as server:
        tables = asyncio.run(run_cases(args, server.url))
    print(
        f"Run of {about['date']}: {about['cpus']} CPUs, load {about['load']} at the start, "
        f"Python {about['python']}, size {args.size}, {args.rounds} rounds\n"
    )
    print("\n\n".join(table.markdown() for table in tables))
    report = {
        "machine": about,
        "size": args.size,
        "rounds": args.rounds,
        "cases": [table.to_json() for table in tables],
    }
    args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"\nbench: figures written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
