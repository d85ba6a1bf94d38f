from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import baggage, context
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from hoptrace.processors import TENANT_KEY


@contextmanager
def tenant_baggage(value: str, key: str = TENANT_KEY) -> Iterator[None]:
    """Make ``value`` the baggage entry ``key`` of the current context for the block."""
    token = context.attach(baggage.set_baggage(key, value))
    try:
        yield
    finally:
        context.detach(token)


class CollectingMetricExporter(MetricExporter):
    """Keeps every exported batch; answers ``result``; records ``shutdown``."""

    def __init__(self, result: MetricExportResult = MetricExportResult.SUCCESS) -> None:
        super().__init__()
        self.batches: list[MetricsData] = []
        self.result = result
        self.shut_down = False

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        self.batches.append(metrics_data)
        return self.result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        self.shut_down = True
