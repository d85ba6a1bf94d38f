"""hoptrace's tracing bootstrap: zero-code OpenTelemetry for httpx, ASGI and aio-pika services.

Zero-code: ``hoptrace run -- CMD`` (or ``PYTHONPATH=$(hoptrace sitecustomize-path)``). Manual:
``tracing.configure(...)``. Names are imported lazily, so importing ``tracing`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracing._errors import ConfigurationError, HoptraceError
from tracing._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from tracing._api import span, tenant, traced
    from tracing._asgi import TracingMiddleware
    from tracing._configure import configure
    from tracing._logging import JsonFormatter
    from tracing._propagation import extract, inject

_LAZY: dict[str, str] = {
    "configure": "tracing._configure",
    "tenant": "tracing._api",
    "span": "tracing._api",
    "traced": "tracing._api",
    "inject": "tracing._propagation",
    "extract": "tracing._propagation",
    "JsonFormatter": "tracing._logging",
    "TracingMiddleware": "tracing._asgi",
}

__all__ = [
    "ConfigurationError",
    "HoptraceError",
    "JsonFormatter",
    "TracingMiddleware",
    "configure",
    "extract",
    "inject",
    "span",
    "tenant",
    "traced",
]


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, globals())
