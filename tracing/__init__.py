"""hoptrace's tracing bootstrap: zero-code OpenTelemetry for httpx, ASGI and aio-pika services."""

from __future__ import annotations

from tracing._errors import ConfigurationError, HoptraceError

__all__ = ["ConfigurationError", "HoptraceError"]
