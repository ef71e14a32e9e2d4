"""Following a job until it ends: progress for people (a bar on a terminal, plain lines in a log),
a warning when no worker is taking jobs, and a bound on the wait."""

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from tqdm import tqdm

from worker.client import JobReport, finished
from worker.scheduling.pause import ALL as PAUSE_ALL

# A job that has not moved for this long, on a queue where no job is running, has no worker.
IDLE_WARNING_S = 5.0
# Without a terminal, a progress line every this many prospects (and at each change of phase).
LINE_EVERY = 25
MIN_RATE_WINDOW_S = 0.5


class JobSource(Protocol):
    """What the watcher reads (QueueClient in the CLI)."""

    @property
    def queue_name(self) -> str: ...

    async def report(self, job_id: str) -> JobReport: ...

    async def queue_busy(self) -> bool: ...

    async def paused(self) -> frozenset[str]: ...


class WaitTimeout(Exception):
    def __init__(self, report: JobReport, waited_s: float) -> None:
        super().__init__(f"job {report.job_id} is still {report.state} after {waited_s:.0f} s")
        self.report = report


def phase(report: JobReport) -> str:
    """What the job is doing, in words that stay true: a daily run is 'prospects' once it has
    fanned out, whatever its own (finished) job's last stage said."""
    if report.state in ("queued", "deferred"):
        return f"{report.state}: waiting for a worker"
    run = report.run
    if run is not None and run.total and report.state == "complete":
        return "prospects"
    stage = report.progress.stage if report.progress else report.state
    return f"{report.function or 'job'}: {stage}"


class ProgressView:
    """Shows each report: prospects as a bar (done/total, failed, rate) on a terminal, or as
    plain lines when stderr is a file or a pipe."""

    def __init__(self, stream: TextIO, *, live: bool, clock: Callable[[], float] = time.monotonic):
        self._stream = stream
        self._live = live
        self._clock = clock
        self._bar: tqdm[Any] | None = None
        self._phase = ""
        self._last_line: tuple[int, int] | None = None
        self._started: float | None = None

    def __enter__(self) -> "ProgressView":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def show(self, report: JobReport) -> None:
        now = phase(report)
        if now != self._phase:
            self._phase = now
            if now != "prospects":
                self._print(now)
        if now != "prospects" or report.run is None:
            return
        run = report.run
        if self._live:
            self._show_bar(run.done, run.total, run.failed)
        else:
            self._show_line(run.done, run.total, run.failed)

    def _show_bar(self, done: int, total: int, failed: int) -> None:
        if self._bar is None:
            self._bar = tqdm(total=total, desc="prospects", unit="prospect", file=self._stream)
        self._bar.total = total
        self._bar.set_postfix(failed=failed, refresh=False)
        # update() rather than setting n, so tqdm measures the rate itself.
        self._bar.update(done - self._bar.n)

    def _show_line(self, done: int, total: int, failed: int) -> None:
        if (done, failed) == self._last_line:
            return
        near = self._last_line is not None and done - self._last_line[0] < LINE_EVERY
        if near and done != total:
            return
        now = self._clock()
        if self._started is None:
            self._started = now
        elapsed = now - self._started
        # The first sighting may already count some done: no rate until there is time to divide.
        rate = f", {done / elapsed:.1f}/s" if elapsed >= MIN_RATE_WINDOW_S else ""
        self._print(f"prospects: {done} of {total} done, {failed} failed{rate}")
        self._last_line = (done, failed)

    def _print(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self._stream)
        else:
            print(line, file=self._stream, flush=True)


class Watcher:
    """Polls a job until it ends. Says once per stall when no worker seems to take jobs, and
    gives up (WaitTimeout) after `timeout_s`; the job itself is left as it is either way."""

    def __init__(
        self,
        client: JobSource,
        warn: Callable[[str], None],
        *,
        timeout_s: float | None = None,
        idle_warning_s: float = IDLE_WARNING_S,
        poll_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._warn = warn
        self._timeout_s = timeout_s
        self._idle_warning_s = idle_warning_s
        self._poll_s = poll_s
        self._clock = clock

    async def wait(self, job_id: str, on_update: Callable[[JobReport], None]) -> JobReport:
        start = self._clock()
        moved_at, last, warned = start, None, False
        while True:
            report = await self._client.report(job_id)
            on_update(report)
            if finished(report):
                return report
            now = self._clock()
            seen = (report.state, report.progress, report.run)
            if seen != last:
                moved_at, last, warned = now, seen, False
            elif not warned and now - moved_at >= self._idle_warning_s:
                warned = True
                stalled = await self._why_stalled(report, now - moved_at)
                if stalled is not None:
                    self._warn(stalled)
            if self._timeout_s is not None and now - start >= self._timeout_s:
                raise WaitTimeout(report, now - start)
            await asyncio.sleep(self._poll_s)

    async def _why_stalled(self, report: JobReport, still_s: float) -> str | None:
        """Why a job has not moved, when it is not just slow: a pause (asked first: a paused
        queue also looks as if no worker ran), or no worker taking jobs at all."""
        job_id, queue = report.job_id, self._client.queue_name
        paused = await self._client.paused()
        if PAUSE_ALL in paused:
            what, resume = "the queue is paused", "prospect-worker resume"
        elif report.function is not None and report.function in paused:
            what = f"{report.function} is paused"
            resume = f"prospect-worker resume --type {report.function}"
        else:
            what = resume = ""
        if what:
            return (
                f"{what}: job {job_id} has not moved for {still_s:.0f} s; it waits for `{resume}`"
            )
        if await self._client.queue_busy():
            return None
        return (
            f"no worker is taking jobs from {queue}: job {job_id} has not moved for "
            f"{still_s:.0f} s; start one with `arq worker.WorkerSettings` (the job waits in the "
            "queue meanwhile)"
        )
