"""Real processes for integration and fault tests: the worker, the CLI, and a redis-server that
can be killed and brought back on the same port and data directory.

    with RedisServer(tmp_path / "redis", persistent=True) as redis:
        worker = WorkerProcess(env_for(redis.url), tmp_path / "worker.log")
        worker.wait_ready()
        worker.kill()                    # SIGKILL
        redis.kill(); redis.start()      # same port, same append-only file
        worker.restart(); worker.wait_ready()
        code, output = worker.stop()     # SIGTERM, wait

Output always goes to a file, so a chatty process never blocks on a full pipe.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from redis import Redis as SyncRedis

from worker.local.embedded import DEFAULT_HOST, answers, free_port

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "prospect-worker ready"


def env_for(redis_url: str, **extra: str) -> dict[str, str]:
    """This process's environment without any PW_ setting, pointed at `redis_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PW_") and k != "REDIS_URL"}
    # No metrics port unless a test asks for one on a free port (9108 may be taken).
    return {
        **env,
        "REDIS_URL": redis_url,
        "PW_POLL_DELAY_S": "0.01",
        "PW_METRICS_PORT": "0",
        # No catch-up of today's daily run unless a test asks for it: tests start their own.
        "PW_DAILY_CATCH_UP": "false",
        **extra,
    }


def run_cli(env: dict[str, str], *args: str, timeout: int = 60) -> subprocess.CompletedProcess[str]:
    """`python -m worker ARGS` in its own process, as an operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        check=False,  # the caller asserts on the exit code
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class WorkerProcess:
    """`arq worker.WorkerSettings`, the container's entry point, in its own process.

    Every start appends to the same log file; `wait_ready` and `output(current=True)` look
    only at what the current start wrote."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        *,
        settings: str = "worker.WorkerSettings",
        start: bool = True,
    ) -> None:
        self.env = env
        self.log = log
        self.settings = settings
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._offset = 0
        if start:
            self.start()

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("the worker was never started")
        return self._process

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, env: dict[str, str] | None = None) -> None:
        if self.running:
            raise RuntimeError("the worker is already running")
        self.env = env if env is not None else self.env
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "arq", self.settings],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    def wait_ready(self, timeout: float = 30) -> float:
        """Seconds until this start logged that it is ready; fails if it exits first."""
        began = time.monotonic()
        while READY_LINE not in self.output(current=True):
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited {self.process.returncode}: {self.output()}")
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"the worker was not ready in {timeout} s: {self.output()}")
            time.sleep(0.02)
        return time.monotonic() - began

    def send(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM (a graceful shutdown, as Kubernetes asks) and the exit code."""
        if self.running:
            self.send(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired as hung:
            # A worker that ignores SIGTERM fails this test, and only this one: left running,
            # it would outlive its Redis and fail a later test when it is collected.
            self.kill()
            said = self.output()[-3000:]
            raise AssertionError(f"no exit {timeout} s after SIGTERM; it said:\n{said}") from hung

    def kill(self) -> int:
        """SIGKILL: a crash, nothing cleaned up."""
        if self.running:
            self.send(signal.SIGKILL)
        return self.wait(10)

    def restart(self, env: dict[str, str] | None = None, *, hard: bool = False) -> None:
        """Stop (SIGKILL when `hard`, else SIGTERM) if running, then start again."""
        if self.running:
            self.kill() if hard else self.terminate()
        self.start(env)

    def stop(self, timeout: float = 30) -> tuple[int, str]:
        """SIGTERM, wait, and the exit code with everything the worker printed."""
        code = self.terminate(timeout)
        return code, self.output()

    def output(self, *, current: bool = False) -> str:
        if not self.log.exists():
            return ""
        with self.log.open("rb") as log:
            log.seek(self._offset if current else 0)
            return log.read().decode(errors="replace")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.running:
            self.kill()


class RedisServer:
    """A throwaway `redis-server` on a free loopback port, in its own data directory.

    `persistent` turns on the append-only file with an fsync per write (`appendfsync always`),
    so a SIGKILL loses nothing acknowledged; without it, nothing is written to disk and a
    restart starts empty. A restart reuses the port and the directory."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        persistent: bool = False,
        port: int | None = None,
        binary: str | None = None,
        password: str | None = None,
    ) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise RuntimeError("redis-server is not installed")
        self.binary = found
        self.persistent = persistent
        self.password = password  # `requirepass`: a client must AUTH with it
        self._port_given = port is not None
        self._started = False
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="pw-redis-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{DEFAULT_HOST}:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.workdir / "redis.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def args(self) -> list[str]:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persistent
            else ["--appendonly", "no"]
        )
        return [
            self.binary,
            "--bind",
            DEFAULT_HOST,
            "--port",
            str(self.port),
            "--save",
            "",  # no RDB snapshots either way: the append-only file is the persistence
            *persistence,
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.log),
            *(["--requirepass", self.password] if self.password else []),
        ]

    def start(self, timeout: float = 10) -> Self:
        if self.running:
            raise RuntimeError("redis-server is already running")
        for attempt in range(3):
            if self._start_once(timeout):
                return self
            # Another process (an xdist worker, another test session) may bind a free port
            # between free_port() and redis-server: a first start moves to another one. A
            # restart keeps its port, as a restarted Redis would.
            if self._port_given or self._started or attempt == 2:
                break
            self.port = free_port()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def _start_once(self, timeout: float) -> bool:
        process = subprocess.Popen(
            self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._process = process
        deadline = time.monotonic() + timeout
        # PING answers +PONG only once the append-only file is loaded (-LOADING before).
        while not answers(DEFAULT_HOST, self.port):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                return False
            time.sleep(0.02)
        if not self._is_ours(process.pid):
            process.kill()
            process.wait()
            return False
        self._started = True
        return True

    def _is_ours(self, pid: int) -> bool:
        """Whether the Redis answering on the port is the process just started (one that lost
        the port to another Redis exits, but that one answers meanwhile)."""
        with SyncRedis(host=DEFAULT_HOST, port=self.port, password=self.password) as client:
            info: dict[str, object] = client.info("server")
        return info.get("process_id") == pid

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10) -> int:
        """Send `sig` and wait; SIGTERM is a clean shutdown, SIGKILL a crash."""
        if self._process is None:
            return 0
        if self._process.poll() is None:
            self._process.send_signal(sig)
        return self._process.wait(timeout=timeout)

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def send(self, sig: signal.Signals) -> None:
        """A signal without waiting: SIGSTOP stalls Redis (connections hang, nothing refused)
        until SIGCONT."""
        if self._process is None or self._process.poll() is not None:
            raise RuntimeError("redis-server is not running")
        self._process.send_signal(sig)

    def restart(self, sig: signal.Signals = signal.SIGTERM) -> Self:
        self.stop(sig)
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop(signal.SIGKILL if kind is not None else signal.SIGTERM)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)
