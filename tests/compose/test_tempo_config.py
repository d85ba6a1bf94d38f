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
    assert processors == ["service-graphs", "span-metrics"]
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
