"""Hand-built spans for unit tests of the trace model (no backend involved)."""

from __future__ import annotations

import itertools
from typing import Any

from hoptrace.harness._model import Span, SpanKind, StatusCode

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
_ids = itertools.count(1)


def make_span(
    service: str,
    kind: str,
    name: str,
    parent: Span | str | None = None,
    *,
    tenant: str | None = "acme",
    status: StatusCode = StatusCode.UNSET,
    trace_id: str = TRACE_ID,
    **attributes: Any,
) -> Span:
    n = next(_ids)
    if tenant is not None:
        attributes["tenant.id"] = tenant
    return Span(
        trace_id=trace_id,
        span_id=f"{n:016x}",
        parent_span_id=parent.span_id if isinstance(parent, Span) else parent,
        name=name,
        kind=SpanKind(kind.lower()),
        status=status,
        status_message="",
        start_time_unix_nano=1_700_000_000_000_000_000 + n * 1_000_000,
        end_time_unix_nano=1_700_000_000_000_000_000 + n * 1_000_000 + 2_500_000,
        service_name=service,
        attributes=attributes,
        resource_attributes={"service.name": service},
    )


def order_trace(*, break_queue_hop: bool = False) -> list[Span]:
    """api -> inventory over HTTP and api -> RabbitMQ -> worker -> inventory, as the demo produces."""
    server = make_span("api", "server", "POST /orders", "00000000000000aa")
    send = make_span("api", "internal", "http send", server)
    client = make_span("api", "client", "GET", server)
    stock = make_span("inventory", "server", "GET /stock/{item}", client)
    publish = make_span("api", "producer", "publish orders", server)
    spans = [server, send, client, stock, publish]
    if not break_queue_hop:
        consume = make_span("worker", "consumer", "process orders", publish)
        reserve = make_span("worker", "client", "POST", consume)
        handle = make_span("inventory", "server", "POST /reserve/{item}", reserve)
        spans += [consume, reserve, handle]
    return spans
