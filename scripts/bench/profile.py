"""Case `profile`: where a pw worker's time goes while it drains no-op jobs (the `drain` case's
pw worker), sampled by pyinstrument every 0.5 ms from the go to the end of the drain.

The table lists the ten functions with the most self time (time on the stack's top, the
function's own code and the C calls it makes), in µs per job, and the total. Time waiting in the
event loop's selector (idle, or waiting on Redis) is shown apart, as "waiting on I/O". The
sampler itself slows the worker: compare the rows, not the total with the `drain` case's.
"""

from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from scripts.bench.context import Context
from scripts.bench.report import Table
from scripts.bench.runner import Drain, run_drain

SIZES = {"full": 10_000, "quick": 2_000, "tiny": 60}
TOP = 10
WAITING = "waiting on I/O (the event loop's selector)"


def label(frame: Any) -> str:
    where = frame.file_path_short or ""
    if "selectors.py" in where or frame.function.endswith(("poll", "select")):
        return WAITING
    return f"`{frame.function}` ({where}:{frame.line_no})"


def write_profile(profiler: Any, path: str, jobs: int) -> None:
    """Self time per function, from the worker process's profiler, as JSON at `path` (and the
    call tree as text beside it)."""
    session = profiler.last_session
    root = session.root_frame()
    own: Counter[str] = Counter()
    stack = [root] if root is not None else []
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        self_time = frame.time - sum(child.time for child in frame.children)
        # pyinstrument's "[self]" leaves stand for their caller's own time.
        named = frame.parent if frame.is_synthetic and frame.parent is not None else frame
        own[label(named)] += self_time
    figures = {"jobs": jobs, "total_s": root.time if root is not None else 0.0, "self_s": own}
    Path(path).write_bytes(orjson.dumps(figures))
    Path(path).with_suffix(".txt").write_text(profiler.output_text(unicode=True, show_all=False))


async def profile(ctx: Context, column: str, jobs: int) -> dict[str, float]:
    kind, tree = ctx.tree(column)
    # Absolute: the worker process runs in its own checkout's directory.
    out = Path.cwd() / f"bench-profile-{column.replace(' ', '-')}.json"
    await run_drain(ctx.url, Drain(kind, jobs, concurrency=ctx.concurrency, profile=out, tree=tree))
    figures = orjson.loads(out.read_bytes())
    return {name: s / jobs * 1e6 for name, s in figures["self_s"].items()} | {
        "total (sampled, wall)": figures["total_s"] / jobs * 1e6
    }


async def run(ctx: Context) -> list[Table]:
    jobs = SIZES[ctx.size]
    columns = ctx.kinds(["pw"])
    per_job = {column: await profile(ctx, column, jobs) for column in columns}
    table = Table(
        "profile",
        f"Profile of the pw worker draining {jobs:,} no-op jobs: self time per job (µs)",
        columns,
    )
    fixed = ("total (sampled, wall)", WAITING)
    rows = list(fixed)
    for column in columns:  # the union of each column's top ten, in order
        ranked = sorted(per_job[column].items(), key=lambda item: -item[1])
        rows += [name for name, _ in ranked if name not in rows][:TOP]
    for column in columns:
        table.add(column, {row: per_job[column].get(row, 0.0) for row in rows})
    table.notes.append(
        f"pyinstrument 5, one run each; the top {TOP} of each column; the call trees are in "
        "bench-profile-*.txt (the top of the stack only: a function's callees are counted "
        "where they run)."
    )
    return [table]
