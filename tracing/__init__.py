"""hoptrace's tracing bootstrap: zero-code OpenTelemetry for httpx, ASGI and aio-pika services.

Zero-code: ``hoptrace run -- CMD`` (or ``PYTHONPATH=$(hoptrace sitecustomize-path)``). Manual:
``hoptrace.tracing.configure(...)``. Names are imported lazily, so importing ``tracing`` stays cheap.
"""

from __future__ import annotations

import lazy_loader

from hoptrace.tracing._errors import ConfigurationError, HoptraceError

# Not ``from typing import TYPE_CHECKING``: importing typing costs ~3 ms, paid by every ``hoptrace run``
# (its command module is in this package). Type checkers treat any constant named TYPE_CHECKING as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from hoptrace.tracing._api import span, tenant, traced
    from hoptrace.tracing._configure import configure
    from hoptrace.tracing._counters import counts
    from hoptrace.tracing._http.asgi import TracingMiddleware
    from hoptrace.tracing._installed_processors import InstalledProcessors, processors_from_environment
    from hoptrace.tracing._logging import JsonFormatter
    from hoptrace.tracing._open_spans import OpenSpanReporter
    from hoptrace.tracing._propagation import extract, inject
    from hoptrace.tracing._w3c.baggage import BaggagePropagator
    from hoptrace.tracing._w3c.tracecontext import TraceContextPropagator

_LAZY = {
    "_configure": ["configure"],
    "_api": ["tenant", "span", "traced"],
    "_propagation": ["inject", "extract"],
    "_logging": ["JsonFormatter"],
    "_open_spans": ["OpenSpanReporter"],
    "_http.asgi": ["TracingMiddleware"],
    "_installed_processors": ["InstalledProcessors", "processors_from_environment"],
    "_counters": ["counts"],
    "_w3c.baggage": ["BaggagePropagator"],
    "_w3c.tracecontext": ["TraceContextPropagator"],
}

__all__ = [
    "BaggagePropagator",
    "ConfigurationError",
    "HoptraceError",
    "InstalledProcessors",
    "JsonFormatter",
    "OpenSpanReporter",
    "TraceContextPropagator",
    "TracingMiddleware",
    "configure",
    "counts",
    "extract",
    "inject",
    "processors_from_environment",
    "span",
    "tenant",
    "traced",
]


__getattr__, __dir__, _ = lazy_loader.attach(__name__, submod_attrs=_LAZY)
