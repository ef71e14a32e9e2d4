"""The arq canary: every arq internal the engine relies on, pinned against the installed arq.

The engine subclasses arq's `Worker` and reads arq's keys, records, log lines and cron ids
directly (worker/engine/worker.py, worker/engine/arqjobs.py). An upgraded arq that renamed a
private method would silently stop calling the engine's override; these tests fail first, each
naming what moved. When arq is upgraded on purpose, re-read each pinned piece in the new arq,
adapt the engine, then update `ARQ_VERSION` and the pins here together.
"""

import ast
import inspect
import logging
import pkgutil
import re
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import arq
import arq.constants
import arq.jobs
import arq.utils
import arq.version
import arq.worker
import fakeredis
import orjson
import pytest
from arq.connections import ArqRedis
from arq.cron import cron

import worker.engine.worker
from settings import Settings
from worker.app import worker_settings
from worker.engine.arqjobs import (
    ARQ_VERSION,
    CRON_PREFIX,
    IN_PROGRESS_KEY_PREFIX,
    JOB_KEY_PREFIX,
    LOG_FAILED,
    LOG_JOB_END,
    LOG_JOB_START,
    LOG_RETRY,
    LOG_UNDESERIALIZABLE,
    LOGGERS,
    RESULT_KEY_PREFIX,
    RETRY_KEY_LIFE_S,
    RETRY_KEY_PREFIX,
    UnsupportedArq,
    check_arq_version,
    cron_job_id,
    cron_name,
    decode_job,
    due_now_ms,
    encode_job,
    is_cron_run,
    job_type,
    take_back_delivery,
)
from worker.engine.worker import EngineWorker, use_in_arq_cli

ROOT = Path(__file__).resolve().parents[2]
ArqWorker = arq.worker.Worker

# Every arq method the engine overrides: arq's parameters (annotations left out), and the arq
# method that refers to it, so a rename upstream (the override no longer called) fails here.
OVERRIDES = {
    "main": ("(self)", "async_run"),
    "_poll_iteration": ("(self)", "main"),
    "start_jobs": ("(self, job_ids)", "_poll_iteration"),
    "finish_job": (
        (
            "(self, job_id, finish, result_data, result_timeout_s, keep_result_forever, "
            "incr_score, keep_in_progress)"
        ),
        "run_job",
    ),
    "finish_failed_job": ("(self, job_id, result_data)", "run_job"),
    "run_cron": ("(self, n, delay, num_windows=2)", "heart_beat"),
    "handle_sig": ("(self, signum)", "__init__"),
    "handle_sig_wait_for_completion": ("(self, signum)", "__init__"),
    "_wait_for_tasks_to_complete": ("(self, signum)", "handle_sig_wait_for_completion"),
    "_sleep_until_tasks_complete": ("(self)", "_wait_for_tasks_to_complete"),
    "close": ("(self)", "run"),
    "run_job": ("(self, job_id, score)", "start_jobs"),
}
# arq's properties the engine overrides, and the arq method that reads each.
PROPERTIES = {"pool": "run_job"}

# What the engine reads or sets on arq's worker besides its overrides.
ARQ_ATTRIBUTES = {
    "_handle_signals",
    "allow_abort_jobs",
    "functions",
    "max_tries",
    "_release_sem_dec_counter_on_complete",
    "_job_completion_wait",
    "_pool",
    "allow_pick_jobs",
    "ctx",
    "expires_extra_ms",
    "in_progress_timeout_s",
    "job_counter",
    "job_deserializer",
    "job_serializer",
    "job_tasks",
    "jobs_retried",
    "keep_result_s",
    "loop",
    "main_task",
    "max_jobs",
    "on_job_end",
    "on_stop",
    "pool",
    "queue_name",
    "redis_settings",
    "run_job",
    "sem",
    "tasks",
}


def bare(signature: inspect.Signature) -> str:
    params = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=params, return_annotation=inspect.Signature.empty))


async def job(ctx: dict[str, Any]) -> None:
    """A job function for the workers built here (never run)."""


class RecordingPool:
    """Stands in for arq's pool where a test only needs what arq asks of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        async def record(*args: Any, **kwargs: Any) -> int:
            self.calls.append((name, args, kwargs))
            return 0

        return record


def arq_worker(pool: RecordingPool | None = None, **kwargs: Any) -> arq.worker.Worker:
    return ArqWorker(
        functions=[arq.worker.func(job, name="job")],
        redis_pool=pool or RecordingPool(),  # type: ignore[arg-type]
        handle_signals=False,
        **kwargs,
    )


def engine_self_attributes() -> set[str]:
    """Every `self.<name>` the engine's worker refers to."""
    tree = ast.parse(inspect.getsource(EngineWorker))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }


# --- the version ------------------------------------------------------------------------------


def test_the_installed_arq_is_the_pinned_one() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"arq=={ARQ_VERSION}" in project["dependencies"]
    assert arq.version.VERSION == ARQ_VERSION, (
        f"arq {arq.version.VERSION} is installed; the engine is written against {ARQ_VERSION}: "
        "check every pin in this file against the new arq before moving ARQ_VERSION"
    )
    check_arq_version()  # the start-time check passes on it


def test_another_arq_stops_the_start_with_one_line() -> None:
    with pytest.raises(UnsupportedArq) as caught:
        check_arq_version("0.29.1")
    assert str(caught.value) == (
        "arq 0.29.1 is installed, but the engine supports arq 0.28.0 only (install arq==0.28.0)"
    )


def test_arq_worker_settings_refuses_another_arq(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import worker

    monkeypatch.setattr(arq.version, "VERSION", "0.29.1")
    with pytest.raises(SystemExit) as stopped:
        worker.WorkerSettings  # noqa: B018 - what `arq worker.WorkerSettings` reads first
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        (
            "prospect-worker: arq 0.29.1 is installed, but the engine supports arq 0.28.0 only "
            "(install arq==0.28.0)"
        )
    ]


# --- the worker class -------------------------------------------------------------------------


def test_every_override_is_pinned() -> None:
    overrides = {
        name
        for name in vars(EngineWorker)
        if hasattr(ArqWorker, name) and not (name.startswith("__") and name.endswith("__"))
    }
    assert overrides == OVERRIDES.keys() | PROPERTIES.keys()
    for name, reader in PROPERTIES.items():
        assert isinstance(vars(ArqWorker)[name], property), f"arq's Worker.{name} changed kind"
        assert f"self.{name}" in inspect.getsource(getattr(ArqWorker, reader))


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_arq_still_calls_each_override_with_the_same_parameters(name: str) -> None:
    parameters, caller = OVERRIDES[name]
    assert bare(inspect.signature(getattr(ArqWorker, name))) == parameters, (
        f"arq's Worker.{name} changed its parameters"
    )
    assert f"self.{name}" in inspect.getsource(getattr(ArqWorker, caller)), (
        f"arq's Worker.{caller} no longer refers to {name}: the engine's override is not called"
    )


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_each_override_takes_arqs_parameters(name: str) -> None:
    ours = bare(inspect.signature(getattr(EngineWorker, name)))
    assert ours == OVERRIDES[name][0]


async def test_every_arq_attribute_the_engine_uses_is_pinned_and_still_there() -> None:
    instance = arq_worker()
    own = set(vars(EngineWorker)) - set(dir(ArqWorker))
    used = {
        name
        for name in engine_self_attributes() - own - OVERRIDES.keys()
        if (hasattr(instance, name) or hasattr(ArqWorker, name)) and not name.startswith("__")
    }
    assert used <= ARQ_ATTRIBUTES, f"pin these arq attributes: {sorted(used - ARQ_ATTRIBUTES)}"
    missing = {name for name in ARQ_ATTRIBUTES if not hasattr(instance, name)}
    assert not missing, f"arq's Worker no longer has {sorted(missing)}"


async def test_arqs_cli_builds_the_engine_once_the_name_is_rebound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(arq.worker, "Worker", ArqWorker)  # restored after the test
    use_in_arq_cli()
    built = arq.worker.create_worker(
        {"functions": [arq.worker.func(job, name="job")], "redis_pool": RecordingPool()},
        handle_signals=False,
    )
    assert type(built) is EngineWorker
    # `arq --check` and `create_worker` pick WorkerSettings' attributes by the same name.
    assert "inspect.signature(Worker)" in inspect.getsource(arq.worker.get_kwargs)


def test_arq_takes_every_attribute_of_worker_settings() -> None:
    """arq drops a WorkerSettings attribute its Worker does not take, silently."""
    attributes = {name for name in vars(worker_settings(Settings())) if not name.startswith("__")}
    taken = set(inspect.signature(ArqWorker).parameters)
    assert attributes - taken == set()


def test_the_demo_can_quiet_arqs_redis_info_line() -> None:
    assert "await log_redis_info(self.pool" in inspect.getsource(ArqWorker.main)


def test_the_job_ctx_and_function_options_the_runtime_uses() -> None:
    """worker/runtime/runtime.py reads arq's per-job ctx and builds arq functions and retries."""
    run_job = inspect.getsource(ArqWorker.run_job)
    for key in ("'job_id': job_id", "'job_try': job_try", "'enqueue_time': ", "'score': score"):
        assert key in run_job, f"arq's job ctx no longer has {key!r}"
    assert "self.ctx['redis'] = self.pool" in inspect.getsource(ArqWorker.main)  # on_startup's
    assert {"name", "timeout", "max_tries"} <= set(inspect.signature(arq.worker.func).parameters)
    assert "defer" in inspect.signature(arq.worker.Retry).parameters


# --- keys, records, clocks --------------------------------------------------------------------


def test_arqs_keys() -> None:
    assert JOB_KEY_PREFIX == "arq:job:"
    assert IN_PROGRESS_KEY_PREFIX == "arq:in-progress:"
    assert RESULT_KEY_PREFIX == "arq:result:"
    assert RETRY_KEY_PREFIX == "arq:retry:"
    assert arq.constants.abort_jobs_ss == "arq:abort"
    # settings.py's default queue is arq's, so a plain arq client reaches the worker.
    assert arq.constants.default_queue_name == Settings.model_fields["queue_name"].default


async def test_the_health_check_key_is_the_one_worker_settings_names() -> None:
    pool = RecordingPool()
    worker = arq_worker(pool, health_check_key="pw:health-check:pod-1")
    await worker.record_health()
    assert [call[1][0] for call in pool.calls if call[0] == "psetex"] == ["pw:health-check:pod-1"]
    # `arq --check` reads the same attribute (arq's default would be the queue's shared key).
    assert "cls_kwargs.get('health_check_key')" in inspect.getsource(arq.worker.check_health)
    assert arq.constants.health_check_key_suffix == ":health-check"


def test_the_job_record_is_arqs() -> None:
    payload = {"prospect_id": "p-1"}
    ours = encode_job("process_prospect", payload, 1_700_000_000_123)
    theirs = arq.jobs.serialize_job(
        "process_prospect", (payload,), {}, None, 1_700_000_000_123, serializer=orjson.dumps
    )
    assert ours == theirs
    read_back: tuple[Any, ...] = arq.jobs.deserialize_job_raw(ours, deserializer=orjson.loads)
    assert read_back == ("process_prospect", [payload], {}, None, 1_700_000_000_123)
    record = decode_job(theirs)
    assert (record.function, record.args, record.job_try) == ("process_prospect", [payload], None)


def test_the_result_record_keeps_the_outcome_under_r() -> None:
    """The engine reads arq's reason for a failure it decided from the result record's `r`."""
    data = arq.jobs.serialize_result(
        "f",
        (),
        {},
        1,
        0,
        False,
        ValueError("gone"),
        0,
        0,
        "id:f",
        "q",
        job_id="id",
        serializer=lambda value: orjson.dumps(value, default=str),
    )
    assert data is not None
    assert orjson.loads(data)["r"] == "gone"


def test_due_is_arqs_rounded_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arq.utils, "time", lambda: 1_000.0006)
    assert arq.utils.timestamp_ms() == 1_000_001
    assert due_now_ms() == 1_000_001


def test_run_job_starts_with_the_read_the_claim_answers() -> None:
    """The engine's claim does arq's read of a job (worker/engine/claimread.py): `run_job`'s
    first use of the pool must still be that transaction, with these commands exactly."""
    body = inspect.getsource(ArqWorker.run_job)
    read = (
        "        async with self.pool.pipeline(transaction=True) as pipe:\n"
        "            pipe.get(job_key_prefix + job_id)\n"
        "            pipe.incr(retry_key_prefix + job_id)\n"
        f"            pipe.expire(retry_key_prefix + job_id, {RETRY_KEY_LIFE_S})\n"
        "            if self.allow_abort_jobs:\n"
        "                pipe.zrem(abort_jobs_ss, job_id)\n"
    )
    assert read in body
    assert body.index("self.pool") == body.index(read) + len("        async with ")
    assert "start_ms = timestamp_ms()\n" in body[: body.index(read)]


async def test_the_delivery_count_is_arqs_retry_key() -> None:
    source = inspect.getsource(ArqWorker.run_job)
    assert "pipe.incr(retry_key_prefix + job_id)" in source
    redis = fakeredis.FakeAsyncRedis()
    await redis.set("arq:retry:job-1", 3)
    await take_back_delivery(redis, "job-1")
    assert await redis.get("arq:retry:job-1") == b"2"
    await redis.aclose()


# --- cron -------------------------------------------------------------------------------------


async def test_a_cron_runs_under_the_name_and_id_the_engine_rebuilds() -> None:
    tick = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    default = cron(job, hour=8, minute=0, unique=True)
    assert default.name == cron_name("job") == CRON_PREFIX + "job"
    pool = RecordingPool()
    worker = arq_worker(pool, cron_jobs=[default])
    default.next_run = tick
    await worker.run_cron(tick - timedelta(seconds=0.5), 0.5)
    ((_name, args, kwargs),) = [call for call in pool.calls if call[0] == "enqueue_job"]
    assert args == ("cron:job",)
    assert kwargs["_job_id"] == cron_job_id("cron:job", tick) == "cron:job:1796371200000"
    assert is_cron_run(kwargs["_job_id"])
    assert job_type(args[0]) == "job"


def test_enqueue_takes_the_options_the_project_passes() -> None:
    options = set(inspect.signature(ArqRedis.enqueue_job).parameters)
    assert {"_job_id", "_queue_name", "_defer_until", "_expires"} <= options


# --- log lines --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template", [LOG_JOB_START, LOG_JOB_END, LOG_RETRY, LOG_FAILED, LOG_UNDESERIALIZABLE]
)
def test_worker_logs_filters_arqs_own_templates(template: str) -> None:
    assert f"'{template}'" in inspect.getsource(arq.worker), f"arq no longer logs {template!r}"


def test_every_arq_logger_is_tamed() -> None:
    names = set()
    for module in pkgutil.iter_modules(arq.__path__, "arq."):
        logger = getattr(__import__(module.name, fromlist=["_"]), "logger", None)
        if isinstance(logger, logging.Logger):
            names.add(logger.name)
    assert names == set(LOGGERS)


def test_nothing_outside_the_engine_spells_arqs_internals() -> None:
    # arq's key prefixes, cron prefix, log templates, logger names and the helpers that build
    # its ids: outside the engine, these are reached through worker/engine/arqjobs.py's names.
    spelled = re.compile(
        r"arq:(job|in-progress|result|retry|abort):|\"cron:|%6\.2fs|to_unix_ms|from arq\.constants"
        r"|\"arq\.(worker|jobs|connections|utils)\""
    )
    engine = ROOT / "worker" / "engine"
    found = [
        str(path.relative_to(ROOT))
        for folder in ("worker", "jobs")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if engine not in path.parents and spelled.search(path.read_text())
    ]
    assert found == []


# --- the changes, by name ---------------------------------------------------------------------


def test_each_named_change_heads_its_paragraph_and_its_section() -> None:
    doc = worker.engine.worker.__doc__ or ""
    headings = [
        line.split(":")[0].split(" (")[0] for line in doc.splitlines() if line[:1].isupper()
    ]
    names = [name for name, _ in worker.engine.worker.CHANGES]
    assert [h for h in headings if h in names] == names
    source = inspect.getsource(EngineWorker)
    for name in names:
        assert re.search(rf"# --- {re.escape(name)} -+\n", source), f"no section for {name}"


def test_the_fenced_claim_calls_run_job_and_frees_arqs_slot_as_arq_does() -> None:
    """The Fencing change claims a job itself, then hands it to arq's `run_job` and arq's
    slot release."""
    assert list(inspect.signature(ArqWorker.run_job).parameters) == ["self", "job_id", "score"]
    assert callable(ArqWorker._release_sem_dec_counter_on_complete)  # noqa: SLF001
