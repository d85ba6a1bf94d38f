"""hoptrace's harness: start a trace backend, RabbitMQ and traced services, then assert end-to-end traces.

Names are imported lazily so that the ``hoptrace`` CLI, which lives in this package, starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

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

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
