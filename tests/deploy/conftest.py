"""Deployment checks: the Dockerfile and the kustomize manifests, all offline (no Docker engine,
no cluster). Renders are made once per session and shared by the tests."""

import pytest

from .manifests import Render, render_targets, render_with


@pytest.fixture(scope="session")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Render]:
    """Every overlay, the base alone, and the base with each component, rendered by kustomize."""
    scratch = tmp_path_factory.mktemp("kustomize")
    return {target.name: render_with(target, scratch) for target in render_targets()}
