"""The PromQL checks used on dashboards and provisioning catch what they claim to catch."""

from __future__ import annotations

from pathlib import Path

from tests.compose.promql import (
    HOPTRACE_METRICS,
    metric_names,
    promtool_syntax_errors,
    substitute_grafana_variables,
    unknown_metrics,
)


def test_metric_names_skip_functions_keywords_labels_and_strings() -> None:
    expr = (
        'sum by (service, le) (rate(traces_spanmetrics_latency_bucket{span_name="rate(x)"}[5m]))'
        " / on (service) group_left sum(traces_spanmetrics_calls_total) > bool 0.5 unless absent(up)"
    )
    assert metric_names(expr) == {"traces_spanmetrics_latency_bucket", "traces_spanmetrics_calls_total", "up"}


def test_unknown_metrics_names_the_misspelt_one() -> None:
    exprs = [
        "rate(traces_spanmetrics_calls_total[1m])",
        "rate(traces_spanmetrics_duration_seconds_bucket[1m])",
    ]
    assert unknown_metrics(exprs, HOPTRACE_METRICS) == {"traces_spanmetrics_duration_seconds_bucket"}


def test_grafana_variables_become_promql() -> None:
    expr = 'rate(x{service=~"$service", tenant="${tenant}"}[$__rate_interval])'
    assert substitute_grafana_variables(expr) == 'rate(x{service=~".*", tenant=".*"}[1m])'


def test_promtool_reports_the_expression_that_does_not_parse(tmp_path: Path) -> None:
    report = promtool_syntax_errors({"good": "sum(rate(up[1m]))", "bad panel": "sum(rate(up[1m])"}, tmp_path)
    assert '"check:expr_1": could not parse expression' in report
    assert "expr_1: bad panel" in report
    assert promtool_syntax_errors({"good": "sum(rate(up[1m]))"}, tmp_path) == ""
