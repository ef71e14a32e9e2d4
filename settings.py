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
    ValidationInfo,
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
    # Each field's docstring is its description: docs/settings.md is generated from them.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ServiceSettings(Section):
    """An HTTP provider. No base_url means the bundled offline stand-in answers instead."""

    base_url: HttpUrl | None = None
    """The provider's base URL; unset: the bundled offline stand-in answers."""
    api_key: SecretStr | None = None
    """Its key; required with a remote base URL, optional for a loopback one."""
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    """Request timeout, seconds."""
    requests_per_second: int | None = Field(default=None, ge=1, le=100_000)
    """Requests per second to this provider, every replica together; unset: no limit of ours."""
    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    """Requests per minute to this provider, every replica together; unset: no limit of ours."""

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
    """Model name sent with each request."""
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    """Request timeout, seconds."""


class WebSettings(Section):
    """Fetching prospect websites: untrusted URLs, so every cap is on by default."""

    timeout_s: float = Field(default=10.0, gt=0, le=120)
    """The whole fetch, redirects and body included, seconds."""
    max_bytes: int = Field(default=512_000, ge=1_024, le=10_000_000)
    """Body bytes read from a website."""
    max_redirects: int = Field(default=3, ge=0, le=10)
    """Redirects followed, each one checked again."""
    allow_private: bool = False
    """Local development only: allow private and loopback addresses (never cloud metadata)."""


class SenderSettings(Section):
    name: str = "Alex Rivera"
    """Who the drafts are signed by (also the `From` display name)."""
    company: str = "Prospect Worker Demo Co"
    """The sender's company."""
    value_proposition: str = "we help revenue teams book more meetings with less manual research"
    """What the drafts offer, in one phrase."""


class JobSettings(Section):
    """One job type's settings, `PW_JOBS__<NAME>__<FIELD>` (the name as worker/registry.py
    registers it). Unset: the job type's own default, declared with it."""

    limit: int | None = Field(default=None, ge=1, le=10_000)
    """Jobs of the type allowed in flight at once across every replica (leases in Redis); a type
    at its limit defers its jobs, no try spent."""
    timeout_s: float | None = Field(default=None, gt=0, le=86_400)
    """Seconds one try may run before it counts as a transient failure (and is retried)."""


# Settings that moved: a value under the old name fails at start rather than being ignored.
RENAMED = {
    "job_limits": "PW_JOBS__<NAME>__LIMIT",
    "job_timeouts": "PW_JOBS__<NAME>__TIMEOUT_S",
}


class RetrySettings(Section):
    max_tries: int = Field(default=5, ge=1, le=50)
    """Tries before a job fails for good and is dead-lettered."""
    base_delay_s: float = Field(default=2.0, gt=0)
    """First retry delay, seconds; doubles per failed try, jittered to 50-100 %."""
    max_delay_s: float = Field(default=300.0, gt=0)
    """Cap on the retry delay, seconds (a longer Retry-After still wins)."""
    # Dead-lettered rather than deferred towards its expiry (a fanned-out job lives 24 h).
    max_retry_after_s: float = Field(default=3_600.0, gt=0, le=43_200)
    """A Retry-After longer than this is not waited out: the job is dead-lettered
    (replayable)."""
    max_redeliveries: int = Field(default=5, ge=0, le=100)
    """Deliveries that end with no outcome (the worker was killed, or the job cancelled at
    shutdown) spend no try; a job that keeps killing workers fails after this many."""


class RecoverySettings(Section):
    """How fast a dead worker's jobs run again: arq's in-progress marker lives this long and a
    live worker renews it for all of its running jobs every `renew_s`."""

    # 20 s, renewed every 5 s: a dead worker's jobs run again within 20 s plus a poll, inside
    # the 30 s the reliability section promises, while a live worker has three renewals in hand.
    in_progress_ttl_s: float = Field(default=20.0, ge=3, le=600)
    """How long a job's in-progress marker lives, seconds: a dead worker's jobs run again
    within this plus a poll."""
    renew_s: float = Field(default=5.0, gt=0, le=200)
    """How often a live worker renews the markers and type leases of its running jobs,
    seconds; at most half the marker's TTL."""
    health_interval_s: float = Field(default=10.0, gt=0, le=600)
    """How often the worker writes arq's health-check key, seconds (what `arq --check
    worker.WorkerSettings` reads)."""
    finish_patience_s: float = Field(default=15.0, gt=0, le=600)
    """How long finishing a job retries through a Redis outage before giving up, seconds (the
    job then runs again once its in-progress marker lapses)."""

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
    """SMTP server; unset: sending is off (a send job fails for good)."""
    port: int = Field(default=587, ge=1, le=65_535)
    """Its port (465 with `tls`)."""
    security: Literal["tls", "starttls", "none"] = "starttls"
    """`tls` (implicit TLS, port 465), `starttls` (a required upgrade after EHLO, 587) or
    `none` (loopback hosts only)."""
    username: str | None = None
    """AUTH user name; goes with the password."""
    password: SecretStr | None = None
    """AUTH password; goes with the user name."""
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    """Per SMTP command, seconds."""
    validate_certs: bool = True
    """Check the server's certificate."""

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
    """`From` address (with the sender's name); its domain ends the Message-IDs."""
    reply_to: str | None = Field(default=None, pattern=EMAIL)
    """`Reply-To` address."""
    unsubscribe_mailto: str | None = Field(default=None, pattern=EMAIL)
    """The mailto in `List-Unsubscribe`; unset: the from address."""
    unsubscribe_url: str | None = Field(default=None, pattern=r"^https://[^\s<>]+$")
    """One-click unsubscribe target (RFC 8058), an HTTPS URL of the application with
    `{token}` in it; unset: the mailto alone."""
    daily_cap: int = Field(default=50, ge=0, le=100_000)
    """Sends started per local day, every replica together."""
    sends_per_minute: int = Field(default=30, ge=0, le=10_000)
    """The sending throttle, every replica together (0: off)."""
    sends_per_second: int | None = Field(default=None, ge=1, le=10_000)
    """A second throttle, per second (a provider's maximum send rate, as SES states one),
    every replica together; unset: none."""
    send_lease_s: float = Field(default=300.0, ge=1, le=3_600)
    """How long a send in progress holds its lease, seconds; longer than
    `PW_JOBS__SEND_OUTREACH__TIMEOUT_S`. A rerun after it lapsed never sends."""
    suppress_not_interested: bool = False
    """A not-interested reply suppresses the address too."""
    suppress_domain: bool = False
    """An unsubscribe or a bounce suppresses the whole domain too."""

    @model_validator(mode="after")
    def _one_click_url(self) -> "OutreachSettings":
        if self.unsubscribe_url is not None and "{token}" not in self.unsubscribe_url:
            raise ValueError("unsubscribe_url must contain {token}")
        return self


# --- the console: the web app onto the same operations as the CLI ---------------------------

ConsoleRole = Literal["viewer", "approver", "operator"]
USER_LINE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}:(viewer|approver|operator):\$argon2id\$\S+$")


class ConsoleSettings(Section):
    """The console (`prospect-worker console`): who may sign in and how, and its cookies. It
    refuses to start with no way to sign in, or without a session secret."""

    host: str = "127.0.0.1"
    """Address the console binds (`--host` overrides); loopback unless it is put behind a
    proxy or a Service."""
    port: int = Field(default=8080, ge=1, le=65_535)
    """The console's port (`--port` overrides)."""
    users: SecretStr | None = None
    """Built-in users, `name:role:argon2id-hash` separated by spaces or new lines (role
    `viewer`, `approver` or `operator`; `prospect-worker hash-password` makes the hash)."""
    users_file: str | None = None
    """A file of built-in users, one `name:role:argon2id-hash` a line (a mounted secret);
    read at start, beside `users`."""
    session_secret: SecretStr | None = None
    """Signs the session and sign-in cookies; at least 32 characters, the same on every
    replica. Required to start the console."""
    idle_timeout_s: float = Field(default=1_800.0, ge=30, le=86_400)
    """A session unused this long ends, seconds."""
    session_max_s: float = Field(default=43_200.0, ge=60, le=2_592_000)
    """A session ends this long after sign-in whatever its use, seconds."""
    secure_cookies: Literal["auto", "always"] = "auto"
    """`always`: cookies are sent over HTTPS only; `auto`: when the request came over HTTPS
    (behind a TLS proxy, with the proxy's address in `forwarded_allow_ips`)."""
    forwarded_allow_ips: str = "127.0.0.1"
    """Proxies whose `X-Forwarded-For`/`-Proto` are believed (uvicorn's setting, comma
    separated, `*` for any): the client address in the audit log and the HTTPS check."""
    trust_proxy_headers: bool = False
    """Take the user and groups from an auth proxy's headers (oauth2-proxy and the like). Only
    when the console is reachable through that proxy alone."""
    proxy_user_header: str = "X-Forwarded-User"
    """The proxy's header naming the signed-in user."""
    proxy_groups_header: str = "X-Forwarded-Groups"
    """The proxy's header listing the user's groups, comma separated."""
    group_roles: dict[str, ConsoleRole] = {}
    """Group to role, as JSON (`{"sales": "approver", "sre": "operator"}`); a proxy user
    gets the strongest role of their groups, and none: refused (403)."""
    signin_free_failures: int = Field(default=3, ge=1, le=100)
    """Failed sign-ins (per user and address) before each further try must wait."""
    signin_delay_max_s: float = Field(default=300.0, ge=1, le=86_400)
    """The longest wait after repeated failed sign-ins, seconds (the wait doubles per
    failure from 1 s)."""

    @field_validator("users")
    @classmethod
    def _user_lines(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            for entry in value.get_secret_value().split():
                if not USER_LINE.match(entry):
                    name = entry.split(":", 1)[0]
                    raise ValueError(f"entry for {name!r} is not name:role:argon2id-hash")
        return value

    @field_validator("session_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED,
        extra="ignore",
        frozen=True,
        use_attribute_docstrings=True,
    )

    redis_url: str = Field(
        default="redis://localhost:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "PW_REDIS_URL"),
    )
    """Redis to use; `rediss://:password@host:port/db` for TLS with a password. Unset in
    `dev.py run`: an embedded one, thrown away after the run."""
    queue_name: str = "arq:queue"
    """arq's queue name; arq's default, so a plain arq client reaches the worker."""
    key_prefix: str = Field(default="pw", pattern=r"^[A-Za-z0-9_.-]+$")
    """Prefix of every key and stream the pipeline writes."""
    timezone: str = "America/New_York"
    """Time zone (IANA name) of the daily run's schedule and of the quota's day."""
    daily_run_at: time = time(8, 0)
    """Local time of the daily cron run."""
    daily_limit: int = Field(default=50, ge=0, le=100_000)
    """Drafts queued for approval per local day."""
    discovery_cap: int = Field(default=500, ge=1, le=100_000)
    """Most companies one run reads from discovery."""
    fanout_headroom: float = Field(default=0.5, ge=0, le=10)
    """The run fans out the quota left times (1 + this), since some prospects will be
    skipped."""
    max_jobs: int = Field(default=50, ge=1, le=10_000)
    """Jobs in flight at once in one worker process (arq's semaphore)."""
    jobs: dict[str, JobSettings] = {}
    """Per job type, keyed by its name (`PW_JOBS__<NAME>__<FIELD>`); checked against the
    registered names at start."""
    job_limits: dict[str, object] | None = None
    """Renamed: `PW_JOBS__<NAME>__LIMIT`; a value here fails at start."""
    job_timeouts: dict[str, object] | None = None
    """Renamed: `PW_JOBS__<NAME>__TIMEOUT_S`; a value here fails at start."""
    retry: RetrySettings = RetrySettings()
    """Retries, and when a job fails for good (a dead letter)."""
    recovery: RecoverySettings = RecoverySettings()
    """How fast a dead worker's jobs run again, and arq's health-check key."""
    keep_result_s: int = Field(default=86_400, ge=60)
    """How long job results are kept (and dedupe a job id), seconds."""
    draft_ttl_days: int = Field(default=90, ge=1, le=3_650)
    """How long a draft (and its approval stream entry) is kept, days."""
    event_retention_days: int = Field(default=30, ge=1, le=3_650)
    """How long tracking events are kept, days."""
    dead_letter_max_entries: int = Field(default=10_000, ge=100, le=1_000_000)
    """The dead-letter stream is capped near this many entries (the oldest go first, logged); an
    entry is at most 64 KiB, so the stream at most about 640 MiB, typically a few KiB each."""
    shutdown_grace_s: int = Field(default=20, ge=0, le=3_600)
    """On SIGTERM, seconds running jobs get to finish before they are cancelled (and run
    again, no try spent)."""
    poll_delay_s: float = Field(default=0.05, gt=0, le=5)
    """How often an idle worker polls the queue, seconds; the project's own enqueues wake it
    at once."""
    priority_step_s: float = Field(default=600.0, gt=0, le=86_400)
    """How far ahead one priority class ranks of the next, seconds: how long a lower class can
    be overtaken, per class of difference (worker/scheduling/queueorder.py)."""
    daily_catch_up: bool = True
    """A worker that starts after today's daily tick runs the missed run (once across
    replicas)."""
    metrics_port: int = Field(default=9108, ge=0, le=65_535)
    """The worker's HTTP port: /metrics, /healthz and /readyz (paths in
    worker/observability/ports.py); 0 is off."""
    # All interfaces, since the kubelet's probes and Prometheus reach it from outside the pod.
    metrics_host: str = "0.0.0.0"  # noqa: S104
    """Address the metrics port binds."""
    metrics_sample_s: float = Field(default=5.0, gt=0, le=300)
    """How often the background sampler refreshes the queue-wide figures, seconds."""
    health_stale_s: float = Field(default=30.0, gt=0, le=3_600)
    """/healthz fails once the worker loop's last tick is older than this, seconds."""
    log_format: Literal["text", "json"] = "text"
    """`text` (one line per event, for a terminal) or `json` (one JSON object per line)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """The worker's log level; `DEBUG` adds a line per try's start and per deferral."""
    log_repeat_s: float = Field(default=30.0, gt=0, le=3_600)
    """A warning that repeats while Redis is away, and the count of deferred jobs, are logged at
    most once per this many seconds, with a count of the ones held back."""
    discovery: ServiceSettings = ServiceSettings()
    """Company search, People Data Labs-style (`POST /v5/company/search`)."""
    email_finder: ServiceSettings = ServiceSettings()
    """Contact emails, Hunter-style (`GET /v2/domain-search`)."""
    llm: LlmSettings = LlmSettings()
    """Drafts and reply classification: an OpenAI-compatible endpoint (`POST
    /v1/chat/completions`); unset, the deterministic template writer and rules."""
    web: WebSettings = WebSettings()
    """Fetching prospect websites: untrusted URLs, so every cap is on by default."""
    sender: SenderSettings = SenderSettings()
    """Who the drafts are from and what they offer."""
    icp: IcpProfile = IcpProfile()
    """The ideal customer profile prospects are scored against; also settable whole as JSON
    (`PW_ICP='{"min_score": 50}'`)."""
    smtp: SmtpSettings = SmtpSettings()
    """The SMTP server approved drafts go out through."""
    outreach: OutreachSettings = OutreachSettings()
    """Sending and replies: the from address, the daily cap, the throttle, suppression."""
    console: ConsoleSettings = ConsoleSettings()
    """The console: sign-in (built-in users or an auth proxy), sessions, cookies."""

    @field_validator(*RENAMED)
    @classmethod
    def _renamed(cls, value: object, info: ValidationInfo) -> object:
        if value is not None:
            raise ValueError(f"renamed: set {RENAMED[str(info.field_name)]} instead")
        return value

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
