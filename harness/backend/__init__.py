"""hoptrace's embedded trace backend: OTLP in (gRPC and HTTP), Tempo's HTTP API out.

``EmbeddedBackend`` runs it in process; ``hoptrace backend`` runs it in the foreground. ``TraceStore``
is its bounded store, whose ``get_trace(hex)`` returns ``hoptrace.harness.Span`` objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from hoptrace.harness.backend._client_bounds import ClientBounds
    from hoptrace.harness.backend._embedded import EmbeddedBackend
    from hoptrace.harness.backend._errors import (
        BackendError,
        InvalidPayload,
        PayloadTooLarge,
        StoreFull,
        Unavailable,
    )
    from hoptrace.harness.backend._forwarder import ForwarderCounters, OtlpForwarder
    from hoptrace.harness.backend._receiver import DEFAULT_MAX_REQUEST_BYTES, ReceiverCounters
    from hoptrace.harness.backend._store import StoreLimits, StoreStats, TraceStore

# Imported on first use: the backend pulls in grpc, starlette and uvicorn, and this package is on the
# import path of the ``hoptrace`` CLI, whose start-up (``hoptrace run``) is benchmarked.
_EXPORTS = {
    "_client_bounds": ["ClientBounds"],
    "_embedded": ["EmbeddedBackend"],
    "_errors": ["BackendError", "InvalidPayload", "PayloadTooLarge", "StoreFull", "Unavailable"],
    "_forwarder": ["ForwarderCounters", "OtlpForwarder"],
    "_receiver": ["DEFAULT_MAX_REQUEST_BYTES", "ReceiverCounters"],
    "_store": ["StoreLimits", "StoreStats", "TraceStore"],
}

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "BackendError",
    "ClientBounds",
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
    "Unavailable",
]

__getattr__, __dir__, _ = lazy_loader.attach(__name__, submod_attrs=_EXPORTS)
