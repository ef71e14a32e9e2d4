"""The console's component (k8s/components/console) and its auth-proxy example
(k8s/overlays/console-auth-proxy): the same image and settings as the worker, another command,
probes on the console's /healthz through a port the pod declares, and a proxy that is the only
way in when the console trusts the proxy's headers."""

import shlex
from typing import Any

import pytest

from .manifests import Pod, Render, container_env, only_container, pods, project_pod

CONSOLE_TARGETS = ["base+components/console", "overlays/console-auth-proxy"]
HEALTH_PATH = "/healthz"
PROBES = ("livenessProbe", "readinessProbe")


def console_pod(render: Render) -> Pod:
    return project_pod(render, "console")


def console_container(pod: Pod) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod.spec["containers"]
    (container,) = [c for c in containers if c["name"] == "console"]
    return container


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def declared_ports(pod: Pod) -> dict[str, int]:
    return {
        port["name"]: port["containerPort"]
        for container in pod.spec["containers"]
        for port in container.get("ports", [])
    }


def test_the_console_is_a_render_target() -> None:
    from .manifests import render_targets

    assert set(CONSOLE_TARGETS) <= {target.name for target in render_targets()}


def test_the_console_is_only_in_its_targets(renders: dict[str, Render]) -> None:
    for name, render in renders.items():
        has = any(p.is_project and p.component == "console" for p in pods(render))
        assert has == (name in CONSOLE_TARGETS), name


@pytest.mark.parametrize("target", CONSOLE_TARGETS)
def test_the_console_runs_the_console_command_from_the_workers_image(
    renders: dict[str, Render], target: str
) -> None:
    render = renders[target]
    worker = only_container(project_pod(render, "worker"))
    console = console_container(console_pod(render))
    command = console["command"]
    assert command[:2] == ["prospect-worker", "console"], shlex.join(command)
    assert int(option(command, "--port")) > 0
    assert console["image"] == worker["image"]
    # The same queue, key prefix and Redis as the workers.
    assert console["envFrom"] == worker["envFrom"]
    redis = {var.name: var for var in container_env(render, console)}["REDIS_URL"]
    assert (redis.source, redis.optional) == ("secret", False)


@pytest.mark.parametrize("target", CONSOLE_TARGETS)
def test_the_probes_reach_the_consoles_health_page(renders: dict[str, Render], target: str) -> None:
    pod = console_pod(renders[target])
    ports = declared_ports(pod)
    for container in pod.spec["containers"]:
        for probe in PROBES:
            if probe not in container:
                continue
            check = container[probe]["httpGet"]
            assert check["path"] == HEALTH_PATH, (container["name"], probe)
            assert check["port"] in ports, f"{probe} names no port the pod declares"
    console = console_container(pod)
    assert all(probe in console for probe in PROBES)
    # Limits on both: a page that renders a huge list must not starve the node.
    assert {"cpu", "memory"} <= console["resources"]["limits"].keys()


@pytest.mark.parametrize("target", CONSOLE_TARGETS)
def test_the_service_reaches_the_console(renders: dict[str, Render], target: str) -> None:
    render = renders[target]
    pod = console_pod(render)
    service = render.named("Service", "prospect-worker-console")
    assert service is not None
    assert service["spec"]["selector"].items() <= pod.labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in declared_ports(pod)
    # Not the workers' Service or disruption budget: those select the workers alone.
    worker = render.named("Service", "prospect-worker")
    assert worker is not None
    assert not worker["spec"]["selector"].items() <= pod.labels.items()
    (pdb,) = render.of_kind("PodDisruptionBudget")
    assert not pdb["spec"]["selector"]["matchLabels"].items() <= pod.labels.items()


def test_the_plain_console_signs_in_built_in_users_from_a_secret(
    renders: dict[str, Render],
) -> None:
    render = renders["base+components/console"]
    console = console_container(console_pod(render))
    env = {var.name: var for var in container_env(render, console)}
    for name in ("PW_CONSOLE__USERS", "PW_CONSOLE__SESSION_SECRET"):
        assert env[name].source == "secret", name
    assert "PW_CONSOLE__TRUST_PROXY_HEADERS" not in env
    # Listening on the pod's address: the Service and the kubelet reach it there.
    assert option(console["command"], "--host") == "0.0.0.0"  # noqa: S104


def test_behind_the_proxy_only_the_proxy_reaches_the_console(renders: dict[str, Render]) -> None:
    render = renders["overlays/console-auth-proxy"]
    pod = console_pod(render)
    console = console_container(pod)
    env = {var.name: var for var in container_env(render, console)}
    assert env["PW_CONSOLE__TRUST_PROXY_HEADERS"].value == "true"
    assert "PW_CONSOLE__USERS" not in env
    # Trusted headers are safe only if nothing but the sidecar can send a request.
    assert option(console["command"], "--host") == "127.0.0.1"
    assert not console.get("ports")
    (proxy,) = [c for c in pod.spec["containers"] if c["name"] == "oauth2-proxy"]
    args = dict(arg.removeprefix("--").split("=", 1) for arg in proxy["args"])
    assert args["upstream"] == f"http://127.0.0.1:{option(console['command'], '--port')}/"
    assert args["pass-user-headers"] == "true"
    # The probes pass through the proxy without a sign-in, to the console's own health page.
    assert args["skip-auth-route"] == f"GET=^{HEALTH_PATH}$"
    assert "@sha256:" in proxy["image"] or ":v" in proxy["image"], "the proxy's image is pinned"
    service = render.named("Service", "prospect-worker-console")
    assert service is not None
    (port,) = service["spec"]["ports"]
    assert declared_ports(pod)[port["targetPort"]] == int(args["http-address"].rsplit(":", 1)[1])
