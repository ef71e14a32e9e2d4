"""Case `io`: I/O-bound jobs (each sleeps `SLEEP_S`), `concurrency` at once per worker process.

One worker process per library; then pw on 2 and 4 worker processes on the same Redis. The ideal
makespan is jobs x sleep / (concurrency x processes); efficiency = ideal / measured.

Targets (issue 19): one pw worker >= 0.9 of the ideal (SAQ 0.75 on the peers' machine); 2
workers >= 1.8x one; Redis commands per job flat as workers are added.
"""

from scripts.bench.context import Context
from scripts.bench.report import Table
from scripts.bench.runner import Drain, run_drain

SLEEP_S = 0.05
SIZES = {"full": 2_000, "quick": 1_000, "tiny": 40}
SINGLE = ["arq", "pw", "saq", "taskiq"]
SCALED = {"pw x2": 2, "pw x4": 4}


def parse(column: str) -> tuple[str, int]:
    return (column.split()[0], SCALED[column]) if column in SCALED else (column, 1)


async def run(ctx: Context) -> list[Table]:
    jobs = SIZES[ctx.size]
    columns = ctx.kinds(SINGLE) + list(SCALED)
    title = f"{jobs:,} jobs x {SLEEP_S * 1000:.0f} ms, concurrency {ctx.concurrency} per process"
    table = Table("io", title, columns, baseline="arq")
    for round_ in range(ctx.rounds):
        one_pw = None
        figures_by_column = {}
        for column in ctx.turn(columns, round_):
            kind, processes = parse(column)
            kind, tree = ctx.tree(kind)
            # The type limit is every replica's together: N processes get N times the slots.
            limit = ctx.concurrency * processes
            drain = Drain(
                kind, jobs, SLEEP_S, ctx.concurrency, processes=processes, limit=limit, tree=tree
            )
            figures = await run_drain(ctx.url, drain)
            ideal = jobs * SLEEP_S / (ctx.concurrency * processes)
            figures_by_column[column] = figures
            ctx.say(
                f"io round {round_ + 1} {column}: efficiency {ideal / figures['makespan_s']:.2f}"
            )
            table.add(
                column,
                {
                    "makespan (s)": figures["makespan_s"],
                    "ideal makespan (s)": ideal,
                    "efficiency (ideal / makespan)": ideal / figures["makespan_s"],
                    "Redis commands per job": figures["commands"],
                    "worker CPU per job (µs)": figures["cpu_us"],
                },
            )
        one_pw = figures_by_column.get("pw")
        if one_pw is not None:
            for column in SCALED:
                speedup = one_pw["makespan_s"] / figures_by_column[column]["makespan_s"]
                table.add(column, {"speedup over one pw worker": speedup})
    table.notes.append(
        "pw xN: N worker processes of the project on the one Redis, the jobs queued once; "
        "the ratio column of pw xN is against one raw arq worker (its ideal is N times shorter)."
    )
    return [table]
