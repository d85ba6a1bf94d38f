"""The client and server sides of service-graph edges, read from stored spans a batch at once.

:func:`edge_sides` reads a batch of serialized spans with the span scanner (:mod:`._span_scan`): one
numpy pass gives every span's kind, ids, times and status, and only CLIENT, PRODUCER, SERVER and
CONSUMER spans become a :class:`Side`. A span's attributes are parsed only if the batch's bytes hold
one of the names the pairing rules read (``peer.service``, ``db.*``...) within that span. A batch the
scanner cannot read is parsed span by span with protobuf, to the same sides. Pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus

from hoptrace.harness.backend._span_scan import scan_spans
from hoptrace.harness.backend._store import SpanOrigin

EDGE_ATTRIBUTES = frozenset(
    {"peer.service", "db.name", "db.system", "server.address", "network.peer.address", "network.peer.port"}
)
"""The span attributes the pairing rules read."""
_MARKERS = (b"peer.service", b"db.", b"server.address", b"network.peer.")
"""Bytes that each name in :data:`EDGE_ATTRIBUTES` contains: a span without any has none of them."""
_CLIENT_KINDS = (PbSpan.SPAN_KIND_CLIENT, PbSpan.SPAN_KIND_PRODUCER)
_SERVER_KINDS = (PbSpan.SPAN_KIND_SERVER, PbSpan.SPAN_KIND_CONSUMER)
_MESSAGING_KINDS = (PbSpan.SPAN_KIND_PRODUCER, PbSpan.SPAN_KIND_CONSUMER)
_TRACE_ID_BYTES = np.arange(16, dtype=np.int64)
_SPAN_ID_BYTES = np.arange(8, dtype=np.int64)


class Side(NamedTuple):
    """One span's side of an edge."""

    key: bytes
    """The trace id, then the span id (a client's) or the parent span id (a server's)."""
    is_client: bool
    messaging: bool
    origin: SpanOrigin
    start: int
    end: int
    failed: bool
    root: bool
    """A server span without a parent."""
    attributes: dict[str, AnyValue]
    """Of a client, the last value of each name in :data:`EDGE_ATTRIBUTES` it has; of a server, the
    first ``peer.service`` value if it has one."""


def edge_sides(spans: Sequence[bytes], origins: Sequence[SpanOrigin]) -> list[Side]:
    """The sides of the client and server spans among serialized ``spans`` (each sent with the origin at
    the same position), in order."""
    scan = scan_spans(spans)
    if scan is None:
        return parsed_sides(spans, origins)
    kind = scan.kind
    rows = np.flatnonzero(np.isin(kind, (*_CLIENT_KINDS, *_SERVER_KINDS)))
    if not len(rows):
        return []
    kinds = kind[rows]
    client = np.isin(kinds, _CLIENT_KINDS)
    id_at = np.where(client, scan.span_id_at[rows], scan.parent_at[rows])
    id_length = np.where(client, scan.span_id_length[rows], scan.parent_length[rows])
    if (scan.trace_id_length[rows] != 16).any() or ((id_length != 8) & (client | (id_length != 0))).any():
        return parsed_sides(spans, origins)  # ids no SDK sends: the keys are built from the parsed bytes
    data = np.frombuffer(scan.data, dtype=np.uint8)
    trace_at = scan.trace_id_at[rows]
    key_bytes = np.concatenate(
        (data[trace_at[:, None] + _TRACE_ID_BYTES], data[id_at[:, None] + _SPAN_ID_BYTES]), axis=1
    )
    keys = np.ascontiguousarray(key_bytes).view(np.dtype("V24")).ravel().tolist()
    root = id_length == 0
    # A root's key is its trace id alone (as parsing gives it); the pairing never looks it up.
    keys = [key[:16] if is_root else key for key, is_root in zip(keys, root.tolist(), strict=True)]
    marked = _marked(scan.data, np.cumsum(scan.length))
    sides = []
    for row, key, is_client, kind_of, start, end, status, is_root in zip(
        rows.tolist(),
        keys,
        client.tolist(),
        kinds.tolist(),
        scan.start[rows].tolist(),
        scan.end[rows].tolist(),
        scan.status[rows].tolist(),
        root.tolist(),
        strict=True,
    ):
        attributes = _attributes(PbSpan.FromString(spans[row]), is_client) if row in marked else {}
        sides.append(
            Side(
                key,
                is_client,
                kind_of in _MESSAGING_KINDS,
                origins[row],
                start,
                end,
                status == PbStatus.STATUS_CODE_ERROR,
                is_root,
                attributes,
            )
        )
    return sides


def _marked(data: bytes, ends: np.ndarray) -> set[int]:
    """The spans (by position; each ends at ``ends``) whose bytes may hold a marker: those where one
    starts (a marker across two spans marks the first: more than needed, never less)."""
    found: list[int] = []
    for marker in _MARKERS:
        at = data.find(marker)
        while at >= 0:
            found.append(at)
            at = data.find(marker, at + 1)
    if not found:
        return set()
    return set(np.searchsorted(ends, np.asarray(found, dtype=np.int64), side="right").tolist())


def parsed_sides(spans: Sequence[bytes], origins: Sequence[SpanOrigin]) -> list[Side]:
    """What :func:`edge_sides` gives, read span by span with protobuf."""
    sides = []
    for data, origin in zip(spans, origins, strict=True):
        span = PbSpan.FromString(data)
        kind = span.kind
        is_client = kind in _CLIENT_KINDS
        if not is_client and kind not in _SERVER_KINDS:
            continue
        marked = any(marker in data for marker in _MARKERS)
        sides.append(
            Side(
                span.trace_id + (span.span_id if is_client else span.parent_span_id),
                is_client,
                kind in _MESSAGING_KINDS,
                origin,
                span.start_time_unix_nano,
                span.end_time_unix_nano,
                span.status.code == PbStatus.STATUS_CODE_ERROR,
                not is_client and not span.parent_span_id,
                _attributes(span, is_client) if marked else {},
            )
        )
    return sides


def _attributes(span: PbSpan, is_client: bool) -> dict[str, AnyValue]:
    if is_client:
        return {kv.key: kv.value for kv in span.attributes if kv.key in EDGE_ATTRIBUTES}
    peer = next((kv.value for kv in span.attributes if kv.key == "peer.service"), None)
    return {} if peer is None else {"peer.service": peer}
