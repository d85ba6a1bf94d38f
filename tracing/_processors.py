"""The processors the bootstrap installs, chosen by ``HOPTRACE_*`` variables (see
``hoptrace.tracing.environment_variables``).

Chain (DESIGN.md): TenantSpanProcessor -> RedMetricsSpanProcessor -> RedactionSpanProcessor(export).
Redaction wraps the exporting processor so that only the export sees masked copies, while tenant and RED
see the span as recorded. The bootstrap moves that redaction to its export thread (the same processor,
run on each batch: :mod:`hoptrace.tracing._otlp.redacting`), with ``redaction_in_export``.

:func:`processor_chain` builds it for the bootstrap; the public
:func:`~hoptrace.tracing.processors_from_environment` returns the same as an ``InstalledProcessors``.

A bad value of one of these variables logs one warning and falls back to the
default; a part that cannot start (e.g. the metrics port is taken) logs one warning and the service runs
without it. Nothing here raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from opentelemetry.sdk.resources import Resource

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace import SpanProcessor

from hoptrace.processors import (
    DEFAULT_MAX_SERIES,
    RedactionSpanProcessor,
    Redactor,
    RedMetricsSpanProcessor,
    TenantSpanProcessor,
)
from hoptrace.tracing import environment_variables as env

logger = logging.getLogger(__name__)

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class ProcessorChain:
    """What :func:`processor_chain` built: add :attr:`processors` to the provider, in order. The public
    :class:`~hoptrace.tracing.InstalledProcessors` holds the same; this plain class spares every traced
    service building a dataclass at start-up (~2.5M CPU instructions, bench/startup.py)."""

    __slots__ = ("closers", "endpoint_url", "processors", "red")

    def __init__(self, processors: list[SpanProcessor]) -> None:
        self.processors = processors
        self.red: RedMetricsSpanProcessor | None = None
        self.endpoint_url: str | None = None  # http://HOST:PORT/metrics when the endpoint is being served
        self.closers: list[Callable[[], None]] = []


class _ServicesShutdown(SpanProcessor):
    """Stops the /metrics endpoint and the OTLP metrics export when the TracerProvider shuts down."""

    def __init__(self, closers: list[Callable[[], None]]) -> None:
        self._closers = closers

    def shutdown(self) -> None:
        for close in self._closers:
            try:
                close()
            except Exception:
                logger.debug("hoptrace: closing a metrics service failed", exc_info=True)


def processor_chain(
    export: SpanProcessor,
    environ: Mapping[str, str],
    *,
    resource: Resource,
    metrics_exporter_factory: Callable[[], MetricExporter] | None = None,
    redaction_in_export: bool = False,
) -> ProcessorChain:
    """Build tenant -> RED -> redaction(``export``) as switched by ``environ``; start the /metrics endpoint
    (``HOPTRACE_METRICS_PORT``) and the OTLP metrics export (``HOPTRACE_METRICS_OTLP``, built lazily by
    ``metrics_exporter_factory``). With ``redaction_in_export``, ``export`` redacts by itself (its exporter
    was wrapped with :func:`redactor_from_environment`'s redactor) and ends the chain unwrapped. Never
    raises; returns immediately (servers run on daemon threads)."""
    chain: list[SpanProcessor] = []
    installed = ProcessorChain(chain)
    if _flag(environ, env.HOPTRACE_TENANT_ATTRIBUTE, default=True):
        chain.append(TenantSpanProcessor())
    if _flag(environ, env.HOPTRACE_RED_METRICS, default=True):
        installed.red = RedMetricsSpanProcessor(max_series=_max_series(environ))
        chain.append(installed.red)
        _start_endpoint(installed, environ)
        if _flag(environ, env.HOPTRACE_METRICS_OTLP, default=False) and metrics_exporter_factory is not None:
            _start_otlp_export(installed, environ, resource, metrics_exporter_factory)
    if not redaction_in_export and _flag(environ, env.HOPTRACE_REDACTION, default=True):
        chain.append(RedactionSpanProcessor(export, redactor=_redactor(environ)))
    else:
        chain.append(export)
    if installed.closers:
        chain.append(_ServicesShutdown(installed.closers))
    return installed


def redactor_from_environment(environ: Mapping[str, str]) -> Redactor | None:
    """The redactor ``HOPTRACE_REDACT_KEYS`` and ``HOPTRACE_REDACT_QUERY_PARAMETERS`` configure, or ``None``
    when ``HOPTRACE_REDACTION`` is false. A bad value logs one warning and falls back; never raises."""
    return _redactor(environ) if _flag(environ, env.HOPTRACE_REDACTION, default=True) else None


def _flag(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    logger.warning("hoptrace: %s=%r is not true/false; using the default (%s)", name, value, default)
    return default


def _max_series(environ: Mapping[str, str]) -> int:
    value = environ.get(env.HOPTRACE_METRICS_MAX_SERIES, "").strip()
    if not value:
        return DEFAULT_MAX_SERIES
    if value.isdigit() and int(value) >= 2:
        return int(value)
    logger.warning(
        "hoptrace: %s=%r is not an integer >= 2; using %d",
        env.HOPTRACE_METRICS_MAX_SERIES,
        value,
        DEFAULT_MAX_SERIES,
    )
    return DEFAULT_MAX_SERIES


def _redactor(environ: Mapping[str, str]) -> Redactor:
    words = _list(environ, env.HOPTRACE_REDACT_KEYS)
    parameters = _list(environ, env.HOPTRACE_REDACT_QUERY_PARAMETERS)
    try:
        return Redactor(extra_secret_key_words=words, extra_query_parameters=parameters)
    except ValueError as exc:
        logger.warning(
            "hoptrace: %s ignored (%s); using the default redaction rules", env.HOPTRACE_REDACT_KEYS, exc
        )
        return Redactor(extra_query_parameters=parameters)


def _list(environ: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in environ.get(name, "").split(",") if item.strip()]


def _share(red: RedMetricsSpanProcessor, directory: str) -> bool:
    try:
        red.share_in(directory)
    except OSError as exc:
        logger.warning(
            "hoptrace: RED metrics not shared in %s (%s); this process counts alone", directory, exc
        )
        return False
    return True


def _start_endpoint(installed: ProcessorChain, environ: Mapping[str, str]) -> None:
    """Serve /metrics on HOPTRACE_METRICS_PORT, summing every process of the service (_metrics_sharing)."""
    port_text = environ.get(env.HOPTRACE_METRICS_PORT, "").strip()
    if not port_text or installed.red is None:
        return
    host = environ.get(env.HOPTRACE_METRICS_HOST, "").strip() or "127.0.0.1"
    if not port_text.isdigit() or int(port_text) > 65535:
        logger.warning(
            "hoptrace: %s=%r is not a port; no /metrics endpoint", env.HOPTRACE_METRICS_PORT, port_text
        )
        return
    from hoptrace.tracing._metrics_sharing import create_directory, inherited_directory

    shared = inherited_directory(environ, port_text)
    if shared is not None and not _share(installed.red, shared):
        shared = None
    try:
        from hoptrace.processors import start_metrics_endpoint

        endpoint = start_metrics_endpoint(installed.red, host=host, port=int(port_text))
    except Exception as exc:
        if shared is not None:  # a worker: its parent serves the port, and the sum
            logger.debug("hoptrace: RED metrics shared in %s, served by another process (%s)", shared, exc)
            return
        logger.warning(
            "hoptrace: cannot serve /metrics on %s:%s (%s); RED metrics not served", host, port_text, exc
        )
        return
    if shared is None:
        try:
            shared = create_directory(port_text)
        except OSError as exc:
            logger.warning("hoptrace: cannot share RED metrics with child processes (%s)", exc)
        else:
            _share(installed.red, shared)
    installed.endpoint_url = endpoint.url
    installed.closers.append(endpoint.close)
    logger.info("hoptrace: RED metrics at %s", endpoint.url)


def _start_otlp_export(
    installed: ProcessorChain,
    environ: Mapping[str, str],
    resource: Resource,
    exporter_factory: Callable[[], MetricExporter],
) -> None:
    interval_text = environ.get("OTEL_METRIC_EXPORT_INTERVAL", "").strip() or "60000"
    try:
        interval = int(interval_text) / 1000
        if interval <= 0:
            raise ValueError(interval_text)
    except ValueError:
        logger.warning(
            "hoptrace: OTEL_METRIC_EXPORT_INTERVAL=%r is not a positive integer; using 60000", interval_text
        )
        interval = 60.0
    try:
        from hoptrace.processors import PeriodicRedMetricsExport

        assert installed.red is not None
        export = PeriodicRedMetricsExport(
            installed.red,
            exporter_factory,
            resource=resource,
            interval_seconds=interval,
        )
    except Exception as exc:
        logger.warning("hoptrace: cannot export RED metrics over OTLP (%s)", exc)
        return
    installed.closers.append(export.shutdown)
