"""hoptrace's harness: start a trace backend, RabbitMQ and traced services, then assert end-to-end traces.

Names are imported lazily so that the ``hoptrace`` CLI, which lives in this package, starts fast.
"""

from __future__ import annotations

import lazy_loader

# Not ``from typing import TYPE_CHECKING``: importing typing costs ~3 ms, paid by every ``hoptrace run``
# (the CLI lives in this package). Type checkers treat any constant named TYPE_CHECKING as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from hoptrace.harness._errors import (
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
    from hoptrace.harness._model import OpenSpan, Span, SpanEvent, SpanKind, SpanLink, StatusCode
    from hoptrace.harness._polling import free_port, poll_until, polling
    from hoptrace.harness.assertions._chain import Chain, Hop, parse_chain
    from hoptrace.harness.assertions._checks import Verdict
    from hoptrace.harness.assertions._trace import Trace
    from hoptrace.harness.assertions._wait import quiet_period_for, wait_for_search, wait_for_trace
    from hoptrace.harness.launch._backends import Backend, BackendPorts, open_backend
    from hoptrace.harness.launch._rabbitmq import RabbitMQ, start_rabbitmq
    from hoptrace.harness.launch._services import Service, ServiceLauncher
    from hoptrace.harness.launch._trace_client import TraceClient, TracedResponse
    from hoptrace.harness.tempo._client import SearchHit, TempoClient

_EXPORTS = {
    "_errors": [
        "HarnessError",
        "BackendNotReady",
        "BackendUnreachable",
        "ServiceFailedToStart",
        "TraceNotFound",
        "TraceIncomplete",
        "InvalidExpression",
        "TraceAssertionError",
        "ConditionTimeout",
    ],
    "_polling": ["poll_until", "polling", "free_port"],
    "launch._backends": ["Backend", "BackendPorts", "open_backend"],
    "assertions._chain": ["Chain", "Hop", "parse_chain"],
    "assertions._checks": ["Verdict"],
    "launch._trace_client": ["TraceClient", "TracedResponse"],
    "launch._rabbitmq": ["RabbitMQ", "start_rabbitmq"],
    "launch._services": ["Service", "ServiceLauncher"],
    "tempo._client": ["SearchHit", "TempoClient"],
    "assertions._trace": ["Trace"],
    "assertions._wait": ["quiet_period_for", "wait_for_search", "wait_for_trace"],
    "_model": ["OpenSpan", "Span", "SpanEvent", "SpanLink", "SpanKind", "StatusCode"],
}

__all__ = [
    "Backend",
    "BackendNotReady",
    "BackendPorts",
    "BackendUnreachable",
    "Chain",
    "ConditionTimeout",
    "HarnessError",
    "Hop",
    "InvalidExpression",
    "OpenSpan",
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


__getattr__, __dir__, _ = lazy_loader.attach(__name__, submod_attrs=_EXPORTS)
