"""The console (`prospect-worker console`) in its own process, on a free loopback port.

    with console_process(env, tmp_path / "console.log") as console:
        console.wait_ready()              # /healthz answers
        console.url                       # http://127.0.0.1:PORT

Output goes to a file, so a chatty server never blocks on a full pipe."""

import http.client
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import ROOT
from worker.local.embedded import DEFAULT_HOST, free_port

HEALTH_PATH = "/healthz"


def demo_users(passwords: dict[str, str]) -> str:
    """PW_CONSOLE__USERS for one user per role, each named after their role: argon2id still,
    at the smallest costs (the console checks a hash at the costs it was made with)."""
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return " ".join(f"{role}:{role}:{cheap.hash(pw)}" for role, pw in passwords.items())


def get(url_host: str, port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection(url_host, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


@contextmanager
def console_process(env: dict[str, str], log: Path) -> Iterator["ConsoleProcess"]:
    """A started console, stopped (SIGTERM, then SIGKILL) when the block ends."""
    console = ConsoleProcess(env, log)
    try:
        yield console
    finally:
        console.stop()


class ConsoleProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        command = ["console", "--host", DEFAULT_HOST, "--port", str(self.port)]
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "worker", *command],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def url(self) -> str:
        return f"http://{DEFAULT_HOST}:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the console exited {self.process.returncode}: {self.output()}")
            try:
                if get(DEFAULT_HOST, self.port, HEALTH_PATH)[0] == 200:
                    return
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise TimeoutError(f"the console was not ready in {timeout} s: {self.output()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)
