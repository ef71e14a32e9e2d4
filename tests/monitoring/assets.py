"""The monitoring assets as the tests read them: the alert rules, their promtool unit tests and
the Grafana dashboard's queries."""

import re
from pathlib import Path
from typing import Any

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "k8s" / "components" / "monitoring"
RULE_FILE = MONITORING / "prometheus-rule.yaml"
SCALED_OBJECT_FILE = ROOT / "k8s" / "components" / "keda" / "scaledobject.yaml"
DASHBOARD_FILE = MONITORING / "dashboards" / "prospect-worker.json"
ALERT_TESTS = Path(__file__).with_name("alerts_test.yaml")
METRIC_NAME = re.compile(r"\bprospect_worker_[a-z_]+\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def rule_groups() -> dict[str, Any]:
    """The PrometheusRule's `spec`: a plain Prometheus rule file."""
    spec: dict[str, Any] = yaml.safe_load(RULE_FILE.read_text())["spec"]
    return spec


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups()["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and variable queries."""
    board = orjson.loads(DASHBOARD_FILE.read_bytes())
    return [
        target["expr"]
        for panel in board["panels"]
        for target in panel.get("targets") or []
        if target.get("expr")
    ]


def metric_names(exprs: list[str]) -> set[str]:
    """The metric families an expression reads (a histogram's series map to its family)."""
    names = set()
    for expr in exprs:
        for found in METRIC_NAME.findall(expr):
            name = found
            for suffix in HISTOGRAM_SUFFIXES:
                if name.endswith("_seconds" + suffix):
                    name = name.removesuffix(suffix)
            names.add(name)
    return names


def scaler_queries() -> list[str]:
    """KEDA's Prometheus triggers: the scaler reads worker metrics too."""
    scaled = yaml.safe_load(SCALED_OBJECT_FILE.read_text())
    return [t["metadata"]["query"] for t in scaled["spec"]["triggers"] if t["type"] == "prometheus"]


def names_used_by_monitoring() -> set[str]:
    """Every worker metric read by the dashboard, the alert rules and the scaler."""
    rule_exprs = [str(rule["expr"]) for rule in alert_rules()] + scaler_queries()
    board = orjson.loads(DASHBOARD_FILE.read_bytes())
    variable_queries = [str(v.get("query", "")) for v in board["templating"]["list"]]
    return metric_names(rule_exprs + dashboard_queries() + variable_queries)
