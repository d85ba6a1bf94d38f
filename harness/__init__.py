"""hoptrace's harness: start a trace backend, RabbitMQ and traced services, then assert end-to-end traces.

Names are imported lazily so that the ``hoptrace`` CLI, which lives in this package, starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracing._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from harness._backends import Backend, open_backend
    from harness._chain import Chain, Hop, parse_chain
    from harness._checks import Verdict
    from harness._client import TraceClient, TracedResponse
    from harness._errors import (
        BackendNotReady,
        BackendUnreachable,
        ConditionTimeout,
        HarnessError,
        InvalidExpression,
        ServiceFailedToStart,
        TraceAssertionError,
        TraceIncomplete,
        TraceNotFound,
    )
    from harness._model import Span, SpanEvent, SpanKind, SpanLink, StatusCode
    from harness._polling import free_port, poll_until, polling
    from harness._rabbitmq import RabbitMQ, start_rabbitmq
    from harness._services import Service, ServiceLauncher
    from harness._tempo_client import SearchHit, TempoClient
    from harness._trace import Trace
    from harness._wait import quiet_period_for, wait_for_search, wait_for_trace

_EXPORTS: dict[str, str] = {
    "HarnessError": "harness._errors",
    "BackendNotReady": "harness._errors",
    "BackendUnreachable": "harness._errors",
    "ServiceFailedToStart": "harness._errors",
    "TraceNotFound": "harness._errors",
    "TraceIncomplete": "harness._errors",
    "InvalidExpression": "harness._errors",
    "TraceAssertionError": "harness._errors",
    "ConditionTimeout": "harness._errors",
    "poll_until": "harness._polling",
    "polling": "harness._polling",
    "free_port": "harness._polling",
    "Backend": "harness._backends",
    "open_backend": "harness._backends",
    "Chain": "harness._chain",
    "Hop": "harness._chain",
    "parse_chain": "harness._chain",
    "Verdict": "harness._checks",
    "TraceClient": "harness._client",
    "TracedResponse": "harness._client",
    "RabbitMQ": "harness._rabbitmq",
    "start_rabbitmq": "harness._rabbitmq",
    "Service": "harness._services",
    "ServiceLauncher": "harness._services",
    "SearchHit": "harness._tempo_client",
    "TempoClient": "harness._tempo_client",
    "Trace": "harness._trace",
    "quiet_period_for": "harness._wait",
    "wait_for_search": "harness._wait",
    "wait_for_trace": "harness._wait",
    "Span": "harness._model",
    "SpanEvent": "harness._model",
    "SpanLink": "harness._model",
    "SpanKind": "harness._model",
    "StatusCode": "harness._model",
}

__all__ = [
    "Backend",
    "BackendNotReady",
    "BackendUnreachable",
    "Chain",
    "ConditionTimeout",
    "HarnessError",
    "Hop",
    "InvalidExpression",
    "RabbitMQ",
    "SearchHit",
    "Service",
    "ServiceFailedToStart",
    "ServiceLauncher",
    "Span",
    "SpanEvent",
    "SpanKind",
    "SpanLink",
    "StatusCode",
    "TempoClient",
    "Trace",
    "TraceAssertionError",
    "TraceClient",
    "TraceIncomplete",
    "TraceNotFound",
    "TracedResponse",
    "Verdict",
    "free_port",
    "open_backend",
    "parse_chain",
    "poll_until",
    "polling",
    "quiet_period_for",
    "start_rabbitmq",
    "wait_for_search",
    "wait_for_trace",
]


__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, globals())
