"""hoptrace's tracing bootstrap: zero-code OpenTelemetry for httpx, ASGI and aio-pika services.

Zero-code: ``hoptrace run -- CMD`` (or ``PYTHONPATH=$(hoptrace sitecustomize-path)``). Manual:
``tracing.configure(...)``. Names are imported lazily, so importing ``tracing`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tracing._errors import ConfigurationError, HoptraceError

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tracing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
