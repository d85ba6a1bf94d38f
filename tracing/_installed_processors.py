"""``processors_from_environment``: the processor chain the bootstrap installs, for users' own providers.

The chain itself is built by :func:`hoptrace.tracing._processors.processor_chain`; the bootstrap uses that
directly, so this module (and its dataclass) is imported only by those who ask for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor

from hoptrace.processors import RedMetricsSpanProcessor
from hoptrace.tracing._processors import processor_chain

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter


@dataclass
class InstalledProcessors:
    """What :func:`processors_from_environment` built: add :attr:`processors` to the provider, in order."""

    processors: list[SpanProcessor]
    red: RedMetricsSpanProcessor | None = None
    endpoint_url: str | None = None
    """``http://HOST:PORT/metrics`` when the endpoint is being served."""
    closers: list[Callable[[], None]] = field(default_factory=list)


def processors_from_environment(
    export: SpanProcessor,
    environ: Mapping[str, str],
    *,
    resource: Resource,
    metrics_exporter_factory: Callable[[], MetricExporter] | None = None,
    redaction_in_export: bool = False,
) -> InstalledProcessors:
    """Build tenant -> RED -> redaction(``export``) as switched by ``environ``; start the /metrics endpoint
    (``HOPTRACE_METRICS_PORT``) and the OTLP metrics export (``HOPTRACE_METRICS_OTLP``, built lazily by
    ``metrics_exporter_factory``). With ``redaction_in_export``, ``export`` redacts by itself (its exporter
    was wrapped with the redactor of ``HOPTRACE_REDACT_*``) and ends the chain unwrapped. Never raises;
    returns immediately (servers run on daemon threads)."""
    chain = processor_chain(
        export,
        environ,
        resource=resource,
        metrics_exporter_factory=metrics_exporter_factory,
        redaction_in_export=redaction_in_export,
    )
    return InstalledProcessors(chain.processors, chain.red, chain.endpoint_url, chain.closers)
