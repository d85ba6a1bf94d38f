"""Manual activation: ``hoptrace.tracing.configure(...)``, the same options as the environment, as
arguments."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hoptrace.tracing._bootstrap import activate
from hoptrace.tracing._settings import resolve_settings


def configure(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    sampler: str | None = None,
    sampler_arg: float | None = None,
    tenant_header: str | None = None,
    edge: bool | None = None,
    trust_inbound_baggage: bool | None = None,
    disabled_instrumentations: Iterable[str] | None = None,
    log_correlation: bool | None = None,
    log_format: str | None = None,
    tenant_secret: str | Sequence[str] | None = None,
) -> bool:
    """Activate tracing in this process, as the zero-code bootstrap does.

    Each argument overrides its environment variable, which overrides the default: ``service_name``
    (``OTEL_SERVICE_NAME``), ``endpoint`` (``OTEL_EXPORTER_OTLP_ENDPOINT``), ``protocol``
    (``OTEL_EXPORTER_OTLP_PROTOCOL``: ``grpc`` or ``http/protobuf``, default ``grpc``), ``sampler`` and
    ``sampler_arg`` (``OTEL_TRACES_SAMPLER(_ARG)``), ``tenant_header`` (``HOPTRACE_TENANT_HEADER``), ``edge``
    (``HOPTRACE_EDGE``), ``trust_inbound_baggage`` (``HOPTRACE_TRUST_INBOUND_BAGGAGE``),
    ``disabled_instrumentations`` (``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``: httpx, asgi, aio_pika,
    logging), ``log_correlation`` (``HOPTRACE_LOG_CORRELATION``), ``log_format`` (``HOPTRACE_LOG_FORMAT``),
    ``tenant_secret`` (``HOPTRACE_TENANT_SECRET``: one secret, comma-separated ones or a sequence; the first
    signs the tenant, all verify).

    Returns ``True`` when this call activated tracing; ``False`` when tracing was already active (the first
    activation wins, so calling it twice is harmless) or ``OTEL_SDK_DISABLED`` is true.
    Raises :class:`hoptrace.tracing.ConfigurationError` for a bad argument, and
    :class:`hoptrace.tracing.HoptraceError` when
    the environment is unusable (a malformed endpoint or an unknown protocol or propagator). Thread-safe.
    """
    return activate(
        resolve_settings(
            service_name=service_name,
            endpoint=endpoint,
            protocol=protocol,
            sampler=sampler,
            sampler_arg=sampler_arg,
            tenant_header=tenant_header,
            edge=edge,
            trust_inbound_baggage=trust_inbound_baggage,
            disabled_instrumentations=disabled_instrumentations,
            log_correlation=log_correlation,
            log_format=log_format,
            tenant_secret=tenant_secret,
        )
    )
