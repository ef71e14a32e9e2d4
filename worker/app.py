"""Wiring: settings in, an arq WorkerSettings class out, and the per-process dependencies that
on_startup builds and on_shutdown closes."""

import gc
import logging
import os
import socket
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any

import httpx
from arq import cron
from redis.asyncio import Redis

from jobs.clients.discovery import CompanySearchClient
from jobs.clients.email_finder import EmailFinderClient
from jobs.clients.http import USER_AGENT
from jobs.clients.llm import ChatClient
from jobs.clients.standins import (
    DISCOVERY_BASE_URL,
    EMAIL_FINDER_BASE_URL,
    load_sample_data,
    sample_transport,
)
from jobs.deps import Deps, PipelineConfig, Sender
from jobs.outreach.classify import LlmClassifier, ReplyClassifier, RuleClassifier
from jobs.outreach.config import Outreach, OutreachConfig
from jobs.outreach.drafting import DraftWriter, LlmWriter, TemplateWriter
from jobs.outreach.drafts import DraftBook
from jobs.outreach.message import SenderIdentity
from jobs.outreach.outbox import Outbox
from jobs.outreach.replies_log import ReplyLog
from jobs.outreach.send import SERVICE as SENDING
from jobs.outreach.smtp import Mailer, SmtpConfig
from jobs.outreach.suppression import Suppressions
from jobs.prospecting.runs import RunLedger
from jobs.prospecting.store import ProspectStore
from jobs.spec import JobType
from jobs.web.fetch import WebsiteFetcher
from jobs.web.netguard import guarded_transport, transport_on
from settings import ServiceSettings, Settings
from worker.connections import JOB_EXPIRES_MS, redis_client, redis_settings
from worker.engine.arqjobs import cron_name
from worker.engine.burst import BurstWorker
from worker.engine.catchup import catch_up
from worker.engine.functions import arq_function
from worker.engine.serializer import deserialize, serialize
from worker.engine.worker import (
    CTX_CONFIG,
    CTX_ENGINE,
    CTX_ORDER,
    CTX_PAUSE,
    CTX_WAKE,
    EngineConfig,
)
from worker.keys import WorkerKeys
from worker.observability.assemble import build_metrics, start_observability
from worker.observability.http_instrument import (
    InstrumentedTransport,
    provider_operation,
    website_fetch,
)
from worker.observability.metrics import Metrics
from worker.observability.ready import ready_line
from worker.registry import CLEANUP_JOB, DAILY_JOB, JOB_TYPES, job_specs
from worker.runtime.deadletter import DeadLetters
from worker.runtime.failures import RetryPolicy
from worker.runtime.fencing import FencedNetworkBackend, FencedTransport
from worker.runtime.runtime import Runtime
from worker.scheduling.fanout import BulkEnqueuer
from worker.scheduling.limits import Rate, RateLimiter, TypeLeases
from worker.scheduling.pause import PauseSwitch
from worker.scheduling.queueorder import PriorityScale, QueueOrder
from worker.scripts import preload_scripts
from worker.tasks import install_loop_handler

log = logging.getLogger("prospect_worker")

# `.example` is reserved (RFC 2606) and never resolves, so routing it to the bundled stand-in
# is safe in production too: it is how the offline default and the sample websites answer.
SAMPLE_MOUNT = "all://*.example"
# The retention cleanup runs hourly at this minute (one run per tick across replicas).
CLEANUP_MINUTE = 17


def replica_name() -> str:
    """Tells replicas apart: the pod's host name and the process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def health_check_key(settings: Settings) -> str:
    """arq's health key, one per pod: `arq --check worker.WorkerSettings` run in the pod (a
    liveness probe) computes the same name, and replicas never share one."""
    return f"{settings.key_prefix}:health-check:{socket.gethostname()}"


def _base_url(service: ServiceSettings, offline: str) -> str:
    return str(service.base_url).rstrip("/") if service.base_url else offline


def _key(service: ServiceSettings) -> str | None:
    return service.api_key.get_secret_value() if service.api_key else None


def rates_of(per_second: int | None, per_minute: int | None) -> tuple[Rate, ...]:
    """The rates set (None or 0: not set)."""
    chosen = ((per_second, "s"), (per_minute, "min"))
    return tuple(Rate(limit, period) for limit, period in chosen if limit)


def service_rates(settings: Settings) -> dict[str, tuple[Rate, ...]]:
    """Each provider's request rates and the sending throttle from settings (none set: no
    limit of ours)."""
    services = {
        "discovery": settings.discovery,
        "email_finder": settings.email_finder,
        "llm": settings.llm,
    }
    rates = {
        name: rates_of(service.requests_per_second, service.requests_per_minute)
        for name, service in services.items()
    }
    outreach = settings.outreach
    rates[SENDING] = rates_of(outreach.sends_per_second, outreach.sends_per_minute)
    return rates


async def build_deps(
    settings: Settings, stack: AsyncExitStack, metrics: Metrics | None = None
) -> tuple[Deps, Redis]:
    """Everything a job body needs, built once per process; `stack` closes it at shutdown.

    With `metrics`, every external request is counted at the HTTP transport."""
    keys = WorkerKeys(settings.key_prefix)
    redis = redis_client(settings)
    stack.push_async_callback(redis.aclose)
    gate = RateLimiter(redis, keys, service_rates(settings))
    standin = sample_transport(load_sample_data())
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    # Connections check the calling job's fence as they write (worker/runtime/fencing.py).
    provider_transports: list[httpx.AsyncBaseTransport] = [
        transport_on(FencedNetworkBackend(), limits),
        standin,
    ]
    web_transports = [
        guarded_transport(allow_private=settings.web.allow_private, backend=FencedNetworkBackend()),
        standin,
    ]
    if metrics is not None:
        provider_transports = [
            InstrumentedTransport(t, metrics, provider_operation) for t in provider_transports
        ]
        web_transports = [InstrumentedTransport(t, metrics, website_fetch) for t in web_transports]
    # Outermost: a job this worker no longer owns makes no request (worker/runtime/fencing.py).
    provider_transports = [FencedTransport(t) for t in provider_transports]
    web_transports = [FencedTransport(t) for t in web_transports]
    providers = await stack.enter_async_context(
        httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT},
            transport=provider_transports[0],
            mounts={SAMPLE_MOUNT: provider_transports[1]},
        )
    )
    web = await stack.enter_async_context(
        httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT},
            transport=web_transports[0],
            mounts={SAMPLE_MOUNT: web_transports[1]},
        )
    )
    writer: DraftWriter = TemplateWriter()
    classifier: ReplyClassifier = RuleClassifier()
    if settings.llm.base_url is not None:
        chat = ChatClient(
            providers,
            base_url=str(settings.llm.base_url).rstrip("/"),
            api_key=_key(settings.llm),
            model=settings.llm.model,
            timeout=settings.llm.timeout_s,
            gate=gate,
        )
        writer = LlmWriter(chat)
        classifier = LlmClassifier(chat)
    deps = Deps(
        keys=keys,
        store=ProspectStore(redis, keys),
        ledger=RunLedger(redis, keys),
        config=PipelineConfig(
            tz=settings.tz,
            daily_limit=settings.daily_limit,
            discovery_cap=settings.discovery_cap,
            fanout_headroom=settings.fanout_headroom,
            sender=Sender(**settings.sender.model_dump()),
            draft_ttl_s=settings.draft_ttl_days * 86_400,
            event_retention_s=settings.event_retention_days * 86_400,
        ),
        icp=settings.icp,
        discovery=CompanySearchClient(
            providers,
            base_url=_base_url(settings.discovery, DISCOVERY_BASE_URL),
            api_key=_key(settings.discovery),
            timeout=settings.discovery.timeout_s,
            gate=gate,
        ),
        email_finder=EmailFinderClient(
            providers,
            base_url=_base_url(settings.email_finder, EMAIL_FINDER_BASE_URL),
            api_key=_key(settings.email_finder),
            timeout=settings.email_finder.timeout_s,
            gate=gate,
        ),
        fetcher=WebsiteFetcher(
            web,
            max_bytes=settings.web.max_bytes,
            max_redirects=settings.web.max_redirects,
            timeout=settings.web.timeout_s,
        ),
        writer=writer,
        enqueuer=BulkEnqueuer(
            redis,
            queue_name=settings.queue_name,
            serializer=serialize,
            expires_ms=JOB_EXPIRES_MS,
            keys=keys,
            scale=PriorityScale(settings.priority_step_s),
        ),
        outreach=build_outreach(settings, redis, keys, classifier),
        gate=gate,
    )
    if metrics is not None:
        deps = replace(deps, refused=metrics.record_refused)
    return deps, redis


def sender_identity(settings: Settings) -> SenderIdentity:
    """Who the emails are from, for the sender and for the console's preview of a draft."""
    outreach = settings.outreach
    return SenderIdentity(
        name=settings.sender.name,
        address=outreach.from_address,
        reply_to=outreach.reply_to,
        unsubscribe_mailto=outreach.unsubscribe_mailto,
        unsubscribe_url=outreach.unsubscribe_url,
    )


def build_outreach(
    settings: Settings, redis: Redis, keys: WorkerKeys, classifier: ReplyClassifier
) -> Outreach:
    smtp, outreach = settings.smtp, settings.outreach
    mailer = None
    if smtp.host is not None:
        mailer = Mailer(
            SmtpConfig(
                host=smtp.host,
                port=smtp.port,
                security=smtp.security,
                username=smtp.username,
                password=smtp.password,
                timeout_s=smtp.timeout_s,
                validate_certs=smtp.validate_certs,
            )
        )
    return Outreach(
        config=OutreachConfig(
            identity=sender_identity(settings),
            daily_cap=outreach.daily_cap,
            lease_s=outreach.send_lease_s,
            suppress_not_interested=outreach.suppress_not_interested,
            suppress_domain=outreach.suppress_domain,
        ),
        drafts=DraftBook(redis, keys),
        outbox=Outbox(redis, keys),
        suppressions=Suppressions(redis, keys),
        classifier=classifier,
        replies=ReplyLog(redis, keys),
        mailer=mailer,
    )


@dataclass(frozen=True)
class EngineParts:
    """What every engine worker gets at startup besides its jobs' dependencies: the runtime's
    type leases and dead letters, and what the worker's loop reads from ctx (the queue's order,
    the pause switch, the wake-up channel). One builder, so a test's worker is wired as
    production's is."""

    leases: TypeLeases
    dead_letters: DeadLetters
    order: QueueOrder
    pause: PauseSwitch
    wake_channel: str

    @classmethod
    def build(
        cls,
        redis: Redis,
        keys: WorkerKeys,
        *,
        queue_name: str,
        lease_s: float,
        dead_letter_max_entries: int,
    ) -> "EngineParts":
        return cls(
            leases=TypeLeases(redis, keys, lease_s=lease_s, queue_name=queue_name),
            dead_letters=DeadLetters(
                redis,
                keys,
                queue_name=queue_name,
                job_expires_ms=JOB_EXPIRES_MS,
                max_entries=dead_letter_max_entries,
            ),
            order=QueueOrder(redis, keys, queue_name=queue_name),
            pause=PauseSwitch(redis, keys),
            wake_channel=keys.wake,
        )

    def install(self, ctx: dict[str, Any]) -> None:
        ctx[CTX_ORDER] = self.order
        ctx[CTX_PAUSE] = self.pause
        ctx[CTX_WAKE] = self.wake_channel


def retry_policy(settings: Settings) -> RetryPolicy:
    retry = settings.retry
    return RetryPolicy(retry.base_delay_s, retry.max_delay_s, retry.max_retry_after_s)


def worker_settings(
    settings: Settings,
    *,
    adjust_deps: Callable[[Deps], Deps] | None = None,
    job_types: Sequence[JobType] = JOB_TYPES,
) -> type:
    """The class `arq worker.WorkerSettings` loads; arq reads its attributes.

    `adjust_deps` lets a test swap one dependency (a gated writer, say) on a real worker;
    `job_types` the job types it runs (the registry's, unless a test declares its own)."""
    specs = job_specs(settings, job_types)
    recovery = settings.recovery

    async def on_startup(ctx: dict[str, Any]) -> None:
        install_loop_handler()
        # Per worker instance (in ctx), so two workers built from one class never share clients.
        ctx["exit_stack"] = stack = AsyncExitStack()
        metrics = build_metrics(settings, specs)
        deps, redis = await build_deps(settings, stack, metrics)
        if adjust_deps is not None:
            deps = adjust_deps(deps)
        keys = WorkerKeys(settings.key_prefix)  # the domain's keys and the worker's own
        engine_parts = EngineParts.build(
            redis,
            keys,
            queue_name=settings.queue_name,
            lease_s=recovery.in_progress_ttl_s,
            dead_letter_max_entries=settings.dead_letter_max_entries,
        )
        # Every script the jobs' dependencies and the engine's parts hold (worker/scripts.py).
        await preload_scripts(redis, deps, engine_parts)
        engine_parts.install(ctx)
        # Observability: metrics port, heartbeat, sampler, job observers
        # (worker/observability/assemble.py).
        engine = ctx.get(CTX_ENGINE)
        observability = await start_observability(
            settings,
            metrics,
            stack,
            queue_redis=ctx["redis"],
            redis=redis,
            keys=keys,
            replica=replica_name(),
            poll_tick=(lambda: engine.loop_tick) if engine is not None else None,
        )
        ctx["observability"] = observability
        ctx["runtime"] = Runtime(
            deps,
            redis,
            keys,
            retry_policy(settings),
            engine_parts.dead_letters,
            specs=specs,
            leases=engine_parts.leases,
            observers=observability.observers,
        )
        # What startup built lives as long as the process: out of the collector's generations,
        # so each full collection no longer walks it again.
        gc.freeze()
        caught_up = None
        if settings.daily_catch_up:
            caught_up = await catch_up(ctx["redis"], settings, cron_name(DAILY_JOB))
        log.info(
            "%s",
            ready_line(settings, replica=replica_name(), job_types=specs, caught_up=caught_up),
        )

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if "exit_stack" in ctx:
            await ctx["exit_stack"].aclose()

    async def on_job_end(ctx: dict[str, Any]) -> None:
        if "runtime" in ctx:
            await ctx["runtime"].arq_job_ended(ctx)

    run_at = settings.daily_run_at
    redeliveries = settings.retry.max_redeliveries
    functions = [arq_function(spec, max_redeliveries=redeliveries) for spec in specs.values()]
    by_name = {function.name: function for function in functions}
    daily, cleanup = by_name[DAILY_JOB], by_name[CLEANUP_JOB]
    attrs = {
        "functions": functions,
        "cron_jobs": [
            cron(
                daily.coroutine,
                name=cron_name(DAILY_JOB),
                hour=run_at.hour,
                minute=run_at.minute,
                second=run_at.second,
                # One run per tick however many replicas: arq's cron job id is name + tick, and
                # the kept result key stops a replica that comes late to the tick.
                unique=True,
                keep_result=settings.keep_result_s,
                timeout=daily.timeout_s,
                max_tries=daily.max_tries,
            ),
            cron(
                cleanup.coroutine,
                name=cron_name(CLEANUP_JOB),
                minute=CLEANUP_MINUTE,
                second=0,
                unique=True,
                keep_result=settings.keep_result_s,
                timeout=cleanup.timeout_s,
                max_tries=cleanup.max_tries,
            ),
        ],
        "timezone": settings.tz,
        "redis_settings": redis_settings(settings),
        "queue_name": settings.queue_name,
        "max_jobs": settings.max_jobs,
        "job_completion_wait": settings.shutdown_grace_s,
        "keep_result": settings.keep_result_s,
        "poll_delay": settings.poll_delay_s,
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "on_job_end": on_job_end,
        "health_check_key": health_check_key(settings),
        "health_check_interval": recovery.health_interval_s,
        "ctx": {
            CTX_CONFIG: EngineConfig(
                in_progress_ttl_s=recovery.in_progress_ttl_s,
                renew_s=recovery.renew_s,
                repeat_warning_s=settings.log_repeat_s,
                finish_patience_s=recovery.finish_patience_s,
            )
        },
    }
    return type("WorkerSettings", (), attrs)


def burst_worker(
    settings: Settings, *, skip_info: bool, poll_delay_s: float | None = None
) -> BurstWorker:
    """A worker in this process, wired as `arq worker.WorkerSettings` is, that drains the queue
    and stops (the demo commands)."""
    return BurstWorker(worker_settings(settings), skip_info=skip_info, poll_delay_s=poll_delay_s)
