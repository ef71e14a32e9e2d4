"""Case `drain`: no-op jobs drained by one worker process, each library in its own process,
interleaved rounds (the order turns each round, so drift on a shared machine hits all).

Targets (issue 19): pw >= 1.2x raw arq's jobs/s; worker CPU and Redis CPU per job <= raw arq's;
client round trips per job <= 4.
"""

from scripts.bench.context import Context
from scripts.bench.report import Table
from scripts.bench.runner import Drain, run_drain

KINDS = ["arq", "pw", "saq", "taskiq"]
SIZES = {"full": 10_000, "quick": 2_000, "tiny": 60}
ROWS = {
    "jobs_s": "drain (jobs/s)",
    "cpu_us": "worker CPU per job (µs)",
    "redis_cpu_us": "Redis CPU per job (µs)",
    "commands": "Redis commands per job",
    "round_trips": "client round trips per job",
}


async def run(ctx: Context) -> list[Table]:
    jobs = SIZES[ctx.size]
    kinds = ctx.kinds(KINDS)
    table = Table(
        "drain",
        f"Drain {jobs:,} no-op jobs, one worker process, concurrency {ctx.concurrency}",
        kinds,
        baseline="arq",
    )
    for round_ in range(ctx.rounds):
        for kind in ctx.turn(kinds, round_):
            worker_kind, tree = ctx.tree(kind)
            drain = Drain(worker_kind, jobs, concurrency=ctx.concurrency, tree=tree)
            figures = await run_drain(ctx.url, drain)
            ctx.say(f"drain round {round_ + 1} {kind}: {figures['jobs_s']:.0f} jobs/s")
            table.add(kind, {label: figures[key] for key, label in ROWS.items()})
    table.notes.append(
        "pw: the project's production wiring (priorities, limits, metrics, progress) plus a "
        "no-op job spec; arq 0.28 plain, orjson, poll 0.01 s; SAQ 0.26.4; taskiq 0.13 with "
        "taskiq-redis's stream broker (acknowledged), in its own environment (redis-py 8)."
    )
    return [table]
