"""The transport-independent half of the OTLP trace receivers (gRPC and HTTP share it).

It decodes a request, rejects invalid spans through ``partial_success`` as the OTLP specification asks,
and hands the rest to the :class:`TraceStore` (and asks for its trace index to catch up in the
background), then to the journal (the ``--db`` request log) before it answers, so that an acknowledged
request is durable. Thread safe.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from hoptrace.harness.backend._errors import InvalidPayload, PayloadTooLarge, StoreFull, Unavailable
from hoptrace.harness.backend._index_keeper import poke
from hoptrace.harness.backend._lean_request import scope_groups, stored_triples
from hoptrace.harness.backend._pending_rows import IngestFacts, RequestRows
from hoptrace.harness.backend._request_facts import RequestFacts
from hoptrace.harness.backend._store import SpanOrigin, TraceStore
from hoptrace.harness.backend._trace_index import index_for

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""The OTLP receivers' default request size limit (after decompression), as the issue asks."""

SpansListener = Callable[[Sequence[tuple[bytes, SpanOrigin, bytes]]], None]
"""Called with every batch of spans that was stored, on the receiving thread; must not raise or block."""
RequestListener = Callable[[bytes], None]
"""Called with every accepted request, serialized as protobuf; must not raise or block."""
Journal = Callable[[bytes], None]
"""Makes an accepted request durable before it is acknowledged; raises :class:`Unavailable` if it cannot."""

_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


@dataclass(slots=True)
class ReceiverCounters:
    """Monotonic counters of what the receivers saw (read them through :meth:`Receiver.counters`)."""

    requests: int = 0
    spans_accepted: int = 0
    spans_rejected: int = 0
    """Invalid spans reported back through ``partial_success``."""
    spans_refused: int = 0
    """Spans of whole requests refused because the store was full or the request too large."""
    requests_invalid: int = 0
    requests_too_large: int = 0
    requests_store_full: int = 0
    requests_unavailable: int = 0
    """Requests refused because the journal (the ``--db`` log) could not keep up."""


class Receiver:
    """Decodes OTLP trace export requests and stores their spans."""

    def __init__(self, store: TraceStore, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> None:
        if max_request_bytes < 1:
            raise ValueError(f"max_request_bytes must be positive, got {max_request_bytes}")
        self.store = store
        # Indexed in the gaps ingest leaves (see _index_keeper), so that queries find it caught up.
        self._index = index_for(store)
        self.max_request_bytes = max_request_bytes
        self._listeners: list[SpansListener] = []
        self._request_listeners: list[RequestListener] = []
        self._journal: Journal | None = None
        self._origins: weakref.WeakValueDictionary[tuple[bytes, str, bytes, str], SpanOrigin] = (
            weakref.WeakValueDictionary()
        )
        self._lock = threading.Lock()
        self._counters = ReceiverCounters()
        self._facts = RequestFacts()
        self._rows = RequestRows(self._index.span_keys)

    def add_listener(self, listener: SpansListener) -> None:
        self._listeners.append(listener)

    def add_request_listener(self, listener: RequestListener) -> None:
        self._request_listeners.append(listener)

    def set_journal(self, journal: Journal | None) -> None:
        self._journal = journal

    def counters(self) -> ReceiverCounters:
        with self._lock:
            return dataclasses.replace(self._counters)

    def count_invalid(self) -> None:
        """Count a request refused before decoding (bad encoding, bad compression)."""
        with self._lock:
            self._counters.requests += 1
            self._counters.requests_invalid += 1

    def count_too_large(self) -> None:
        """Count a request refused by the transport's size limit."""
        with self._lock:
            self._counters.requests += 1
            self._counters.requests_too_large += 1

    def export_protobuf(self, body: bytes) -> ExportTraceServiceResponse:
        """Decode and store a binary ``ExportTraceServiceRequest``.

        Raises :class:`InvalidPayload`, :class:`PayloadTooLarge` or :class:`Unavailable` (including
        :class:`StoreFull`); counts each.
        """
        with self.store.query_gate.ingesting():
            return self._export_protobuf(body)

    def _export_protobuf(self, body: bytes) -> ExportTraceServiceResponse:
        if len(body) > self.max_request_bytes:
            self.count_too_large()
            raise PayloadTooLarge(
                f"request of {len(body)} bytes exceeds the {self.max_request_bytes} byte limit"
            )
        try:
            request = ExportTraceServiceRequest.FromString(body)
        except (DecodeError, RecursionError) as exc:
            self.count_invalid()
            raise InvalidPayload(f"request is not a protobuf ExportTraceServiceRequest: {exc}") from exc
        return self.export(request, body)

    def export(
        self, request: ExportTraceServiceRequest, body: bytes | None = None
    ) -> ExportTraceServiceResponse:
        """Store a decoded request's valid spans; see :meth:`export_protobuf` for the errors.

        ``body`` is the request's protobuf encoding when the caller has it (the spans are stored as they
        appear in it; the journal and request listeners get it).
        """
        data = body if body is not None else request.SerializeToString()
        spans, rejected, facts = self._valid_spans(request, data)
        try:
            if spans:
                self.store.add(spans, facts=facts)
                poke(self._index)
            if spans and self._journal is not None:
                self._journal(data)
        except (PayloadTooLarge, Unavailable) as exc:
            with self._lock:
                self._counters.requests += 1
                self._counters.spans_refused += len(spans) + rejected
                if isinstance(exc, StoreFull):
                    self._counters.requests_store_full += 1
                elif isinstance(exc, Unavailable):
                    self._counters.requests_unavailable += 1
                else:
                    self._counters.requests_too_large += 1
            raise
        with self._lock:
            self._counters.requests += 1
            self._counters.spans_accepted += len(spans)
            self._counters.spans_rejected += rejected
        for listener in self._listeners:
            listener(spans)
        if self._request_listeners:
            for request_listener in self._request_listeners:
                request_listener(data)
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = (
                f"{rejected} span(s) rejected: trace_id must be 16 and span_id 8 non-zero bytes"
            )
        return response

    def replay(self, body: bytes) -> None:
        """Store a request from the journal at start: no listeners, no counters, and the store makes room
        by evicting its oldest traces whatever their age. Raises ``DecodeError`` for a corrupt record."""
        spans, _, facts = self._valid_spans(ExportTraceServiceRequest.FromString(body), body)
        if spans:
            self.store.add(spans, replaying=True, facts=facts)
            poke(self._index)

    def _valid_spans(
        self, request: ExportTraceServiceRequest, body: bytes
    ) -> tuple[list[tuple[bytes, SpanOrigin, bytes]], int, IngestFacts | None]:
        """The spans to store (each as it was sent), how many were rejected, and what they give the trace
        index (``None`` when not worked out: a request with invalid spans)."""
        groups = scope_groups(body)
        if groups is not None:
            origins = [self._origin(*group.origin) for group in groups]
            spans = stored_triples(groups, origins)
            tags = self._facts.of(zip(groups, origins, strict=True))
            rows = self._rows.of(groups, origins, lambda: _scopes_with_spans(request))
            return spans, 0, IngestFacts(tags, rows)
        return (*self._checked_spans(request), None)

    def _checked_spans(
        self, request: ExportTraceServiceRequest
    ) -> tuple[list[tuple[bytes, SpanOrigin, bytes]], int]:
        """The slow way, span by span: the valid spans (serialized again) and how many were rejected."""
        spans: list[tuple[bytes, SpanOrigin, bytes]] = []
        rejected = 0
        for resource_spans in request.resource_spans:
            resource = resource_spans.resource.SerializeToString()
            for scope_spans in resource_spans.scope_spans:
                origin = self._origin(
                    resource,
                    resource_spans.schema_url,
                    scope_spans.scope.SerializeToString(),
                    scope_spans.schema_url,
                )
                for span in scope_spans.spans:
                    trace_id = span.trace_id
                    span_id = span.span_id
                    if (
                        len(trace_id) != 16
                        or len(span_id) != 8
                        or trace_id == _ZERO_TRACE_ID
                        or span_id == _ZERO_SPAN_ID
                    ):
                        rejected += 1
                        continue
                    spans.append((trace_id, origin, span.SerializeToString()))
        return spans, rejected

    def _origin(
        self, resource: bytes, resource_schema_url: str, scope: bytes, scope_schema_url: str
    ) -> SpanOrigin:
        key = (resource, resource_schema_url, scope, scope_schema_url)
        origin = self._origins.get(key)
        if origin is None:
            origin = SpanOrigin(*key)
            self._origins[key] = origin
        return origin


def _scopes_with_spans(request: ExportTraceServiceRequest) -> list[Any]:
    """The request's ``ScopeSpans`` that hold spans, in order (as ``scope_groups`` lists them)."""
    return [scope for resource in request.resource_spans for scope in resource.scope_spans if scope.spans]
