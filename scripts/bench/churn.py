"""Case `churn`: a job type at its limit. One pw worker process with `PW_MAX_JOBS` 50 and the
type's limit 20 drains 1,000 jobs of 1 s each, logging at INFO as deployed (its lines counted):
how often a job was claimed only to be put back (the runtime's "deferred" outcomes, from the
worker's own metrics; arq's retried counter beside it), the log lines that cost, and the
makespan against the limit's ideal (jobs x seconds / limit).

Target (issue 19): deferrals per completed job <= 0.05, and no log line per deferral at INFO.
"""

from scripts.bench.context import Context
from scripts.bench.report import Table
from scripts.bench.runner import Drain, run_drain

MAX_JOBS, LIMIT = 50, 20
# (jobs, seconds each)
SIZES = {"full": (1_000, 1.0), "quick": (300, 0.5), "tiny": (40, 0.05)}


async def run(ctx: Context) -> list[Table]:
    jobs, seconds = SIZES[ctx.size]
    columns = ctx.kinds(["pw"])
    table = Table(
        "churn",
        f"Churn: {jobs:,} jobs of {seconds:g} s, one type limited to {LIMIT}, max_jobs {MAX_JOBS}",
        columns,
    )
    for round_ in range(ctx.rounds):
        for column in ctx.turn(columns, round_):
            kind, tree = ctx.tree(column)
            drain = Drain(kind, jobs, seconds, MAX_JOBS, limit=LIMIT, tree=tree)
            figures = await run_drain(ctx.url, drain)
            ideal = jobs * seconds / LIMIT
            ctx.say(
                f"churn round {round_ + 1} {column}: {figures['deferred'] / jobs:.2f} deferrals/job"
            )
            table.add(
                column,
                {
                    "deferrals per completed job": figures["deferred"] / jobs,
                    "arq 'retried' per completed job": figures["retried"] / jobs,
                    "log lines mentioning a deferral": figures["defer_log_lines"],
                    "log lines per completed job": figures["log_lines"] / jobs,
                    "makespan (s)": figures["makespan_s"],
                    "ideal: jobs x seconds / limit (s)": ideal,
                    "ideal / makespan": ideal / figures["makespan_s"],
                    "Redis commands per job": figures["commands"],
                },
            )
    return [table]
