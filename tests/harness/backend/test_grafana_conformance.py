"""Grafana's Tempo data source against ``hoptrace backend``: its requests, replayed.

The requests below are facts read from Grafana's source (public/app/plugins/datasource/tempo/
datasource.ts and language_provider.ts; pkg/tsdb/tempo/grpc.go, search_stream.go and
metrics_stream.go): the paths, parameters, headers and gRPC messages it sends, and the fields it reads
back. Each is replayed against a running backend and the answer is checked field by field against
Tempo's shape. The gRPC client is made from the backend's own ``tempo.proto``.
"""

from __future__ import annotations

import math
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.trace import SpanKind, Status, StatusCode

from hoptrace.harness.backend import EmbeddedBackend
from hoptrace.harness.backend._tempopb import generate, tempo_pb2

from .conftest import ServiceFactory

GRAFANA_USER_AGENT = "Grafana/12.1.0"
# Grafana's HTTP requests carry its User-Agent; with a tenant configured, X-Scope-OrgID too.
GRAFANA_HEADERS = {"User-Agent": GRAFANA_USER_AGENT, "X-Scope-OrgID": "acme"}
# datasource.ts featuresToTempoVersion: the lowest Tempo version for each streaming feature.
STREAMING_SINCE = {"searchStreaming": (2, 2, 0), "metricsStreaming": (2, 7, 0)}
# The service and its methods Grafana's backend calls (tempopb.StreamingQuerierClient).
STREAMING_METHODS = {
    "Search": (tempo_pb2.SearchRequest, tempo_pb2.SearchResponse),
    "SearchTags": (tempo_pb2.SearchTagsRequest, tempo_pb2.SearchTagsResponse),
    "SearchTagsV2": (tempo_pb2.SearchTagsRequest, tempo_pb2.SearchTagsV2Response),
    "SearchTagValues": (tempo_pb2.SearchTagValuesRequest, tempo_pb2.SearchTagValuesResponse),
    "SearchTagValuesV2": (tempo_pb2.SearchTagValuesRequest, tempo_pb2.SearchTagValuesV2Response),
    "MetricsQueryRange": (tempo_pb2.QueryRangeRequest, tempo_pb2.QueryRangeResponse),
    "MetricsQueryInstant": (tempo_pb2.QueryInstantRequest, tempo_pb2.QueryInstantResponse),
}


def _send(service: ServiceFactory) -> None:
    api = service("api", "grpc").get_tracer("api")
    db = service("db", "http").get_tracer("db")
    with (
        api.start_as_current_span("GET /orders", kind=SpanKind.SERVER, attributes={"http.route": "/orders"}),
        db.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as failing,
    ):
        failing.set_status(Status(StatusCode.ERROR, "deadlock"))
    with api.start_as_current_span("GET /health", kind=SpanKind.SERVER, attributes={"http.route": "/health"}):
        pass


@pytest.fixture
def channel(backend: EmbeddedBackend) -> Iterator[grpc.Channel]:
    # grpc.go: the data source URL's host:port, insecure credentials (h2c) when basic auth is off.
    with grpc.insecure_channel(backend.http_url.removeprefix("http://")) as opened:
        yield opened


def _stream(channel: grpc.Channel, method: str) -> Callable[[Message], list[Any]]:
    request_type, response_type = STREAMING_METHODS[method]

    def call(request: Message) -> list[Any]:
        assert isinstance(request, request_type)
        stub = channel.unary_stream(
            f"/tempopb.StreamingQuerier/{method}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_type.FromString,
        )
        # metrics_stream.go / search_stream.go append the User-Agent to the outgoing metadata.
        return list(stub(request, metadata=[("user-agent", GRAFANA_USER_AGENT)], timeout=10))

    return call


def _as_json(message: Message) -> dict[str, Any]:
    document: dict[str, Any] = json_format.MessageToDict(message)
    return document


def _from_http(document: dict[str, Any], message: Message) -> Message:
    """An HTTP answer read into the proto message (unknown fields are an error: the shapes must agree)."""
    json_format.ParseDict(document, message)
    return message


def _semver(version: str) -> tuple[int, int, int]:
    core = version.split("+")[0].split("-")[0]
    major, minor, patch = (int(part) for part in core.split("."))
    return major, minor, patch


def test_buildinfo_turns_on_grafanas_streaming_features(tempo: httpx.Client) -> None:
    # datasource.ts init(): GET /api/status/buildinfo, reads `version`, compares it with semver.gte.
    version = tempo.get("/api/status/buildinfo", headers=GRAFANA_HEADERS).json()["version"]

    assert all(_semver(version) >= needed for needed in STREAMING_SINCE.values())


def test_search_over_http_and_grpc_give_the_same_traces(
    service: ServiceFactory, tempo: httpx.Client, channel: grpc.Channel
) -> None:
    _send(service)
    now = int(time.time())
    query = '{ resource.service.name = "api" && kind = server }'

    # handleTraceQlQuery: /api/search?q&limit&spss&start&end (unix seconds).
    http = tempo.get(
        "/api/search",
        params={"q": query, "limit": 20, "spss": 3, "start": now - 3600, "end": now + 60},
        headers=GRAFANA_HEADERS,
    ).json()
    # search_stream.go: SearchRequest{Query, Limit, SpansPerSpanSet, Start, End}.
    (streamed,) = _stream(channel, "Search")(
        tempo_pb2.SearchRequest(Query=query, Limit=20, SpansPerSpanSet=3, start=now - 3600, end=now + 60)
    )

    grpc_document = _as_json(streamed)
    assert grpc_document["traces"] == http["traces"]
    assert len(http["traces"]) == 2
    for hit in http["traces"]:  # the fields Grafana's frames read
        assert {"traceID", "rootServiceName", "rootTraceName", "startTimeUnixNano", "spanSets"} <= set(hit)
        (spanset,) = hit["spanSets"]
        assert spanset["matched"] == 1
        (span,) = spanset["spans"]
        assert {"spanID", "startTimeUnixNano", "durationNanos", "attributes"} <= set(span)
    assert streamed.metrics.inspectedTraces == http["metrics"]["inspectedTraces"] == 2


def test_grpc_search_stream_carries_non_finite_doubles(
    service: ServiceFactory, tempo: httpx.Client, channel: grpc.Channel
) -> None:
    # The OpenTelemetry JS SDK exports NaN and infinite doubles; the stream carries them as doubles, the
    # HTTP answer as protobuf JSON's "NaN" / "Infinity" / "-Infinity" strings.
    tracer = service("js", "http").get_tracer("js")
    for name, ratio in (("nan", math.nan), ("up", math.inf), ("down", -math.inf)):
        tracer.start_span(name, attributes={"ratio": ratio}).end()
    query = '{ resource.service.name = "js" } | select(span.ratio)'

    (streamed,) = _stream(channel, "Search")(tempo_pb2.SearchRequest(Query=query, Limit=20))
    http = tempo.get("/api/search", params={"q": query}, headers=GRAFANA_HEADERS).json()

    got = {
        hit.rootTraceName: {a.key: a.value for a in hit.spanSets[0].spans[0].attributes}["ratio"].double_value
        for hit in streamed.traces
    }
    assert math.isnan(got.pop("nan"))
    assert got == {"up": math.inf, "down": -math.inf}
    spelled = {
        hit["rootTraceName"]: {a["key"]: a["value"] for a in hit["spanSets"][0]["spans"][0]["attributes"]}
        for hit in http["traces"]
    }
    assert spelled["nan"]["ratio"] == {"doubleValue": "NaN"}
    assert spelled["up"]["ratio"] == {"doubleValue": "Infinity"}
    assert spelled["down"]["ratio"] == {"doubleValue": "-Infinity"}


def test_metrics_range_and_instant_over_grpc_match_http(
    service: ServiceFactory, tempo: httpx.Client, channel: grpc.Channel
) -> None:
    _send(service)
    now = time.time_ns()
    start, end, step = now - 600 * 10**9, now + 60 * 10**9, 60 * 10**9
    query = "{ } | rate() by (resource.service.name)"

    # metrics_stream.go: QueryRangeRequest{Query, Start, End (ns), Step, Exemplars} from the query model.
    (ranged,) = _stream(channel, "MetricsQueryRange")(
        tempo_pb2.QueryRangeRequest(query=query, start=start, end=end, step=step, exemplars=10)
    )
    (instant,) = _stream(channel, "MetricsQueryInstant")(
        tempo_pb2.QueryInstantRequest(query=query, start=start, end=end)
    )
    http_range = tempo.get(
        "/api/metrics/query_range",
        params={"q": query, "start": start, "end": end, "step": "60s", "exemplars": 10},
        headers=GRAFANA_HEADERS,
    ).json()
    http_instant = tempo.get(
        "/api/metrics/query", params={"q": query, "start": start, "end": end}, headers=GRAFANA_HEADERS
    ).json()

    assert ranged.series == _from_http(http_range, tempo_pb2.QueryRangeResponse()).series
    assert instant.series == _from_http(http_instant, tempo_pb2.QueryInstantResponse()).series
    totals = {s.labels[0].value.string_value: sum(x.value for x in s.samples) * 60 for s in ranged.series}
    assert totals == pytest.approx({"api": 2.0, "db": 1.0})
    exemplar = ranged.series[0].exemplars[0]
    assert [label.key for label in exemplar.labels] == ["trace:id", "span:id"]
    assert exemplar.value != exemplar.value  # NaN, as Tempo's rate() exemplars
    assert {s.labels[0].value.string_value: s.value for s in instant.series} == pytest.approx(
        {"api": 2 / 660, "db": 1 / 660}
    )


def test_tag_calls_over_grpc_match_http(
    service: ServiceFactory, tempo: httpx.Client, channel: grpc.Channel
) -> None:
    _send(service)

    # language_provider.ts: /api/v2/search/tags (scopes), /api/search/tags (v1 fallback),
    # /api/v2/search/tag/{tag}/values?q=<the query being typed>, /api/search/tag/{tag}/values.
    (tags,) = _stream(channel, "SearchTags")(tempo_pb2.SearchTagsRequest())
    (tags_v2,) = _stream(channel, "SearchTagsV2")(tempo_pb2.SearchTagsRequest(scope="span"))
    (values,) = _stream(channel, "SearchTagValues")(tempo_pb2.SearchTagValuesRequest(tagName="http.route"))
    (typed,) = _stream(channel, "SearchTagValuesV2")(
        tempo_pb2.SearchTagValuesRequest(tagName="span.http.route", query='{ kind = server && name = "GET /h')
    )

    assert list(tags.tagNames) == tempo.get("/api/search/tags", headers=GRAFANA_HEADERS).json()["tagNames"]
    assert (
        _as_json(tags_v2)
        == tempo.get("/api/v2/search/tags", params={"scope": "span"}, headers=GRAFANA_HEADERS).json()
    )
    assert list(values.tagValues) == ["/health", "/orders"]
    assert [(v.type, v.value) for v in typed.tagValues] == [("string", "/health"), ("string", "/orders")]
    assert (
        _as_json(typed)
        == tempo.get(
            "/api/v2/search/tag/span.http.route/values",
            params={"q": '{ kind = server && name = "GET /h'},
            headers=GRAFANA_HEADERS,
        ).json()
    )


@pytest.mark.parametrize(
    ("method", "request_message"),
    [
        ("Search", tempo_pb2.SearchRequest(Query="{ .a = }")),
        ("MetricsQueryRange", tempo_pb2.QueryRangeRequest(query="{ } | rate(")),
        ("MetricsQueryInstant", tempo_pb2.QueryInstantRequest(query="{ status = error }")),
        ("SearchTagsV2", tempo_pb2.SearchTagsRequest(scope="bogus")),
    ],
)
def test_bad_grpc_requests_are_invalid_argument_and_the_port_keeps_serving(
    channel: grpc.Channel, tempo: httpx.Client, method: str, request_message: Message
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _stream(channel, method)(request_message)

    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details()
    assert _stream(channel, "SearchTags")(tempo_pb2.SearchTagsRequest())
    assert tempo.get("/ready").status_code == 200


def test_one_port_serves_http1_and_h2c_side_by_side(backend: EmbeddedBackend, channel: grpc.Channel) -> None:
    host, port = backend.http_url.removeprefix("http://").rsplit(":", 1)
    # An HTTP/2 preface followed by garbage: the relay hands it to grpcio, which closes it.
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\xff" * 64)
        raw.settimeout(5)
        while raw.recv(4096):
            pass
    # A request line split mid-way, then finished: still HTTP/1.1.
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"GE")
        raw.sendall(b"T /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw.settimeout(5)
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")

    with httpx.Client(base_url=backend.http_url, timeout=10) as client:
        assert client.get("/api/echo").text == "echo"
        assert _stream(channel, "SearchTags")(tempo_pb2.SearchTagsRequest())
        assert client.get("/ready").status_code == 200


def _generator_independent(path: Path) -> list[str]:
    """What a ``_pb2`` file says whatever protoc made it: the code without the version comment, and of a
    stub its messages and field numbers (stub typing varies between grpcio-tools releases)."""
    lines = path.read_text().splitlines()
    if path.suffix == ".pyi":
        return [line for line in lines if re.match(r"\s*(class \w+|\w+_FIELD_NUMBER: )", line)]
    return [line for line in lines if not line.startswith("# Protobuf Python Version:")]


def test_committed_protobuf_code_is_generated_from_our_proto_files(tmp_path: Path) -> None:
    generated = generate.generate(tmp_path)

    committed = Path(generate.__file__).parent
    assert {path.name for path in generated} == {
        "common_pb2.py",
        "common_pb2.pyi",
        "tempo_pb2.py",
        "tempo_pb2.pyi",
    }
    for path in generated:
        assert _generator_independent(path) == _generator_independent(committed / path.name), (
            f"regenerate {path.name}"
        )
