"""Human renderings of a job report, shared by `status`, `enqueue --wait` and `run`."""

from typing import Any

from jobs.models import RunSummary
from worker.cli.output import table
from worker.client import JobReport
from worker.runtime.progress import ProgressRecord


def render_report(report: JobReport) -> str:
    rows: list[tuple[str, object]] = [
        ("job", report.job_id),
        ("function", report.function or "-"),
        ("state", report.state),
    ]
    if report.note is not None:
        rows.append(("note", report.note))
    if report.job_try is not None:
        rows.append(("try", report.job_try))
    # A daily run's own stage ("complete" once it has fanned out) would read as if the whole run
    # were done while its prospects still run: the run row tells that instead.
    if report.progress is not None and report.run is None:
        rows.append(("stage", render_stage(report.progress)))
    if report.error is not None:
        rows.append(("error", report.error))
    if report.result is not None:
        rows.append(("result", render_value(report.result)))
    if report.run is not None:
        rows.append(("run", render_run(report.run)))
    return table(rows)


def render_stage(progress: ProgressRecord) -> str:
    """The stage with its count: `trimmed (2 of 2)`, `(of 2)` while nothing is counted yet."""
    if progress.total is None:
        return progress.stage
    done = "" if progress.done is None else f"{progress.done} "
    return f"{progress.stage} ({done}of {progress.total})"


def render_value(value: Any) -> str:
    if isinstance(value, dict):
        shown = [f"{key}: {render_value(item)}" for key, item in value.items() if item is not None]
        return "\n".join(shown) or "{}"
    return str(value)


def render_run(run: RunSummary) -> str:
    took = f"{run.duration_s:.2f} s" if run.duration_s is not None else "still running"
    skipped = ", ".join(f"{reason} {count}" for reason, count in run.skipped.items()) or "none"
    return "\n".join(
        [
            (
                f"{run.run_id} {run.state}: {run.done} of {run.total} prospects done, "
                f"{run.failed} failed"
            ),
            (
                f"discovered {run.discovered}, fanned out {run.total}, enriched {run.enriched}, "
                f"scored {run.scored}, drafted {run.drafted}, queued for approval {run.queued}"
            ),
            f"skipped: {skipped}",
            f"took {took}",
        ]
    )
