"""Tempo's HTTP query API, served from the embedded store (a Starlette app).

Routes and JSON shapes follow https://grafana.com/docs/tempo/latest/api_docs/ so that ``TempoClient``
and Grafana's Tempo datasource work unchanged. Bad input gets 400 with a plain-text reason (for TraceQL,
the line and column), unknown trace ids 404, as Tempo answers. Handlers that scan the store run in a
worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from hoptrace.harness._errors import InvalidExpression
from hoptrace.harness.backend._json import TempoJSONResponse
from hoptrace.harness.backend._metrics_api import instant_request, query_instant, query_range, range_request
from hoptrace.harness.backend._query_gate import QueryTimeout
from hoptrace.harness.backend._search import SearchRequest, search, tags_query
from hoptrace.harness.backend._store import SpanRecord, TraceStore, normalize_trace_id
from hoptrace.harness.backend._tags import (
    SCOPES,
    V1_SCOPES,
    parse_tag,
    tag_values_v1,
    tag_values_v2,
    tags_v1,
    tags_v2,
)
from hoptrace.harness.backend._tempo_trace import resource_spans_json, trace_by_id_v2_protobuf, traces_data
from hoptrace.harness.traceql import (
    MetricsRoot,
    Pipeline,
    autocomplete_filter,
    parse_metrics_query,
    parse_traceql,
)

PROTOBUF_ACCEPT = "application/protobuf"
BUILD_INFO = {
    # A Tempo version (semver) that has every feature served here; Grafana enables search streaming
    # from 2.2.0 and TraceQL metrics streaming from 2.7.0. The build metadata says what it really is.
    "version": "2.9.0+hoptrace",
    "revision": "",
    "branch": "",
    "buildUser": "",
    "buildDate": "",
    "goVersion": "",
}
"""``/api/status/buildinfo``: Tempo's fields. Grafana reads ``version`` to pick features."""
_DURATION = re.compile(r"^(\d{1,30}(?:\.\d{1,30})?)(ns|us|µs|ms|s|m|h)$")
MAX_DURATION_NANOS = 2**63 - 1
"""The longest ``minDuration``/``maxDuration`` (Go's ``time.Duration`` range, as Tempo parses them)."""
MAX_SEARCH_LIMIT = 1000
"""``limit`` above this is lowered to it, so that one search answer stays a few MiB at most."""
MAX_SPANS_PER_SPANSET = 100
"""``spss`` above this is lowered to it (Tempo's default ``max_spans_per_span_set``)."""
_UNIT_NANOS = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}


def _invalid_scope(scope: str | None) -> Response:
    return PlainTextResponse(f"invalid scope {scope!r}; use {', '.join(SCOPES)} or all", status_code=400)


class BadRequest(ValueError):
    """A query parameter is malformed; the message is the 400 answer's body."""


def build_tempo_app(store: TraceStore, metrics: Callable[[Request], Response] | None = None) -> Starlette:
    """The Tempo query API over ``store``; ``metrics`` answers ``/metrics`` when given.

    Handlers never raise: bad requests get Tempo's error answers.
    """

    async def ready(request: Request) -> Response:
        return PlainTextResponse("ready")

    async def echo(request: Request) -> Response:
        return PlainTextResponse("echo")

    async def buildinfo(request: Request) -> Response:
        return TempoJSONResponse(BUILD_INFO)

    async def trace_v1(request: Request) -> Response:
        records = _find_trace(store, request.path_params["trace_id"])
        if isinstance(records, Response):
            return records
        if PROTOBUF_ACCEPT in request.headers.get("accept", ""):
            return Response(traces_data(records).SerializeToString(), media_type=PROTOBUF_ACCEPT)
        return TempoJSONResponse({"batches": resource_spans_json(records)})

    async def trace_v2(request: Request) -> Response:
        records = _find_trace(store, request.path_params["trace_id"])
        if isinstance(records, Response):
            return records
        if PROTOBUF_ACCEPT in request.headers.get("accept", ""):
            return Response(trace_by_id_v2_protobuf(records), media_type=PROTOBUF_ACCEPT)
        return TempoJSONResponse({"trace": {"resourceSpans": resource_spans_json(records)}})

    async def search_traces(request: Request) -> Response:
        try:
            search_request = _search_request(request)
        except BadRequest as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return TempoJSONResponse(await run_in_threadpool(search, store, search_request))

    async def search_tags(request: Request) -> Response:
        scope = request.query_params.get("scope")
        if scope not in (None, "all", *SCOPES):
            return _invalid_scope(scope)
        return TempoJSONResponse(await run_in_threadpool(tags_v1, store, scope))

    async def search_tags_v2(request: Request) -> Response:
        scope = request.query_params.get("scope")
        if scope not in (None, "all", *SCOPES):
            return _invalid_scope(scope)
        text = request.query_params.get("q")
        query = autocomplete_filter(text) if text and text.strip() else None
        return TempoJSONResponse(await run_in_threadpool(tags_v2, store, scope, query))

    async def values_v1(request: Request) -> Response:
        field = parse_tag(request.path_params["tag"], V1_SCOPES)
        if field is None:
            return PlainTextResponse("tag name is empty", status_code=400)
        return TempoJSONResponse(await run_in_threadpool(tag_values_v1, store, field))

    async def values_v2(request: Request) -> Response:
        field = parse_tag(request.path_params["tag"])
        if field is None:
            return PlainTextResponse("tag name is empty", status_code=400)
        text = request.query_params.get("q")
        query = autocomplete_filter(text) if text and text.strip() else None
        return TempoJSONResponse(await run_in_threadpool(tag_values_v2, store, field, query))

    async def metrics_query_range(request: Request) -> Response:
        params = request.query_params
        try:
            query = _metrics_query(params)
            metrics_request = range_request(
                query,
                params.get("start"),
                params.get("end"),
                params.get("since"),
                params.get("step"),
                params.get("exemplars"),
            )
        except ValueError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return TempoJSONResponse(await run_in_threadpool(query_range, store, metrics_request))

    async def metrics_query_instant(request: Request) -> Response:
        params = request.query_params
        try:
            query = _metrics_query(params)
            metrics_request = instant_request(
                query, params.get("start"), params.get("end"), params.get("since")
            )
        except ValueError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return TempoJSONResponse(await run_in_threadpool(query_instant, store, metrics_request))

    routes = [
        Route("/ready", ready),
        Route("/api/echo", echo),
        Route("/api/status/buildinfo", buildinfo),
        Route("/api/traces/{trace_id}", trace_v1),
        Route("/api/v2/traces/{trace_id}", trace_v2),
        Route("/api/search", search_traces),
        Route("/api/search/tags", search_tags),
        Route("/api/v2/search/tags", search_tags_v2),
        Route("/api/search/tag/{tag:path}/values", values_v1),
        Route("/api/v2/search/tag/{tag:path}/values", values_v2),
        Route("/api/metrics/query_range", metrics_query_range),
        Route("/api/metrics/query", metrics_query_instant),
    ]
    if metrics is not None:
        serve_metrics = metrics

        async def metrics_endpoint(request: Request) -> Response:
            return await run_in_threadpool(serve_metrics, request)

        routes.append(Route("/metrics", metrics_endpoint))
    return Starlette(routes=routes, exception_handlers={QueryTimeout: _query_timeout})


async def _query_timeout(request: Request, exc: Exception) -> Response:
    """Tempo's query frontend answers a query past its timeout with 504 and a plain-text reason."""
    return PlainTextResponse(str(exc), status_code=504)


def _find_trace(store: TraceStore, trace_id: str) -> list[SpanRecord] | Response:
    try:
        key = normalize_trace_id(trace_id)
    except ValueError as exc:
        return PlainTextResponse(f"invalid trace id {trace_id!r}: {exc}", status_code=400)
    records = store.records(key)
    if not records:
        return PlainTextResponse(f"trace not found: {trace_id}", status_code=404)
    return records


def _metrics_query(params: Mapping[str, str]) -> MetricsRoot:
    """Tempo reads ``query`` (what Grafana sends) and then ``q``; the later one wins."""
    text = params.get("q") or params.get("query")
    if not text:
        raise BadRequest("missing the TraceQL metrics query: pass q (or query), e.g. q={ } | rate()")
    try:
        return parse_metrics_query(text)
    except InvalidExpression as exc:
        raise BadRequest(str(exc)) from None


def _optional_query(text: str | None) -> Pipeline | None:
    if text is None or not text.strip():
        return None
    try:
        return parse_traceql(text)
    except InvalidExpression as exc:
        raise BadRequest(str(exc)) from None


def _search_request(request: Request) -> SearchRequest:
    params = request.query_params
    query = _optional_query(params.get("q")) or parse_traceql("{}")
    tags = params.get("tags")
    if tags and not params.get("q"):
        try:
            query = tags_query(tags)
        except InvalidExpression as exc:
            raise BadRequest(str(exc)) from None
    return SearchRequest(
        query=query,
        start_seconds=_int_param(params.get("start"), "start"),
        end_seconds=_int_param(params.get("end"), "end"),
        limit=min(_int_param(params.get("limit"), "limit", minimum=1) or 20, MAX_SEARCH_LIMIT),
        spans_per_spanset=min(_int_param(params.get("spss"), "spss", minimum=1) or 3, MAX_SPANS_PER_SPANSET),
        min_duration_nanos=_duration_param(params.get("minDuration"), "minDuration"),
        max_duration_nanos=_duration_param(params.get("maxDuration"), "maxDuration"),
    )


def _int_param(value: str | None, name: str, minimum: int = 0) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"invalid {name} {value!r}: expected an integer") from None
    if number < minimum:
        raise BadRequest(f"invalid {name} {value!r}: must be at least {minimum}")
    return number


def _duration_param(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    match = _DURATION.match(value)
    if match is None:
        raise BadRequest(f"invalid {name} {value!r}: expected a duration such as 100ms or 2s")
    nanos = float(match.group(1)) * _UNIT_NANOS[match.group(2)]
    if nanos > MAX_DURATION_NANOS:
        raise BadRequest(f"invalid {name} {value!r}: longer than the largest duration (about 292 years)")
    return int(nanos)
