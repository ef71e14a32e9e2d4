"""The dev overlay's Redis options, given to a real redis-server: they parse, and they give the
persistence and eviction policy the worker's guarantees need."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from redis import Redis

from worker.local.embedded import DEFAULT_HOST, answers, free_port

from .manifests import Render


def test_the_dev_redis_options_persist_every_write_and_never_evict(
    renders: dict[str, Render], tmp_path: Path
) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (python3 dev.py test installs it)")
    (statefulset,) = renders["overlays/dev"].of_kind("StatefulSet")
    command: list[str] = statefulset["spec"]["template"]["spec"]["containers"][0]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=True))
    # Only where it listens and writes changes: the rest is the manifest's, as written.
    options.update({"--dir": str(tmp_path), "--port": str(free_port()), "--bind": DEFAULT_HOST})
    argv = [binary, *[part for pair in options.items() for part in pair]]
    port = int(options["--port"])
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not answers(DEFAULT_HOST, port):
            assert process.poll() is None, f"redis-server refused the options: {argv}"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        client = Redis(host=DEFAULT_HOST, port=port)
        try:
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
            client.rpush("arq:queue", "a queued job")
            # The write reaches the append-only file under --dir (fsync follows within 1 s).
            deadline = time.monotonic() + 10
            while not any(b"a queued job" in f.read_bytes() for f in tmp_path.rglob("*.aof")):
                assert time.monotonic() < deadline, "the write is not in the append-only file"
                time.sleep(0.05)
        finally:
            client.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
