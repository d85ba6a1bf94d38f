"""hoptrace's embedded trace backend: OTLP in (gRPC and HTTP), Tempo's HTTP API out.

``EmbeddedBackend`` runs it in process; ``hoptrace backend`` runs it in the foreground. ``TraceStore``
is its bounded store, whose ``get_trace(hex)`` returns ``harness.Span`` objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracing._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from harness.backend._embedded import EmbeddedBackend
    from harness.backend._errors import BackendError, InvalidPayload, PayloadTooLarge, StoreFull
    from harness.backend._forwarder import ForwarderCounters, OtlpForwarder
    from harness.backend._receiver import DEFAULT_MAX_REQUEST_BYTES, ReceiverCounters
    from harness.backend._store import StoreLimits, StoreStats, TraceStore

# Imported on first use: the backend pulls in grpc, starlette and uvicorn, and this package is on the
# import path of the ``hoptrace`` CLI, whose start-up (``hoptrace run``) is benchmarked.
_EXPORTS = {
    "EmbeddedBackend": "harness.backend._embedded",
    "BackendError": "harness.backend._errors",
    "InvalidPayload": "harness.backend._errors",
    "PayloadTooLarge": "harness.backend._errors",
    "StoreFull": "harness.backend._errors",
    "ForwarderCounters": "harness.backend._forwarder",
    "OtlpForwarder": "harness.backend._forwarder",
    "DEFAULT_MAX_REQUEST_BYTES": "harness.backend._receiver",
    "ReceiverCounters": "harness.backend._receiver",
    "StoreLimits": "harness.backend._store",
    "StoreStats": "harness.backend._store",
    "TraceStore": "harness.backend._store",
}

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "BackendError",
    "EmbeddedBackend",
    "ForwarderCounters",
    "InvalidPayload",
    "OtlpForwarder",
    "PayloadTooLarge",
    "ReceiverCounters",
    "StoreFull",
    "StoreLimits",
    "StoreStats",
    "TraceStore",
]

__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, globals())
