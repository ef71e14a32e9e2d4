"""An embedded Redis for the laptop default: used only when REDIS_URL is unset and nothing answers
on localhost:6379. A throwaway `redis-server` when one is installed (the real thing, nothing
kept on disk), else fakeredis's in-process TCP server."""

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 6379


@dataclass(frozen=True)
class EmbeddedRedis:
    url: str
    kind: str  # "redis-server" or "fakeredis"


def answers(host: str, port: int, timeout: float = 0.3) -> bool:
    """Whether a Redis answers PING there (a bare TCP accept is not enough)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            # The RESP form, not an inline command: fakeredis's server answers only that.
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((DEFAULT_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server(binary: str, port: int) -> Iterator[EmbeddedRedis]:
    with tempfile.TemporaryDirectory(prefix="pw-redis-") as workdir:
        process = subprocess.Popen(
            [
                binary,
                "--bind",
                DEFAULT_HOST,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not answers(DEFAULT_HOST, port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}")
                time.sleep(0.05)
            yield EmbeddedRedis(f"redis://{DEFAULT_HOST}:{port}/0", "redis-server")
        finally:
            process.terminate()
            process.wait(timeout=10)


@contextmanager
def fake_server(port: int) -> Iterator[EmbeddedRedis]:
    from fakeredis import TcpFakeServer

    class NoDelayServer(TcpFakeServer):
        """fakeredis's server writes a pipeline's replies one small write at a time; with
        Nagle's algorithm on, each waits for the client's delayed ACK (40 ms on Linux), which
        made every MULTI/EXEC of the pipeline ~300x slower than on redis-server."""

        def get_request(self) -> tuple[socket.socket, Any]:
            conn, address = super().get_request()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn, address

    server = NoDelayServer((DEFAULT_HOST, port), server_version=(7, 0))
    thread = threading.Thread(target=server.serve_forever, name="fakeredis", daemon=True)
    thread.start()
    try:
        yield EmbeddedRedis(f"redis://{DEFAULT_HOST}:{port}/0", "fakeredis")
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def embedded_redis(prefer_server: bool = True) -> Iterator[EmbeddedRedis]:
    binary = shutil.which("redis-server") if prefer_server else None
    with redis_server(binary, free_port()) if binary else fake_server(free_port()) as redis:
        yield redis
