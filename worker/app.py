"""Wiring: settings in, an arq WorkerSettings class out, and the per-process dependencies that
on_startup builds and on_shutdown closes."""

import logging
import os
import socket
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import httpx
from arq import cron
from arq.connections import RedisSettings
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
from jobs.keys import Keys
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
from jobs.web.fetch import WebsiteFetcher
from jobs.web.netguard import guarded_transport
from settings import ServiceSettings, Settings
from worker.catchup import catch_up
from worker.deadletter import DeadLetters
from worker.engine import CTX_CONFIG, CTX_ENGINE, CTX_ORDER, CTX_PAUSE, CTX_WAKE, EngineConfig
from worker.failures import RetryPolicy
from worker.fanout import BulkEnqueuer
from worker.http_metrics import InstrumentedTransport, provider_operation, website_fetch
from worker.limits import Rate, RateLimiter, TypeLeases
from worker.metrics import Metrics
from worker.observability import build_metrics, start_observability
from worker.pause import PauseSwitch
from worker.queueorder import PriorityScale, QueueOrder
from worker.registry import CLEANUP_JOB, DAILY_JOB, job_specs
from worker.runtime import Runtime, arq_function
from worker.serializer import deserialize, serialize
from worker.tasks import install_loop_handler

log = logging.getLogger("prospect_worker")

# `.example` is reserved (RFC 2606) and never resolves, so routing it to the bundled stand-in
# is safe in production too: it is how the offline default and the sample websites answer.
SAMPLE_MOUNT = "all://*.example"
# The retention cleanup runs hourly at this minute (one run per tick across replicas).
CLEANUP_MINUTE = 17
# A fanned-out job must start within this long or it expires (arq's job key TTL).
JOB_EXPIRES_MS = 24 * 3600 * 1000


def replica_name() -> str:
    """Tells replicas apart: the pod's host name and the process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def health_check_key(settings: Settings) -> str:
    """arq's health key, one per pod: `arq --check worker.WorkerSettings` run in the pod (a
    liveness probe) computes the same name, and replicas never share one."""
    return f"{settings.key_prefix}:health-check:{socket.gethostname()}"


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url)


def redis_client(settings: Settings) -> Redis:
    """The pipeline's own client, with str replies (arq's pool stays on bytes)."""
    client: Redis = Redis.from_url(settings.redis_url, decode_responses=True)
    return client


def _base_url(service: ServiceSettings, offline: str) -> str:
    return str(service.base_url).rstrip("/") if service.base_url else offline


def _key(service: ServiceSettings) -> str | None:
    return service.api_key.get_secret_value() if service.api_key else None


def service_rates(settings: Settings) -> dict[str, tuple[Rate, ...]]:
    """Each provider's request rates from settings (none set: no limit of ours)."""
    services = {
        "discovery": settings.discovery,
        "email_finder": settings.email_finder,
        "llm": settings.llm,
    }
    rates: dict[str, tuple[Rate, ...]] = {}
    for name, service in services.items():
        chosen = [
            Rate(limit, period)
            for limit, period in (
                (service.requests_per_second, "s"),
                (service.requests_per_minute, "min"),
            )
            if limit is not None
        ]
        rates[name] = tuple(chosen)
    sends = settings.outreach.sends_per_minute
    rates[SENDING] = (Rate(sends, "min"),) if sends else ()
    return rates


async def build_deps(
    settings: Settings, stack: AsyncExitStack, metrics: Metrics | None = None
) -> tuple[Deps, Redis]:
    """Everything a job body needs, built once per process; `stack` closes it at shutdown.

    With `metrics`, every external request is counted at the HTTP transport."""
    keys = Keys(settings.key_prefix)
    redis = redis_client(settings)
    stack.push_async_callback(redis.aclose)
    gate = RateLimiter(redis, keys, service_rates(settings))
    standin = sample_transport(load_sample_data())
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    provider_transports: list[httpx.AsyncBaseTransport] = [
        httpx.AsyncHTTPTransport(limits=limits),
        standin,
    ]
    web_transports = [guarded_transport(allow_private=settings.web.allow_private), standin]
    if metrics is not None:
        provider_transports = [
            InstrumentedTransport(t, metrics, provider_operation) for t in provider_transports
        ]
        web_transports = [InstrumentedTransport(t, metrics, website_fetch) for t in web_transports]
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


def build_outreach(
    settings: Settings, redis: Redis, keys: Keys, classifier: ReplyClassifier
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
            identity=SenderIdentity(
                name=settings.sender.name,
                address=outreach.from_address,
                reply_to=outreach.reply_to,
                unsubscribe_mailto=outreach.unsubscribe_mailto,
                unsubscribe_url=outreach.unsubscribe_url,
            ),
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


async def preload_scripts(redis: Redis, *owners: Any) -> None:
    """Load every Lua script once at start: a Redis that cannot run them fails here, at once,
    and fakeredis's in-process server (which drops the connection on a NOSCRIPT reply instead
    of letting the client load the script) never sees an unknown EVALSHA."""
    for owner in owners:
        for script in getattr(owner, "scripts", ()):
            await redis.script_load(script.script)


def retry_policy(settings: Settings) -> RetryPolicy:
    retry = settings.retry
    return RetryPolicy(retry.base_delay_s, retry.max_delay_s, retry.max_retry_after_s)


def describe_sources(settings: Settings) -> str:
    """One log line saying which providers are real and which are the offline stand-ins."""

    def where(service: ServiceSettings) -> str:
        return (service.base_url.host or "?") if service.base_url else "offline stand-in"

    writer = (
        f"llm {settings.llm.model}@{where(settings.llm)}" if settings.llm.base_url else "template"
    )
    return (
        f"discovery={where(settings.discovery)} email_finder={where(settings.email_finder)} "
        f"writer={writer} daily_limit={settings.daily_limit} max_jobs={settings.max_jobs}"
    )


def worker_settings(
    settings: Settings, *, adjust_deps: Callable[[Deps], Deps] | None = None
) -> type:
    """The class `arq worker.WorkerSettings` loads; arq reads its attributes.

    `adjust_deps` lets a test swap one dependency (a gated writer, say) on a real worker."""
    specs = job_specs(settings)

    async def on_startup(ctx: dict[str, Any]) -> None:
        install_loop_handler()
        # Per worker instance (in ctx), so two workers built from one class never share clients.
        ctx["exit_stack"] = stack = AsyncExitStack()
        metrics = build_metrics(settings, specs)
        deps, redis = await build_deps(settings, stack, metrics)
        if adjust_deps is not None:
            deps = adjust_deps(deps)
        dead_letters = DeadLetters(
            redis,
            deps.keys,
            queue_name=settings.queue_name,
            job_expires_ms=JOB_EXPIRES_MS,
            max_entries=settings.dead_letter_max_entries,
        )
        out = deps.outreach
        leases = TypeLeases(redis, deps.keys, lease_s=settings.recovery.in_progress_ttl_s)
        order = QueueOrder(redis, deps.keys, queue_name=settings.queue_name)
        await preload_scripts(
            redis,
            deps.store,
            deps.ledger,
            deps.enqueuer,
            dead_letters,
            out.drafts,
            out.outbox,
            out.suppressions,
            out.replies,
            leases,
            deps.gate,
            order,
        )
        ctx[CTX_ORDER] = order
        ctx[CTX_PAUSE] = PauseSwitch(redis, deps.keys)
        ctx[CTX_WAKE] = deps.keys.wake
        # Observability: metrics port, heartbeat, sampler, job observers (worker/observability.py).
        engine = ctx.get(CTX_ENGINE)
        observability = await start_observability(
            settings,
            metrics,
            stack,
            queue_redis=ctx["redis"],
            redis=redis,
            keys=deps.keys,
            replica=replica_name(),
            poll_tick=(lambda: engine.loop_tick) if engine is not None else None,
        )
        ctx["observability"] = observability
        ctx["runtime"] = Runtime(
            deps,
            redis,
            deps.keys,
            retry_policy(settings),
            dead_letters,
            specs=specs,
            leases=leases,
            observers=observability.observers,
        )
        caught_up = None
        if settings.daily_catch_up:
            caught_up = await catch_up(ctx["redis"], settings, f"cron:{DAILY_JOB}")
        if caught_up is not None:
            log.warning("today's daily run was missed: enqueued it now as %s", caught_up)
        log.info("prospect-worker ready (%s): %s", replica_name(), describe_sources(settings))

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
    recovery = settings.recovery
    attrs = {
        "functions": functions,
        "cron_jobs": [
            cron(
                daily.coroutine,
                name=f"cron:{DAILY_JOB}",
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
                name=f"cron:{CLEANUP_JOB}",
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
                finish_patience_s=recovery.finish_patience_s,
            )
        },
    }
    return type("WorkerSettings", (), attrs)
