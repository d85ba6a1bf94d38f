"""Backends behind one interface: what can be checked here without Tempo or a Docker engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hoptrace.harness._errors import BackendNotReady
from hoptrace.harness.launch._backends import open_backend, tempo_config


def test_generated_tempo_config_uses_our_ports_and_short_idle_times(tmp_path: Path) -> None:
    config = yaml.safe_load(tempo_config(tmp_path, 3201, 9096, 4327, 4328))
    assert config["server"]["http_listen_port"] == 3201
    protocols = config["distributor"]["receivers"]["otlp"]["protocols"]
    assert (protocols["grpc"]["endpoint"], protocols["http"]["endpoint"]) == (
        "127.0.0.1:4327",
        "127.0.0.1:4328",
    )
    assert config["ingester"]["trace_idle_period"] == "1s"
    assert config["storage"]["trace"]["wal"]["path"] == f"{tmp_path}/wal"


def test_tempo_without_url_binary_or_engine_says_what_to_provide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOPTRACE_TEMPO_BIN", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")  # no `tempo`, no `docker`
    with pytest.raises(BackendNotReady, match="pass --tempo-url, set HOPTRACE_TEMPO_BIN"):
        open_backend("tempo")


def test_unknown_backend_kind_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="expected 'embedded' or 'tempo'"):
        open_backend("jaeger")


def test_embedded_backend_starts_in_process_and_stops() -> None:
    with open_backend("embedded") as backend:
        assert backend.kind == "embedded"
        assert backend.tempo_url.startswith("http://127.0.0.1:")
    with pytest.raises(BackendNotReady, match=r"was not ready after 0\.3 s"):
        open_backend("tempo", tempo_url=backend.tempo_url, timeout=0.3)  # stopped: nothing answers now
