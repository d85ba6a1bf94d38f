"""Generate compose/grafana/dashboards/*.json with grafana-foundation-sdk (Grafana Labs' typed builders).

Run after editing: ``.venv/bin/python compose/grafana/generate_dashboards.py``. The JSON files are
committed because Grafana loads them from disk; tests/compose/test_dashboards.py fails when they drift
from this script, parses every PromQL query with promtool and checks every metric name against the
schema hoptrace and Tempo emit.

Every span-metric and service-graph query selects ``source=~"$source"``: compose/ receives span metrics
both from each service's ``/metrics`` (``source="hoptrace"``, with the ``tenant`` label) and from Tempo's
metrics-generator (``source="tempo"``), and service-graph metrics from Tempo and, with the ``embedded``
profile, from hoptrace's backend; showing both at once would count every call twice.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, nodegraph, prometheus, tempo, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="prometheus")
TEMPO = DataSourceRef(type_val="tempo", uid="tempo")

CALLS = "traces_spanmetrics_calls_total"
LATENCY = "traces_spanmetrics_latency_bucket"
ENTRY = 'span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"'
ERROR = 'status_code="STATUS_CODE_ERROR"'
RATE = "[$__rate_interval]"
GRAPH = "traces_service_graph_request"  # + _total, _failed_total, _{server,client,messaging_system}_seconds_*


def query(expr: str, legend: str, *, exemplars: bool = False) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).exemplar(exemplars).range()


def rate(metric: str, selector: str, by: str) -> str:
    matchers = f"{{{selector}}}" if selector else ""
    return f"sum by ({by}) (rate({metric}{matchers}{RATE}))"


def ratio(selector: str, by: str) -> str:
    return f"{rate(CALLS, f'{selector}, {ERROR}', by)}\n/\n{rate(CALLS, selector, by)}"


def quantile(q: float, metric: str, selector: str, by: str) -> str:
    return f"histogram_quantile({q}, {rate(metric, selector, f'le, {by}')})"


def panel(
    title: str, unit: str, targets: Sequence[prometheus.Dataquery], *, width: int = 12, description: str = ""
) -> timeseries.Panel:
    built = timeseries.Panel().title(title).unit(unit).datasource(PROMETHEUS).span(width).height(8)
    if description:
        built = built.description(description)
    for target in targets:
        built = built.with_target(target)
    return built


def label_variable(name: str, label: str, selector: str, *, multi: bool) -> dashboard.QueryVariable:
    variable = (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query(f"label_values({CALLS}{{{selector}}}, {name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )
    if multi:
        variable = variable.multi(True).include_all(True).all_value(".*")
    return variable


def base(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["hoptrace"])
        .time("now-1h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .readonly()
    )


def source_variable(metric: str = CALLS) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable("source")
        .label("metrics from")
        .description("hoptrace: each service's own /metrics (with tenant); tempo: Tempo's metrics-generator")
        .datasource(PROMETHEUS)
        .query(f"label_values({metric}, source)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )


def red_overview() -> dashboard.Dashboard:
    sel = f'{ENTRY}, source=~"$source", service=~"$service"'
    one = f'{ENTRY}, source=~"$source", service="$service"'
    return (
        base(
            "hoptrace-red",
            "hoptrace / RED per service",
            "Rate, errors and duration of server and consumer spans",
        )
        .with_variable(source_variable())
        .with_variable(label_variable("service", "service", 'source=~"$source"', multi=True))
        .with_row(dashboard.Row("All selected services"))
        .with_panel(
            panel("Request rate", "reqps", [query(rate(CALLS, sel, "service"), "{{service}}")], width=8)
        )
        .with_panel(
            panel("Error ratio", "percentunit", [query(ratio(sel, "service"), "{{service}}")], width=8)
        )
        .with_panel(
            panel(
                "p95 latency (exemplars link to traces)",
                "s",
                [query(quantile(0.95, LATENCY, sel, "service"), "{{service}}", exemplars=True)],
                width=8,
            )
        )
        .with_row(dashboard.Row("$service").repeat("service"))
        .with_panel(
            panel(
                "$service latency p50 / p95 / p99",
                "s",
                [
                    query(quantile(q, LATENCY, one, "service"), f"p{round(q * 100)}", exemplars=True)
                    for q in (0.5, 0.95, 0.99)
                ],
                description="Click an exemplar dot to open its trace in Tempo.",
            )
        )
        .with_panel(
            panel("$service rate by span", "reqps", [query(rate(CALLS, one, "span_name"), "{{span_name}}")])
        )
        .with_panel(
            panel(
                "$service error ratio by span",
                "percentunit",
                [query(ratio(one, "span_name"), "{{span_name}}")],
            )
        )
        .with_panel(
            panel(
                "$service p95 by span",
                "s",
                [query(quantile(0.95, LATENCY, one, "span_name"), "{{span_name}}", exemplars=True)],
            )
        )
    )


def tenants() -> dashboard.Dashboard:
    sel = f'{ENTRY}, source=~"$source", tenant=~"$tenant"'
    return (
        base(
            "hoptrace-tenants",
            "hoptrace / tenants",
            "RED metrics per tenant (tenant.id baggage on every span)",
        )
        .with_variable(source_variable())
        .with_variable(label_variable("tenant", "tenant", 'source=~"$source", tenant!=""', multi=True))
        .with_panel(panel("Requests per tenant", "reqps", [query(rate(CALLS, sel, "tenant"), "{{tenant}}")]))
        .with_panel(
            panel("Error ratio per tenant", "percentunit", [query(ratio(sel, "tenant"), "{{tenant}}")])
        )
        .with_panel(
            panel(
                "p95 latency per tenant",
                "s",
                [query(quantile(0.95, LATENCY, sel, "tenant"), "{{tenant}}", exemplars=True)],
            )
        )
        .with_panel(
            panel(
                "Errors per tenant and service",
                "reqps",
                [query(rate(CALLS, f"{sel}, {ERROR}", "tenant, service"), "{{tenant}} / {{service}}")],
            )
        )
    )


def queues() -> dashboard.Dashboard:
    source = 'source=~"$source"'
    producer = f'span_kind="SPAN_KIND_PRODUCER", {source}'
    consumer = f'span_kind="SPAN_KIND_CONSUMER", {source}'
    by = "service, span_name"
    legend = "{{service}}: {{span_name}}"
    return (
        base(
            "hoptrace-queues", "hoptrace / queue hops", "RabbitMQ hops: producer spans against consumer spans"
        )
        .with_variable(source_variable())
        .with_panel(panel("Published (producer spans)", "ops", [query(rate(CALLS, producer, by), legend)]))
        .with_panel(panel("Consumed (consumer spans)", "ops", [query(rate(CALLS, consumer, by), legend)]))
        .with_panel(panel("Consumer error ratio", "percentunit", [query(ratio(consumer, by), legend)]))
        .with_panel(
            panel(
                "Consumer p95 processing time",
                "s",
                [query(quantile(0.95, LATENCY, consumer, by), legend, exemplars=True)],
            )
        )
        .with_panel(
            panel(
                "Publish to consume p95 (service graph, messaging system edges)",
                "s",
                [
                    query(
                        quantile(0.95, f"{GRAPH}_messaging_system_seconds_bucket", source, "client, server"),
                        "{{client}} -> {{server}}",
                    )
                ],
                width=24,
                description=(
                    "Time between the producer span's end and the consumer span's start, from the service"
                    " graph of Tempo or, with the embedded profile, of hoptrace's backend."
                ),
            )
        )
    )


def service_graph() -> dashboard.Dashboard:
    edge = "client, server"
    legend = "{{client}} -> {{server}}"
    sel = 'source=~"$source"'
    failed = rate(f"{GRAPH}_failed_total", sel, edge)
    total = rate(f"{GRAPH}_total", sel, edge)
    return (
        base(
            "hoptrace-service-graph",
            "hoptrace / service graph",
            "Edges between services, from service-graph metrics",
        )
        .with_variable(source_variable(f"{GRAPH}_total"))
        .with_panel(
            nodegraph.Panel()
            .title("Service graph (click an edge or node for its traces)")
            .datasource(TEMPO)
            .with_target(tempo.TempoQuery().query_type("serviceMap").datasource(TEMPO))
            .span(24)
            .height(14)
        )
        .with_panel(panel("Requests per edge", "reqps", [query(total, legend)]))
        .with_panel(panel("Failed ratio per edge", "percentunit", [query(f"{failed}\n/\n{total}", legend)]))
        .with_panel(
            panel(
                "Server-side p95 per edge",
                "s",
                [query(quantile(0.95, f"{GRAPH}_server_seconds_bucket", sel, edge), legend)],
            )
        )
        .with_panel(
            panel(
                "Client-side p95 per edge",
                "s",
                [query(quantile(0.95, f"{GRAPH}_client_seconds_bucket", sel, edge), legend)],
            )
        )
        .with_panel(
            panel(
                "Unpaired spans",
                "ops",
                [query(rate("traces_service_graph_unpaired_spans_total", sel, edge), legend)],
                width=24,
                description="Spans whose other side never arrived: an uninstrumented peer, or lost context.",
            )
        )
    )


DASHBOARDS = {
    "red-overview.json": red_overview,
    "tenants.json": tenants,
    "queue-hops.json": queues,
    "service-graph.json": service_graph,
}


def render(builder: dashboard.Dashboard) -> str:
    """The dashboard as the JSON text committed under dashboards/ (sorted keys, trailing newline).

    Panels get ids 1..N and queries refIds A, B, ... in order: the builders leave them unset, and Grafana
    would otherwise renumber them on every load (which shows as a change when someone saves).
    """
    model = builder.build()
    for number, item in enumerate(model.panels or [], start=1):
        item.id_val = number
        for index, target in enumerate(getattr(item, "targets", None) or []):
            target.ref_id = chr(ord("A") + index)
    return JSONEncoder(sort_keys=True, indent=2).encode(model) + "\n"


def main() -> int:
    DASHBOARD_DIR.mkdir(exist_ok=True)
    for name, build in DASHBOARDS.items():
        (DASHBOARD_DIR / name).write_text(render(build()))
        json.loads((DASHBOARD_DIR / name).read_text())
        print(f"wrote {DASHBOARD_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
