"""OpenTelemetry span processors: tenant attribution, span-derived RED metrics, redaction.

All of them work with a plain ``TracerProvider``, in the order the bootstrap installs them::

    red = TenantRedMetricsSpanProcessor()  # TenantSpanProcessor then RedMetricsSpanProcessor, as one
    provider.add_span_processor(red)
    provider.add_span_processor(RedactionSpanProcessor(BatchSpanProcessor(exporter)))
    endpoint = start_metrics_endpoint(red, port=9464)   # http://127.0.0.1:9464/metrics

A service of several processes calls ``red.share_in(directory)`` in each (the bootstrap does it from
``HOPTRACE_METRICS_PORT``): the endpoint then serves the exact sum over all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

from hoptrace.processors._red import DEFAULT_MAX_SERIES, LATENCY_BUCKETS, RedMetricsSpanProcessor
from hoptrace.processors._red_labels import bounded_span_name, fold_id_parts
from hoptrace.processors._redaction import (
    DEFAULT_SECRET_KEY_WORDS,
    DEFAULT_SENSITIVE_QUERY_PARAMETERS,
    REDACTED,
    Redactor,
)
from hoptrace.processors._redaction_processor import RedactionSpanProcessor
from hoptrace.processors._tenant import TENANT_KEY, TenantSpanProcessor, invalid_tenants, validate_tenant

if TYPE_CHECKING:
    from hoptrace.processors._red_exposition import (
        MetricsEndpoint,
        RedMetricsCollector,
        red_metrics_registry,
        start_metrics_endpoint,
    )
    from hoptrace.processors._red_otlp import PeriodicRedMetricsExport, red_metrics_data
    from hoptrace.processors._red_snapshot import Exemplar, SeriesSnapshot
    from hoptrace.processors._tenant_red import TenantRedMetricsSpanProcessor

# Imported on first use: prometheus_client (~45 ms), the metrics SDK and the snapshot dataclasses are not
# needed by a service that serves no /metrics endpoint, nor the combined processor by the bootstrap, whose
# start-up time is benchmarked.
_LAZY = {
    "_red_exposition": [
        "MetricsEndpoint",
        "RedMetricsCollector",
        "red_metrics_registry",
        "start_metrics_endpoint",
    ],
    "_red_otlp": ["PeriodicRedMetricsExport", "red_metrics_data"],
    "_red_snapshot": ["Exemplar", "SeriesSnapshot"],
    "_tenant_red": ["TenantRedMetricsSpanProcessor"],
}


__getattr__, __dir__, _ = lazy_loader.attach(__name__, submod_attrs=_LAZY)


__all__ = [
    "DEFAULT_MAX_SERIES",
    "DEFAULT_SECRET_KEY_WORDS",
    "DEFAULT_SENSITIVE_QUERY_PARAMETERS",
    "LATENCY_BUCKETS",
    "REDACTED",
    "TENANT_KEY",
    "Exemplar",
    "MetricsEndpoint",
    "PeriodicRedMetricsExport",
    "RedMetricsCollector",
    "RedMetricsSpanProcessor",
    "RedactionSpanProcessor",
    "Redactor",
    "SeriesSnapshot",
    "TenantRedMetricsSpanProcessor",
    "TenantSpanProcessor",
    "bounded_span_name",
    "fold_id_parts",
    "invalid_tenants",
    "red_metrics_data",
    "red_metrics_registry",
    "start_metrics_endpoint",
    "validate_tenant",
]
