"""The manifests and the Dockerfile cannot drift from the code: env var names from settings.py,
ports and probe paths from worker/observability/ports.py and settings, commands from the CLI and
the registry.
The expected values are read from the code here, never repeated."""

import ast
import subprocess
import sys
import tomllib

import pytest

from settings import Settings, env_name
from worker.observability.ports import HEALTH_PATH, METRICS_PATH, READY_PATH
from worker.registry import job_specs

from .image import DIGEST, context_sources, dockerignore_allowed, parse
from .manifests import (
    ROOT,
    Pod,
    Render,
    container_env,
    effective_settings,
    only_container,
    pods,
    project_pod,
    render_targets,
    setting_env_names,
)

TARGETS = [target.name for target in render_targets()]
WORKER_COMMAND = ["arq", "worker.WorkerSettings"]
# After the drain, arq cancels what is left, re-queues it and closes its clients and pools.
CLOSE_MARGIN_S = 5
# Needed in a pod although settings.py has a default: localhost is never right in a cluster.
DEPLOY_REQUIRED = {"REDIS_URL"}


def required_env() -> set[str]:
    fields = Settings.model_fields.items()
    return DEPLOY_REQUIRED | {env_name((name,)) for name, f in fields if f.is_required()}


def dockerfile_user() -> tuple[int, int]:
    (user,) = parse().final.all("USER")
    uid, _, gid = user.value[0].partition(":")
    assert uid.isdigit(), "USER must be numeric uid:gid for runAsNonRoot"
    assert gid.isdigit(), "USER must be numeric uid:gid for runAsNonRoot"
    return int(uid), int(gid)


# --- environment ------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_every_env_var_in_the_manifests_is_a_setting(
    renders: dict[str, Render], target: str
) -> None:
    render = renders[target]
    known = setting_env_names()
    for pod in pods(render):
        if not pod.is_project:
            continue
        for container in pod.spec["containers"]:
            names = [var.name for var in container_env(render, container)]
            assert len(names) == len(set(names)), f"{pod.owner}: a variable is set twice"
            unknown = set(names) - known
            assert not unknown, f"{pod.owner}: not read by settings.py: {sorted(unknown)}"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("component", ["worker", "manual-run"])
def test_every_required_setting_is_supplied_and_valid(
    renders: dict[str, Render], target: str, component: str
) -> None:
    render = renders[target]
    env = container_env(render, only_container(project_pod(render, component)))
    by_name = {var.name: var for var in env}
    missing = required_env() - by_name.keys()
    assert not missing, f"{component}: required settings not supplied: {sorted(missing)}"
    redis = by_name["REDIS_URL"]
    # From the Secret and required: in prod it carries the managed Redis's password.
    assert redis.source == "secret"
    assert not redis.optional
    effective_settings(env)  # settings.py accepts the pod's environment as it stands


def test_setting_names_come_from_settings_py() -> None:
    """The name list the parity checks use follows settings.py, nested sections included."""
    names = setting_env_names()
    assert {"REDIS_URL", "PW_METRICS_PORT", "PW_LLM__API_KEY", "PW_JOBS"} <= names
    # The per-job map: under each registered job type, and no other.
    assert {"PW_JOBS__PROCESS_PROSPECT__LIMIT", "PW_JOBS__CLEANUP__TIMEOUT_S"} <= names
    assert not any(name.startswith("PW_JOBS__SEND_OUTRAECH") for name in names)
    assert "PW_JOB_LIMITS" not in names  # renamed: it only stops the start
    assert "PW_REDIS_URL" in names
    assert "PW_LLM_API_KEY" not in names


# --- ports, probes, commands ------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_ports_and_probes_match_what_the_worker_serves(
    renders: dict[str, Render], target: str
) -> None:
    render = renders[target]
    pod = project_pod(render, "worker")
    container = only_container(pod)
    settings = effective_settings(container_env(render, container))
    (port,) = [p for p in container["ports"] if p["name"] == "metrics"]
    assert port["containerPort"] == settings.metrics_port
    probes = {
        "startupProbe": HEALTH_PATH,
        "livenessProbe": HEALTH_PATH,
        "readinessProbe": READY_PATH,
    }
    for probe, path in probes.items():
        assert container[probe]["httpGet"] == {"path": path, "port": "metrics"}, probe
    deployment = render.named("Deployment", "prospect-worker")
    assert deployment is not None
    # Scrape annotations come only with a component (a Prometheus that has both them and a
    # PodMonitor would scrape every pod twice); where they are, they name the real port.
    scrape = deployment["spec"]["template"]["metadata"].get("annotations", {})
    if "prometheus.io/scrape" in scrape:
        assert scrape["prometheus.io/port"] == str(settings.metrics_port)
        assert scrape.get("prometheus.io/path", "/metrics") == METRICS_PATH
    (service,) = [
        s for s in render.of_kind("Service") if s["metadata"]["name"] == "prospect-worker"
    ]
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == "metrics"
    assert service_port["port"] == settings.metrics_port
    for monitor in render.of_kind("PodMonitor"):
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert endpoint.get("port") == "metrics"
            assert endpoint.get("path", "/metrics") == METRICS_PATH


@pytest.mark.parametrize("target", TARGETS)
def test_grace_period_outlasts_the_workers_drain(renders: dict[str, Render], target: str) -> None:
    render = renders[target]
    pod = project_pod(render, "worker")
    settings = effective_settings(container_env(render, only_container(pod)))
    grace = pod.spec["terminationGracePeriodSeconds"]
    assert grace >= settings.shutdown_grace_s + CLOSE_MARGIN_S, (
        f"terminationGracePeriodSeconds {grace} must exceed PW_SHUTDOWN_GRACE_S "
        f"({settings.shutdown_grace_s}) by {CLOSE_MARGIN_S} s"
    )


@pytest.mark.parametrize("target", TARGETS)
def test_the_container_runs_arq_worker_settings(renders: dict[str, Render], target: str) -> None:
    container = only_container(project_pod(renders[target], "worker"))
    assert container["command"] == WORKER_COMMAND
    assert "args" not in container


def test_the_image_runs_arq_worker_settings_as_pid_1() -> None:
    final = parse().final
    (cmd,) = final.all("CMD")
    assert cmd.json, "CMD must be exec form, so arq is PID 1 and gets SIGTERM itself"
    assert list(cmd.value) == WORKER_COMMAND
    assert not final.all("ENTRYPOINT")


def manual_run_command(render: Render) -> list[str]:
    command: list[str] = only_container(project_pod(render, "manual-run"))["command"]
    return command


@pytest.mark.parametrize("target", TARGETS)
def test_the_manual_run_enqueues_a_registered_job(renders: dict[str, Render], target: str) -> None:
    command = manual_run_command(renders[target])
    assert command[:4] == ["python", "-m", "worker", "enqueue"]
    assert command[4] in job_specs(Settings())
    assert command[5:] == ["--wait"]


@pytest.mark.slow
def test_the_manual_run_command_is_a_real_cli_command(renders: dict[str, Render]) -> None:
    """Asks the CLI itself, so a renamed subcommand or option fails here."""
    command = manual_run_command(renders["base"])
    result = subprocess.run(
        [sys.executable, "-m", "worker", command[3], "--help"],
        check=False,
        cwd=ROOT,
        env={},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for option in command[5:]:
        assert option in result.stdout


@pytest.mark.parametrize("target", TARGETS)
def test_the_manual_run_cronjob_runs_only_when_asked(
    renders: dict[str, Render], target: str
) -> None:
    render = renders[target]
    (cronjob,) = render.of_kind("CronJob")
    spec = cronjob["spec"]
    assert spec["suspend"] is True
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    assert job["activeDeadlineSeconds"] > 0
    assert job["ttlSecondsAfterFinished"] > 0
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    # The same image and queue settings as the worker, and no secret the worker does not have.
    worker = only_container(project_pod(render, "worker"))
    manual = only_container(project_pod(render, "manual-run"))
    assert manual["image"] == worker["image"]
    assert manual["envFrom"] == worker["envFrom"]
    assert {e["name"] for e in manual["env"]} <= {e["name"] for e in worker["env"]}


# --- security and resources -------------------------------------------------------------------


def check_pod_security(pod: Pod) -> None:
    spec = pod.spec
    assert spec["automountServiceAccountToken"] is False, pod.owner
    pod_context = spec["securityContext"]
    assert pod_context["runAsNonRoot"] is True, pod.owner
    assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}, pod.owner
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, pod.owner
        assert context["readOnlyRootFilesystem"] is True, pod.owner
        assert context["capabilities"]["drop"] == ["ALL"], pod.owner
        assert "add" not in context["capabilities"], pod.owner
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys(), pod.owner
        assert "memory" in resources["limits"], pod.owner


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_is_locked_down(renders: dict[str, Render], target: str) -> None:
    render = renders[target]
    uid, gid = dockerfile_user()
    every = list(pods(render))
    assert every
    for pod in every:
        check_pod_security(pod)
        if not pod.is_project:
            continue
        assert pod.spec["securityContext"]["runAsUser"] == uid, pod.owner
        assert pod.spec["securityContext"]["runAsGroup"] == gid, pod.owner
        volumes = {v["name"]: v for v in pod.spec["volumes"]}
        for container in pod.spec["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            tmp = mounts["/tmp"]  # noqa: S108 - the container's path, not one this test writes
            assert "emptyDir" in volumes[tmp], f"{pod.owner}: /tmp is an emptyDir"


@pytest.mark.parametrize("target", TARGETS)
def test_selectors_and_scalers_point_at_the_worker(renders: dict[str, Render], target: str) -> None:
    render = renders[target]
    labels = project_pod(render, "worker").labels
    (pdb,) = render.of_kind("PodDisruptionBudget")
    for selector in (pdb["spec"]["selector"]["matchLabels"], *_service_selectors(render)):
        assert selector.items() <= labels.items()
    manual = project_pod(render, "manual-run").labels
    assert not pdb["spec"]["selector"]["matchLabels"].items() <= manual.items()
    deployments = {d["metadata"]["name"] for d in render.of_kind("Deployment")}
    for scaler in render.of_kind("ScaledObject") + render.of_kind("HorizontalPodAutoscaler"):
        assert scaler["spec"]["scaleTargetRef"]["name"] in deployments
        # One replica at least, always: the daily run is the workers' own cron.
        floor = scaler["spec"].get("minReplicaCount", scaler["spec"].get("minReplicas", 1))
        assert floor >= 1
        if scaler["kind"] == "ScaledObject":
            assert "idleReplicaCount" not in scaler["spec"]
    scalers = render.of_kind("ScaledObject") + render.of_kind("HorizontalPodAutoscaler")
    assert len(scalers) <= 1, "KEDA and the HPA both scaling the worker would fight"


def _service_selectors(render: Render) -> list[dict[str, str]]:
    return [
        s["spec"]["selector"]
        for s in render.of_kind("Service")
        if s["metadata"]["name"] == "prospect-worker"
    ]


# --- overlays ---------------------------------------------------------------------------------


def test_prod_keeps_no_secret_in_the_repository(renders: dict[str, Render]) -> None:
    render = renders["overlays/prod"]
    assert not render.of_kind("Secret")
    image = only_container(project_pod(render, "worker"))["image"]
    assert "/" in image, "prod pulls from a registry"
    assert render.of_kind("ScaledObject"), "prod scales on queue depth"
    (scaled,) = render.of_kind("ScaledObject")
    assert scaled["spec"]["minReplicaCount"] > 1, "prod runs more than one replica"


def test_dev_redis_persists_and_never_evicts(renders: dict[str, Render]) -> None:
    render = renders["overlays/dev"]
    (redis,) = render.of_kind("StatefulSet")
    args = redis["spec"]["template"]["spec"]["containers"][0]["command"]
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--maxmemory-policy"] == "noeviction"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    mounts = redis["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": claim["metadata"]["name"], "mountPath": options["--dir"]} in mounts


# --- the Dockerfile ---------------------------------------------------------------------------


def test_the_base_image_is_pinned_by_digest() -> None:
    parsed = parse()
    names = set()
    for stage in parsed.stages:
        base = parsed.base_image(stage)
        assert base in names or DIGEST.search(base), f"FROM {base} is neither a stage nor pinned"
        if stage.name:
            names.add(stage.name)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = parsed.base_image(parsed.final).split(":")[1].split("-")[0]
    assert requires == f">={version}", "the image's Python is the oldest the project supports"


def test_the_image_installs_the_lock_file_with_the_projects_uv() -> None:
    tree = ast.parse((ROOT / "dev.py").read_text())
    dev_uv = next(
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == "UV_VERSION"
        and isinstance(node.value, ast.Constant)
    )
    parsed = parse()
    build = parsed.stage("build")
    assert build.args()["UV_VERSION"] == dev_uv
    runs = [run.value[0] for run in build.all("RUN")]
    syncs = [run for run in runs if run.startswith("uv sync")]
    assert syncs
    assert all("--frozen" in r and "--no-dev" in r for r in syncs)
    # Dependencies come before the source, so a code change reuses the dependency layer.
    sources = context_sources(parsed)
    assert sources[:2] == ["pyproject.toml", "uv.lock"]


def test_the_final_image_has_no_installer_and_runs_unbuffered_as_a_user() -> None:
    final = parse().final
    runs = " ".join(run.value[0] for run in final.all("RUN"))
    assert "pip uninstall" in runs
    assert "pip install" not in runs
    assert "uv " not in runs
    copies = final.all("COPY")
    assert copies
    assert all(flag == "--from=build" for c in copies for flag in c.flags)
    assert final.env()["PYTHONUNBUFFERED"] == "1"
    uid, gid = dockerfile_user()
    assert uid != 0
    assert gid != 0
    (expose,) = final.all("EXPOSE")
    assert expose.value == (str(Settings.model_fields["metrics_port"].default),)


def test_dockerignore_lets_through_exactly_what_the_image_copies() -> None:
    assert sorted(dockerignore_allowed()) == sorted(context_sources(parse()))


# --- the deployment docs ---------------------------------------------------------------------


def test_deployment_docs_commands_name_the_real_resources(renders: dict[str, Render]) -> None:
    docs = (ROOT / "docs/deployment.md").read_text()
    render = renders["overlays/prod"]
    (cronjob,) = render.of_kind("CronJob")
    assert f"--from=cronjob/{cronjob['metadata']['name']}" in docs
    worker = only_container(project_pod(render, "worker"))
    secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in worker["env"] if "valueFrom" in e}
    (secret,) = secrets
    assert f"kubectl create secret generic {secret}" in docs
    for kustomization in ("k8s/overlays/dev", "k8s/overlays/prod"):
        assert f"kubectl apply -k {kustomization}" in docs
