"""The CLI's clear errors, in process (the process-level runs are in test_processes)."""

import pytest

from worker.cli import EXIT_USAGE, main


def test_enqueue_of_an_unknown_job_name_is_a_usage_error(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert main(["enqueue", "no_such_job"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Error: Invalid value for 'NAME': 'no_such_job' is not one of " in err
    assert "'daily_prospect_queue'" in err
