"""hoptrace's embedded trace backend: OTLP in (gRPC and HTTP), Tempo's HTTP API out.

``EmbeddedBackend`` runs it in process; ``hoptrace backend`` runs it in the foreground. ``TraceStore``
is its bounded store, whose ``get_trace(hex)`` returns ``harness.Span`` objects.
"""

from __future__ import annotations

from harness.backend._embedded import EmbeddedBackend
from harness.backend._errors import BackendError, InvalidPayload, PayloadTooLarge, StoreFull
from harness.backend._forwarder import ForwarderCounters, OtlpForwarder
from harness.backend._receiver import DEFAULT_MAX_REQUEST_BYTES, ReceiverCounters
from harness.backend._store import StoreLimits, StoreStats, TraceStore

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
