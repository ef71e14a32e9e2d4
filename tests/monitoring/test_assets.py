"""promtool on the alert rules (check and unit tests) and on every dashboard query; the
dashboard JSON is what its generator makes."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .assets import (
    ALERT_TESTS,
    ROOT,
    alert_rules,
    dashboard_queries,
    names_used_by_monitoring,
    rule_groups,
    scaler_queries,
)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_alert_rules_pass_promtool_check_and_unit_tests(promtool: str, tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups()))
    checked = run(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout

    # Each expected alert names its summary; its description is the rule's own prose.
    descriptions = {rule["alert"]: rule["annotations"]["description"] for rule in alert_rules()}
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            for alert in check.get("exp_alerts") or []:
                alert["exp_annotations"]["description"] = descriptions[check["alertname"]]
    (tmp_path / "alerts_test.yaml").write_text(yaml.safe_dump(tests))
    tested = run(promtool, "test", "rules", "alerts_test.yaml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_is_unit_tested() -> None:
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    fired = {
        check["alertname"]
        for case in tests["tests"]
        for check in case["alert_rule_test"]
        if check.get("exp_alerts")
    }
    assert fired == {rule["alert"] for rule in alert_rules()}


def test_every_dashboard_and_scaler_query_parses(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query as a recording rule, Grafana's variables filled in."""
    queries = dashboard_queries()
    assert len(queries) >= 20
    queries += scaler_queries()
    rules = [
        {
            "record": f"dashboard:query_{index}",
            "expr": query.replace("$__rate_interval", "5m").replace("$job_type", ".*"),
        }
        for index, query in enumerate(queries)
    ]
    assert not any("$" in rule["expr"] for rule in rules), "a Grafana variable left unfilled"
    (tmp_path / "dashboard.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    checked = run(promtool, "check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_the_dashboard_json_is_the_generators_output(tmp_path: Path) -> None:
    done = run(sys.executable, "scripts/make_dashboard.py", "--check", cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_the_monitoring_reads_only_worker_metrics_it_names() -> None:
    names = names_used_by_monitoring()
    assert "prospect_worker_job_outcomes_total" in names
    assert "prospect_worker_job_duration_seconds" in names  # from its _bucket series
    assert all(name.startswith("prospect_worker_") for name in names)
