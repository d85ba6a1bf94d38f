"""OpenTelemetry span processors: tenant attribution, span-derived RED metrics, redaction.

All of them work with a plain ``TracerProvider``, in the order the bootstrap installs them::

    red = RedMetricsSpanProcessor()
    provider.add_span_processor(TenantSpanProcessor())
    provider.add_span_processor(red)
    provider.add_span_processor(RedactionSpanProcessor(BatchSpanProcessor(exporter)))
    endpoint = start_metrics_endpoint(red, port=9464)   # http://127.0.0.1:9464/metrics
"""

from __future__ import annotations

from processors._red import (
    DEFAULT_MAX_SERIES,
    LATENCY_BUCKETS,
    Exemplar,
    RedMetricsSpanProcessor,
    SeriesSnapshot,
)
from processors._red_exposition import (
    MetricsEndpoint,
    RedMetricsCollector,
    red_metrics_registry,
    start_metrics_endpoint,
)
from processors._red_labels import bounded_span_name
from processors._redaction import (
    DEFAULT_SECRET_KEY_WORDS,
    DEFAULT_SENSITIVE_QUERY_PARAMETERS,
    REDACTED,
    Redactor,
)
from processors._redaction_processor import RedactionSpanProcessor
from processors._tenant import TENANT_KEY, TenantSpanProcessor, invalid_tenants, validate_tenant

__all__ = [
    "DEFAULT_MAX_SERIES",
    "DEFAULT_SECRET_KEY_WORDS",
    "DEFAULT_SENSITIVE_QUERY_PARAMETERS",
    "LATENCY_BUCKETS",
    "REDACTED",
    "TENANT_KEY",
    "Exemplar",
    "MetricsEndpoint",
    "RedMetricsCollector",
    "RedMetricsSpanProcessor",
    "RedactionSpanProcessor",
    "Redactor",
    "SeriesSnapshot",
    "TenantSpanProcessor",
    "bounded_span_name",
    "invalid_tenants",
    "red_metrics_registry",
    "start_metrics_endpoint",
    "validate_tenant",
]
