"""Open-span records: spans that traced processes reported when they started, kept apart from the traces.

Services under the harness send them (``hoptrace.tracing._open_spans``) to ``POST /hoptrace/v1/open-spans``
on the Tempo API port; the harness reads a trace's records back from ``GET /hoptrace/v1/open-spans/{id}``
and counts a record as still running until the finished span with its id is in the trace. They are the
harness's business: the store, the Tempo API, search, metrics and the forward tee never see them.

Memory is bounded: past ``max_records``, the records of the traces reported least recently are forgotten
(a forgotten record only makes the harness fall back to waiting for quiet). Thread safe.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from hoptrace.harness._model import OpenSpan, SpanKind
from hoptrace.harness.tempo._client import OPEN_SPANS_PATH

PATH = OPEN_SPANS_PATH
MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_RECORDS = 200_000
_HEX = frozenset("0123456789abcdef")
_KINDS = {kind.value: kind for kind in SpanKind}


class OpenSpanRegistry:
    """Open-span records by trace id, bounded by ``max_records``."""

    def __init__(self, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        if max_records < 1:
            raise ValueError(f"max_records must be positive, got {max_records}")
        self.max_records = max_records
        self._traces: OrderedDict[str, dict[str, OpenSpan]] = OrderedDict()
        self._count = 0
        self._lock = threading.Lock()

    def add(self, records: Sequence[OpenSpan]) -> None:
        with self._lock:
            for record in records:
                spans = self._traces.get(record.trace_id)
                if spans is None:
                    spans = self._traces[record.trace_id] = {}
                else:
                    self._traces.move_to_end(record.trace_id)
                if record.span_id not in spans:
                    self._count += 1
                spans[record.span_id] = record
            while self._count > self.max_records and len(self._traces) > 1:
                _, forgotten = self._traces.popitem(last=False)
                self._count -= len(forgotten)

    def started(self, trace_id: str) -> list[OpenSpan]:
        """Every record reported for ``trace_id`` (32 lowercase hex), finished or not, oldest first."""
        with self._lock:
            spans = list(self._traces.get(trace_id, {}).values())
        return sorted(spans, key=lambda span: span.start_time_unix_nano)


def with_open_spans(app: ASGIApp, registry: OpenSpanRegistry) -> ASGIApp:
    """``app`` plus the two open-span routes (``PATH``); every other request goes to ``app`` unchanged."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(PATH):
            request = Request(scope, receive)
            response = await _handle(request, registry)
            await response(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch


async def _handle(request: Request, registry: OpenSpanRegistry) -> Response:
    suffix = request.url.path[len(PATH) :]
    if request.method == "POST" and suffix in ("", "/"):
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                return PlainTextResponse(f"request exceeds {MAX_REQUEST_BYTES} bytes", status_code=413)
        try:
            registry.add(parse_report(bytes(body)))
        except ValueError as exc:
            return PlainTextResponse(f"malformed open-span report: {exc}", status_code=400)
        return JSONResponse({})
    if request.method == "GET" and suffix.startswith("/") and len(suffix) > 1:
        trace_id = suffix[1:].lower()
        if len(trace_id) != 32 or not set(trace_id) <= _HEX:
            return PlainTextResponse(f"invalid trace id {suffix[1:]!r}: want 32 hex digits", status_code=400)
        return JSONResponse({"spans": [to_json(span) for span in registry.started(trace_id)]})
    return PlainTextResponse("use POST " + PATH + " or GET " + PATH + "/{traceId}", status_code=405)


def parse_report(body: bytes) -> list[OpenSpan]:
    """Decode ``{"service": ..., "spans": [...]}`` (see ``hoptrace.tracing._open_spans``); ``ValueError``
    names the first thing wrong."""
    try:
        report = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(report, dict) or not isinstance(report.get("spans"), list):
        raise ValueError('want an object with a "spans" list')
    service = report.get("service", "")
    if not isinstance(service, str):
        raise ValueError('"service" must be a string')
    return [from_json(raw, service) for raw in report["spans"]]


def from_json(raw: Any, service: str) -> OpenSpan:
    """One record from its JSON form; raises ``ValueError``."""
    if not isinstance(raw, dict):
        raise ValueError("each span must be an object")
    trace_id, span_id = _hex(raw.get("traceId"), 32, "traceId"), _hex(raw.get("spanId"), 16, "spanId")
    parent = raw.get("parentSpanId") or ""
    start, name = raw.get("startTimeUnixNano", 0), raw.get("name", "")
    if not isinstance(start, int) or start < 0 or not isinstance(name, str):
        raise ValueError("startTimeUnixNano must be a non-negative integer and name a string")
    kind = _KINDS.get(str(raw.get("kind", "internal")))
    if kind is None:
        raise ValueError(f"unknown kind {raw.get('kind')!r}")
    return OpenSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=_hex(parent, 16, "parentSpanId") if parent else None,
        name=name,
        kind=kind,
        service_name=str(raw.get("service", service)),
        start_time_unix_nano=start,
    )


def to_json(span: OpenSpan) -> dict[str, Any]:
    return {
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "parentSpanId": span.parent_span_id or "",
        "name": span.name,
        "kind": span.kind.value,
        "service": span.service_name,
        "startTimeUnixNano": span.start_time_unix_nano,
    }


def _hex(value: object, length: int, field: str) -> str:
    if not isinstance(value, str) or len(value) != length or not set(value.lower()) <= _HEX:
        raise ValueError(f"{field} must be {length} hex digits, got {value!r}")
    if not int(value, 16):
        raise ValueError(f"{field} must not be all zeros")
    return value.lower()
