"""Logging: one format for the project's lines and arq's, to stderr; text or JSON.

`PW_LOG_FORMAT=text` (default): `2026-11-23 01:40:41,572 INFO prospect_worker.jobs: ...`.
`PW_LOG_FORMAT=json`: one JSON object per line, with the job fields (`event`, `job_id`,
`job_type`, `job_try`, `duration_s`, `outcome`...) as keys, for a container's log pipeline.

arq's own lines are tamed by a filter on its logger: its per-job start and end lines carry the
job's arguments and result (company data, contacts) and are replaced by the project's job lines;
its retry line repeats the runtime's; its traceback for a job the runtime already classified
(JobFailed) or for a payload that does not deserialize (poison) is dropped. A traceback is left
only on an error nobody classified.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import orjson

from worker.engine.arqjobs import (
    LOG_FAILED,
    LOG_JOB_END,
    LOG_JOB_START,
    LOG_RETRY,
    LOG_UNDESERIALIZABLE,
    LOGGERS,
)
from worker.engine.serializer import JobFailed

PROJECT_LOGGER = "prospect_worker"
# Loggers of the libraries under the worker that would otherwise print through Python's
# last-resort handler (a bare message, a raw traceback): asyncio's, before the worker installs
# its loop handler (worker/tasks.py) or in a loop it does not own.
LIBRARY_LOGGERS = ("asyncio",)
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The structured fields a line may carry (`extra=`); the JSON format writes them as keys.
FIELDS = (
    "event",
    "job_id",
    "job_type",
    "job_try",
    "outcome",
    "duration_s",
    "queue_wait_s",
    "retry_in_s",
    "error_type",
    "dead_letter_id",
)
LogFormat = Literal["text", "json"]


@dataclass
class _Held:
    logged_at: float
    since: int = 0  # times it came again since it was last logged


class RepeatedWarnings:
    """A warning that may come many times a second while Redis is away: logged the first time,
    then at most once per `every_s` with how many times it came meanwhile. Kinds (`kind`) are
    throttled apart; `clear` starts afresh (Redis is back)."""

    def __init__(
        self,
        logger: logging.Logger,
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._every_s = every_s
        self._clock = clock
        self._held: dict[str, _Held] = {}

    def warning(self, kind: str, message: str, *args: object) -> None:
        now = self._clock()
        held = self._held.get(kind)
        if held is not None and now - held.logged_at < self._every_s:
            held.since += 1
            return
        if held is not None and held.since:
            message += f" ({held.since} more in the last {now - held.logged_at:.0f} s)"
        self._log.warning(message, *args)
        self._held[kind] = _Held(now)

    def clear(self) -> None:
        self._held.clear()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class ArqLines(logging.Filter):
    """Drops or trims arq's lines that repeat the project's or carry job data (see above).

    It also keeps arq's lines on the shared handler. `arq`'s CLI runs dictConfig after
    importing WorkerSettings, which resets arq's child loggers (handlers removed, propagation
    back on, so arq's own format shows) but keeps their filters: this filter then puts the
    handler back before the first record is handled."""

    def __init__(self, logger: logging.Logger, handler: logging.Handler) -> None:
        super().__init__()
        self._logger = logger
        self._handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        if self._logger.handlers != [self._handler]:
            self._logger.handlers[:] = [self._handler]
            self._logger.propagate = False
        if record.msg in (LOG_JOB_START, LOG_JOB_END, LOG_RETRY):
            return False
        if record.msg == LOG_FAILED:
            error = record.exc_info[1] if record.exc_info else None
            return not isinstance(error, JobFailed)
        if record.msg == LOG_UNDESERIALIZABLE:
            record.exc_info, record.exc_text = None, None
        return True


def configure_logging(level: int = logging.INFO, log_format: LogFormat = "text") -> None:
    """Idempotent: called where the process starts, and again by the worker at startup."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(FORMAT))
    project = logging.getLogger(PROJECT_LOGGER)
    project.handlers[:] = [handler]
    project.setLevel(level)
    project.propagate = False

    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
        logger.filters[:] = [ArqLines(logger, handler)]
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.WARNING)
        logger.propagate = False
    # httpx logs every request at INFO with its full URL, and the email finder's URL carries its
    # API key: keep those lines out at any level below WARNING.
    logging.getLogger("httpx").setLevel(logging.WARNING)
