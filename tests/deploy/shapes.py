"""Shapes of the operators' kinds, which kubernetes-validate has no schema for: KEDA's
ScaledObject and the Prometheus operator's PodMonitor, ServiceMonitor and PrometheusRule.

Only the fields these manifests may use are modelled; where a block is modelled, an unknown field
is an error, so a misspelt field (`minReplicas` for `minReplicaCount`) fails here instead of
being pruned by the API server in silence. Field lists follow the operators' reference docs."""

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")  # Prometheus durations: 30s, 1h30m


class Strict(BaseModel):
    """Fields in snake case, read under Kubernetes' camel-case names (`api_version` from
    `apiVersion`)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)


class Open(BaseModel):
    """A block modelled in part: fields the manifests do not use yet are let through."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel)


class Prometheus(BaseModel):
    """Prometheus's own rule format, whose field names are snake case already."""

    model_config = ConfigDict(extra="forbid")


class Metadata(Open):
    name: str = Field(min_length=1)


class LabelSelector(Strict):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[dict[str, Any]] = Field(default_factory=list)


# --- KEDA -------------------------------------------------------------------------------------


class ScaleTargetRef(Strict):
    api_version: str = "apps/v1"
    kind: str = "Deployment"
    name: str = Field(min_length=1)
    env_source_container_name: str | None = None


class Trigger(Strict):
    type: str
    name: str | None = None
    # KEDA reads trigger metadata as strings only: `threshold: 100` (a number) is refused.
    metadata: dict[str, str]
    authentication_ref: dict[str, str] | None = None
    metric_type: Literal["AverageValue", "Value", "Utilization"] | None = None
    use_cached_metrics: bool | None = None

    @model_validator(mode="after")
    def _prometheus(self) -> "Trigger":
        if self.type == "prometheus":
            missing = {"serverAddress", "query", "threshold"} - self.metadata.keys()
            if missing:
                raise ValueError(f"prometheus trigger lacks {sorted(missing)}")
            float(self.metadata["threshold"])  # a number in a string
        return self


class ScaledObjectSpec(Strict):
    scale_target_ref: ScaleTargetRef
    polling_interval: int | None = Field(default=None, ge=1)
    cooldown_period: int | None = Field(default=None, ge=0)
    initial_cooldown_period: int | None = Field(default=None, ge=0)
    idle_replica_count: int | None = Field(default=None, ge=0)
    min_replica_count: int = Field(default=0, ge=0)  # KEDA's default is zero
    max_replica_count: int = Field(default=100, ge=1)
    fallback: dict[str, Any] | None = None
    advanced: dict[str, Any] | None = None
    triggers: list[Trigger] = Field(min_length=1)

    @model_validator(mode="after")
    def _bounds(self) -> "ScaledObjectSpec":
        if self.max_replica_count < self.min_replica_count:
            raise ValueError("maxReplicaCount is below minReplicaCount")
        return self


class ScaledObject(Strict):
    api_version: Literal["keda.sh/v1alpha1"]
    kind: Literal["ScaledObject"]
    metadata: Metadata
    spec: ScaledObjectSpec


# --- Prometheus operator ------------------------------------------------------------------------


class ScrapeEndpoint(Open):
    port: str | None = None
    port_number: int | None = None
    target_port: str | int | None = None
    path: str = "/metrics"
    interval: str | None = None
    scrape_timeout: str | None = None

    @field_validator("interval", "scrape_timeout")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not DURATION.match(value):
            raise ValueError(f"not a Prometheus duration: {value!r}")
        return value


class PodMonitorSpec(Open):
    selector: LabelSelector
    pod_metrics_endpoints: list[ScrapeEndpoint] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _not_a_service_monitor(cls, data: Any) -> Any:
        if isinstance(data, dict) and "endpoints" in data:
            raise ValueError("a PodMonitor lists pod_metrics_endpoints, not endpoints")
        return data


class PodMonitor(Strict):
    api_version: Literal["monitoring.coreos.com/v1"]
    kind: Literal["PodMonitor"]
    metadata: Metadata
    spec: PodMonitorSpec


class ServiceMonitorSpec(Open):
    selector: LabelSelector
    endpoints: list[ScrapeEndpoint] = Field(min_length=1)


class ServiceMonitor(Strict):
    api_version: Literal["monitoring.coreos.com/v1"]
    kind: Literal["ServiceMonitor"]
    metadata: Metadata
    spec: ServiceMonitorSpec


class Rule(Prometheus):
    alert: str | None = None
    record: str | None = None
    expr: str | int = Field(union_mode="left_to_right")
    for_: str | None = Field(default=None, alias="for")
    keep_firing_for: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _kind(self) -> "Rule":
        if (self.alert is None) == (self.record is None):
            raise ValueError("a rule is either an alert or a record")
        if self.record is not None and (self.for_ or self.annotations):
            raise ValueError("a recording rule has no `for` or annotations")
        if not str(self.expr).strip():
            raise ValueError("empty expr")
        for value in (self.for_, self.keep_firing_for):
            if value is not None and not DURATION.match(value):
                raise ValueError(f"not a Prometheus duration: {value!r}")
        return self


class RuleGroup(Prometheus):
    name: str = Field(min_length=1)
    interval: str | None = None
    query_offset: str | None = None
    limit: int | None = None
    labels: dict[str, str] | None = None
    partial_response_strategy: str | None = None
    rules: list[Rule] = Field(min_length=1)


class PrometheusRuleSpec(Prometheus):
    groups: list[RuleGroup] = Field(min_length=1)


class PrometheusRule(Strict):
    api_version: Literal["monitoring.coreos.com/v1"]
    kind: Literal["PrometheusRule"]
    metadata: Metadata
    spec: PrometheusRuleSpec


SHAPES: dict[str, type[BaseModel]] = {
    "ScaledObject": ScaledObject,
    "PodMonitor": PodMonitor,
    "ServiceMonitor": ServiceMonitor,
    "PrometheusRule": PrometheusRule,
}
