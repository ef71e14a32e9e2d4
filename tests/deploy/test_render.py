"""The manifests build and validate, and the Dockerfile lints, with the tools a cluster operator
would use: kustomize (in kubectl), kubernetes-validate --strict, hadolint."""

import re
import subprocess
from pathlib import Path

import pytest

from .image import DOCKERFILE
from .manifests import Render, render_targets, tool
from .shapes import SHAPES

TARGETS = [target.name for target in render_targets()]
PASSED = re.compile(r"passed for resource (\S+)/")
NO_SCHEMA = re.compile(r"Couldn't find schema for kind (\w+)")


def test_every_overlay_and_component_is_a_render_target() -> None:
    assert {"base", "overlays/dev", "overlays/prod"} <= set(TARGETS)
    assert {"base+components/keda", "base+components/hpa"} <= set(TARGETS)


@pytest.mark.parametrize("target", TARGETS)
def test_kustomize_builds(renders: dict[str, Render], target: str) -> None:
    render = renders[target]
    kinds = {r["kind"] for r in render.resources}
    assert {"Deployment", "CronJob", "PodDisruptionBudget", "Service"} <= kinds
    names = [(r["kind"], r["metadata"]["name"]) for r in render.resources]
    assert len(names) == len(set(names)), f"duplicate resources in {target}"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.slow
def test_kubernetes_validate_strict(
    renders: dict[str, Render], target: str, tmp_path: Path
) -> None:
    render = renders[target]
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(render.text)
    result = subprocess.run(
        [tool("kubernetes-validate"), "--strict", str(rendered)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Every resource was either validated against the bundled schema or is an operator kind
    # that tests/deploy/shapes.py checks: nothing goes through unchecked.
    validated = PASSED.findall(output)
    unschema = NO_SCHEMA.findall(output)
    assert set(unschema) <= set(SHAPES), f"no schema and no shape check for {unschema}"
    assert len(validated) + len(unschema) == len(render.resources), output


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "style", str(DOCKERFILE)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_really_linting(tmp_path: Path) -> None:
    """The same call fails a Dockerfile with known faults, so a pass above means something."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install arq\nCMD arq worker.WorkerSettings\n")
    result = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "style", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3025"):  # latest tag, unpinned pip, shell-form CMD
        assert rule in result.stdout
