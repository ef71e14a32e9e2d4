"""The process harness itself: Redis restarts with and without persistence, worker restarts."""

import signal
from pathlib import Path

import pytest
from redis import Redis

from tests.support.fake_providers import FakeProviders
from tests.support.faults import FaultPlan, Scripted
from tests.support.processes import RedisServer, WorkerProcess, env_for, run_cli


def read(url: str) -> str | None:
    with Redis.from_url(url, decode_responses=True) as client:
        value = client.get("harness:key")
    assert value is None or isinstance(value, str)
    return value


def write_and_read(url: str, value: str) -> str | None:
    with Redis.from_url(url, decode_responses=True) as client:
        client.set("harness:key", value)
        return read(url)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_persistent_redis_keeps_its_data_across_a_restart(
    sig: signal.Signals, tmp_path: Path
) -> None:
    with RedisServer(tmp_path / "redis", persistent=True) as server:
        port = server.port
        assert write_and_read(server.url, "kept") == "kept"
        assert server.stop(sig) == (-9 if sig == signal.SIGKILL else 0)
        server.start()
        assert server.port == port
        assert read(server.url) == "kept"
    assert (tmp_path / "redis" / "appendonlydir").is_dir()


def test_a_redis_without_persistence_starts_empty_after_a_restart(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        url = server.url
        assert write_and_read(url, "lost") == "lost"
        server.restart()
        assert server.url == url
        assert read(url) is None
    assert not (tmp_path / "redis" / "appendonlydir").exists()


@pytest.mark.slow
def test_a_worker_is_killed_restarted_and_stopped(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with (
        RedisServer() as server,
        FakeProviders() as fake,
        WorkerProcess({**env_for(server.url), **fake.env()}, log) as worker,
    ):
        worker.wait_ready()
        assert "discovery=127.0.0.1 email_finder=127.0.0.1" in worker.output()
        assert worker.kill() == -signal.SIGKILL
        worker.restart()
        worker.wait_ready()
        code, output = worker.stop()
    assert code == 0, output
    assert worker.starts == 2
    assert output.count("prospect-worker ready") == 2
    assert "prospect-worker ready" in worker.output(current=True)


def test_wait_ready_reports_a_worker_that_exits(tmp_path: Path) -> None:
    env = {**env_for("redis://127.0.0.1:1/0"), "PW_MAX_JOBS": "many"}
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        with pytest.raises(RuntimeError, match="PW_MAX_JOBS"):
            worker.wait_ready()
        assert worker.wait() == 2


@pytest.mark.slow
def test_a_worker_process_runs_the_pipeline_on_the_fake_providers(tmp_path: Path) -> None:
    # Every domain's first email-finder call gets a 503: each prospect is retried once.
    first_call_fails = FaultPlan(script=(Scripted(fault="server_error", first=1),))
    with (
        RedisServer() as server,
        FakeProviders({"email_finder": first_call_fails}) as fake,
    ):
        # A run of 12 drafts (18 prospects with the headroom): every step, at a sixth of the
        # default run's cost.
        env = {
            **env_for(server.url),
            **fake.env(),
            "PW_RETRY__BASE_DELAY_S": "0.05",
            "PW_DAILY_LIMIT": "12",
        }
        with WorkerProcess(env, tmp_path / "worker.log") as worker:
            worker.wait_ready()
            done = run_cli(env, "enqueue", "daily_prospect_queue", "--wait", timeout=180)
            code, output = worker.stop()
    assert done.returncode == 0, done.stderr + output
    assert code == 0, output
    assert "queued for approval 12" in done.stdout
    print(fake.far_end.describe())
    searched = fake.far_end.counts("email_finder")
    assert len(searched) == 18 and set(searched.values()) == {2}
    assert fake.far_end.faults("email_finder") == {"server_error": 18, "ok": 18}
    # Drafts are written by the fake LLM, one per prospect that reached the draft step.
    drafted = fake.far_end.counts("llm")
    assert set(drafted.values()) == {1} and len(drafted) >= 12
    assert fake.far_end.snapshot("discovery")[0].key == "page:0"
