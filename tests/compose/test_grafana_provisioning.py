"""Grafana provisioning: data sources linked both ways, and the dashboards provider pointing at the JSON."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.compose.promql import (
    TEMPO_METRICS,
    promtool_syntax_errors,
    substitute_grafana_variables,
    unknown_metrics,
)
from tests.compose.stack import DASHBOARD_DIR, DASHBOARD_PROVIDERS, DATASOURCES, compose_model, load_yaml


def datasources() -> dict[str, dict[str, Any]]:
    return {source["type"]: source for source in load_yaml(DATASOURCES)["datasources"]}


def grafana_expand(text: str) -> str:
    """Grafana expands $VAR / ${VAR} in provisioning files and turns $$ into $ (no variables are set here)."""
    return re.sub(r"\$\$|\$\{?\w+\}?", lambda match: "$" if match.group(0) == "$$" else "", text)


def test_prometheus_sends_exemplar_trace_ids_to_tempo() -> None:
    prometheus, tempo = datasources()["prometheus"], datasources()["tempo"]
    destinations = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert {destination["name"] for destination in destinations} == {"trace_id", "traceID"}
    assert {destination["datasourceUid"] for destination in destinations} == {tempo["uid"]}


def test_tempo_links_traces_to_metrics_service_map_node_graph_and_search() -> None:
    prometheus, tempo = datasources()["prometheus"], datasources()["tempo"]
    settings = tempo["jsonData"]
    assert settings["tracesToMetrics"]["datasourceUid"] == prometheus["uid"]
    assert {"key": "service.name", "value": "service"} in settings["tracesToMetrics"]["tags"]
    assert settings["serviceMap"]["datasourceUid"] == prometheus["uid"]
    assert settings["nodeGraph"]["enabled"] is True
    assert settings["search"]["hide"] is False


def test_tempo_streams_search_and_traceql_metrics() -> None:
    assert datasources()["tempo"]["jsonData"]["streamingEnabled"] == {"search": True, "metrics": True}


def test_datasource_urls_name_compose_services_and_their_ports() -> None:
    services = compose_model()["services"]
    for source in datasources().values():
        host, port = source["url"].removeprefix("http://").split(":")
        assert host in services
        assert any(str(published).endswith(f":{port}") for published in services[host]["ports"])


def test_traces_to_metrics_queries_are_valid_promql_on_known_metrics(tmp_path: Path) -> None:
    text = grafana_expand(DATASOURCES.read_text())
    queries = {
        f"tracesToMetrics {query['name']}": substitute_grafana_variables(query["query"])
        for query in yaml.safe_load(text)["datasources"][1]["jsonData"]["tracesToMetrics"]["queries"]
    }
    assert all("$__tags" not in query for query in queries.values())
    assert promtool_syntax_errors(queries, tmp_path) == ""
    assert unknown_metrics(queries.values(), TEMPO_METRICS) == set()


def test_provisioning_escapes_every_literal_dollar() -> None:
    """An unescaped $__tags would be expanded (to nothing) by Grafana before the data source sees it."""
    text = DATASOURCES.read_text()
    assert "$__tags" in grafana_expand(text)
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "$" not in code.replace("$$", "")


def test_dashboard_provider_reads_the_mounted_dashboard_directory() -> None:
    (provider,) = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    mounts = compose_model()["services"]["grafana"]["volumes"]
    mounted = {volume.split(":")[1]: volume.split(":")[0] for volume in mounts}
    assert mounted[provider["options"]["path"]] == "./grafana/dashboards"
    assert DASHBOARD_DIR.is_dir() and any(DASHBOARD_DIR.glob("*.json"))
    assert mounted["/etc/grafana/provisioning"] == "./grafana/provisioning"
