"""RED series shared by several processes through a directory: exact sums, exemplars, nothing lost when a
process dies. The processes are real (``os.fork``), as uvicorn and gunicorn workers are."""

from __future__ import annotations

import os
import signal
import warnings
from pathlib import Path

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

from hoptrace.processors import RedMetricsSpanProcessor, SeriesSnapshot, red_metrics_data
from tests.processors.test_red import MS, _span, _tracer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="worker processes are forked here")


def _counts(red: RedMetricsSpanProcessor) -> dict[str, int]:
    return {series.labels.get("span_name", "<overflow>"): series.count for series in red.snapshot()}


def _forked(work: int, name: str, tracer: Tracer, *, then_die: bool) -> int:
    """Fork a worker that records ``work`` spans named ``name``, tells the parent, then exits or waits to be
    killed. Returns its pid once it has recorded."""
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python >= 3.12 warns on fork with threads
        pid = os.fork()
    if pid == 0:
        try:
            for _ in range(work):
                _span(tracer, name, 3 * MS)
            os.write(write, b"x")
            if then_die:
                signal.pause()  # until SIGKILL: no exit handler, no flush
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as done:
        if done.read(1) != b"x":  # the worker failed: never leave it behind
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"worker {pid} did not record its spans")
    return pid


def test_processes_sharing_a_directory_are_summed_exactly(tmp_path: Path) -> None:
    red = RedMetricsSpanProcessor()
    tracer = _tracer(red)
    _span(tracer, "GET /orders/{id}", 1 * MS)  # before sharing: moves to the shared file
    red.share_in(str(tmp_path))
    assert red.shared_directory == str(tmp_path)
    children = [_forked(n, "GET /orders/{id}", tracer, then_die=False) for n in (2, 3)]
    for pid in children:
        assert os.waitpid(pid, 0)[1] == 0
    _span(tracer, "GET /health", 1 * MS)
    assert _counts(red) == {"GET /orders/{id}": 6, "GET /health": 1}
    assert len(list(tmp_path.glob("*.red"))) == 3  # one file per process


def test_a_killed_worker_loses_no_count_it_recorded_and_exemplars_are_shared(tmp_path: Path) -> None:
    server = RedMetricsSpanProcessor()
    server.share_in(str(tmp_path))
    tracer = _tracer(server)
    pid = _forked(4, "process orders", tracer, then_die=True)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    (series,) = server.snapshot()
    assert series.count == 4
    assert series.sum == pytest.approx(4 * 0.003)
    bucket = 1  # 3 ms is in the second bucket (2 ms < d <= 4 ms)
    assert series.bucket_counts[bucket] == 4
    exemplar = series.exemplars[bucket]
    assert exemplar is not None and exemplar.value == pytest.approx(0.003)
    assert len(exemplar.trace_id) == 32 and int(exemplar.trace_id, 16) != 0


def test_another_processor_reading_the_directory_sees_the_same_sum(tmp_path: Path) -> None:
    writer = RedMetricsSpanProcessor()
    writer.share_in(str(tmp_path))
    tracer = _tracer(writer)
    for _ in range(5):
        _span(tracer, "publish orders", 1 * MS)
    reader = RedMetricsSpanProcessor()
    reader.share_in(str(tmp_path))  # e.g. a restarted server process
    assert _counts(reader) == {"publish orders": 5}
    assert _exemplar_trace_ids(reader.snapshot()) == _exemplar_trace_ids(writer.snapshot())


def _exemplar_trace_ids(series: list[SeriesSnapshot]) -> set[str]:
    return {e.trace_id for one in series for e in one.exemplars if e is not None}


def test_failed_and_overflowed_spans_are_summed_too(tmp_path: Path) -> None:
    red = RedMetricsSpanProcessor(max_series=2)
    red.share_in(str(tmp_path))
    tracer = _tracer(red)
    for name in ("a", "b", "c"):
        _span(tracer, name, 1 * MS)
    unended = TracerProvider().get_tracer("t").start_span("never ended", context=Context())
    red.on_end(unended)  # type: ignore[arg-type]  # no end time: fails, counted
    assert (red.overflowed_spans, red.failed_spans) == (2, 1)


def test_a_damaged_file_is_skipped_and_the_rest_still_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    red = RedMetricsSpanProcessor()
    red.share_in(str(tmp_path))
    _span(_tracer(red), "work", 1 * MS)
    (tmp_path / "junk.red").write_bytes(b"not a series file" * 8)
    assert _counts(red) == {"work": 1}
    assert "skipped RED metrics file" in caplog.text


def test_sharing_in_a_directory_that_cannot_be_written_raises(tmp_path: Path) -> None:
    red = RedMetricsSpanProcessor()
    with pytest.raises(OSError):
        red.share_in(str(tmp_path / "missing"))
    assert red.shared_directory is None


def test_otlp_export_sends_only_this_process_series_never_the_shared_sum(tmp_path: Path) -> None:
    red = RedMetricsSpanProcessor()
    red.share_in(str(tmp_path))
    tracer = _tracer(red)
    pid = _forked(3, "GET /orders/{id}", tracer, then_die=False)
    assert os.waitpid(pid, 0)[1] == 0
    _span(tracer, "GET /orders/{id}", 1 * MS)
    assert _counts(red) == {"GET /orders/{id}": 4}  # /metrics: the sum
    assert [one.count for one in red.local_snapshot()] == [1]
    data = red_metrics_data(red, Resource.create({"service.name": "api"}), 0)
    (calls, _) = data.resource_metrics[0].scope_metrics[0].metrics
    assert [point.value for point in calls.data.data_points] == [1]  # type: ignore[union-attr]
