"""``/api/search`` with TraceQL, tags endpoints, echo and buildinfo, in Tempo's JSON shapes."""

from __future__ import annotations

import time

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .conftest import ServiceFactory

MS = 1_000_000


def _send_traces(service: ServiceFactory) -> tuple[str, str]:
    """A checkout trace (api over gRPC -> inventory over HTTP, whose DB call fails) and an orphan span
    whose root never arrives. Returns both trace ids in hex."""
    api = service("api", "grpc").get_tracer("api")
    inventory = service("inventory", "http").get_tracer("inventory")
    t0 = time.time_ns()
    root = api.start_span(
        "GET /checkout", kind=SpanKind.SERVER, start_time=t0, attributes={"tenant.id": "acme"}
    )
    root_context = trace.set_span_in_context(root)
    client = api.start_span("GET stock", root_context, kind=SpanKind.CLIENT, start_time=t0 + 5 * MS)
    server = inventory.start_span(
        "GET /stock",
        trace.set_span_in_context(client),
        kind=SpanKind.SERVER,
        start_time=t0 + 6 * MS,
        attributes={"http.status_code": 500, "tags": ("x", "y")},
    )
    database = inventory.start_span(
        "SELECT stock", trace.set_span_in_context(server), kind=SpanKind.CLIENT, start_time=t0 + 7 * MS
    )
    database.set_status(Status(StatusCode.ERROR, "deadlock"))
    database.end(t0 + 9 * MS)
    server.end(t0 + 20 * MS)
    client.end(t0 + 21 * MS)
    root.end(t0 + 250 * MS)

    missing_parent = trace.NonRecordingSpan(
        trace.SpanContext(
            0x00000000000000000000000000C0FFEE, 0x77, is_remote=True, trace_flags=trace.TraceFlags(1)
        )
    )
    orphan = inventory.start_span(
        "late work",
        trace.set_span_in_context(missing_parent),
        kind=SpanKind.CONSUMER,
        start_time=t0 - 10 * MS,
    )
    orphan.end(t0 - 9 * MS)
    return format(root.get_span_context().trace_id, "032x"), "c0ffee"


def _search(tempo: httpx.Client, query: str, **params: str) -> list[dict[str, object]]:
    response = tempo.get("/api/search", params={"q": query, **params})
    assert response.status_code == 200, response.text
    traces: list[dict[str, object]] = response.json()["traces"]
    return traces


def test_search_result_has_tempos_shape(service: ServiceFactory, tempo: httpx.Client) -> None:
    checkout, _ = _send_traces(service)

    (hit,) = _search(tempo, "{ status = error }")

    assert hit["traceID"] == checkout.lstrip("0")
    assert hit["rootServiceName"] == "api"
    assert hit["rootTraceName"] == "GET /checkout"
    assert isinstance(hit["startTimeUnixNano"], str)
    assert hit["durationMs"] == 250
    (spanset,) = hit["spanSets"]  # type: ignore[misc]
    assert hit["spanSet"] == spanset
    assert spanset["matched"] == 1
    (span,) = spanset["spans"]
    assert len(span["spanID"]) == 16
    assert span["name"] == "SELECT stock"
    assert span["durationNanos"] == str(2 * MS)
    assert span["attributes"] == [{"key": "status", "value": {"stringValue": "error"}}]
    assert hit["serviceStats"] == {"api": {"spanCount": 2}, "inventory": {"spanCount": 2, "errorCount": 1}}


def test_trace_without_root_reports_root_not_yet_received(
    service: ServiceFactory, tempo: httpx.Client
) -> None:
    _send_traces(service)

    (hit,) = _search(tempo, '{ name = "late work" }')

    assert hit["traceID"] == "c0ffee"
    assert hit["rootServiceName"] == "<root span not yet received>"
    assert "rootTraceName" not in hit
    assert hit["durationMs"] == 1


@pytest.mark.parametrize(
    ("query", "expected_spans"),
    [
        ("{ span.http.status_code >= 500 }", {"GET /stock"}),
        ('{ resource.service.name = "inventory" && kind = client }', {"SELECT stock"}),
        ('{ .tenant.id = "acme" }', {"GET /checkout"}),
        ('{ name =~ "GET .*" && !(kind = server) }', {"GET stock"}),
        ("{ duration > 100ms }", {"GET /checkout"}),
        ('{ rootServiceName = "api" && statusMessage = "deadlock" }', {"SELECT stock"}),
        ("{ traceDuration >= 250ms && kind = client } | count() = 2", {"GET stock", "SELECT stock"}),
        ("{ kind = server } >> { status = error }", {"SELECT stock"}),
        ("{ kind = server } > { kind = client }", {"GET stock", "SELECT stock"}),
        ("{ status = error } < { }", {"GET /stock"}),
        ("{ status = error } << { kind = server }", {"GET /checkout", "GET /stock"}),
        ('{ .tags = "y" } ~ { }', set()),
        ('{ kind = client } && { .tenant.id = "acme" }', {"GET stock", "SELECT stock", "GET /checkout"}),
        ("{ kind = server } | avg(duration) > 100ms", {"GET /checkout", "GET /stock"}),
        ('{ .missing = nil && name = "GET stock" }', {"GET stock"}),
        ('{ span:name = "GET stock" || span:status = error }', {"GET stock", "SELECT stock"}),
        ('{ trace:rootService = "api" && span:kind = server && span:duration < 0.05s }', {"GET /stock"}),
        (
            '{ trace:rootName = "GET /checkout" && trace:duration > 200ms && span:statusMessage != "" }',
            {"SELECT stock"},
        ),
        ('{ span."tenant.id" = "acme" }', {"GET /checkout"}),
        ('{ resource."service.name" = "inventory" && .tags =~ "x|z" }', {"GET /stock"}),
        ("{ span.http.status_code > 499.5 }", {"GET /stock"}),
        ('{ status = error } || { .tenant.id = "acme" }', {"SELECT stock", "GET /checkout"}),
        ("{ kind = client } | min(duration) < 3ms", {"GET stock", "SELECT stock"}),
        ("{ kind = client } | max(duration) >= 16ms | sum(duration) = 18ms", {"GET stock", "SELECT stock"}),
        ("{ kind = client } | sum(duration) > 1s", set()),
    ],
)
def test_search_evaluates_traceql(
    service: ServiceFactory, tempo: httpx.Client, query: str, expected_spans: set[str]
) -> None:
    checkout, _ = _send_traces(service)

    hits = _search(tempo, query, spss="10")

    if not expected_spans:
        assert hits == []
        return
    (hit,) = hits
    assert hit["traceID"] == checkout.lstrip("0")
    (spanset,) = hit["spanSets"]  # type: ignore[misc]
    assert {span["name"] for span in spanset["spans"]} == expected_spans


def test_search_limit_spss_and_time_window(service: ServiceFactory, tempo: httpx.Client) -> None:
    _send_traces(service)
    now = int(time.time())

    assert len(_search(tempo, "{}")) == 2
    assert len(_search(tempo, "{}", limit="1")) == 1
    (hit,) = _search(tempo, '{ resource.service.name = "inventory" && kind != consumer }', spss="1")
    assert len(hit["spanSets"][0]["spans"]) == 1  # type: ignore[index]
    assert hit["spanSets"][0]["matched"] == 2  # type: ignore[index]
    assert _search(tempo, "{}", start=str(now - 3600), end=str(now - 1800)) == []
    assert len(_search(tempo, "{}", start=str(now - 60), end=str(now + 60))) == 2
    assert [h["rootTraceName"] for h in _search(tempo, "{}", minDuration="100ms")] == ["GET /checkout"]


def test_search_without_query_and_with_legacy_tags(service: ServiceFactory, tempo: httpx.Client) -> None:
    _send_traces(service)

    assert len(tempo.get("/api/search").json()["traces"]) == 2
    hits = tempo.get("/api/search", params={"tags": "service.name=inventory http.status_code=500"}).json()[
        "traces"
    ]
    assert [hit["rootServiceName"] for hit in hits] == []  # http.status_code is an int, "500" a string
    hits = tempo.get("/api/search", params={"tags": 'tenant.id="acme"'}).json()["traces"]
    assert [hit["rootServiceName"] for hit in hits] == ["api"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "{ .a = }"}, "column 8"),
        ({"q": "{ nonsense }"}, "unknown identifier"),
        ({"limit": "many"}, "invalid limit"),
        ({"limit": "0"}, "invalid limit"),
        ({"start": "yesterday"}, "invalid start"),
        ({"minDuration": "fast"}, "invalid minDuration"),
    ],
)
def test_bad_search_is_400_with_a_reason(tempo: httpx.Client, params: dict[str, str], message: str) -> None:
    response = tempo.get("/api/search", params=params)
    assert response.status_code == 400
    assert message in response.text
    assert tempo.get("/ready").status_code == 200


def test_tag_names_v1_and_v2(service: ServiceFactory, tempo: httpx.Client) -> None:
    _send_traces(service)

    v1 = tempo.get("/api/search/tags").json()
    v2 = tempo.get("/api/v2/search/tags").json()
    span_scope = tempo.get("/api/v2/search/tags", params={"scope": "span"}).json()

    assert {"http.status_code", "tenant.id", "tags", "service.name"} <= set(v1["tagNames"])
    scopes = {scope["name"]: scope["tags"] for scope in v2["scopes"]}
    assert scopes["span"] == ["http.status_code", "tags", "tenant.id"]
    assert "service.name" in scopes["resource"] and "telemetry.sdk.language" in scopes["resource"]
    assert {"name", "status", "kind", "duration", "rootServiceName", "traceDuration"} <= set(
        scopes["intrinsic"]
    )
    assert span_scope == {"scopes": [{"name": "span", "tags": ["http.status_code", "tags", "tenant.id"]}]}
    assert tempo.get("/api/v2/search/tags", params={"scope": "bogus"}).status_code == 400


def test_tag_values_v2_are_typed_and_filterable(service: ServiceFactory, tempo: httpx.Client) -> None:
    _send_traces(service)

    def values(tag: str, **params: str) -> list[dict[str, str]]:
        response = tempo.get(f"/api/v2/search/tag/{tag}/values", params=params)
        assert response.status_code == 200, response.text
        result: list[dict[str, str]] = response.json()["tagValues"]
        return result

    assert values("resource.service.name") == [
        {"type": "string", "value": "api"},
        {"type": "string", "value": "inventory"},
    ]
    assert values("span.http.status_code") == [{"type": "int", "value": "500"}]
    assert values(".tags") == [{"type": "string", "value": "x"}, {"type": "string", "value": "y"}]
    assert values("status") == [{"type": "keyword", "value": "error"}, {"type": "keyword", "value": "unset"}]
    assert {v["value"] for v in values("kind")} == {"server", "client", "consumer"}
    assert values("name", q="{ status = error }") == [{"type": "string", "value": "SELECT stock"}]
    assert values("span.nothing") == []
    every_name = values("name")
    assert len(every_name) == 5
    assert values("name", q="{") == every_name  # nothing readable yet: no filter, as Tempo answers
    assert tempo.get("/api/search/tag/service.name/values").json() == {"tagValues": ["api", "inventory"]}


def test_tag_names_with_a_slash_reach_tag_values(service: ServiceFactory, tempo: httpx.Client) -> None:
    # Grafana encodes the tag twice and its proxy decodes once: the "/" arrives as %2F, and Tempo's route
    # takes the rest of the path as the tag.
    service("api", "grpc").get_tracer("api").start_span("GET /", attributes={"http/route": "/x"}).end()

    v2 = tempo.get("/api/v2/search/tag/span.http%2Froute/values")
    v1 = tempo.get("/api/search/tag/http%2Froute/values")

    assert v2.status_code == 200, v2.text
    assert v2.json()["tagValues"] == [{"type": "string", "value": "/x"}]
    assert v1.json() == {"tagValues": ["/x"]}


def test_echo_and_buildinfo(tempo: httpx.Client) -> None:
    echo = tempo.get("/api/echo")
    assert (echo.status_code, echo.text) == (200, "echo")
    info = tempo.get("/api/status/buildinfo").json()
    assert set(info) == {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}


@pytest.mark.parametrize(
    ("unfinished", "expected"),
    [
        ('{ resource.service.name = "inventory" && name = ', {"GET /stock", "SELECT stock", "late work"}),
        ('{ status = error && resource.service.name = "inventory" && kind =~ ', {"SELECT stock"}),
        ('{ span.http.status_code >= 500 && .tags = "x" && name != "', {"GET /stock"}),
        ("{ kind = client } >> { name =", {"GET stock", "SELECT stock"}),
    ],
)
def test_tag_values_filter_by_the_complete_part_of_an_unfinished_query(
    service: ServiceFactory, tempo: httpx.Client, unfinished: str, expected: set[str]
) -> None:
    _send_traces(service)

    response = tempo.get("/api/v2/search/tag/name/values", params={"q": unfinished})

    assert response.status_code == 200, response.text
    assert {value["value"] for value in response.json()["tagValues"]} == expected


def test_non_finite_doubles_are_written_as_tempo_writes_them(
    service: ServiceFactory, tempo: httpx.Client
) -> None:
    tracer = service("js", "http").get_tracer("js")
    for name, ratio in (("nan", float("nan")), ("up", float("inf")), ("down", float("-inf"))):
        tracer.start_span(name, attributes={"ratio": ratio, "kind.of": name}).end()

    hits = _search(tempo, "{ .ratio != 0.5 || .ratio = 0.5 || .kind.of != nil }", spss="5")

    (hit,) = [hit for hit in hits if hit["rootTraceName"] == "nan"]
    spans = hit["spanSets"][0]["spans"]  # type: ignore[index]
    ratios = {a["key"]: a["value"] for a in spans[0]["attributes"]}["ratio"]
    assert ratios == {"doubleValue": "NaN"}
    written = {
        h["rootTraceName"]: {a["key"]: a["value"] for a in h["spanSets"][0]["spans"][0]["attributes"]}  # type: ignore[index]
        for h in hits
    }
    assert written["up"]["ratio"] == {"doubleValue": "Infinity"}
    assert written["down"]["ratio"] == {"doubleValue": "-Infinity"}
    trace_id = hit["traceID"]
    (batch,) = tempo.get(f"/api/traces/{trace_id}").json()["batches"]
    (attribute,) = [a for a in batch["scopeSpans"][0]["spans"][0]["attributes"] if a["key"] == "ratio"]
    assert attribute["value"] == {"doubleValue": "NaN"}
    assert {v["value"] for v in tempo.get("/api/v2/search/tag/.ratio/values").json()["tagValues"]} == {
        "NaN",
        "+Inf",
        "-Inf",
    }


def test_search_groups_by_and_selects_fields_as_tempo_returns_them(
    service: ServiceFactory, tempo: httpx.Client
) -> None:
    checkout, _ = _send_traces(service)

    (hit,) = _search(tempo, "{ kind = client || kind = server } | by(resource.service.name)", spss="5")
    (selected,) = _search(
        tempo,
        '{ name = "GET stock" } | select(span:childCount, .tenant.id, trace:duration, trace:rootService)',
    )

    assert hit["traceID"] == checkout.lstrip("0")
    groups = {
        spanset["attributes"][0]["value"]["stringValue"]: {span["name"] for span in spanset["spans"]}
        for spanset in hit["spanSets"]  # type: ignore[attr-defined]
    }
    assert groups == {"api": {"GET /checkout", "GET stock"}, "inventory": {"GET /stock", "SELECT stock"}}
    assert {spanset["attributes"][0]["key"] for spanset in hit["spanSets"]} == {  # type: ignore[attr-defined]
        "by(resource.service.name)"
    }
    (span,) = selected["spanSets"][0]["spans"]  # type: ignore[index]
    assert {"key": "span:childCount", "value": {"intValue": "1"}} in span["attributes"]
    # Trace-level fields are the result's, not each span's (Tempo leaves them out of span attributes).
    assert {attribute["key"] for attribute in span["attributes"]} == {"span:childCount"}
