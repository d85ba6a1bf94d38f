"""``persist_path``: traces survive a restart, and the SQLite file stays bounded like the store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from hoptrace.harness.backend import EmbeddedBackend, StoreLimits

from .test_bad_input import PROTOBUF, request


def _send(backend: EmbeddedBackend, *trace_bytes: int, spans: int = 2, name: str = "op") -> None:
    with httpx.Client(base_url=backend.otlp_http_endpoint) as client:
        for trace_byte in trace_bytes:
            body = request(trace_byte, spans=spans, name=name)
            assert client.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200


def test_traces_survive_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "traces.sqlite"
    with EmbeddedBackend(persist_path=database) as first:
        _send(first, 0x31, 0x32)
        assert first.persistence is not None and first.persistence.flush(timeout_seconds=30)
        before = first.store.get_trace("31" * 16)

    with EmbeddedBackend(persist_path=database) as second:
        assert second.store.get_trace("31" * 16) == before
        assert len(second.store.get_trace("32" * 16)) == 2
        response = httpx.get(f"{second.http_url}/api/v2/traces/{'32' * 16}")
        assert response.status_code == 200
        # New spans of a loaded trace merge with it.
        _send(second, 0x32, spans=3, name="after the restart")
        assert len(second.store.get_trace("32" * 16)) == 5
        metrics = httpx.get(f"{second.http_url}/metrics").text
        assert second.persistence is not None and second.persistence.flush(timeout_seconds=30)
    assert "hoptrace_backend_persisted_spans_total" in metrics


def test_the_file_keeps_only_the_newest_spans(tmp_path: Path) -> None:
    database = tmp_path / "traces.sqlite"
    limits = StoreLimits(max_spans=4, min_retention_seconds=0)
    with EmbeddedBackend(persist_path=database, limits=limits) as backend:
        _send(backend, 1, 2, 3, 4)
        assert backend.persistence is not None and backend.persistence.flush(timeout_seconds=30)

    with sqlite3.connect(database) as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM spans").fetchone()
    assert count == 4
    with EmbeddedBackend(persist_path=database, limits=limits) as restarted:
        assert [len(restarted.store.get_trace(f"{b:02x}" * 16)) for b in (1, 2, 3, 4)] == [0, 0, 2, 2]


def test_unusable_file_fails_at_construction(tmp_path: Path) -> None:
    not_a_database = tmp_path / "garbage.sqlite"
    not_a_database.write_bytes(b"this is not an SQLite file" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        EmbeddedBackend(persist_path=not_a_database)
