"""Settings: the only place the environment is read.

Built once at start (`load_settings`) and passed down. A bad value stops the process with one line
naming the variable. Secrets are `SecretStr`, so neither repr nor logs ever show them.
"""

import re
from datetime import time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from jobs.prospecting.icp import IcpProfile

ENV_PREFIX = "PW_"
NESTED = "__"
LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")
EMAIL = r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceSettings(Section):
    """An HTTP provider. No base_url means the bundled offline stand-in answers instead."""

    base_url: HttpUrl | None = None
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    # Shared by every replica (worker/limits.py): unset means no limit of ours.
    requests_per_second: int | None = Field(default=None, ge=1, le=100_000)
    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _key_with_url(self) -> "ServiceSettings":
        if (
            self.base_url is not None
            and self.api_key is None
            and self.base_url.host
            not in (
                "localhost",
                "127.0.0.1",
                "::1",
                "[::1]",
            )
        ):
            raise ValueError("api_key is required when base_url points at a remote provider")
        return self


class LlmSettings(ServiceSettings):
    model: str = "gpt-4o-mini"
    timeout_s: float = Field(default=30.0, gt=0, le=300)


class WebSettings(Section):
    """Fetching prospect websites: untrusted URLs, so every cap is on by default."""

    timeout_s: float = Field(default=10.0, gt=0, le=120)
    max_bytes: int = Field(default=512_000, ge=1_024, le=10_000_000)
    max_redirects: int = Field(default=3, ge=0, le=10)
    # Opt-out for local development only: still refuses cloud metadata addresses.
    allow_private: bool = False


class SenderSettings(Section):
    name: str = "Alex Rivera"
    company: str = "Prospect Worker Demo Co"
    value_proposition: str = "we help revenue teams book more meetings with less manual research"


class JobLimits(Section):
    """Jobs of one type allowed in flight at once across every replica (leases in Redis)."""

    daily_prospect_queue: int = Field(default=1, ge=1)
    process_prospect: int = Field(default=20, ge=1)
    send_outreach: int = Field(default=5, ge=1)
    process_reply: int = Field(default=10, ge=1)


class JobTimeouts(Section):
    """Seconds one try of a job may run before it counts as a transient failure."""

    daily_prospect_queue: float = Field(default=300.0, gt=0)
    process_prospect: float = Field(default=120.0, gt=0)
    send_outreach: float = Field(default=120.0, gt=0)
    process_reply: float = Field(default=60.0, gt=0)


class RetrySettings(Section):
    max_tries: int = Field(default=5, ge=1, le=50)
    base_delay_s: float = Field(default=2.0, gt=0)
    max_delay_s: float = Field(default=300.0, gt=0)
    # A Retry-After longer than this is not waited out: the job is dead-lettered (replayable)
    # rather than deferred towards its expiry (a fanned-out job lives 24 h).
    max_retry_after_s: float = Field(default=3_600.0, gt=0, le=43_200)
    # Deliveries that end with no outcome (the worker was killed or the job cancelled at
    # shutdown) do not spend a try; a job that keeps killing workers is failed after this many.
    max_redeliveries: int = Field(default=5, ge=0, le=100)


class RecoverySettings(Section):
    """How fast a dead worker's jobs run again: arq's in-progress marker lives this long and a
    live worker renews it for all of its running jobs every `renew_s`."""

    # 20 s, renewed every 5 s: a dead worker's jobs run again within 20 s plus a poll, inside
    # the 30 s the reliability section promises, while a live worker has three renewals in hand.
    in_progress_ttl_s: float = Field(default=20.0, ge=3, le=600)
    renew_s: float = Field(default=5.0, gt=0, le=200)
    health_interval_s: float = Field(default=10.0, gt=0, le=600)
    # How long finishing a job retries through a Redis outage before giving up (the job then
    # runs again once its marker lapses).
    finish_patience_s: float = Field(default=15.0, gt=0, le=600)

    @model_validator(mode="after")
    def _renew_within_ttl(self) -> "RecoverySettings":
        if self.renew_s * 2 > self.in_progress_ttl_s:
            raise ValueError("renew_s must be at most half of in_progress_ttl_s")
        return self


# --- outreach: sending and replies ----------------------------------------------------------


class SmtpSettings(Section):
    """The SMTP server approved drafts go out through. No host: sending is off (a send job
    fails for good, so nothing is sent by accident from a laptop)."""

    host: str | None = None
    port: int = Field(default=587, ge=1, le=65_535)
    # "tls": implicit TLS (port 465); "starttls": upgrade after EHLO (587); "none": loopback only.
    security: Literal["tls", "starttls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    validate_certs: bool = True

    @model_validator(mode="after")
    def _plain_only_on_loopback(self) -> "SmtpSettings":
        if self.security == "none" and self.host not in (None, *LOOPBACK):
            raise ValueError("security none is for a loopback server only")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


class OutreachSettings(Section):
    """Who the emails come from, the daily cap, and what suppresses an address."""

    from_address: str = Field(default="alex@prospect-worker-demo.example", pattern=EMAIL)
    reply_to: str | None = Field(default=None, pattern=EMAIL)
    # Unsubscribe targets in List-Unsubscribe: a mailbox (always) and, for one-click (RFC
    # 8058), an HTTPS URL of the application with "{token}" in it.
    unsubscribe_mailto: str | None = Field(default=None, pattern=EMAIL)
    unsubscribe_url: str | None = Field(default=None, pattern=r"^https://[^\s<>]+$")
    daily_cap: int = Field(default=50, ge=0, le=100_000)
    # The sending throttle, shared by every replica like the providers' rates (0: off).
    sends_per_minute: int = Field(default=30, ge=0, le=10_000)
    # A send in progress holds its lease this long; a rerun after it lapsed never sends.
    send_lease_s: float = Field(default=300.0, ge=1, le=3_600)
    suppress_not_interested: bool = False
    suppress_domain: bool = False  # an unsubscribe or bounce suppresses the whole domain too

    @model_validator(mode="after")
    def _one_click_url(self) -> "OutreachSettings":
        if self.unsubscribe_url is not None and "{token}" not in self.unsubscribe_url:
            raise ValueError("unsubscribe_url must contain {token}")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED,
        extra="ignore",
        frozen=True,
    )

    redis_url: str = Field(
        default="redis://localhost:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "PW_REDIS_URL"),
    )
    queue_name: str = "arq:queue"  # arq's default, so a plain arq client reaches the worker
    key_prefix: str = Field(default="pw", pattern=r"^[A-Za-z0-9_.-]+$")
    timezone: str = "America/New_York"
    daily_run_at: time = time(8, 0)
    daily_limit: int = Field(default=50, ge=0, le=100_000)
    discovery_cap: int = Field(default=500, ge=1, le=100_000)
    # Extra prospects fanned out beyond the remaining quota, since some will be skipped.
    fanout_headroom: float = Field(default=0.5, ge=0, le=10)
    max_jobs: int = Field(default=50, ge=1, le=10_000)
    job_limits: JobLimits = JobLimits()
    job_timeouts: JobTimeouts = JobTimeouts()
    retry: RetrySettings = RetrySettings()
    recovery: RecoverySettings = RecoverySettings()
    keep_result_s: int = Field(default=86_400, ge=60)
    # Retention: a draft (and its approval stream entry) lives this long; tracking events this long.
    draft_ttl_days: int = Field(default=90, ge=1, le=3_650)
    event_retention_days: int = Field(default=30, ge=1, le=3_650)
    # The dead-letter stream is capped near this many entries (the oldest go first, logged);
    # an entry is at most 64 KiB, so the stream at most about 640 MiB, typically a few KiB each.
    dead_letter_max_entries: int = Field(default=10_000, ge=100, le=1_000_000)
    # On SIGTERM, running jobs get this long to finish before they are cancelled and re-queued.
    shutdown_grace_s: int = Field(default=20, ge=0, le=3_600)
    poll_delay_s: float = Field(default=0.05, gt=0, le=5)
    # Priorities (worker/queueorder.py): one class ranks this far ahead of the next, which is
    # also how long a lower class can be overtaken: the aging bound per class of difference.
    priority_step_s: float = Field(default=600.0, gt=0, le=86_400)
    # A worker that starts after today's daily tick runs the missed run (once across replicas).
    daily_catch_up: bool = True
    # The worker's HTTP port: /metrics, /healthz and /readyz (paths in worker/ports.py); 0 is off.
    metrics_port: int = Field(default=9108, ge=0, le=65_535)
    # --- observability (worker/metrics.py, worker/sampler.py, worker/logs.py) ---
    # The metrics port's address: all interfaces, since the kubelet's probes and Prometheus reach
    # it from outside the pod.
    metrics_host: str = "0.0.0.0"  # noqa: S104
    # How often the background sampler refreshes the queue, dead-letter and daily-run figures.
    metrics_sample_s: float = Field(default=5.0, gt=0, le=300)
    # /healthz fails once the worker loop's last tick is older than this.
    health_stale_s: float = Field(default=30.0, gt=0, le=3_600)
    log_format: Literal["text", "json"] = "text"
    discovery: ServiceSettings = ServiceSettings()
    email_finder: ServiceSettings = ServiceSettings()
    llm: LlmSettings = LlmSettings()
    web: WebSettings = WebSettings()
    sender: SenderSettings = SenderSettings()
    icp: IcpProfile = IcpProfile()
    smtp: SmtpSettings = SmtpSettings()
    outreach: OutreachSettings = OutreachSettings()

    @model_validator(mode="after")
    def _lease_outlives_a_send(self) -> "Settings":
        # A live worker's send must never look lapsed: the lease covers the whole try.
        if self.outreach.send_lease_s <= self.job_timeouts.send_outreach:
            raise ValueError("outreach.send_lease_s must be longer than job_timeouts.send_outreach")
        return self

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class SettingsError(Exception):
    """Raised by load_settings with a one-line, secret-free message."""


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable a validation error location came from."""
    if not loc:  # a check across sections names its variables in its message
        return "settings"
    head = str(loc[0])
    if head.upper() == "REDIS_URL" or head == "redis_url":
        return "REDIS_URL"
    parts = [str(part) for part in loc if not isinstance(part, int)]
    return ENV_PREFIX + NESTED.join(parts).upper()


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{env_name(error['loc'])}: {message}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
    except SourceError as exc:
        # Raised before validation when a nested variable holds malformed JSON.
        field = re.search(r'field "(\w+)"', str(exc))
        name = ENV_PREFIX + field.group(1).upper() if field else "settings"
        raise SettingsError(f"invalid settings: {name}: not valid JSON") from None
