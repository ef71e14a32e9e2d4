"""Deployment checks: the Dockerfile and the kustomize manifests, all offline (no Docker engine,
no cluster). Renders are made once per run and shared by the tests: in a parallel run the first
xdist worker renders and the others read its output."""

import fcntl

import pytest

from .manifests import Render, parsed, render_targets, render_with


@pytest.fixture(scope="session")
def renders(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, Render]:
    """Every overlay, the base alone, and the base with each component, rendered by kustomize."""
    if worker_id == "master":  # not parallel: nobody to share with
        scratch = tmp_path_factory.mktemp("kustomize")
        return {target.name: render_with(target, scratch) for target in render_targets()}
    # The run's own temporary directory, above every worker's: fresh for each run.
    shared = tmp_path_factory.getbasetemp().parent / "kustomize"
    with (shared.parent / "kustomize.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not shared.exists():
            scratch = tmp_path_factory.mktemp("kustomize")
            made = [render_with(target, scratch) for target in render_targets()]
            staging = shared.with_suffix(".partial")
            staging.mkdir()
            for render in made:
                (staging / file_name(render.target.name)).write_text(render.text)
            staging.rename(shared)
    return {
        target.name: parsed(target, (shared / file_name(target.name)).read_text())
        for target in render_targets()
    }


def file_name(target: str) -> str:
    return target.replace("/", "_").replace("+", "_") + ".yaml"
