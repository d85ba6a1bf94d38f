"""Tempo's HTTP query API, served from the embedded store (a Starlette app).

Routes and JSON shapes follow https://grafana.com/docs/tempo/latest/api_docs/ so that ``TempoClient``
and Grafana's Tempo datasource work unchanged. Bad input gets 400 with a plain-text reason, unknown
trace ids 404, as Tempo answers.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from harness.backend._store import SpanRecord, TraceStore, normalize_trace_id
from harness.backend._tempo_trace import resource_spans_json, trace_by_id_v2_protobuf, traces_data

PROTOBUF_ACCEPT = "application/protobuf"


def build_tempo_app(store: TraceStore) -> Starlette:
    """The Tempo query API over ``store``. Handlers never raise: bad requests get Tempo's error answers."""

    async def ready(request: Request) -> Response:
        return PlainTextResponse("ready")

    async def trace_v1(request: Request) -> Response:
        records = _find_trace(store, request.path_params["trace_id"])
        if isinstance(records, Response):
            return records
        if PROTOBUF_ACCEPT in request.headers.get("accept", ""):
            return Response(traces_data(records).SerializeToString(), media_type=PROTOBUF_ACCEPT)
        return JSONResponse({"batches": resource_spans_json(records)})

    async def trace_v2(request: Request) -> Response:
        records = _find_trace(store, request.path_params["trace_id"])
        if isinstance(records, Response):
            return records
        if PROTOBUF_ACCEPT in request.headers.get("accept", ""):
            return Response(trace_by_id_v2_protobuf(records), media_type=PROTOBUF_ACCEPT)
        return JSONResponse({"trace": {"resourceSpans": resource_spans_json(records)}})

    return Starlette(
        routes=[
            Route("/ready", ready),
            Route("/api/traces/{trace_id}", trace_v1),
            Route("/api/v2/traces/{trace_id}", trace_v2),
        ]
    )


def _find_trace(store: TraceStore, trace_id: str) -> list[SpanRecord] | Response:
    try:
        key = normalize_trace_id(trace_id)
    except ValueError as exc:
        return PlainTextResponse(f"invalid trace id {trace_id!r}: {exc}", status_code=400)
    records = store.records(key)
    if not records:
        return PlainTextResponse(f"trace not found: {trace_id}", status_code=404)
    return records
