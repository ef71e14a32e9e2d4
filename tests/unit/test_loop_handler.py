"""The event loop's handler for failures nobody retrieved (worker/tasks.py), and asyncio's own
lines in the JSON log (worker/observability/log_setup.py)."""

import asyncio
import gc
import logging

import orjson
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from worker.observability.log_setup import JsonFormatter, configure_logging
from worker.tasks import install_loop_handler, log_loop_exception


async def fail(error: Exception) -> None:
    raise error


async def test_a_task_nobody_awaited_is_logged_once_by_the_project(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_loop_handler()
    with caplog.at_level(logging.WARNING, logger="prospect_worker.tasks"):
        task = asyncio.create_task(fail(ValueError("a bug")), name="the-bug")
        await asyncio.wait([task])
        del task
        gc.collect()  # asyncio reports a task's unseen exception when it is collected
    [record] = [r for r in caplog.records if r.name == "prospect_worker.tasks"]
    assert record.levelno == logging.ERROR
    assert "(task the-bug): ValueError: a bug" in record.getMessage()
    assert record.exc_info is not None
    line = orjson.loads(JsonFormatter().format(record))
    assert "ValueError: a bug" in line["traceback"]


def test_redis_away_is_a_warning_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.WARNING, logger="prospect_worker.tasks"):
            log_loop_exception(
                loop, {"message": "lost", "exception": RedisConnectionError("refused")}
            )
            log_loop_exception(loop, {"message": "a callback went wrong"})
    finally:
        loop.close()
    away, bare = caplog.records
    assert (away.levelno, away.exc_info) == (logging.WARNING, None)
    assert away.getMessage() == "lost: ConnectionError: refused"
    assert (bare.levelno, bare.getMessage()) == (logging.ERROR, "a callback went wrong")


def test_asyncio_lines_go_through_the_json_handler() -> None:
    configure_logging(log_format="json")
    try:
        [handler] = logging.getLogger("asyncio").handlers
        assert isinstance(handler.formatter, JsonFormatter)
        assert logging.getLogger("asyncio").propagate is False
    finally:
        configure_logging()  # the text format the rest of the session's tests expect
