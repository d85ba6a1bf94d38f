"""The span pipeline: the ONE function that builds every service's span processor chain, and its exporter.

Order matters and is documented in DESIGN.md: processors that decorate spans at start (tenant) come first,
the batching exporter comes last. The processors engineer adds RED metrics, redaction and the ``/metrics``
endpoint in :func:`build_span_processors`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from hoptrace.tracing._counters import export_failures
from hoptrace.tracing._otlp.exporter_logs import count_exporter_logs, last_exporter_message
from hoptrace.tracing._otlp.final_exports import EXIT_EXPORT_BUDGET_SECONDS, stop_retrying
from hoptrace.tracing._otlp.redacting import RedactingExporter
from hoptrace.tracing._processors import processor_chain, redactor_from_environment
from hoptrace.tracing._settings import Settings
from hoptrace.tracing._spans.hop import HopSpan

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter

logger = logging.getLogger("hoptrace.tracing")


def build_span_processors(settings: Settings, resource: Resource) -> list[SpanProcessor]:
    """Return the processors to add to the service's ``TracerProvider``, in order.

    Never blocks (the exporter connects lazily, from the batch worker thread). ``OTEL_BSP_*`` variables are
    honoured by ``BatchSpanProcessor`` itself. Tenant attribute, RED metrics (with the ``/metrics`` endpoint
    when ``HOPTRACE_METRICS_PORT`` is set, and OTLP metrics when ``HOPTRACE_METRICS_OTLP`` is true) and
    redaction are on by default; each has its ``HOPTRACE_*`` switch (see :mod:`hoptrace.tracing._processors`).
    Redaction masks each batch on the export thread, just before encoding
    (:mod:`hoptrace.tracing._otlp.redacting`).
    """
    count_exporter_logs()
    exporter = LazyOtlpExporter(settings)
    redactor = redactor_from_environment(os.environ)
    installed = processor_chain(
        CountingBatchSpanProcessor(exporter if redactor is None else RedactingExporter(exporter, redactor)),
        os.environ,
        resource=resource,
        metrics_exporter_factory=lambda: _otlp_metric_exporter(settings),
        redaction_in_export=True,
    )
    return [ExporterWarmUp(exporter), *installed.processors]


def _otlp_metric_exporter(settings: Settings) -> MetricExporter:
    """An OTLP metric exporter for the traces' protocol and endpoint (``/v1/metrics`` beside ``/v1/traces``
    over HTTP). Imported on use: the metrics SDK costs ~20 ms of start-up, and only HOPTRACE_METRICS_OTLP
    needs it. ``endpoint`` ``None``: the exporter reads ``OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT`` itself."""
    endpoint = settings.endpoint
    if settings.protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter

        if endpoint is not None:
            base = endpoint.rstrip("/").removesuffix("/v1/traces").removesuffix("/v1/metrics")
            endpoint = base + "/v1/metrics"
        return HttpExporter(endpoint=endpoint)
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter

    return GrpcExporter(endpoint=endpoint)


class ExporterWarmUp(SpanProcessor):
    """Has the lazy exporter built in time and off the request path: the batch processor's thread builds
    it for its first export (after ``OTEL_BSP_SCHEDULE_DELAY``), and, should the interpreter exit first, it
    is built before the thread-shutdown hooks run, so a short script's spans are still exported. Under the
    harness the bootstrap builds it at start-up (:meth:`warm_up`).

    It used to be built on a thread started with the first span: its imports (~90 ms of CPU, holding the
    GIL) then slowed the service's first request, by about 0.2 s on these machines (bench/service_cost.py,
    first requests).
    """

    def __init__(self, exporter: LazyOtlpExporter) -> None:
        self._exporter = exporter

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._exporter.build_before_exit()

    def warm_up(self) -> None:
        """Start building the exporter now, before any span (the harness waits for a fresh service's first
        trace: without this, its first export pays for building the exporter, 0.1-0.5 s under load)."""
        self._exporter.warm_up()


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """``BatchSpanProcessor`` that also counts, in :data:`export_failures`, the spans it drops because its
    queue (``OTEL_BSP_MAX_QUEUE_SIZE``) is full, e.g. while the backend is down. Memory stays bounded.

    Ended spans go straight into the SDK's queue (one deque append, atomic under the GIL, no lock and no
    ``getpid`` system call per span) when its batch processor has the shape checked at construction (SDK
    1.45); its worker thread exports them as before, waking when a batch is full or the schedule delay
    passes. A full queue, a shut-down processor, or another SDK take the SDK's own ``on_end``. The SDK
    also re-checks the process id on every span for forks that skip ``os.register_at_fork`` handlers: only
    a raw ``fork`` system call does, and its handlers already reset the queue for ``os.fork``.
    """

    def __init__(self, span_exporter: SpanExporter, **options: Any) -> None:
        super().__init__(span_exporter, **options)
        batch = getattr(self, "_batch_processor", None)
        queue = getattr(batch, "_queue", None)
        self._direct = (
            batch
            if isinstance(queue, deque)
            and queue.maxlen
            and isinstance(getattr(batch, "_max_export_batch_size", None), int)
            and isinstance(getattr(batch, "_worker_awaken", None), threading.Event)
            and getattr(batch, "_shutdown", None) is False
            else None
        )

    def on_end(self, span: ReadableSpan) -> None:
        batch = self._direct
        if batch is not None and not batch._shutdown and span.__class__ is HopSpan:  # sampled, by design
            queue = batch._queue
            if len(queue) < queue.maxlen:
                queue.appendleft(span)
                if len(queue) >= batch._max_export_batch_size and not batch._worker_awaken.is_set():
                    batch._worker_awaken.set()
                return
        # The SDK only logs the first drop; its queue is a bounded deque (private, SDK 1.45.1).
        queue = getattr(self._batch_processor, "_queue", None)
        if isinstance(queue, deque) and queue.maxlen is not None and len(queue) >= queue.maxlen:
            export_failures.record(1, "the export queue is full (OTEL_BSP_MAX_QUEUE_SIZE)")
        super().on_end(span)

    def shutdown(self) -> None:
        """The SDK's shutdown (the queued spans are exported, then the exporter shut down), but promptly:
        the exporter first stops retrying, and what is still queued gets one attempt per batch within
        :data:`EXIT_EXPORT_BUDGET_SECONDS` (see :mod:`hoptrace.tracing._otlp.final_exports`)."""
        stop = getattr(self.span_exporter, "stop_retrying", None)
        if callable(stop):
            stop(EXIT_EXPORT_BUDGET_SECONDS)
        super().shutdown()  # type: ignore[no-untyped-call]


class LazyOtlpExporter(SpanExporter):
    """The OTLP span exporter chosen by the protocol setting, built on first export.

    Building it lazily keeps gRPC and HTTP client imports (about 100 ms) out of every interpreter start
    that never makes a span (:class:`ExporterWarmUp` says when it is built; :meth:`warm_up` builds it on a
    background thread). It must be built before the interpreter's thread-shutdown hooks run: building it
    later fails (no new threads or futures then), which :meth:`build_before_exit` makes sure of. In a
    forked child the parent's exporter (and its gRPC channel, which does not survive ``fork``) is discarded
    and a fresh one is built. Never raises from ``export``. Once :meth:`stop_retrying` was called (the
    process is exiting), each export makes one attempt, and none starts after the budget.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._exporter: SpanExporter | None = None
        self._broken = False
        self._warming = False
        self._exit_hook_registered = False  # a forked child inherits the parent's hook, and this flag
        self._exit_deadline: float | None = None
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget_exporter)

    def _forget_exporter(self) -> None:
        self._lock = threading.Lock()
        self._exporter = None
        self._warming = False

    def build_before_exit(self) -> None:
        """Make sure, once, that the exporter is built before the interpreter's thread-shutdown hooks run
        (see :meth:`warm_up`), even if no warm-up started. Never blocks, never raises."""
        if self._exit_hook_registered:
            return
        self._exit_hook_registered = True
        try:
            threading._register_atexit(self._build)  # type: ignore[attr-defined]
        except Exception as exc:  # already shutting down: export() then tries to build it itself
            logger.debug("hoptrace: exporter build at exit not registered", exc_info=exc)

    def warm_up(self) -> None:
        """Start building the exporter in the background, once. Never blocks, never raises."""
        if self._warming or self._exporter is not None:
            return
        self._warming = True
        try:
            thread = threading.Thread(target=self._build, name="hoptrace-otlp-exporter-warm-up", daemon=True)
            thread.start()
            # Importing the exporter needs concurrent.futures (the SDK builds a Resource at import), which
            # refuses new work once the interpreter runs its thread-shutdown hooks. Hooks run last-registered
            # first, so this join runs before concurrent.futures' own hook: a short script still exports.
            threading._register_atexit(thread.join)  # type: ignore[attr-defined]
        except Exception as exc:  # e.g. already shutting down: export() then tries to build it itself
            logger.debug("hoptrace: exporter warm-up not started", exc_info=exc)

    def _build(self) -> SpanExporter | None:
        with self._lock:
            if self._exporter is None and not self._broken:
                try:
                    self._exporter = _otlp_exporter(self._settings)
                except Exception as exc:  # a broken exporter must not take the service down
                    self._broken = True
                    logger.warning("hoptrace: cannot create the OTLP exporter (%s); spans are dropped", exc)
            return self._exporter

    def stop_retrying(self, budget_seconds: float) -> None:
        """The process is exiting: abandon a retry in progress, and from now on make one attempt per export,
        all within ``budget_seconds`` from now. Never blocks, never raises."""
        self._exit_deadline = time.monotonic() + budget_seconds
        if self._exporter is not None:
            stop_retrying(self._exporter, budget_seconds)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        exporter = self._build()
        if exporter is None:
            export_failures.record(len(spans), "no OTLP exporter")
            return SpanExportResult.FAILURE
        if self._exit_deadline is not None:
            left = self._exit_deadline - time.monotonic()
            if left <= 0:
                export_failures.record(len(spans), "the process exited before they could be sent")
                return SpanExportResult.FAILURE
            stop_retrying(exporter, left)
        try:
            result = exporter.export(spans)
        except Exception as exc:
            result = SpanExportResult.FAILURE
            logger.debug("hoptrace: OTLP export raised", exc_info=exc)
        if result is not SpanExportResult.SUCCESS:
            reason = last_exporter_message()
            export_failures.record(
                len(spans),
                f"OTLP export over {self._settings.protocol} failed" + (f" ({reason})" if reason else ""),
            )
        return result

    def shutdown(self) -> None:
        if self._exporter is not None:
            self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _otlp_exporter(settings: Settings) -> SpanExporter:
    from hoptrace.tracing._otlp.export import fast_otlp_exporter

    endpoint = settings.endpoint
    http = settings.protocol == "http/protobuf"
    if http and endpoint is not None and not endpoint.rstrip("/").endswith("/v1/traces"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    return fast_otlp_exporter(settings.protocol, endpoint)
