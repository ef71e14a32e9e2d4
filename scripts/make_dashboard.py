#!/usr/bin/env python3
"""Build the Grafana dashboard with grafana-foundation-sdk and write it where the monitoring
component's ConfigMap picks it up. Edit this script, never the JSON:

    .venv/bin/python scripts/make_dashboard.py          # rewrite the JSON
    .venv/bin/python scripts/make_dashboard.py --check  # exit 1 if the JSON is stale (tests do)

Queue depth, dead letters and the daily run are the same figures on every replica, so they are
read with `max`; per-process counters and in-flight gauges are summed.
"""

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    LegendDisplayMode,
    LegendPlacement,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "k8s" / "components" / "monitoring" / "dashboards" / "prospect-worker.json"
UID = "prospect-worker"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TYPE = 'job_type=~"$job_type"'
RATE = "$__rate_interval"
# Global figures: every replica reports the same value; take one per job type, not the sum.
DUE = f'max by (job_type) (prospect_worker_queue_jobs{{state="due", {TYPE}}})'


def query(expr: str, legend: str = "") -> prometheus.Dataquery:
    built = prometheus.Dataquery().expr(expr).datasource(DATASOURCE)
    return built.legend_format(legend) if legend else built


def graph(
    title: str, unit: str, *targets: prometheus.Dataquery, width: int = 12
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(8)
        .span(width)
        .legend(
            common.VizLegendOptions()
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI))
    )
    for index, target in enumerate(targets):
        panel = panel.with_target(target.ref_id(chr(ord("A") + index)))
    return panel


def single(title: str, unit: str, expr: str, description: str = "") -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(4)
        .span(4)
        .graph_mode(BigValueGraphMode.NONE)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .with_target(query(expr).instant().ref_id("A"))
    )
    return panel.description(description) if description else panel


def quantiles(metric: str, by: str) -> list[prometheus.Dataquery]:
    return [
        query(
            f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{TYPE}}}[{RATE}])))",
            f"p{int(q * 100)} {{{{{by}}}}}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def build() -> dict[str, object]:
    board = (
        dashboard.Dashboard("prospect-worker")
        .uid(UID)
        .tags(["prospect-worker", "arq"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(
            dashboard.QueryVariable("job_type")
            .label("Job type")
            .datasource(DATASOURCE)
            .query("label_values(prospect_worker_jobs_started_total, job_type)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
        .with_row(dashboard.Row("Overview"))
        .with_panel(single("Workers reporting", "none", "count(prospect_worker_build_info)"))
        .with_panel(
            single(
                "Jobs ended / s",
                "ops",
                f"sum(rate(prospect_worker_job_outcomes_total{{{TYPE}}}[{RATE}]))",
            )
        )
        .with_panel(single("Due jobs", "none", f"sum({DUE})"))
        .with_panel(
            single("Oldest due job", "s", "max(prospect_worker_queue_oldest_due_age_seconds)")
        )
        .with_panel(
            single("Dead letters", "none", "max(prospect_worker_dead_letter_stream_entries)")
        )
        .with_panel(
            single(
                "Final failure ratio (1 h)",
                "percentunit",
                'sum(increase(prospect_worker_job_outcomes_total{outcome=~"failed|poison|expired"}[1h]))'
                " / clamp_min(sum(increase(prospect_worker_job_outcomes_total"
                '{outcome=~"succeeded|failed|poison|expired"}[1h])), 1)',
                "Jobs that ended for good in failure, over all jobs that ended for good",
            )
        )
        .with_row(dashboard.Row("Throughput by type and outcome"))
        .with_panel(
            graph(
                "Job outcomes / s",
                "ops",
                query(
                    "sum by (job_type, outcome) "
                    f"(rate(prospect_worker_job_outcomes_total{{{TYPE}}}[{RATE}]))",
                    "{{job_type}} {{outcome}}",
                ),
                width=16,
            )
        )
        .with_panel(
            graph(
                "Job tries started / s",
                "ops",
                query(
                    "sum by (job_type) "
                    f"(rate(prospect_worker_jobs_started_total{{{TYPE}}}[{RATE}]))",
                    "{{job_type}}",
                ),
                width=8,
            )
        )
        .with_row(dashboard.Row("Duration and queue wait"))
        .with_panel(
            graph(
                "Job duration", "s", *quantiles("prospect_worker_job_duration_seconds", "job_type")
            )
        )
        .with_panel(
            graph(
                "Queue wait (enqueue to start)",
                "s",
                *quantiles("prospect_worker_job_queue_wait_seconds", "job_type"),
            )
        )
        .with_row(dashboard.Row("Depth, in flight and capacity"))
        .with_panel(
            graph(
                "Queue depth",
                "none",
                query(
                    f"max by (job_type, priority, state) (prospect_worker_queue_jobs{{{TYPE}}})",
                    "{{job_type}} {{priority}} {{state}}",
                ),
            )
        )
        .with_panel(
            graph(
                "In flight vs capacity",
                "none",
                query(
                    f"sum by (job_type) (prospect_worker_jobs_in_flight{{{TYPE}}})",
                    "in flight {{job_type}}",
                ),
                query(
                    f"sum by (job_type) (prospect_worker_job_limit{{{TYPE}}})", "limit {{job_type}}"
                ),
                query("sum(prospect_worker_max_jobs)", "all types: max jobs"),
                # The same for every replica (read from Redis): max, not sum.
                query(
                    f"max by (job_type) (prospect_worker_queue_parked_jobs{{{TYPE}}})",
                    "parked {{job_type}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Oldest due job",
                "s",
                query("max(prospect_worker_queue_oldest_due_age_seconds)", "oldest due"),
            )
        )
        .with_panel(
            graph(
                "Worker loop",
                "s",
                query(
                    "time() - prospect_worker_loop_heartbeat_timestamp_seconds",
                    "heartbeat age {{instance}}",
                ),
                query("prospect_worker_loop_lag_seconds", "lag {{instance}}"),
                query(
                    "time() - max(prospect_worker_queue_sample_timestamp_seconds)",
                    "queue figures age",
                ),
            )
        )
        .with_row(dashboard.Row("Dead letters and retries"))
        .with_panel(
            graph(
                "Dead-letter stream",
                "none",
                query("max(prospect_worker_dead_letter_stream_entries)", "entries"),
            )
        )
        .with_panel(
            graph(
                "Retries and final failures / s",
                "ops",
                query(
                    "sum by (job_type, outcome) (rate(prospect_worker_job_outcomes_total"
                    f'{{outcome=~"retried|failed|poison|expired|cancelled", {TYPE}}}[{RATE}]))',
                    "{{job_type}} {{outcome}}",
                ),
            )
        )
        .with_row(dashboard.Row("External APIs and rate limits"))
        .with_panel(
            graph(
                "Requests / s by outcome",
                "reqps",
                query(
                    "sum by (service, operation, outcome) "
                    f"(rate(prospect_worker_external_requests_total[{RATE}]))",
                    "{{service}} {{operation}} {{outcome}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Request time p95",
                "s",
                query(
                    "histogram_quantile(0.95, sum by (le, service, operation) "
                    f"(rate(prospect_worker_external_request_duration_seconds_bucket[{RATE}])))",
                    "{{service}} {{operation}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Rate-limit deferrals / s and waits",
                "ops",
                query(
                    f"sum by (limiter) (rate(prospect_worker_rate_limit_deferrals_total[{RATE}]))",
                    "deferred {{limiter}}",
                ),
                query(
                    "sum by (limiter) "
                    f"(rate(prospect_worker_rate_limit_wait_seconds_count[{RATE}]))",
                    "waits {{limiter}}",
                ),
                query("max(prospect_worker_queue_paused)", "queue paused"),
            )
        )
        .with_panel(
            graph(
                "Redis errors / s",
                "ops",
                query(
                    f"sum by (component) (rate(prospect_worker_redis_errors_total[{RATE}]))",
                    "{{component}}",
                ),
            )
        )
        .with_row(dashboard.Row("Daily run and quota"))
        .with_panel(
            single(
                "Since last successful run",
                "s",
                "time() - max(prospect_worker_daily_run_last_success_timestamp_seconds)",
            )
        )
        .with_panel(
            single("Drafts queued today", "none", "max(prospect_worker_daily_quota_used_drafts)")
        )
        .with_panel(single("Daily limit", "none", "max(prospect_worker_daily_quota_limit_drafts)"))
        .with_panel(
            graph(
                "Latest daily run",
                "none",
                query("max by (stage) (prospect_worker_daily_run_prospects)", "{{stage}}"),
                width=24,
            )
        )
        .build()
    )
    encoded: dict[str, object] = json.loads(json.dumps(board, cls=JSONEncoder))
    return encoded


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the JSON is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(
                f"{OUTPUT.relative_to(ROOT)} is stale: run scripts/make_dashboard.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
