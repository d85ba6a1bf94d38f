"""PromQL checks for dashboards and provisioning: syntax through promtool, metric names by tokenizing.

``promtool check rules`` parses each expression with Prometheus' own parser, so every expression is
wrapped as a recording rule in a throw-away rules file. Grafana's template variables are not PromQL, so
they are replaced by values of the right type first.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

PROMTOOL = "/usr/bin/promtool"

# The metric schema (DESIGN.md "RED metrics" and "Embedded backend"): what hoptrace emits.
HOPTRACE_METRICS = frozenset(
    {
        "traces_spanmetrics_calls_total",
        "traces_spanmetrics_latency_bucket",
        "traces_spanmetrics_latency_sum",
        "traces_spanmetrics_latency_count",
        "traces_service_graph_request_total",
        "traces_service_graph_request_failed_total",
        *(
            f"traces_service_graph_request_{side}_seconds_{part}"
            for side in ("server", "client", "messaging_system")
            for part in ("bucket", "sum", "count")
        ),
        "traces_service_graph_unpaired_spans_total",
        "traces_service_graph_dropped_spans_total",
    }
)
# Tempo's metrics-generator emits the same names (service graphs with
# enable_messaging_system_latency_histogram) plus the span-size counter (Tempo docs: span metrics).
TEMPO_METRICS = HOPTRACE_METRICS | {"traces_spanmetrics_size_total"}

# Grafana variables -> a PromQL-typed stand-in (a duration, a regex, a label matcher list).
GRAFANA_SUBSTITUTES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$__tags": 'service="api"',
}
_GRAFANA_VARIABLE = re.compile(r"\$\{?([A-Za-z_]\w*)\}?")

_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")


def substitute_grafana_variables(expr: str) -> str:
    """Replace Grafana's template variables so that the expression is plain PromQL."""
    for variable, value in GRAFANA_SUBSTITUTES.items():
        expr = expr.replace(variable, value)
    return _GRAFANA_VARIABLE.sub(".*", expr)


def metric_names(expr: str) -> set[str]:
    """Names of the metrics an expression selects (identifiers that are not functions or keywords)."""
    text = _STRING.sub('""', expr)
    previous = None
    while previous != text:
        previous, text = text, _BRACES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name not in _KEYWORDS}


def promtool_syntax_errors(expressions: Mapping[str, str], workdir: Path) -> str:
    """Parse every expression with promtool; return promtool's report if any fails, else ''.

    ``expressions`` maps a label (where the expression came from) to the expression.
    """
    labels = list(expressions)
    rules = [{"record": f"check:expr_{i}", "expr": expressions[label]} for i, label in enumerate(labels)]
    path = workdir / "expressions.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "syntax", "rules": rules}]}))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode == 0:
        return ""
    legend = "\n".join(f"  expr_{index}: {label}" for index, label in enumerate(labels))
    return f"{result.stdout}{result.stderr}\nwhere\n{legend}"


def unknown_metrics(expressions: Iterable[str], known: frozenset[str]) -> set[str]:
    return {name for expr in expressions for name in metric_names(expr)} - known
