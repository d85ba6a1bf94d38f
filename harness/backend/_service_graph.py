"""Service-graph metrics derived from stored spans, with Tempo's names, labels and pairing rules.

As in Tempo's metrics-generator (modules/generator/processor/servicegraphs):

- CLIENT and PRODUCER spans are keyed by (trace id, span id), SERVER and CONSUMER spans by (trace id,
  parent span id); two spans with one key form an edge ``client -> server``.
- A producer/consumer pair gets ``connection_type="messaging_system"``. A client span with ``db.name``
  or ``db.system`` is a complete ``database`` edge at once, to ``peer.service``, ``server.address``,
  ``network.peer.address[:port]`` or ``db.name``, in that order.
- An edge fails if either side has status ERROR.
- An edge still unpaired after ``wait_seconds`` is counted in ``traces_service_graph_unpaired_spans_total``.
  Then, as Tempo does on expiry, a root server span becomes an edge from ``user``, and a client span
  with ``peer.service`` an edge to that peer (both ``connection_type="virtual_node"``). Unlike Tempo, a
  server span without a parent is known to be a root when it arrives, so its ``user`` edge is counted at
  once instead of after the wait: tests see it without waiting 10 s.

Spans are queued when stored (no decoding on the ingest path) and processed when metrics are collected,
or on the ingest thread once :data:`MAX_PENDING_SPANS` are queued; a batch at once, read with the span
scanner (:mod:`._edge_sides`). Thread safe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from hoptrace.harness._model import AttributeValue
from hoptrace.harness.backend._decode import decode_any_value
from hoptrace.harness.backend._edge_sides import Side, edge_sides
from hoptrace.harness.backend._store import SpanOrigin

LATENCY_BUCKETS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8)
"""Tempo's default service-graph histogram buckets, in seconds."""
MAX_PENDING_SPANS = 1_000_000
"""Spans queued for pairing before the ingest threads start pairing them themselves. The queue holds two
references per stored span (16 bytes), so bursts are absorbed and paired at the next scrape."""
MAX_OPEN_EDGES = 100_000
"""Tempo's ``max_items``: past it, new edges are dropped and counted in ``dropped_spans_total``."""

MAX_EDGE_SERIES = 1000
"""Distinct ``(client, server, connection_type)`` label sets; past it, edges are measured in the
:data:`OVERFLOW_EDGE` series (so 20k service names cost one series, not 460k exposition lines)."""

EdgeLabels = tuple[str, str, str]
"""``(client, server, connection_type)``."""
OVERFLOW_EDGE: EdgeLabels = ("__overflow__", "__overflow__", "overflow")

_DATABASE_KEYS = frozenset({"db.name", "db.system"})


@dataclass(slots=True)
class Histogram:
    """Cumulative-free bucket counts over :data:`LATENCY_BUCKETS` (the last slot is +Inf)."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        index = next((i for i, bound in enumerate(LATENCY_BUCKETS) if seconds <= bound), len(LATENCY_BUCKETS))
        self.counts[index] += 1
        self.total += seconds


@dataclass(slots=True)
class _Edge:
    created: float
    connection_type: str = ""
    client: str = ""
    server: str = ""
    client_seconds: float = 0.0
    server_seconds: float = 0.0
    client_end: int = 0
    server_start: int = 0
    failed: bool = False
    peer: str = ""
    root: bool = False


@dataclass(frozen=True, slots=True)
class ServiceGraphSnapshot:
    requests: dict[EdgeLabels, int]
    failed: dict[EdgeLabels, int]
    server_seconds: dict[EdgeLabels, Histogram]
    client_seconds: dict[EdgeLabels, Histogram]
    messaging_seconds: dict[EdgeLabels, Histogram]
    unpaired: dict[EdgeLabels, int]
    dropped_spans: int
    overflowed_edges: int
    """Edges measured in the :data:`OVERFLOW_EDGE` series."""


class ServiceGraph:
    """Pairs client and server spans into edges; see the module docstring for the rules."""

    def __init__(
        self,
        wait_seconds: float = 10.0,
        max_open_edges: int = MAX_OPEN_EDGES,
        max_edge_series: int = MAX_EDGE_SERIES,
    ) -> None:
        self._series: set[EdgeLabels] = set()
        self._max_edge_series = max_edge_series
        self._overflowed = 0
        self.wait_seconds = wait_seconds
        self.max_open_edges = max_open_edges
        self._lock = threading.Lock()
        """Guards the pairing's state; taken before :attr:`_queue_lock` when both are."""
        self._queue_lock = threading.Lock()
        self._pending: deque[tuple[list[bytes], list[SpanOrigin]]] = deque()
        self._pending_spans = 0
        self._edges: dict[bytes, _Edge] = {}
        """Open edges by key (see ``Side.key``)."""
        self._requests: dict[EdgeLabels, int] = {}
        self._failed: dict[EdgeLabels, int] = {}
        self._server_seconds: dict[EdgeLabels, Histogram] = {}
        self._client_seconds: dict[EdgeLabels, Histogram] = {}
        self._messaging_seconds: dict[EdgeLabels, Histogram] = {}
        self._unpaired: dict[EdgeLabels, int] = {}
        self._dropped = 0

    def add(self, spans: Sequence[tuple[bytes, SpanOrigin, bytes]]) -> None:
        """Queue stored spans (a :class:`Receiver` listener). Cheap unless the queue is full."""
        queued = ([data for _, _, data in spans], [origin for _, origin, _ in spans])
        with self._queue_lock:  # not the pairing's lock: a scrape pairing a burst does not stall ingest
            self._pending.append(queued)
            self._pending_spans += len(spans)
            full = self._pending_spans >= MAX_PENDING_SPANS
        if full:
            with self._lock:
                self._process_pending(len(spans))

    def snapshot(self) -> ServiceGraphSnapshot:
        """Process queued spans, expire old unpaired edges, and copy the metrics."""
        with self._lock:
            self._process_pending()
            self._expire(time.monotonic())
            return ServiceGraphSnapshot(
                dict(self._requests),
                dict(self._failed),
                {k: Histogram(list(v.counts), v.total) for k, v in self._server_seconds.items()},
                {k: Histogram(list(v.counts), v.total) for k, v in self._client_seconds.items()},
                {k: Histogram(list(v.counts), v.total) for k, v in self._messaging_seconds.items()},
                dict(self._unpaired),
                self._dropped,
                self._overflowed,
            )

    def _process_pending(self, at_least: int | None = None) -> None:
        """Pair queued spans: all of them, or the oldest batches holding ``at_least`` spans (so that
        past the bound each ingest call pairs as much as it adds, instead of one call stalling). Called
        with the pairing's lock held (so batches are paired in the order they were queued)."""
        pending: list[tuple[list[bytes], list[SpanOrigin]]] = []
        taken = 0
        with self._queue_lock:
            while self._pending and (at_least is None or taken < at_least):
                pending.append(self._pending.popleft())
                taken += len(pending[-1][0])
            self._pending_spans -= taken
        now = time.monotonic()
        for spans, origins in pending:
            for side in edge_sides(spans, origins):
                self._upsert(side, now)

    def _upsert(self, side: Side, now: float) -> None:
        resource_attributes = side.origin.resource_attributes
        service = resource_attributes.get("service.name")
        if not isinstance(service, str) or not service:
            return  # Tempo skips resources without a service name
        key = side.key
        edge = None if side.root else self._edges.get(key)  # a root is an edge of its own
        if edge is None:
            if len(self._edges) >= self.max_open_edges:
                self._dropped += 1
                return
            edge = _Edge(created=now)
            if not side.root:
                self._edges[key] = edge
        if side.messaging:
            edge.connection_type = "messaging_system"
        start, end = side.start, side.end
        seconds = max(0, end - start) / 1e9
        edge.failed = edge.failed or side.failed
        attributes = side.attributes
        if side.is_client:
            edge.client, edge.client_seconds, edge.client_end = service, seconds, end
            if attributes or _DATABASE_KEYS & resource_attributes.keys():
                self._peer_and_database(edge, attributes, resource_attributes, seconds)
        else:
            edge.server, edge.server_seconds, edge.server_start = service, seconds, start
            edge.root = side.root
            peer = attributes.get("peer.service")
            if peer is not None:
                edge.peer = str(decode_any_value(peer))
        if edge.client and edge.server:
            self._complete(self._edges.pop(key))
        elif edge.root:
            edge.client, edge.connection_type = "user", "virtual_node"
            self._complete(edge)

    @staticmethod
    def _peer_and_database(
        edge: _Edge,
        span_attrs: dict[str, AnyValue],
        resource_attrs: dict[str, AttributeValue],
        seconds: float,
    ) -> None:
        def find(key: str) -> str | None:
            if key in span_attrs:
                return str(decode_any_value(span_attrs[key]))
            value = resource_attrs.get(key)
            return None if value is None else str(value)

        peer = find("peer.service")
        if peer is not None:
            edge.peer = peer
        db_name = find("db.name")
        if db_name is None and find("db.system") is None:
            return
        edge.connection_type = "database"
        edge.server_seconds = seconds
        host, port = find("network.peer.address"), find("network.peer.port")
        address = f"{host}:{port}" if host and port else host
        edge.server = peer or find("server.address") or address or db_name or ""

    def _labels(self, edge: _Edge) -> EdgeLabels:
        labels = (edge.client, edge.server, edge.connection_type)
        if labels in self._series:
            return labels
        if len(self._series) < self._max_edge_series:
            self._series.add(labels)
            return labels
        self._overflowed += 1
        return OVERFLOW_EDGE

    def _complete(self, edge: _Edge) -> None:
        labels = self._labels(edge)
        self._requests[labels] = self._requests.get(labels, 0) + 1
        if edge.failed:
            self._failed[labels] = self._failed.get(labels, 0) + 1
        self._server_seconds.setdefault(labels, Histogram()).observe(edge.server_seconds)
        self._client_seconds.setdefault(labels, Histogram()).observe(edge.client_seconds)
        if edge.connection_type == "messaging_system" and edge.server_start > edge.client_end:
            self._messaging_seconds.setdefault(labels, Histogram()).observe(
                (edge.server_start - edge.client_end) / 1e9
            )

    def _expire(self, now: float) -> None:
        expired = [key for key, edge in self._edges.items() if now - edge.created >= self.wait_seconds]
        for key in expired:
            edge = self._edges.pop(key)
            labels = self._labels(edge)
            self._unpaired[labels] = self._unpaired.get(labels, 0) + 1
            if edge.client and not edge.server and edge.peer:
                edge.server, edge.connection_type = edge.peer, "virtual_node"
                self._complete(edge)
