"""compose/tempo/tempo.yaml has the keys this stack relies on (Tempo itself cannot run in CI)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.compose.stack import TEMPO_CONFIG, compose_model, load_yaml


def tempo() -> dict[str, Any]:
    config = load_yaml(TEMPO_CONFIG)
    assert isinstance(config, dict)
    return config


def test_receives_otlp_over_grpc_and_http_on_the_published_ports() -> None:
    protocols = tempo()["distributor"]["receivers"]["otlp"]["protocols"]
    listen = {name: int(protocols[name]["endpoint"].rsplit(":", 1)[1]) for name in ("grpc", "http")}
    assert listen == {"grpc": 4317, "http": 4318}
    published = {int(port.split(":")[-1]) for port in compose_model()["services"]["tempo"]["ports"]}
    assert {tempo()["server"]["http_listen_port"], *listen.values()} <= published


def test_allows_grafanas_streaming_search() -> None:
    assert tempo()["stream_over_http_enabled"] is True


def test_traceql_metrics_run_on_every_span_of_every_range() -> None:
    """Tempo 2.x answers TraceQL metrics only with the local-blocks processor; by default it keeps only
    server spans and does not flush, so a rate() over a queue consumer or an older range would be empty."""
    assert "local-blocks" in tempo()["overrides"]["defaults"]["metrics_generator"]["processors"]
    local_blocks = tempo()["metrics_generator"]["processor"]["local_blocks"]
    assert local_blocks == {"filter_server_spans": False, "flush_to_storage": True}


def test_stores_traces_locally_for_30_days() -> None:
    trace = tempo()["storage"]["trace"]
    assert trace["backend"] == "local"
    assert trace["local"]["path"] and trace["wal"]["path"]
    assert tempo()["compactor"]["compaction"]["block_retention"] == "720h"
    volumes = compose_model()["services"]["tempo"]["volumes"]
    assert any(volume.endswith(":/var/tempo") for volume in volumes)
    assert trace["local"]["path"].startswith("/var/tempo/")


def test_metrics_generator_remote_writes_span_metrics_and_service_graphs_to_prometheus() -> None:
    generator = tempo()["metrics_generator"]
    processors = tempo()["overrides"]["defaults"]["metrics_generator"]["processors"]
    assert processors == ["service-graphs", "span-metrics", "local-blocks"]
    (remote_write,) = generator["storage"]["remote_write"]
    url = urlsplit(remote_write["url"])
    assert url.hostname == "prometheus" and url.path == "/api/v1/write"
    assert url.hostname in compose_model()["services"]
    assert "--web.enable-remote-write-receiver" in compose_model()["services"]["prometheus"]["command"]
    assert remote_write["send_exemplars"] is True
    assert generator["storage"]["path"]


def test_span_metrics_follow_hoptraces_schema() -> None:
    span_metrics = tempo()["metrics_generator"]["processor"]["span_metrics"]
    assert span_metrics["histogram_buckets"] == [0.002 * 2**k for k in range(14)]
    assert {"name": "tenant", "source_labels": ["tenant.id"]} in span_metrics["dimension_mappings"]


def test_tempos_copy_of_the_metrics_is_labelled_as_the_alert_rules_expect() -> None:
    assert tempo()["metrics_generator"]["registry"]["external_labels"] == {"source": "tempo"}


# Every key path this config may use, each checked against Tempo 2.x's configuration reference
# (docs/sources/tempo/configuration/_index.md). Tempo refuses to start on an unknown key, so a typo here
# would only show on `docker compose up`; this list makes it show in CI. Add a key only after checking it.
DOCUMENTED_KEYS = {
    "stream_over_http_enabled",
    "server.http_listen_port",
    "server.log_level",
    "distributor.receivers.otlp.protocols.grpc.endpoint",
    "distributor.receivers.otlp.protocols.http.endpoint",
    "ingester.max_block_duration",
    "compactor.compaction.block_retention",
    "metrics_generator.registry.external_labels.source",
    "metrics_generator.storage.path",
    "metrics_generator.storage.remote_write[].url",
    "metrics_generator.storage.remote_write[].send_exemplars",
    "metrics_generator.processor.service_graphs.enable_messaging_system_latency_histogram",
    "metrics_generator.processor.span_metrics.histogram_buckets",
    "metrics_generator.processor.span_metrics.dimension_mappings[].name",
    "metrics_generator.processor.span_metrics.dimension_mappings[].source_labels",
    "metrics_generator.processor.local_blocks.filter_server_spans",
    "metrics_generator.processor.local_blocks.flush_to_storage",
    "storage.trace.backend",
    "storage.trace.wal.path",
    "storage.trace.local.path",
    "overrides.defaults.metrics_generator.processors",
}


def key_paths(node: Any, prefix: str = "") -> set[str]:
    if isinstance(node, dict):
        return {path for key, value in node.items() for path in key_paths(value, f"{prefix}{key}.")}
    if isinstance(node, list) and node and all(isinstance(item, dict) for item in node):
        return {path for item in node for path in key_paths(item, f"{prefix.rstrip('.')}[].")}
    return {prefix.rstrip(".")}


def test_uses_only_documented_keys() -> None:
    assert key_paths(tempo()) - DOCUMENTED_KEYS == set()
