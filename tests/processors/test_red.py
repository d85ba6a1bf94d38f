"""RedMetricsSpanProcessor's aggregation, checked against hand-computed values."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import warnings

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from hoptrace.processors import (
    LATENCY_BUCKETS,
    RedMetricsSpanProcessor,
    SeriesSnapshot,
    TenantSpanProcessor,
    bounded_span_name,
    fold_id_parts,
    invalid_tenants,
)
from tests.processors.conftest import tenant_baggage

MS = 1_000_000  # nanoseconds


def _tracer(red: RedMetricsSpanProcessor, service: str | None = "api") -> Tracer:
    resource = Resource.create({"service.name": service}) if service else Resource.get_empty()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(TenantSpanProcessor())
    provider.add_span_processor(red)
    return provider.get_tracer("test")


def _span(
    tracer: Tracer,
    name: str,
    duration_ns: int,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, object] | None = None,
    status: StatusCode | None = None,
) -> None:
    span = tracer.start_span(name, kind=kind, start_time=1_000 * MS, context=Context())
    for key, value in (attributes or {}).items():
        span.set_attribute(key, value)  # type: ignore[arg-type]
    if status is not None:
        span.set_status(Status(status))
    span.end(end_time=1_000 * MS + duration_ns)


def _by_name(red: RedMetricsSpanProcessor) -> dict[str, SeriesSnapshot]:
    return {series.labels.get("span_name", "<overflow>"): series for series in red.snapshot()}


def test_latency_buckets_are_tempos_defaults() -> None:
    assert LATENCY_BUCKETS[0] == 0.002
    assert LATENCY_BUCKETS[-1] == 16.384
    assert len(LATENCY_BUCKETS) == 14
    assert all(b == a * 2 for a, b in itertools.pairwise(LATENCY_BUCKETS))


def test_durations_fall_in_cumulative_buckets_with_exact_count_and_sum() -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    for duration in (1 * MS, 2 * MS, 3 * MS, 100 * MS, 20_000 * MS):
        _span(tracer, "work", duration)

    (series,) = red.snapshot()
    assert series.count == 5
    assert series.sum == pytest.approx(0.001 + 0.002 + 0.003 + 0.1 + 20.0, abs=1e-12)
    # le=0.002 holds 1 ms and exactly 2 ms (upper bounds are inclusive); 3 ms in le=0.004;
    # 100 ms in le=0.128; 20 s only in +Inf.
    assert series.bucket_counts == (2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5)
    assert dict(series.labels) == {
        "service": "api",
        "span_name": "work",
        "span_kind": "SPAN_KIND_INTERNAL",
        "status_code": "STATUS_CODE_UNSET",
        "tenant": "",
    }


def test_labels_follow_kind_status_and_server_5xx_counts_as_error() -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    _span(tracer, "GET /a", MS, SpanKind.SERVER, {"http.response.status_code": 503})
    _span(tracer, "GET /b", MS, SpanKind.SERVER, {"http.status_code": 500})  # legacy semconv
    _span(tracer, "GET /c", MS, SpanKind.SERVER, {"http.response.status_code": 404})
    _span(tracer, "GET /d", MS, SpanKind.CLIENT, {"http.response.status_code": 502})
    _span(tracer, "GET /e", MS, SpanKind.SERVER, {"http.response.status_code": 500}, StatusCode.OK)
    _span(tracer, "GET /f", MS, SpanKind.SERVER, {"http.response.status_code": "502"})
    _span(tracer, "GET /g", MS, SpanKind.SERVER, {"http.response.status_code": True})  # not a status
    _span(tracer, "GET /h", MS, SpanKind.SERVER, {"http.response.status_code": 599})
    _span(tracer, "GET /i", MS, SpanKind.SERVER, {"http.response.status_code": 600})
    _span(tracer, "orders publish", MS, SpanKind.PRODUCER, status=StatusCode.ERROR)
    _span(tracer, "orders process", MS, SpanKind.CONSUMER)

    got = {name: (s.labels["span_kind"], s.labels["status_code"]) for name, s in _by_name(red).items()}
    assert got == {
        "GET /a": ("SPAN_KIND_SERVER", "STATUS_CODE_ERROR"),
        "GET /b": ("SPAN_KIND_SERVER", "STATUS_CODE_ERROR"),
        "GET /c": ("SPAN_KIND_SERVER", "STATUS_CODE_UNSET"),
        "GET /d": ("SPAN_KIND_CLIENT", "STATUS_CODE_UNSET"),  # client status is the instrumentation's call
        "GET /e": ("SPAN_KIND_SERVER", "STATUS_CODE_OK"),  # an explicit status wins
        "GET /f": ("SPAN_KIND_SERVER", "STATUS_CODE_ERROR"),
        "GET /g": ("SPAN_KIND_SERVER", "STATUS_CODE_UNSET"),
        "GET /h": ("SPAN_KIND_SERVER", "STATUS_CODE_ERROR"),
        "GET /i": ("SPAN_KIND_SERVER", "STATUS_CODE_UNSET"),
        "orders publish": ("SPAN_KIND_PRODUCER", "STATUS_CODE_ERROR"),
        "orders process": ("SPAN_KIND_CONSUMER", "STATUS_CODE_UNSET"),
    }


def test_tenant_label_comes_from_baggage_per_tenant_series() -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    with tenant_baggage("acme"):
        for _ in range(3):
            with tracer.start_as_current_span("op"):
                pass
    with tenant_baggage("globex"), tracer.start_as_current_span("op"):
        pass
    with tracer.start_as_current_span("op"):
        pass

    counts = {s.labels["tenant"]: s.count for s in red.snapshot()}
    assert counts == {"acme": 3, "globex": 1, "": 1}


def test_non_string_or_invalid_tenant_attribute_is_counted_and_measured_without_tenant() -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    before = invalid_tenants.count
    _span(tracer, "op", MS, attributes={"tenant.id": 42})
    _span(tracer, "op", MS, attributes={"tenant.id": "bad tenant!"})

    (series,) = red.snapshot()
    assert (series.labels["tenant"], series.count) == ("", 2)
    assert invalid_tenants.count == before + 2


def test_missing_service_name_is_unknown_service() -> None:
    red = RedMetricsSpanProcessor()
    _span(_tracer(red, service=None), "op", MS)
    (series,) = red.snapshot()
    assert series.labels["service"] == "unknown_service"


def test_series_past_the_limit_go_to_one_overflow_series_and_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    red = RedMetricsSpanProcessor(max_series=3)  # two regular series + the overflow series
    tracer = _tracer(red)
    with caplog.at_level(logging.WARNING):
        for name in ("a", "a", "b", "c", "d", "c"):
            _span(tracer, name, MS)

    series = red.snapshot()
    assert len(series) == 3
    by_name = _by_name(red)
    assert {name: s.count for name, s in by_name.items()} == {"a": 2, "b": 1, "<overflow>": 3}
    assert dict(by_name["<overflow>"].labels) == {"otel_metric_overflow": "true"}
    assert red.overflowed_spans == 3
    assert sum(s.count for s in series) == 6  # nothing dropped
    assert len([r for r in caplog.records if "otel_metric_overflow" in r.getMessage()]) == 1


def test_max_series_below_two_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_series"):
        RedMetricsSpanProcessor(max_series=1)


def test_exemplar_is_the_ended_span_not_the_current_one() -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    with tracer.start_as_current_span("outer") as outer:
        inner = tracer.start_span("inner", start_time=0, context=Context())  # a new root, other trace
        inner.end(end_time=5 * MS)

    inner_series = _by_name(red)["inner"]
    exemplar = inner_series.exemplars[2]  # 5 ms: le=0.008
    assert exemplar is not None
    assert exemplar.trace_id == format(inner.get_span_context().trace_id, "032x")
    assert exemplar.span_id == format(inner.get_span_context().span_id, "016x")
    assert exemplar.trace_id != format(outer.get_span_context().trace_id, "032x")
    assert exemplar.value == 0.005
    assert [i for i, e in enumerate(inner_series.exemplars) if e is not None] == [2]


def test_each_bucket_keeps_its_most_recent_exemplar() -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    spans = []
    for duration in (1 * MS, 1 * MS, 3 * MS):
        span = tracer.start_span("op", start_time=0, context=Context())
        span.end(end_time=duration)
        spans.append(span)
    (series,) = red.snapshot()
    first_bucket, second_bucket = series.exemplars[0], series.exemplars[1]
    assert first_bucket is not None and second_bucket is not None
    assert first_bucket.span_id == format(spans[1].get_span_context().span_id, "016x")
    assert second_bucket.span_id == format(spans[2].get_span_context().span_id, "016x")


def test_span_without_times_is_counted_as_failed_not_raised() -> None:
    red = RedMetricsSpanProcessor()
    red.on_end(ReadableSpan(name="never-ended", start_time=None, end_time=None))
    red.on_end(ReadableSpan(name="odd", start_time=0, end_time=MS, attributes={"tenant.id": ["a", "b"]}))
    assert red.failed_spans == 1
    assert [(s.labels["span_name"], s.labels["tenant"], s.count) for s in red.snapshot()] == [("odd", "", 1)]


def test_raw_urls_with_ids_do_not_become_label_values() -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    for order in ("12345", "67890", "0b6e8f2a-33c1-4f59-9a0e-5d3e1f2a9b7c"):
        _span(tracer, f"GET /orders/{order}?token=abc", MS, SpanKind.SERVER)
    assert {name: s.count for name, s in _by_name(red).items()} == {"GET /orders/{id}": 3}


def test_more_raw_names_than_the_key_cache_holds_are_each_measured_in_their_series() -> None:
    red = RedMetricsSpanProcessor(max_series=3)  # caches 12 raw combinations, then starts again
    tracer = _tracer(red)
    for order in range(100):
        _span(tracer, f"GET /orders/{order}", MS, SpanKind.SERVER)
        _span(tracer, "GET /health", 3 * MS, SpanKind.SERVER)
    by_name = _by_name(red)
    assert {name: s.count for name, s in by_name.items()} == {"GET /orders/{id}": 100, "GET /health": 100}
    assert by_name["GET /health"].sum == pytest.approx(100 * 0.003)
    assert red.overflowed_spans == 0


def test_kind_and_status_select_the_series_of_a_name_and_tenant() -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    for kind, status in itertools.product(SpanKind, (None, StatusCode.OK, StatusCode.ERROR)):
        for _ in range(1 + kind.value):
            _span(tracer, "op", MS, kind, status=status)
    counts = {(s.labels["span_kind"], s.labels["status_code"]): s.count for s in red.snapshot()}
    assert counts == {
        (f"SPAN_KIND_{kind.name}", f"STATUS_CODE_{(status or StatusCode.UNSET).name}"): 1 + kind.value
        for kind, status in itertools.product(SpanKind, (None, StatusCode.OK, StatusCode.ERROR))
    }


def test_sequence_tenant_attribute_is_counted_once_per_raw_value_and_measured_without_tenant() -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    before = invalid_tenants.count
    for _ in range(3):
        _span(tracer, "op", MS, attributes={"tenant.id": ["acme", "globex"]})
    _span(tracer, "op", MS, attributes={"tenant.id": "acme"})
    counts = {s.labels["tenant"]: s.count for s in red.snapshot()}
    assert counts == {"": 3, "acme": 1}
    assert invalid_tenants.count == before + 1  # validated when its series is resolved, then cached


@pytest.mark.parametrize(
    ("raw", "bounded"),
    [
        ("GET /orders/{order_id}", "GET /orders/{order_id}"),
        ("GET /orders/12345/items/7", "GET /orders/{id}/items/{id}"),
        ("GET https://shop.example/v1/users/5f2b9c0e41aa?page=2", "GET https://shop.example/v1/users/{id}"),
        ("GET /files/aGVsbG8gd29ybGQgdGhpcyBpczEy", "GET /files/{id}"),
        ("GET /v1/status", "GET /v1/status"),
        ("orders publish", "orders publish"),
        ("x" * 300, "x" * 128),
    ],
)
def test_bounded_span_name(raw: str, bounded: str) -> None:
    assert bounded_span_name(raw) == bounded


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("orders", "orders"),
        ("orders.created", "orders.created"),
        ("amq_29567f5c", "amq_{id}"),
        ("rpc-client-42.replies", "rpc-client-{id}.replies"),
        ("replies-0b6e8f2a-33c1-4f59-9a0e-5d3e1f2a9b7c", "replies-{id}"),
        ("amq.gen-L4U5xYz9QwErTy12AbCdEf", "amq.gen-{id}"),
        ("worker:host7:5f2b9c0e41aa", "worker:host7:{id}"),
        ("q" * 300, "q" * 128),
    ],
)
def test_fold_id_parts_uses_the_url_segment_rules_on_each_part_of_a_name(name: str, folded: str) -> None:
    assert fold_id_parts(name) == folded


def test_scrape_during_heavy_recording_is_consistent() -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    threads_done = threading.Event()
    per_thread, threads = 2000, 4

    def record(index: int) -> None:
        for n in range(per_thread):
            _span(tracer, f"op{index % 2}", (n % 40) * MS)

    workers = [threading.Thread(target=record, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    while not threads_done.is_set():
        for series in red.snapshot():
            assert series.count == series.bucket_counts[-1]
            assert list(series.bucket_counts) == sorted(series.bucket_counts)
        if not any(worker.is_alive() for worker in workers):
            threads_done.set()
    for worker in workers:
        worker.join()
    assert {name: s.count for name, s in _by_name(red).items()} == {"op0": 4000, "op1": 4000}


def test_one_processor_shared_by_two_providers_labels_each_service() -> None:
    red = RedMetricsSpanProcessor()
    api, worker = _tracer(red, "api"), _tracer(red, "worker")
    for tracer in (api, worker, api):
        _span(tracer, "op", MS)
    assert {s.labels["service"]: s.count for s in red.snapshot()} == {"api": 2, "worker": 1}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_can_record_even_if_the_lock_was_held_at_fork() -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    read, write = os.pipe()
    with red._lock, warnings.catch_warnings():  # as if another thread held the lock at fork time
        warnings.simplefilter("ignore", DeprecationWarning)  # Python >= 3.12 warns on fork with threads
        pid = os.fork()
        if pid == 0:  # the child: must not deadlock on the inherited, held lock
            _span(tracer, "in-child", MS)
            os.write(write, str(sum(s.count for s in red.snapshot())).encode())
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as result:
        assert result.read() == "1"
    assert os.waitpid(pid, 0)[1] == 0


def test_huge_span_names_and_attribute_values_are_bounded_not_raised() -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    _span(
        tracer,
        "GET /" + "a" * 1_000_000,
        MS,
        attributes={"url.full": "x" * 1_000_000, "tenant.id": "t" * 500},
    )
    (series,) = red.snapshot()
    assert len(series.labels["span_name"]) == 128
    assert series.labels["tenant"] == ""  # longer than 64 characters: invalid, counted


def test_every_read_measures_the_spans_still_queued_and_counts_each_once() -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    for n in range(130):  # two batches of 64, then two spans still queued
        _span(tracer, "op", (1 + n % 3) * MS)
    (series,) = red.snapshot()
    assert (series.count, series.bucket_counts[:2]) == (130, (87, 130))  # 1 and 2 ms, then 3 ms
    assert [e.value if e else None for e in series.exemplars[:3]] == [0.001, 0.003, None]  # the latest
    _span(tracer, "op", 40 * MS)
    assert red.force_flush()
    assert [s.count for s in red.snapshot()] == [131]


def test_a_span_ended_by_a_log_handler_while_spans_are_measured_is_measured_too() -> None:
    red = RedMetricsSpanProcessor(max_series=2)  # the second name overflows: a warning while measuring
    tracer = _tracer(red)

    class Tracing(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            for _ in range(64):  # a batch's worth: on_end tries to measure, inside the measuring
                _span(tracer, "logged", MS)

    handler = Tracing(level=logging.WARNING)
    logger = logging.getLogger("hoptrace.processors._red")
    logger.addHandler(handler)
    try:
        recording = threading.Thread(
            target=lambda: [_span(tracer, f"op{n % 2}", MS) for n in range(64)], daemon=True
        )
        recording.start()
        recording.join(timeout=10)
        assert not recording.is_alive(), "measuring deadlocked on a span ended while measuring"
    finally:
        logger.removeHandler(handler)
    counts = {s.labels.get("span_name", "<overflow>"): s.count for s in red.snapshot()}
    assert counts == {"op0": 32, "<overflow>": 32 + 64}
