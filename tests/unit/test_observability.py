"""The observability pieces without Redis: the job observers, arq's log lines, the JSON format,
external request metrics at the transport, the sample arithmetic and the stats table."""

import logging
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from prometheus_client import generate_latest

from worker.engine.arqjobs import LOG_FAILED, LOG_JOB_START, LOG_UNDESERIALIZABLE
from worker.engine.serializer import JobFailed, serialize
from worker.observability.daily_state import DailyState
from worker.observability.health import ProbeServer, _LoggedServer
from worker.observability.http_instrument import (
    OPERATIONS,
    InstrumentedTransport,
    provider_operation,
)
from worker.observability.job_counts import JobMetrics
from worker.observability.job_lines import JobLog
from worker.observability.log_setup import ArqLines, JsonFormatter
from worker.observability.metrics import Metrics
from worker.observability.queue_depth import job_type_of, sample_ranks, scale
from worker.observability.stats_report import Depth, Stats, render
from worker.runtime.outcomes import UNKNOWN_FUNCTION, JobOutcome

TYPES = ["daily_prospect_queue", "process_prospect"]


def metrics() -> Metrics:
    return Metrics(TYPES, OPERATIONS, job_limits={"process_prospect": 20}, max_jobs=50)


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_every_label_set_starts_at_zero() -> None:
    m = metrics()
    text = generate_latest(m.registry).decode()
    assert 'prospect_worker_job_outcomes_total{job_type="unknown",outcome="expired"} 0.0' in text
    assert value(m, "prospect_worker_job_limit", job_type="process_prospect") == 20
    for service, operation in OPERATIONS:
        assert (
            value(
                m,
                "prospect_worker_external_requests_total",
                service=service,
                operation=operation,
                outcome="timeout",
            )
            == 0
        )
    assert value(m, "prospect_worker_rate_limit_deferrals_total", limiter="email_finder") == 0


def test_job_metrics_count_outcomes_and_keep_in_flight_true() -> None:
    m = metrics()
    jobs = JobMetrics(m)
    jobs.started(job_id="a", function="process_prospect", job_try=1, queue_wait_s=2.0)
    jobs.started(job_id="b", function="process_prospect", job_try=1, queue_wait_s=None)
    assert jobs.in_flight() == {"process_prospect": 2}
    jobs.ended(
        JobOutcome(
            job_id="a", function="process_prospect", kind="succeeded", job_try=1, duration_s=0.5
        )
    )
    jobs.ended(JobOutcome(job_id="b", function="process_prospect", kind="retried", job_try=1))
    # Decided by arq before the runtime started it: no start, an unknown name.
    jobs.ended(JobOutcome(job_id="c", function="no_such_job", kind="poison", job_try=1))
    assert jobs.in_flight() == {}
    assert value(m, "prospect_worker_jobs_in_flight", job_type="process_prospect") == 0
    assert value(m, "prospect_worker_jobs_in_flight", job_type=UNKNOWN_FUNCTION) == 0
    assert (
        value(m, "prospect_worker_job_outcomes_total", job_type=UNKNOWN_FUNCTION, outcome="poison")
        == 1
    )
    assert value(m, "prospect_worker_job_duration_seconds_count", job_type="process_prospect") == 1
    assert (
        value(m, "prospect_worker_job_queue_wait_seconds_sum", job_type="process_prospect") == 2.0
    )
    taken = jobs.take_unpublished()
    assert taken.counts == {
        ("process_prospect", "succeeded"): 1,
        ("process_prospect", "retried"): 1,
        (UNKNOWN_FUNCTION, "poison"): 1,
    }
    # Only the try that ran has a duration; the mean processing time divides by it.
    assert (taken.run_s, taken.runs) == ({"process_prospect": 0.5}, {"process_prospect": 1})
    assert not jobs.take_unpublished()
    jobs.put_back(taken)
    assert jobs.take_unpublished() == taken


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    return logging.LogRecord(
        "arq.worker",
        logging.ERROR,
        __file__,
        1,
        msg,
        args,
        (type(exc), exc, None) if exc else None,
    )


def test_arq_lines_drop_job_data_and_classified_tracebacks() -> None:
    logger = logging.getLogger("test.arq.lines")
    handler = logging.NullHandler()
    lines = ArqLines(logger, handler)
    assert not lines.filter(record(LOG_JOB_START, 0.1, "id:f", "{'email': 'x'}", ""))
    assert not lines.filter(
        record(LOG_FAILED, 0.1, "id:f", "JobFailed", "x", exc=JobFailed("PermanentError", "x"))
    )
    unexpected = record(LOG_FAILED, 0.1, "id:f", "KeyError", "x", exc=KeyError("x"))
    assert lines.filter(unexpected)
    assert unexpected.exc_info is not None
    poison = record(LOG_UNDESERIALIZABLE, "id", exc=ValueError("bad bytes"))
    assert lines.filter(poison)
    assert poison.exc_info is None
    # After arq's dictConfig reset the logger, the shared handler is back on it.
    assert logger.handlers == [handler]
    assert not logger.propagate


def test_json_lines_carry_the_job_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="prospect_worker.jobs")
    log = JobLog()
    log.started(
        job_id="cron:daily_prospect_queue:1",
        function="daily_prospect_queue",
        job_try=1,
        queue_wait_s=0.25,
    )
    log.ended(
        JobOutcome(
            job_id="cron:daily_prospect_queue:1",
            function="daily_prospect_queue",
            kind="succeeded",
            job_try=1,
            duration_s=1.5,
        )
    )
    log.ended(
        JobOutcome(
            job_id="p1",
            function="process_prospect",
            kind="failed",
            job_try=3,
            error_type="PermanentError",
            error="secret detail",
        )
    )
    lines = [orjson.loads(JsonFormatter().format(r)) for r in caplog.records]
    assert [line["event"] for line in lines] == ["job_start", "cron_run", "job_end"]
    assert lines[0]["queue_wait_s"] == 0.25
    assert lines[0]["level"] == "DEBUG"  # a start is no outcome
    assert lines[1] | {"ts": None} == {
        "ts": None,
        "level": "INFO",
        "logger": "prospect_worker.jobs",
        "message": "job end daily_prospect_queue cron:daily_prospect_queue:1 try 1 succeeded "
        "in 1.500s",
        "event": "cron_run",
        "job_id": "cron:daily_prospect_queue:1",
        "job_type": "daily_prospect_queue",
        "job_try": 1,
        "outcome": "succeeded",
        "duration_s": 1.5,
    }
    assert lines[2]["level"] == "WARNING"
    assert lines[2]["error_type"] == "PermanentError"
    assert "secret detail" not in caplog.text


async def test_external_requests_are_counted_by_outcome_class() -> None:
    m = metrics()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "slow.example":
            raise httpx.ConnectTimeout("slow", request=request)
        status = {"/v2/domain-search": 429, "/v5/company/search": 200}.get(request.url.path, 404)
        return httpx.Response(status, json={})

    transport = InstrumentedTransport(httpx.MockTransport(answer), m, provider_operation)
    async with httpx.AsyncClient(transport=transport) as http:
        await http.get("http://hunter.example/v2/domain-search?domain=a.example")
        await http.post("http://pdl.example/v5/company/search", json={})
        await http.get("http://pdl.example/elsewhere")
        with pytest.raises(httpx.ConnectTimeout):
            await http.post("http://slow.example/v1/chat/completions", json={})
    name = "prospect_worker_external_requests_total"
    assert (
        value(m, name, service="email_finder", operation="domain_search", outcome="rate_limited")
        == 1
    )
    assert value(m, name, service="discovery", operation="company_search", outcome="success") == 1
    assert value(m, name, service="other", operation="other", outcome="client_error") == 1
    assert value(m, name, service="llm", operation="chat_completion", outcome="timeout") == 1
    assert (
        value(
            m,
            "prospect_worker_external_request_duration_seconds_count",
            service="llm",
            operation="chat_completion",
        )
        == 1
    )


def test_sampling_arithmetic() -> None:
    assert sample_ranks(0, 10, 10) == list(range(10))
    assert sample_ranks(100, 1000, 4) == [225, 475, 725, 975]
    parts = scale(Counter({"a": 1, "b": 1, "c": 1}), 100)
    assert sorted(parts.values()) == [33, 33, 34]
    assert scale(Counter(), 50) == {}
    assert job_type_of(serialize({"f": "process_prospect"}), TYPES) == "process_prospect"
    assert job_type_of(serialize({"f": "rm"}), TYPES) == UNKNOWN_FUNCTION
    assert job_type_of(b"\xff not json", TYPES) == UNKNOWN_FUNCTION
    assert job_type_of(None, TYPES) == UNKNOWN_FUNCTION


def test_stats_table() -> None:
    stats = Stats(
        at=datetime(2026, 12, 2, 9, 0, tzinfo=UTC),
        depth=[Depth(job_type="process_prospect", priority="default", due=12, scheduled=3)],
        depth_exact=False,
        due=12,
        scheduled=3,
        oldest_due_age_s=4.25,
        in_flight={"process_prospect": 5},
        replicas=[],
        outcomes_last_hour={"process_prospect": {"succeeded": 40, "failed": 2}},
        dead_letters=2,
        paused=None,
        daily=DailyState(
            run_id="2026-12-02",
            state="running",
            last_start_ts=0,
            last_success_ts=0,
            fanned_out=75,
            quota_day="2026-12-02",
            quota_used=10,
            quota_limit=50,
        ),
    )
    text = render(stats)
    assert "queue: 12 due, 3 scheduled (split by type estimated from a sample)" in text
    assert "process_prospect  default    12          3          5" in text
    assert "dead letters: 2" in text
    assert "paused: unknown" in text
    assert "quota 2026-12-02: 10 of 50 drafts" in text
    assert "last success never" in text


def test_rate_limits_are_counted_for_the_scheduling_work() -> None:
    m = metrics()
    m.rate_limited("email_finder", waited_s=1.5, deferred=False)
    m.rate_limited("email_finder", waited_s=None, deferred=True)
    assert value(m, "prospect_worker_rate_limit_wait_seconds_sum", limiter="email_finder") == 1.5
    assert value(m, "prospect_worker_rate_limit_deferrals_total", limiter="email_finder") == 1
    assert value(m, "prospect_worker_rate_limit_deferrals_total", limiter="discovery") == 0


def test_a_rate_limit_deferral_is_counted_and_ends_the_try_in_flight() -> None:
    m = metrics()
    jobs = JobMetrics(m)
    jobs.started(job_id="a", function="process_prospect", job_try=1, queue_wait_s=None)
    jobs.ended(
        JobOutcome(
            job_id="a",
            function="process_prospect",
            kind="deferred",
            job_try=1,
            retry_in_s=0.7,
            deferred_by="rate_limit",
            limit_name="llm",
        )
    )
    jobs.ended(
        JobOutcome(
            job_id="b",
            function="process_prospect",
            kind="deferred",
            job_try=1,
            deferred_by="type_limit",
            limit_name="process_prospect",
        )
    )
    assert value(m, "prospect_worker_rate_limit_deferrals_total", limiter="llm") == 1
    assert (
        value(
            m, "prospect_worker_job_outcomes_total", job_type="process_prospect", outcome="deferred"
        )
        == 2
    )
    assert jobs.in_flight() == {}


def test_refused_run_records_are_counted_by_kind() -> None:
    m = metrics()
    m.record_refused("tally")
    m.record_refused("tally")
    m.record_refused("approval")
    value = m.registry.get_sample_value
    assert value("prospect_worker_run_records_refused_total", {"record": "tally"}) == 2
    assert value("prospect_worker_run_records_refused_total", {"record": "approval"}) == 1
    assert value("prospect_worker_run_records_refused_total", {"record": "fanout"}) == 0


def test_a_probe_that_fails_is_one_line_of_the_projects_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("the liveness check has a bug")

    server = ProbeServer(metrics(), broken, lambda: (True, "redis ok"))
    port = server.start("127.0.0.1", 0)
    try:
        with caplog.at_level(logging.WARNING, logger="prospect_worker.health"):
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
            answer.value.close()  # its response, so no socket is left for the collector
            assert answer.value.code == 500
            try:
                raise BrokenPipeError(32, "Broken pipe")
            except BrokenPipeError:
                _LoggedServer.handle_error(server_of(server), None, ("127.0.0.1", 1))
    finally:
        server.stop()
    failed, hung_up = [r for r in caplog.records if r.name == "prospect_worker.health"]
    assert failed.levelno == logging.ERROR
    assert "RuntimeError: the liveness check has a bug" in failed.getMessage()
    assert (hung_up.levelno, hung_up.exc_info) == (logging.WARNING, None)
    assert "ended early" in hung_up.getMessage()


def server_of(server: ProbeServer) -> _LoggedServer:
    running = server._server  # noqa: SLF001 - the one running server, to call its hook
    assert isinstance(running, _LoggedServer)
    return running
