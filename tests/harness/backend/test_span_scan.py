"""The span scanner reads what protobuf reads, for every field the trace index and the service graph use,
or declines; and an index that reads traces with it holds what one reading spans one by one holds."""

from __future__ import annotations

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from hoptrace.harness.backend import _trace_index
from hoptrace.harness.backend._edge_sides import edge_sides, parsed_sides
from hoptrace.harness.backend._lean_span import LeanAttributes, LeanSpan
from hoptrace.harness.backend._search import SearchRequest, search
from hoptrace.harness.backend._span_scan import scan_spans
from hoptrace.harness.backend._store import StoreLimits, TraceStore
from hoptrace.harness.backend._tags import tag_names, tag_values
from hoptrace.harness.backend._trace_index import index_for
from hoptrace.harness.traceql import Attribute, Intrinsic, parse_traceql

from .test_trace_index import ORIGINS, T0


def _varied_spans() -> list[bytes]:
    """Spans with what exporters send and what they rarely do: flags (a two-byte tag), trace state,
    long names and values (two-byte lengths), events, links, arrays, kvlists, statuses with messages."""
    spans = []
    for n in range(1, 41):
        span = PbSpan(
            trace_id=(n % 7 + 1).to_bytes(16, "big"),
            span_id=(n * 977).to_bytes(8, "big"),
            parent_span_id=(n - 1).to_bytes(8, "big") if n % 3 else b"",
            trace_state="k=v" if n % 4 == 0 else "",
            name=("op é " * (n % 5 * 30)) + str(n % 6),
            kind=n % 6,
            start_time_unix_nano=T0 + n * 1_000_003,
            end_time_unix_nano=T0 + n * 1_000_003 + (n % 9) * 977 if n % 8 else 0,
            status=Status(code=n % 3, message="bad" if n % 5 == 0 else ""),
            flags=0x101 if n % 2 else 0,
            dropped_attributes_count=n % 4,
        )
        span.attributes.add(key="route", value=AnyValue(string_value=f"/r{n % 4}"))
        if n % 2:
            span.attributes.add(key="big", value=AnyValue(string_value="x" * (100 + n * 40)))
        if n % 5 == 0:
            values = ArrayValue(values=[AnyValue(int_value=n), AnyValue(double_value=0.5)])
            span.attributes.add(key="arr", value=AnyValue(array_value=values))
            nested = KeyValueList(values=[KeyValue(key="a", value=AnyValue(bool_value=True))])
            span.attributes.add(key="kv", value=AnyValue(kvlist_value=nested))
        if n % 6 == 0:
            event = span.events.add(name=f"event {n % 4}", time_unix_nano=T0)
            event.attributes.add(key="e", value=AnyValue(int_value=n % 3))
        if n % 7 == 0:
            link = span.links.add(trace_id=bytes(range(16)), span_id=bytes(range(8)))
            link.attributes.add(key="l", value=AnyValue(string_value="x"))
        spans.append(span.SerializeToString())
    return spans


def test_the_scanner_reads_what_protobuf_reads() -> None:
    spans = _varied_spans()
    scan = scan_spans(spans)
    assert scan is not None
    lean = [LeanSpan.FromString(span) for span in spans]

    assert scan.trace_ids() == [PbSpan.FromString(span).trace_id for span in spans]
    assert scan.span_id.tolist() == [int.from_bytes(one.span_id, "big") for one in lean]
    assert scan.has_parent.tolist() == [bool(one.parent_span_id) for one in lean]
    assert scan.slices(scan.span_id_at, scan.span_id_at + scan.span_id_length) == [
        one.span_id for one in lean
    ]
    assert scan.slices(scan.parent_at, scan.parent_at + scan.parent_length) == [
        one.parent_span_id for one in lean
    ]
    assert [name.decode() for name in scan.names()] == [one.name for one in lean]
    assert scan.kind.tolist() == [one.kind for one in lean]
    assert scan.start.tolist() == [one.start_time_unix_nano for one in lean]
    assert scan.end.tolist() == [one.end_time_unix_nano for one in lean]
    assert scan.status.tolist() == [one.status.code for one in lean]
    runs = scan.attribute_runs()
    assert [list(LeanAttributes.FromString(run).attributes) for run in runs] == [
        list(one.attributes) for one in lean
    ]
    assert scan.has_others.tolist() == [bool(one.events or one.links) for one in lean]
    assert scan.length.tolist() == [len(span) for span in spans]


@pytest.mark.parametrize(
    "span",
    [
        PbSpan(name="a", kind=-1).SerializeToString(),  # an enum value no SDK sends
        PbSpan(name="a").SerializeToString() + PbSpan(name="b").SerializeToString(),  # a field twice
        PbSpan(span_id=bytes(8)).SerializeToString() + b"\x0b\x0c",  # a group
    ],
)
def test_the_scanner_declines_what_it_does_not_read(span: bytes) -> None:
    assert scan_spans([PbSpan(name="ok").SerializeToString(), span]) is None


def _everything(store: TraceStore) -> object:
    """What queries see of the index: matches of several searches, tags and values, span columns."""
    index = index_for(store)
    index.refresh()
    found = {}
    for query in (
        '{ name = "op é op é 1" }',
        '{ span.route = "/r1" }',
        "{ status = error }",
        '{ resource.service.name = "db" && kind = server }',
        "{ span.arr = 5 }",
        '{ event:name = "event 2" }',
        '{ link.l = "x" }',
        "{ }",
    ):
        document = search(store, SearchRequest(query=parse_traceql(query), limit=1000))
        found[query] = sorted(hit["traceID"] for hit in document["traces"])
    view = index.columns()
    assert view is not None
    rows = sorted(
        zip(
            view.start.tolist(),
            view.duration.tolist(),
            view.span_id.tolist(),
            [view.keys[key] for key in view.key.tolist()],
            [view.slot_trace[slot] for slot in view.slot.tolist()],
            strict=True,
        ),
        key=repr,
    )
    extents = sorted(tuple(row) for row in view.slot_extent.tolist())
    names = tag_names(store, None)
    fields = [Attribute(scope, key) for scope, key in (("span", "route"), ("span", "arr"), ("event", "e"))]
    values = [tag_values(store, field, None) for field in [*fields, Intrinsic("name")]]
    return found, rows, extents, names, values


@pytest.mark.parametrize("repeat_before_the_first_read", [False, True])
def test_an_index_reading_with_the_scanner_holds_what_reading_spans_one_by_one_holds(
    repeat_before_the_first_read: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = _varied_spans()

    def fill() -> TraceStore:
        store = TraceStore(StoreLimits(min_retention_seconds=0))
        origins = [ORIGINS["api"], ORIGINS["db"], ORIGINS["worker"]]
        store.add([(span[2:18], origins[n % 3], span) for n, span in enumerate(spans)])
        if not repeat_before_the_first_read:
            index_for(store).refresh()
        store.add([(spans[0][2:18], ORIGINS["api"], spans[0])])  # a repeat, as an exporter's retry sends it
        return store

    scanned = _everything(fill())
    monkeypatch.setattr(_trace_index, "scan_new_traces", lambda *_: None)
    one_by_one = _everything(fill())

    assert scanned == one_by_one


def test_edge_sides_read_with_the_scanner_are_those_read_span_by_span() -> None:
    spans = _varied_spans()
    for n, kind in enumerate([PbSpan.SPAN_KIND_CLIENT, PbSpan.SPAN_KIND_SERVER] * 3):
        span = PbSpan(trace_id=bytes(15) + b"\x01", span_id=(n + 1).to_bytes(8, "big"), kind=kind)
        span.parent_span_id = bytes(7) + b"\x09" if n % 3 else b""
        span.attributes.add(key=["peer.service", "db.system", "x.db.name"][n % 3]).value.string_value = "p"
        span.attributes.add(key="peer.service").value.string_value = "last"
        spans.append(span.SerializeToString())
    origins = [list(ORIGINS.values())[n % len(ORIGINS)] for n in range(len(spans))]

    assert scan_spans(spans) is not None  # the quick way, checked against the parsed one
    sides = edge_sides(spans, origins)

    assert sides == parsed_sides(spans, origins)
    assert len(sides) == sum(PbSpan.FromString(span).kind in (2, 3, 4, 5) for span in spans)
    assert {side.attributes["peer.service"].string_value for side in sides if side.attributes} == {
        "p",
        "last",
    }
