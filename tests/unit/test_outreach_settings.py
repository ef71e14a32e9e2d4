"""The SMTP and outreach settings: secrets stay secret, and unsafe combinations stop the start."""

import pytest

from settings import SettingsError, load_settings
from worker.registry import job_specs


def test_smtp_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_SMTP__HOST", "smtp.mail.example")
    monkeypatch.setenv("PW_SMTP__PORT", "465")
    monkeypatch.setenv("PW_SMTP__SECURITY", "tls")
    monkeypatch.setenv("PW_SMTP__USERNAME", "sender")
    monkeypatch.setenv("PW_SMTP__PASSWORD", "smtp-s3cret")
    monkeypatch.setenv("PW_OUTREACH__UNSUBSCRIBE_URL", "https://app.example/u/{token}")
    settings = load_settings()
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.security) == (
        "smtp.mail.example",
        465,
        "tls",
    )
    assert settings.smtp.password is not None
    assert settings.smtp.password.get_secret_value() == "smtp-s3cret"
    assert "smtp-s3cret" not in repr(settings)
    assert settings.outreach.unsubscribe_url == "https://app.example/u/{token}"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"PW_SMTP__HOST": "smtp.mail.example", "PW_SMTP__SECURITY": "none"}, "loopback"),
        ({"PW_SMTP__HOST": "127.0.0.1", "PW_SMTP__USERNAME": "u"}, "go together"),
        ({"PW_OUTREACH__UNSUBSCRIBE_URL": "https://app.example/u"}, "{token}"),
        ({"PW_OUTREACH__UNSUBSCRIBE_URL": "http://app.example/{token}"}, "PW_OUTREACH"),
        (
            {"PW_OUTREACH__SEND_LEASE_S": "60"},
            "SEND_LEASE_S: must be longer than the send_outreach",
        ),
        (
            {"PW_JOBS__SEND_OUTREACH__TIMEOUT_S": "300"},
            "(PW_JOBS__SEND_OUTREACH__TIMEOUT_S, 300 s)",
        ),
    ],
)
def test_unsafe_combinations_stop_the_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], says: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match="invalid settings") as caught:
        job_specs(load_settings())  # the job types' settings are checked with the job types
    assert says in str(caught.value)
