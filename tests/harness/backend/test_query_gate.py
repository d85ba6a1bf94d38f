"""Queries never starve ingest: they run one at a time, pause for active ingest, and stop at a deadline."""

from __future__ import annotations

import threading

import grpc
import httpx
import pytest

from hoptrace.harness.backend import EmbeddedBackend
from hoptrace.harness.backend._query_gate import QueryGate, QueryTimeout

from .test_bad_input import EXPORT
from .test_store_memory import many_traces_requests


def test_a_query_pauses_only_while_ingest_is_active() -> None:
    gate = QueryGate(slice_seconds=1e-9, pause_seconds=0)
    with gate.admit() as clock:
        clock.tick()
        clock.tick()
        assert gate.pauses() == 0
        with gate.ingesting():
            clock.tick()
            clock.tick()
    assert gate.pauses() == 2


def test_queries_are_admitted_one_at_a_time_and_a_waiting_one_times_out() -> None:
    gate = QueryGate(timeout_seconds=0.2)
    admitted = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with gate.admit():
            admitted.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert admitted.wait(timeout=30)
        with pytest.raises(QueryTimeout, match="deadline exceeded"), gate.admit():
            pass
    finally:
        release.set()
        holder.join()
    with gate.admit() as clock, gate.admit():  # free again, and re-entrant on its own thread
        clock.tick()
    assert gate.timeouts() == 1


def test_ingest_is_never_refused_while_four_loops_search() -> None:
    stop = threading.Event()
    answers: list[int] = []
    # A short query deadline keeps the test short: every search ends, answered or 504, within it.
    with EmbeddedBackend(query_timeout_seconds=0.5) as backend:
        requests = many_traces_requests(4_000, 10)
        with grpc.insecure_channel(backend.otlp_grpc_endpoint.removeprefix("http://")) as channel:
            export = channel.unary_unary(EXPORT)
            for body in requests[:20]:
                export(body, timeout=30)

            def search_loop() -> None:
                with httpx.Client(base_url=backend.http_url, timeout=60) as client:
                    query = {"q": "{ span.http.response.status_code = 500 }", "limit": "1000"}
                    while True:
                        answers.append(client.get("/api/search", params=query).status_code)
                        if stop.is_set():
                            return

            loops = [threading.Thread(target=search_loop) for _ in range(4)]
            for loop in loops:
                loop.start()
            try:
                futures = [export.future(body, timeout=30) for body in requests[20:]]
                results = [future.exception() for future in futures]
            finally:
                stop.set()
                for loop in loops:
                    loop.join()
        assert results == [None] * len(futures)
        assert backend.store.stats().spans == 40_000
    assert answers and set(answers) <= {200, 504}
