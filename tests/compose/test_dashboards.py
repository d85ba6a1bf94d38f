"""compose/grafana/dashboards/*.json: generated, parseable, valid PromQL, and only metrics that exist."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.compose.promql import (
    TEMPO_METRICS,
    promtool_syntax_errors,
    substitute_grafana_variables,
    unknown_metrics,
)
from tests.compose.stack import COMPOSE_DIR, DASHBOARD_DIR, DATASOURCES, load_yaml

FILES = sorted(DASHBOARD_DIR.glob("*.json"))


def generator() -> ModuleType:
    path = COMPOSE_DIR / "grafana" / "generate_dashboards.py"
    spec = importlib.util.spec_from_file_location("generate_dashboards", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard(path: Path) -> dict[str, Any]:
    parsed = json.loads(path.read_text())
    assert isinstance(parsed, dict)
    return parsed


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def prometheus_targets(board: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in panels(board):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield panel["title"], target


def variable_queries(board: dict[str, Any]) -> dict[str, str]:
    """PromQL selectors inside label_values(selector, label) variable queries."""
    queries = {}
    for variable in board.get("templating", {}).get("list", []):
        match = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable.get("query", ""))
        if match:
            queries[f"variable {variable['name']}"] = match.group(1)
    return queries


def test_the_four_dashboards_exist_with_unique_uids() -> None:
    assert [path.name for path in FILES] == sorted(generator().DASHBOARDS)
    uids = [dashboard(path)["uid"] for path in FILES]
    assert len(set(uids)) == len(uids) == 4


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_committed_json_matches_the_generator(path: Path) -> None:
    module = generator()
    expected = module.render(module.DASHBOARDS[path.name]())
    assert path.read_text() == expected, f"run .venv/bin/python {module.__file__} and commit the result"


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_query_is_valid_promql_on_metrics_hoptrace_or_tempo_emit(path: Path, tmp_path: Path) -> None:
    board = dashboard(path)
    expressions = {
        f"{path.name} / {title} / {target['refId']}": substitute_grafana_variables(target["expr"])
        for title, target in prometheus_targets(board)
    }
    expressions.update(
        {f"{path.name} / {k}": substitute_grafana_variables(v) for k, v in variable_queries(board).items()}
    )
    assert expressions
    assert promtool_syntax_errors(expressions, tmp_path) == ""
    assert unknown_metrics(expressions.values(), TEMPO_METRICS) == set()


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_panels_use_provisioned_datasources(path: Path) -> None:
    provisioned = {source["uid"]: source["type"] for source in load_yaml(DATASOURCES)["datasources"]}
    for panel in panels(dashboard(path)):
        if panel["type"] == "row":
            continue
        reference = panel["datasource"]
        assert provisioned.get(reference["uid"]) == reference["type"], panel["title"]


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_span_metric_and_service_graph_queries_pick_one_source(path: Path) -> None:
    """These metrics arrive from two emitters (services or embedded backend, and Tempo): pick one copy."""
    for title, target in prometheus_targets(dashboard(path)):
        selectors = re.findall(r"traces_(?:spanmetrics|service_graph)_\w+(\{[^}]*\})?", target["expr"])
        assert all('source=~"$source"' in selector for selector in selectors), title


def test_red_overview_has_p50_p95_p99_latency_with_exemplars() -> None:
    board = dashboard(DASHBOARD_DIR / "red-overview.json")
    quantiles = {
        re.search(r"histogram_quantile\(([\d.]+)", target["expr"]).group(1)  # type: ignore[union-attr]
        for _, target in prometheus_targets(board)
        if "traces_spanmetrics_latency_bucket" in target["expr"] and target["exemplar"]
    }
    assert {"0.5", "0.95", "0.99"} <= quantiles
    assert any(panel.get("repeat") == "service" for panel in board["panels"])


def test_tenant_dashboard_groups_by_tenant() -> None:
    board = dashboard(DASHBOARD_DIR / "tenants.json")
    assert all(re.search(r"by \((le, )?tenant", target["expr"]) for _, target in prometheus_targets(board))


def test_queue_dashboard_sets_producer_against_consumer_series() -> None:
    exprs = [target["expr"] for _, target in prometheus_targets(dashboard(DASHBOARD_DIR / "queue-hops.json"))]
    assert any('span_kind="SPAN_KIND_PRODUCER"' in expr for expr in exprs)
    assert any('span_kind="SPAN_KIND_CONSUMER"' in expr for expr in exprs)


def test_service_graph_dashboard_shows_tempos_service_map() -> None:
    board = dashboard(DASHBOARD_DIR / "service-graph.json")
    (node_graph,) = [panel for panel in board["panels"] if panel["type"] == "nodeGraph"]
    assert node_graph["datasource"]["type"] == "tempo"
    assert node_graph["targets"][0]["queryType"] == "serviceMap"
    exprs = " ".join(target["expr"] for _, target in prometheus_targets(board))
    assert "traces_service_graph_request_failed_total" in exprs
