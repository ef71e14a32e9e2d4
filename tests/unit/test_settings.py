"""Settings: defaults, nested variables, and one clear line for a bad value."""

import os
import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest

from settings import Settings, SettingsError, load_settings
from worker.app import worker_settings
from worker.engine.functions import arq_timeout_s
from worker.registry import job_specs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PW_") or name == "REDIS_URL":
            monkeypatch.delenv(name)


def test_defaults_run_offline_at_eight_new_york() -> None:
    settings = load_settings()
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.timezone == "America/New_York"
    assert settings.daily_run_at == time(8, 0)
    assert settings.daily_limit == 50
    assert settings.discovery.base_url is None and settings.llm.base_url is None


def test_nested_and_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "rediss://:s3cret-pass@cache.internal:6380/2")
    monkeypatch.setenv("PW_DISCOVERY__BASE_URL", "https://api.peopledatalabs.com")
    monkeypatch.setenv("PW_DISCOVERY__API_KEY", "pdl-key-123")
    monkeypatch.setenv("PW_JOBS__PROCESS_PROSPECT__LIMIT", "7")
    monkeypatch.setenv("PW_DAILY_RUN_AT", "07:30")
    settings = load_settings()
    assert settings.jobs["process_prospect"].limit == 7
    assert settings.daily_run_at == time(7, 30)
    assert settings.discovery.api_key is not None
    assert settings.discovery.api_key.get_secret_value() == "pdl-key-123"
    assert "pdl-key-123" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("PW_DAILY_LIMIT", "lots", "PW_DAILY_LIMIT: Input should be a valid integer"),
        ("PW_DAILY_LIMIT", "-1", "PW_DAILY_LIMIT: Input should be greater than or equal to 0"),
        ("PW_TIMEZONE", "Mars/Olympus", "PW_TIMEZONE: unknown time zone 'Mars/Olympus'"),
        ("REDIS_URL", "http://localhost", "REDIS_URL: must start with redis://"),
        ("PW_JOBS__PROCESS_PROSPECT__TIMEOUT_S", "0", "PW_JOBS__PROCESS_PROSPECT__TIMEOUT_S: "),
        ("PW_JOBS__SEND_OUTREACH__LIMTI", "3", "PW_JOBS__SEND_OUTREACH__LIMTI: Extra inputs"),
        # Renamed: a value under the old name stops the start instead of being ignored.
        (
            "PW_JOB_LIMITS__PROCESS_PROSPECT",
            "7",
            "PW_JOB_LIMITS: renamed: set PW_JOBS__<NAME>__LIMIT",
        ),
        ("PW_ICP", "{not json", "PW_ICP: not valid JSON"),
    ],
)
def test_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_remote_provider_needs_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_EMAIL_FINDER__BASE_URL", "https://api.hunter.io")
    with pytest.raises(SettingsError, match="PW_EMAIL_FINDER: api_key is required"):
        load_settings()


def test_a_secret_never_appears_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_LLM__API_KEY", "sk-very-secret")
    monkeypatch.setenv("PW_LLM__TIMEOUT_S", "soon")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "sk-very-secret" not in str(caught.value)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "prefix"),
    [
        # The CLI speaks click's error style; the daemon names itself in its log.
        ([sys.executable, "-m", "worker", "status", "x"], "Error: "),
        ([sys.executable, "-m", "arq", "worker.WorkerSettings"], "prospect-worker: "),
    ],
)
def test_the_process_stops_at_start_with_one_line(command: list[str], prefix: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "PW_MAX_JOBS": "many", "PW_LLM__API_KEY": "sk-hidden"}
    # A measured test run tells the process where its coverage goes; nothing else leaks in.
    env |= {k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        (
            f"{prefix}invalid settings: PW_MAX_JOBS: "
            "Input should be a valid integer, unable to parse string as an integer"
        )
    ]


JOB_TYPES = "cleanup, daily_prospect_queue, process_prospect, process_reply, send_outreach"


def test_per_job_settings_reach_the_workers_job_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_JOBS__PROCESS_PROSPECT__LIMIT", "7")
    monkeypatch.setenv("PW_JOBS__process_reply__TIMEOUT_S", "12.5")
    settings = load_settings()
    specs = job_specs(settings)
    assert (specs["process_prospect"].limit, specs["process_prospect"].timeout_s) == (7, 120.0)
    assert (specs["process_reply"].limit, specs["process_reply"].timeout_s) == (10, 12.5)
    # The worker arq runs: the reply job's backstop timeout follows the setting.
    functions = {f.name: f for f in worker_settings(settings).functions}  # type: ignore[attr-defined]
    assert functions["process_reply"].timeout_s == arq_timeout_s(specs["process_reply"])
    default = job_specs(Settings.model_construct())["process_reply"]  # no environment read
    assert arq_timeout_s(specs["process_reply"]) < arq_timeout_s(default)


def test_a_setting_for_an_unknown_job_type_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_JOBS__SEND_OUTRAECH__LIMIT", "3")
    with pytest.raises(SettingsError) as caught:
        job_specs(load_settings())
    assert str(caught.value) == (
        "invalid settings: PW_JOBS__SEND_OUTRAECH: no job type 'send_outraech' "
        f"(job types: {JOB_TYPES})"
    )


@pytest.mark.parametrize(
    ("command", "prefix"),
    [
        ([sys.executable, "-m", "worker", "status", "x"], "Error: "),
        ([sys.executable, "-m", "arq", "worker.WorkerSettings"], "prospect-worker: "),
    ],
)
def test_an_unknown_job_type_stops_the_process_with_one_line(
    command: list[str], prefix: str
) -> None:
    env = {"PATH": "/usr/bin:/bin", "PW_JOBS__SEND_OUTRAECH__LIMIT": "3"}
    env |= {k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        (
            f"{prefix}invalid settings: PW_JOBS__SEND_OUTRAECH: no job type 'send_outraech' "
            f"(job types: {JOB_TYPES})"
        )
    ]
