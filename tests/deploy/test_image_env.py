"""The image's environment, built without a Docker engine: the Dockerfile's own build steps (its
COPY list and its `uv` commands, read from the file) run into a fresh venv, and the worker
starts from that venv the way the container starts it, with the pod's environment from the
rendered manifests, against a throwaway redis-server."""

import http.client
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from worker.local.embedded import free_port
from worker.observability.ports import HEALTH_PATH, METRICS_PATH, READY_PATH

from .image import DOCKERFILE, context_sources, parse
from .manifests import ROOT, Render, container_env, only_container, project_pod

# One worker builds the image env once for the module: spread over workers, each would build it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("image")]

READY_LINE = "prospect-worker ready"
START_TIMEOUT_S = 60
# The dev environment's uv, which test_parity checks is the version the Dockerfile installs.
UV = Path(sys.executable).parent / "uv"


@dataclass(frozen=True)
class ImageEnv:
    venv: Path
    workdir: Path  # like the image's WORKDIR: empty, so nothing is imported from the source tree
    env: dict[str, str]  # the final stage's ENV, with paths mapped onto this machine


def copy_context(source: str, context: Path) -> None:
    """COPY from the build context, less what .dockerignore drops (bytecode caches)."""
    origin = ROOT / source
    if origin.is_dir():
        shutil.copytree(
            origin, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    else:
        shutil.copy2(origin, context / source)


@pytest.fixture(scope="module")
def image_env(tmp_path_factory: pytest.TempPathFactory) -> ImageEnv:
    parsed = parse()
    build = parsed.stage("build")
    base = tmp_path_factory.mktemp("image")
    context, venv, workdir = base / "src", base / "venv", base / "app"
    context.mkdir()
    workdir.mkdir()
    for source in context_sources(parsed):
        copy_context(source, context)
    python_version = parsed.base_image(build).split(":")[1].split("-")[0]
    assert python_version == "{}.{}".format(*sys.version_info), (
        "run the tests on the image's Python"
    )
    # The machine's own environment carries its package index and certificates; the Dockerfile's
    # ENV goes on top, except that the venv lands here and uses this test run's interpreter.
    env = {
        **os.environ,
        **build.env(),
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": str(Path(sys.base_prefix) / "bin" / f"python{python_version}"),
    }
    # The one difference from the image build: the machine's uv cache instead of none, so the
    # test does not download every wheel again.
    env.pop("UV_NO_CACHE", None)
    for run in build.all("RUN"):
        argv = shlex.split(run.value[0])
        if argv[0] != "uv":
            continue  # installing uv itself: the dev environment already has that version
        result = subprocess.run(
            [str(UV), *argv[1:]],
            check=False,
            cwd=context,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{run.value[0]}:\n{result.stderr}"
    final = parsed.final.env()
    runtime = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONUNBUFFERED": final["PYTHONUNBUFFERED"],
        "PYTHONDONTWRITEBYTECODE": final["PYTHONDONTWRITEBYTECODE"],
    }
    return ImageEnv(venv, workdir, runtime)


def run_in(image: ImageEnv, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(image.venv / "bin" / argv[0]), *argv[1:]],
        check=False,
        cwd=image.workdir,
        env=image.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_image_env_holds_the_runtime_and_nothing_else(image_env: ImageEnv) -> None:
    has = run_in(image_env, "python", "-c", "import arq, worker, jobs, settings, tzdata")
    assert has.returncode == 0, has.stderr
    for absent in ("pytest", "aiosmtpd", "pip", "uv"):  # dev dependencies and installers
        found = run_in(image_env, "python", "-c", f"import {absent}")
        assert found.returncode != 0, f"{absent} is in the image's environment"
    # Installed, not linked to the source tree: the final stage copies the venv alone.
    where = run_in(image_env, "python", "-c", "import worker; print(worker.__file__)")
    assert where.stdout.startswith(str(image_env.venv)), where.stdout


class Worker:
    """`arq worker.WorkerSettings` from the image env; output to a file, never a full pipe."""

    def __init__(self, image: ImageEnv, env: dict[str, str], log: Path) -> None:
        self.log = log
        (command,) = parse().final.all("CMD")
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(image.venv / "bin" / command.value[0]), *command.value[1:]],
                cwd=image.workdir,
                env={**image.env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, line: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while line not in self.output():
            assert self.process.poll() is None, f"the worker exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {line!r} in:\n{self.output()}"
            time.sleep(0.1)

    def rss_bytes(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        assert match is not None
        return int(match.group(1)) * 1024

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def snapshot(root: Path) -> set[tuple[str, int, int]]:
    return {(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


@dataclass(frozen=True)
class Running:
    worker: Worker
    port: int
    installed: set[tuple[str, int, int]]  # the venv's files, taken before the worker started


@pytest.fixture
def worker(
    image_env: ImageEnv, renders: dict[str, Render], redis_url: str, tmp_path: Path
) -> Iterator[Running]:
    """The worker with the pod's own environment (the base's ConfigMap), on the test's Redis."""
    render = renders["base"]
    pod_env = {
        var.name: var.value
        for var in container_env(render, only_container(project_pod(render, "worker")))
        if var.value is not None
    }
    port = free_port()
    env = {**pod_env, "REDIS_URL": redis_url, "PW_METRICS_PORT": str(port)}
    installed = snapshot(image_env.venv)
    process = Worker(image_env, env, tmp_path / "worker.log")
    try:
        yield Running(process, port, installed)
    finally:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait(timeout=30)


def memory_request(renders: dict[str, Render]) -> int:
    request = only_container(project_pod(renders["base"], "worker"))["resources"]["requests"]
    value = request["memory"]
    assert value.endswith("Mi")
    return int(value[:-2]) * 1024 * 1024


def test_the_worker_starts_from_the_image_env_and_stops_cleanly_on_sigterm(
    worker: Running, renders: dict[str, Render], image_env: ImageEnv
) -> None:
    process = worker.worker
    process.wait_for(READY_LINE)
    # An idle worker fits in the memory it asks the scheduler for.
    rss = process.rss_bytes()
    print(f"idle worker RSS: {rss / 2**20:.1f} MiB")
    assert rss < memory_request(renders)
    code = process.terminate()
    output = process.output()
    assert code == 0, output
    assert "Traceback" not in output
    # Nothing written into the installation (no bytecode, no state): in the pod it sits on a
    # read-only root filesystem.
    assert snapshot(image_env.venv) == worker.installed


def get(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def keda_metric_names(renders: dict[str, Render]) -> set[str]:
    (scaled,) = renders["base+components/keda"].of_kind("ScaledObject")
    query: str = scaled["spec"]["triggers"][0]["metadata"]["query"]
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", query))
    return {w for w in words if w.startswith("prospect_worker_")}


def test_the_probes_and_the_scaler_metric_are_served(
    worker: Running, renders: dict[str, Render]
) -> None:
    """What the probes and the KEDA query ask of the worker's HTTP port, asked of a real one."""
    process, port = worker.worker, worker.port
    process.wait_for(READY_LINE)
    deadline = time.monotonic() + 5
    while True:
        try:
            health = get(port, HEALTH_PATH)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                process.terminate()
                pytest.skip("the worker serves no HTTP port in this version")
            time.sleep(0.1)
    assert health[0] == 200, health
    assert get(port, READY_PATH)[0] == 200
    status, metrics = get(port, METRICS_PATH)
    assert status == 200
    # Declared names (a labelled gauge may have no sample yet) and sampled ones.
    exported = set(re.findall(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*)", metrics, re.MULTILINE))
    exported |= set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", metrics, re.MULTILINE))
    missing = keda_metric_names(renders) - exported
    assert not missing, f"the KEDA query reads metrics the worker does not export: {missing}"
    assert process.terminate() == 0


def test_the_dockerfile_is_what_this_test_builds() -> None:
    """The build above follows the Dockerfile's `uv` steps; make sure there are some."""
    runs = [r.value[0] for r in parse().stage("build").all("RUN")]
    assert sum(run.startswith("uv ") for run in runs) == 2, DOCKERFILE


def test_the_console_starts_from_the_image_env_with_its_pods_command(
    image_env: ImageEnv, renders: dict[str, Render], redis_url: str, tmp_path: Path
) -> None:
    """The console is the image's other command: its templates and assets are in the installed
    package, not only in the source tree."""
    render = renders["base+components/console"]
    container = only_container(project_pod(render, "console"))
    pod_env = {
        var.name: var.value for var in container_env(render, container) if var.value is not None
    }
    port = free_port()
    command = list(container["command"])
    command[command.index("--host") + 1] = "127.0.0.1"  # loopback here, never all interfaces
    command[command.index("--port") + 1] = str(port)
    secrets_ = {  # the Secret the operator makes
        "PW_CONSOLE__USERS": "ana:approver:$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        "PW_CONSOLE__SESSION_SECRET": "s" * 32,
    }
    env = {**image_env.env, **pod_env, **secrets_, "REDIS_URL": redis_url}
    installed = snapshot(image_env.venv)
    log = tmp_path / "console.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(image_env.venv / "bin" / command[0]), *command[1:]],
            cwd=image_env.workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                health = get(port, "/healthz")
                break
            except ConnectionRefusedError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert health[0] == 200
        assert get(port, "/signin")[0] == 200  # a template
        assert get(port, "/static/console.css")[0] == 200  # an asset
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    # uvicorn shuts down cleanly, then raises the SIGTERM it caught again, so the process ends
    # as one that SIGTERM ended: what Kubernetes expects of a stopped pod.
    assert code in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()
    assert snapshot(image_env.venv) == installed
