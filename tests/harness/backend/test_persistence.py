"""``persist_path`` (``--db``): acknowledged spans survive restarts, and the request log stays bounded."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from hoptrace.harness import poll_until
from hoptrace.harness.backend import EmbeddedBackend, StoreLimits

from .test_bad_input import PROTOBUF, request


def _send(backend: EmbeddedBackend, *trace_bytes: int, spans: int = 2, name: str = "op") -> None:
    """Export each trace, retrying on 503 as OTLP exporters do (back-pressure while the log compacts)."""
    with httpx.Client(base_url=backend.otlp_http_endpoint) as client:
        for trace_byte in trace_bytes:
            body = request(trace_byte, spans=spans, name=name)
            poll_until(
                lambda body=body: (
                    client.post("/v1/traces", content=body, headers=PROTOBUF).status_code != 503
                ),
                timeout=30,
                what="the backend to accept the request",
            )
            assert len(backend.store.get_trace(f"{trace_byte:02x}" * 16)) >= spans


def test_traces_survive_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "db"
    with EmbeddedBackend(persist_path=database) as first:
        _send(first, 0x31, 0x32)
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
    assert "hoptrace_backend_log_requests_total 1.0" in metrics

    with EmbeddedBackend(persist_path=database) as third:
        assert len(third.store.get_trace("32" * 16)) == 5


def test_the_log_is_compacted_to_what_the_store_keeps_and_stays_bounded(tmp_path: Path) -> None:
    database = tmp_path / "db"
    limits = StoreLimits(max_spans=40, min_retention_seconds=0)
    with EmbeddedBackend(persist_path=database, limits=limits, persist_max_bytes=20_000) as backend:
        _send(backend, *range(1, 251), spans=2)
        kept = [b for b in range(1, 251) if backend.store.get_trace(f"{b:02x}" * 16)]
    assert backend.persistence is not None  # closed: a compaction still running has finished
    assert backend.persistence.stats().compactions >= 1
    assert sum(path.stat().st_size for path in database.iterdir()) <= 20_000
    assert kept == list(range(231, 251))

    with EmbeddedBackend(persist_path=database, limits=limits) as restarted:
        assert [b for b in range(1, 251) if restarted.store.get_trace(f"{b:02x}" * 16)] == kept


def test_a_torn_tail_is_ignored_and_what_precedes_it_kept(tmp_path: Path) -> None:
    database = tmp_path / "db"
    with EmbeddedBackend(persist_path=database) as first:
        _send(first, 0x41)
    (segment,) = database.iterdir()
    with segment.open("ab") as log:
        log.write(b"\x00\x00\x10\x00\x12\x34")  # a record header whose body never made it

    with EmbeddedBackend(persist_path=database) as second:
        assert len(second.store.get_trace("41" * 16)) == 2
        _send(second, 0x42)
    with EmbeddedBackend(persist_path=database) as third:
        assert len(third.store.get_trace("42" * 16)) == 2


def test_unusable_directory_fails_at_construction(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_bytes(b"this is not a directory")
    with pytest.raises(OSError):
        EmbeddedBackend(persist_path=not_a_directory)
