"""The instrumentation scope (name, version, attributes) through every API Grafana uses: TraceQL's
``instrumentation:`` intrinsics and ``instrumentation.`` attributes in search, ``select()`` and ``by()``;
the ``instrumentation`` (and ``event``, ``link``) scopes of tag autocomplete; and trace-by-id, which
returns the scope as it was sent."""

from __future__ import annotations

import time
from typing import Any

import httpx
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.trace import Link, SpanKind

from .conftest import ServiceFactory


def _send(service: ServiceFactory) -> str:
    """Two scopes of one service: ``db.client`` 4.2.0 with attributes, ``plain`` with neither. Returns
    the trace id of the ``db.client`` span."""
    provider = service("api", "grpc")
    db = provider.get_tracer("db.client", "4.2.0", attributes={"library.team": "storage", "library.tier": 2})
    plain = provider.get_tracer("plain")
    start = time.time_ns()
    with plain.start_as_current_span("GET /orders", kind=SpanKind.SERVER) as root:
        link = Link(root.get_span_context(), {"link.reason": "batch"})
        with db.start_as_current_span(
            "SELECT", kind=SpanKind.CLIENT, links=[link], start_time=start
        ) as query:
            query.add_event("retry", {"retry.attempt": 2}, timestamp=start + 1_500_000)
    return format(root.get_span_context().trace_id, "032x")


def _search(tempo: httpx.Client, query: str) -> list[dict[str, Any]]:
    response = tempo.get("/api/search", params={"q": query})
    assert response.status_code == 200, response.text
    traces: list[dict[str, Any]] = response.json()["traces"]
    return traces


def _values(tempo: httpx.Client, tag: str) -> list[dict[str, str]]:
    response = tempo.get(f"/api/v2/search/tag/{tag}/values")
    assert response.status_code == 200, response.text
    values: list[dict[str, str]] = response.json()["tagValues"]
    return values


def test_search_filters_and_selects_on_the_scope(service: ServiceFactory, tempo: httpx.Client) -> None:
    trace_id = _send(service)

    (hit,) = _search(
        tempo,
        '{ instrumentation:version = "4.2.0" && instrumentation.library.tier >= 2 }'
        " | select(instrumentation:name, instrumentation.library.team, event:timeSinceStart)",
    )
    assert _search(tempo, '{ instrumentation:version = "4.1.0" }') == []
    assert _search(tempo, '{ instrumentation.library.team = "storage" && name = "GET /orders" }') == []
    assert [
        s["name"] for s in _search(tempo, '{ instrumentation:name = "plain" }')[0]["spanSet"]["spans"]
    ] == ["GET /orders"]

    assert hit["traceID"] == trace_id.lstrip("0")
    (span,) = hit["spanSet"]["spans"]
    assert span["name"] == "SELECT"
    # Tempo keys a span's attributes in search results by intrinsic name, or attribute name (no scope).
    assert {"key": "instrumentation:version", "value": {"stringValue": "4.2.0"}} in span["attributes"]
    assert {"key": "instrumentation:name", "value": {"stringValue": "db.client"}} in span["attributes"]
    assert {"key": "library.team", "value": {"stringValue": "storage"}} in span["attributes"]
    # A duration as Tempo writes it: as Go prints it.
    assert {"key": "event:timeSinceStart", "value": {"stringValue": "1.5ms"}} in span["attributes"]


def _series(tempo: httpx.Client, query: str) -> dict[tuple[tuple[str, object], ...], float]:
    """An instant metrics query over the last minute and the next: {labels: value}."""
    now = int(time.time())
    response = tempo.get("/api/metrics/query", params={"q": query, "start": now - 60, "end": now + 60})
    assert response.status_code == 200, response.text
    return {
        tuple((label["key"], next(iter(label["value"].values()), None)) for label in one["labels"]): one[
            "value"
        ]
        for one in response.json()["series"]
    }


def test_metrics_group_by_the_scope(service: ServiceFactory, tempo: httpx.Client) -> None:
    _send(service)

    series = _series(tempo, "{ } | count_over_time() by (instrumentation:name, instrumentation.library.team)")

    assert series == {
        (("instrumentation:name", "db.client"), ("instrumentation.library.team", "storage")): 1.0,
        (("instrumentation:name", "plain"), ("instrumentation.library.team", None)): 1.0,
    }


def test_compare_counts_scope_event_and_link_attributes(service: ServiceFactory, tempo: httpx.Client) -> None:
    _send(service)

    got = _series(tempo, '{ } | compare({ name = "SELECT" })')

    assert got[(("__meta_type", "selection"), ("instrumentation.library.team", "storage"))] == 1.0
    assert got[(("__meta_type", "selection"), ("event.retry.attempt", "2"))] == 1.0
    assert got[(("__meta_type", "selection"), ("link.link.reason", "batch"))] == 1.0
    assert (("__meta_type", "baseline"), ("instrumentation.library.team", "storage")) not in got


def test_a_duration_label_is_written_as_go_prints_it(service: ServiceFactory, tempo: httpx.Client) -> None:
    _send(service)

    series = _series(tempo, "{ } | count_over_time() by (event:timeSinceStart)")

    assert series[(("event:timeSinceStart", "1.5ms"),)] == 1.0


def test_autocomplete_knows_the_instrumentation_event_and_link_scopes(
    service: ServiceFactory, tempo: httpx.Client
) -> None:
    _send(service)

    def scope(name: str) -> dict[str, Any]:
        response = tempo.get("/api/v2/search/tags", params={"scope": name})
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    every = {one["name"]: one["tags"] for one in tempo.get("/api/v2/search/tags").json()["scopes"]}
    v1_every = tempo.get("/api/search/tags").json()["tagNames"]

    assert scope("instrumentation") == {
        "scopes": [{"name": "instrumentation", "tags": ["library.team", "library.tier"]}]
    }
    assert scope("event") == {"scopes": [{"name": "event", "tags": ["retry.attempt"]}]}
    assert scope("link") == {"scopes": [{"name": "link", "tags": ["link.reason"]}]}
    assert every["instrumentation"] == ["library.team", "library.tier"]
    assert {"instrumentation:name", "instrumentation:version"} <= set(every["intrinsic"])
    assert "library.team" not in v1_every  # v1 without a scope: resource and span names only
    assert tempo.get("/api/search/tags", params={"scope": "instrumentation"}).json() == {
        "tagNames": ["library.team", "library.tier"]
    }
    assert _values(tempo, "instrumentation.library.team") == [{"type": "string", "value": "storage"}]
    assert _values(tempo, "instrumentation.library.tier") == [{"type": "int", "value": "2"}]
    assert _values(tempo, "instrumentation:version") == [{"type": "string", "value": "4.2.0"}]
    assert _values(tempo, "instrumentation:name") == [
        {"type": "string", "value": "db.client"},
        {"type": "string", "value": "plain"},
    ]
    assert _values(tempo, "event.retry.attempt") == [{"type": "int", "value": "2"}]
    assert _values(tempo, "event:name") == [{"type": "string", "value": "retry"}]
    assert _values(tempo, "link.link.reason") == [{"type": "string", "value": "batch"}]
    # v1 takes bare attribute names: "event.x" is the attribute named so, not an event's x.
    assert tempo.get("/api/search/tag/event.retry.attempt/values").json() == {"tagValues": []}
    assert tempo.get("/api/search/tag/library.team/values").json() == {"tagValues": []}


def test_trace_by_id_returns_the_scope_as_sent(service: ServiceFactory, tempo: httpx.Client) -> None:
    trace_id = _send(service)

    document = tempo.get(f"/api/v2/traces/{trace_id}").json()
    protobuf = tempo.get(f"/api/traces/{trace_id}", headers={"Accept": "application/protobuf"})

    scopes = {
        scope_spans["scope"]["name"]: scope_spans["scope"]
        for batch in document["trace"]["resourceSpans"]
        for scope_spans in batch["scopeSpans"]
    }
    assert scopes["db.client"] == {
        "name": "db.client",
        "version": "4.2.0",
        "attributes": [
            {"key": "library.team", "value": {"stringValue": "storage"}},
            {"key": "library.tier", "value": {"intValue": "2"}},
        ],
    }
    assert scopes["plain"] == {"name": "plain"}
    assert protobuf.headers["content-type"] == "application/protobuf"
    decoded = TracesData.FromString(protobuf.content)
    (db_scope,) = [
        scope_spans.scope
        for batch in decoded.resource_spans
        for scope_spans in batch.scope_spans
        if scope_spans.scope.name == "db.client"
    ]
    assert db_scope.version == "4.2.0"
    assert [(kv.key, kv.value.int_value) for kv in db_scope.attributes if kv.key == "library.tier"] == [
        ("library.tier", 2)
    ]


def test_tag_names_follow_the_query_filter(service: ServiceFactory, tempo: httpx.Client) -> None:
    _send(service)
    other = service("billing", "http").get_tracer("billing")
    other.start_span("charge", attributes={"payment.provider": "acme"}).end()

    def scopes(**params: str) -> dict[str, list[str]]:
        response = tempo.get("/api/v2/search/tags", params=params)
        assert response.status_code == 200, response.text
        return {one["name"]: one["tags"] for one in response.json()["scopes"]}

    # Tempo's q: only the names on spans the filter matches (an unfinished filter keeps what it can read).
    billing = scopes(q='{ resource.service.name = "billing" }')
    typing = scopes(q='{ instrumentation:name = "db.client" && span.x = ', scope="span")
    everything = scopes(q="{ }")

    assert billing["span"] == ["payment.provider"]
    assert "instrumentation" not in billing and "event" not in billing
    assert typing == {"span": []}
    assert {"payment.provider"} <= set(everything["span"])
    assert everything["instrumentation"] == ["library.team", "library.tier"]
