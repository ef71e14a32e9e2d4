"""The CLI's pieces without Redis: output conventions, progress labels, the watcher's logic."""

import io
from collections.abc import Iterator
from datetime import date

import pytest

from jobs.models import RunSummary
from settings import Settings
from worker.cli.changes import render_outcome
from worker.cli.dlq import render_letter
from worker.cli.output import mask_url, table
from worker.cli.render import render_report
from worker.cli.watch import ProgressView, WaitTimeout, Watcher, phase
from worker.client import JobReport, PayloadRejected, check_payload, repeat_note
from worker.registry import job_specs
from worker.runtime.deadletter import DeadLetter
from worker.runtime.progress import ProgressRecord


def run(done: int, total: int = 75, failed: int = 0, state: str = "running") -> RunSummary:
    return RunSummary.model_validate(
        {
            "run_id": "2026-12-02",
            "state": state,
            "discovered": 175,
            "total": total,
            "done": done,
            "enriched": done,
            "scored": done,
            "drafted": 0,
            "queued": 0,
            "failed": failed,
            "skipped": {},
            "duration_s": None,
        }
    )


def daily(state: str, stage: str | None = None, summary: RunSummary | None = None) -> JobReport:
    progress = ProgressRecord(stage=stage, updated_ms=1) if stage else None
    return JobReport.model_validate(
        {
            "job_id": "j1",
            "function": "daily_prospect_queue",
            "state": state,
            "progress": progress,
            "run": summary,
        }
    )


def test_mask_url_hides_only_the_password() -> None:
    assert mask_url("redis://:s3cret@db:6379/0") == "redis://:****@db:6379/0"
    assert mask_url("rediss://ops:s3cret@db:6380/1") == "rediss://ops:****@db:6380/1"
    assert mask_url("redis://db:6379/0") == "redis://db:6379/0"
    assert mask_url("unix:///run/redis.sock") == "unix:///run/redis.sock"


def test_table_aligns_labels_and_continues_multiline_values() -> None:
    assert table([("job", "a"), ("function", "x\ny")]) == "job       a\nfunction  x\n          y"


def test_phase_names_prospects_not_the_daily_jobs_own_stage() -> None:
    assert phase(daily("queued")) == "queued: waiting for a worker"
    assert phase(daily("in_progress", "discovery")) == "daily_prospect_queue: discovery"
    # The daily job is complete and its stage says so, while its prospects still run.
    assert phase(daily("complete", "complete", run(10))) == "prospects"


def test_plain_progress_lines_name_prospects_with_counts_and_rate() -> None:
    stream = io.StringIO()
    clock = iter([0.0, 2.0, 3.0])
    view = ProgressView(stream, live=False, clock=lambda: next(clock))
    for report in (
        daily("queued"),
        daily("in_progress", "discovery"),
        daily("complete", "complete", run(0)),
        daily("complete", "complete", run(10)),  # under 25 more: no line
        daily("complete", "complete", run(30, failed=1)),
        daily("complete", "complete", run(75, failed=1, state="complete")),
    ):
        view.show(report)
    assert stream.getvalue().splitlines() == [
        "queued: waiting for a worker",
        "daily_prospect_queue: discovery",
        "prospects: 0 of 75 done, 0 failed",
        "prospects: 30 of 75 done, 1 failed, 15.0/s",
        "prospects: 75 of 75 done, 1 failed, 25.0/s",
    ]
    assert "complete" not in stream.getvalue()


def test_a_running_daily_runs_report_shows_the_run_not_a_complete_stage() -> None:
    text = render_report(daily("complete", "complete", run(10)))
    assert "stage" not in text
    assert "2026-12-02 running: 10 of 75 prospects done, 0 failed" in text


def test_a_run_that_found_the_quota_spent_says_it_did_nothing() -> None:
    report = JobReport.model_validate(
        {
            "job_id": "j2",
            "function": "daily_prospect_queue",
            "state": "complete",
            # A second run re-uses the day's plan: its result repeats the first run's figures.
            "result": {"run_id": "2026-12-02", "quota_used_before": 0, "fanned_out": 75},
        }
    )
    nothing = {"approval stream entries": 0, "dead letters": 0}
    text = render_outcome(report, nothing, quota_before=50, daily_limit=50, elapsed_s=0.1)
    assert text.startswith("nothing to do: the quota of 2026-12-02 (50) is already spent\n")
    assert "approval stream entries  +0" in text
    text = render_outcome(report, nothing, quota_before=20, daily_limit=50, elapsed_s=0.1)
    assert text.startswith("nothing to do: no new draft for 2026-12-02 (20 of 50 already queued;")
    result = {**report.result, "added": 0}
    replanned = report.model_copy(update={"result": result, "note": repeat_note(result)})
    text = render_outcome(replanned, nothing, quota_before=50, daily_limit=50, elapsed_s=0.1)
    # The day's run was done: its figures, marked as that run's, as `status` shows them.
    assert text.startswith("job       j2\n")
    assert (
        "note      this job added nothing: the run of 2026-12-02 had already fanned out its 75 "
        "prospects"
    ) in text
    some = {"approval stream entries": 3, "dead letters": 0}
    text = render_outcome(report, some, quota_before=20, daily_limit=50, elapsed_s=0.1)
    assert text.startswith("job       j2\n")


class FakeQueue:
    """Reports a job stuck in the queue; says whether any job of the queue is running."""

    queue_name = "arq:queue"

    def __init__(self, busy: bool, paused: frozenset[str] = frozenset()) -> None:
        self.busy = busy
        self.asked_busy = 0
        self.pauses = paused

    async def report(self, job_id: str) -> JobReport:
        return daily("queued")

    async def queue_busy(self) -> bool:
        self.asked_busy += 1
        return self.busy

    async def paused(self) -> frozenset[str]:
        return self.pauses


def ticking(step: float) -> Iterator[float]:
    now = 0.0
    while True:
        yield now
        now += step


@pytest.mark.parametrize("busy", [False, True])
async def test_watcher_warns_once_when_no_worker_takes_jobs_then_times_out(busy: bool) -> None:
    warnings: list[str] = []
    clock = ticking(1.0)
    queue = FakeQueue(busy)
    watcher = Watcher(queue, warnings.append, timeout_s=12, poll_s=0, clock=lambda: next(clock))
    with pytest.raises(WaitTimeout, match="job j1 is still queued after 12 s"):
        await watcher.wait("j1", lambda report: None)
    assert queue.asked_busy == 1
    if busy:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert warnings[0].startswith("no worker is taking jobs from arq:queue: job j1 ")


@pytest.mark.parametrize(
    ("paused", "said"),
    [
        (
            {"*"},
            (
                "the queue is paused: job j1 has not moved for 5 s; it waits for "
                "`prospect-worker resume`"
            ),
        ),
        (
            {"daily_prospect_queue"},
            (
                "daily_prospect_queue is paused: job j1 has not moved for 5 s; "
                "it waits for `prospect-worker resume --type daily_prospect_queue`"
            ),
        ),
    ],
)
async def test_watcher_says_a_pause_holds_the_job_not_a_missing_worker(
    paused: set[str], said: str
) -> None:
    warnings: list[str] = []
    clock = ticking(1.0)
    queue = FakeQueue(busy=False, paused=frozenset(paused))
    watcher = Watcher(queue, warnings.append, timeout_s=8, poll_s=0, clock=lambda: next(clock))
    with pytest.raises(WaitTimeout):
        await watcher.wait("j1", lambda report: None)
    assert warnings == [said]


TODAY = date(2026, 12, 4)


def test_a_payload_is_checked_with_the_workers_own_model() -> None:
    specs = job_specs(Settings(REDIS_URL="redis://127.0.0.1:1/0"))  # no Redis needed
    with pytest.raises(PayloadRejected) as caught:
        check_payload(
            specs, "daily_prospect_queue", {"run_date": "tomorrow", "extra": 1}, today=TODAY
        )
    problems = caught.value.problems
    assert problems[0].startswith("run_date: must be a date as YYYY-MM-DD")
    assert problems[0].endswith("(got 'tomorrow')")
    assert problems[1].startswith("extra: Extra inputs are not permitted")
    daily = {"run_date": "2026-12-02", "backfill": True}
    assert (
        check_payload(specs, "daily_prospect_queue", daily, today=TODAY).name
        == "daily_prospect_queue"
    )
    with pytest.raises(PayloadRejected, match="run_date 2026-12-02 is not today"):
        check_payload(specs, "daily_prospect_queue", {"run_date": "2026-12-02"}, today=TODAY)
    assert (
        check_payload(specs, "daily_prospect_queue", None, today=TODAY).name
        == "daily_prospect_queue"
    )


def test_on_a_terminal_prospects_are_one_bar_with_failures_and_rate() -> None:
    stream = io.StringIO()
    with ProgressView(stream, live=True) as view:
        view.show(daily("queued"))
        view.show(daily("complete", "complete", run(10)))
        view.show(daily("complete", "complete", run(75, failed=2, state="complete")))
    shown = stream.getvalue()
    assert shown.startswith("queued: waiting for a worker\n")
    assert "prospects: 100%" in shown
    assert "75/75" in shown
    assert "prospect/s, failed=2]" in shown


def test_a_failed_prospect_jobs_report_shows_its_stage_and_error() -> None:
    report = JobReport.model_validate(
        {
            "job_id": "prospect:2026-12-02:c1",
            "function": "process_prospect",
            "state": "failed",
            "job_try": 5,
            "progress": {"stage": "draft", "done": 2, "total": 4, "updated_ms": 1},
            "error": "PermanentError: the LLM said 400",
        }
    )
    assert render_report(report).splitlines() == [
        "job       prospect:2026-12-02:c1",
        "function  process_prospect",
        "state     failed",
        "try       5",
        "stage     draft (2 of 4)",
        "error     PermanentError: the LLM said 400",
    ]


def test_a_dead_letter_with_a_cut_payload_shows_its_size_digest_start_and_why_no_replay() -> None:
    letter = DeadLetter(
        id="1-0",
        job_id="huge",
        function="cleanup",
        kind="poison",
        error_type="InvalidPayload",
        error="too big",
        tries=1,
        failed_ms=0,
        payload_bytes=8_000_060,
        payload_sha256="ab" * 32,
        payload_head='{"args": [{"surprise": "xxx',
    )
    shown = render_letter(letter)
    assert f"8,000,060 bytes, sha256 {'ab' * 32}" in shown
    assert '{"args": [{"surprise": "xxx' in shown
    assert "over the 57,344 an entry keeps" in shown
