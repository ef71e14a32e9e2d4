"""The worker's ready line: what an operator needs to know it started where and as they meant.

Which Redis (its password masked) and queue, which job types, which providers are real, when
the daily run comes and whether today's is being caught up now, and what is off and why.
"""

from collections.abc import Iterable

from arq.connections import RedisSettings

from settings import ENV_PREFIX, ServiceSettings, Settings
from worker.connections import describe_redis


def describe_sources(settings: Settings) -> str:
    """Which providers are real and which are the offline stand-ins."""

    def where(service: ServiceSettings) -> str:
        return (service.base_url.host or "?") if service.base_url else "offline stand-in"

    writer = (
        f"llm {settings.llm.model}@{where(settings.llm)}" if settings.llm.base_url else "template"
    )
    return (
        f"discovery={where(settings.discovery)} email_finder={where(settings.email_finder)} "
        f"writer={writer} daily_limit={settings.daily_limit} max_jobs={settings.max_jobs}"
    )


def switched_off(settings: Settings) -> list[str]:
    """What this worker will not do, each with the setting that says so."""
    off = []
    if settings.smtp.host is None:
        off.append(f"sending ({ENV_PREFIX}SMTP__HOST unset)")
    elif settings.outreach.daily_cap == 0:
        off.append(f"sending ({ENV_PREFIX}OUTREACH__DAILY_CAP=0)")
    if settings.daily_limit == 0:
        off.append(f"prospecting ({ENV_PREFIX}DAILY_LIMIT=0)")
    if not settings.daily_catch_up:
        off.append(f"catching up a missed daily run ({ENV_PREFIX}DAILY_CATCH_UP=false)")
    if not settings.metrics_port:
        off.append(f"metrics and probes ({ENV_PREFIX}METRICS_PORT=0)")
    return off


def daily_run(settings: Settings, caught_up: str | None) -> str:
    when = f"daily run at {settings.daily_run_at:%H:%M} {settings.timezone}"
    if caught_up is None:
        return when
    return f"{when}: today's daily run was missed, running it now as {caught_up}"


def ready_line(
    settings: Settings, *, replica: str, job_types: Iterable[str], caught_up: str | None
) -> str:
    redis = describe_redis(RedisSettings.from_dsn(settings.redis_url))
    parts = [
        f"Redis {redis}, queue {settings.queue_name}",
        f"jobs {' '.join(job_types)}",
        describe_sources(settings),
        daily_run(settings, caught_up),
    ]
    off = switched_off(settings)
    if off:
        parts.append(f"off: {', '.join(off)}")
    return f"prospect-worker ready ({replica}): " + "; ".join(parts)
