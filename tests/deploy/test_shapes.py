"""The operators' kinds in the renders have the shape their operators expect (shapes.py), and
the shape models refuse the mistakes they exist to catch."""

from typing import Any

import pytest
from pydantic import ValidationError

from .manifests import Render, project_pod, render_targets
from .shapes import SHAPES

TARGETS = [target.name for target in render_targets()]


@pytest.mark.parametrize("target", TARGETS)
def test_operator_kinds_have_their_operators_shape(renders: dict[str, Render], target: str) -> None:
    render = renders[target]
    labels = project_pod(render, "worker").labels
    for resource in render.resources:
        shape = SHAPES.get(resource["kind"])
        if shape is None:
            continue
        shape.model_validate(resource)
        selector = resource["spec"].get("selector", {}).get("matchLabels")
        if selector is not None:  # a monitor selects the worker pods or their Service
            assert selector.items() <= labels.items(), resource["metadata"]["name"]


def test_the_keda_component_scales_on_prometheus(renders: dict[str, Render]) -> None:
    (scaled,) = renders["base+components/keda"].of_kind("ScaledObject")
    model = SHAPES["ScaledObject"].model_validate(scaled)
    assert model.model_dump()["spec"]["triggers"][0]["type"] == "prometheus"


def scaled_object(**spec: Any) -> dict[str, Any]:
    metadata = {"serverAddress": "http://p:9090", "query": "1", "threshold": "10"}
    trigger: dict[str, Any] = {"type": "prometheus", "metadata": metadata}
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "w"},
        "spec": {"scaleTargetRef": {"name": "w"}, "triggers": [trigger], **spec},
    }


def test_shape_models_accept_a_sound_scaled_object() -> None:
    model = SHAPES["ScaledObject"].model_validate(scaled_object(minReplicaCount=1))
    spec = model.model_dump()["spec"]
    # The fields as written, KEDA's defaults where the document leaves one out.
    assert (spec["min_replica_count"], spec["max_replica_count"]) == (1, 100)
    assert spec["scale_target_ref"]["name"] == "w"
    [trigger] = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["threshold"] == "10"


@pytest.mark.parametrize(
    "mistake",
    [
        {"minReplicas": 1},  # the HPA's field name
        {"minReplicaCount": 3, "maxReplicaCount": 2},
        {"triggers": []},
        {"triggers": [{"type": "prometheus", "metadata": {"query": "1", "threshold": "5"}}]},
        {"triggers": [{"type": "prometheus", "metadata": {"serverAddress": "x", "query": "1"}}]},
    ],
)
def test_shape_models_refuse_scaled_object_mistakes(mistake: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SHAPES["ScaledObject"].model_validate(scaled_object(**mistake))


def test_shape_models_refuse_a_numeric_keda_threshold() -> None:
    document = scaled_object()
    document["spec"]["triggers"][0]["metadata"]["threshold"] = 10
    with pytest.raises(ValidationError):
        SHAPES["ScaledObject"].model_validate(document)


def monitor(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "w"},
        "spec": spec,
    }


def test_shape_models_check_pod_monitors() -> None:
    selector = {"matchLabels": {"app.kubernetes.io/name": "prospect-worker"}}
    endpoint = {"port": "metrics", "path": "/metrics", "interval": "30s"}
    SHAPES["PodMonitor"].model_validate(
        monitor({"selector": selector, "podMetricsEndpoints": [endpoint]})
    )
    for bad in (
        {"selector": selector, "endpoints": [endpoint]},  # a ServiceMonitor's field
        {"selector": selector, "podMetricsEndpoints": [{**endpoint, "interval": "30"}]},
        {"podMetricsEndpoints": [endpoint]},
    ):
        with pytest.raises(ValidationError):
            SHAPES["PodMonitor"].model_validate(monitor(bad))


def rules(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "w"},
        "spec": {"groups": [{"name": "g", "rules": list(items)}]},
    }


def test_shape_models_check_prometheus_rules() -> None:
    alert = {"alert": "WorkerDown", "expr": "up == 0", "for": "5m", "labels": {"severity": "x"}}
    SHAPES["PrometheusRule"].model_validate(rules(alert, {"record": "r:x", "expr": "sum(x)"}))
    for bad in (
        {**alert, "record": "r"},  # both kinds at once
        {**alert, "for": "five minutes"},
        {**alert, "expr": " "},
        {**alert, "severity": "page"},  # belongs under labels
    ):
        with pytest.raises(ValidationError):
            SHAPES["PrometheusRule"].model_validate(rules(bad))
