"""Is a trace complete? Facts where the harness has them; a quiet period only for what it cannot see.

Facts (:attr:`Completeness.pending` lists what is not done yet):
- a span that a service reported when it started (``HOPTRACE_OPEN_SPANS_URL``, see
  ``TempoClient.started_spans``) and whose finished version is not in the trace is still running;
- a CLIENT span that got an HTTP answer from a service the harness started must have a SERVER span below
  it, and a PRODUCER span that published to a queue a started service consumes must have a CONSUMER
  below it (unless that span is reported running, which already says so);
- when the caller's span id is known (the ``traceparent`` the test sent), some span must continue it.

What the harness cannot see (:attr:`Completeness.uncertain`): spans of processes that report nothing
(not under ``hoptrace run``, or a backend such as Tempo that keeps no such reports, where a missing parent
may still be on its way too), a call or a message to something the harness did not start that nothing
continued. Only those wait for the quiet period; everything else is decided on facts. A span whose parent
nobody reported, among reported spans, is a fact: propagation broke (or the caller is not the one given).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hoptrace.harness._model import OpenSpan, Span, SpanKind
from hoptrace.harness.assertions._trace import Trace

if TYPE_CHECKING:
    from hoptrace.harness.launch._services import Service

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0"})
_QUEUE_ATTRIBUTES = ("messaging.destination.name", "messaging.rabbitmq.destination.routing_key")


@dataclass(frozen=True)
class Topology:
    """What the harness started: the HTTP ports its services serve and the queues they consume."""

    http_ports: dict[int, str] = field(default_factory=dict)
    """Port -> service name (services listen on this machine)."""
    queues: dict[str, str] = field(default_factory=dict)
    """Queue -> name of the service that consumes it."""

    @classmethod
    def of(cls, services: Iterable[Service]) -> Topology:
        """The topology of running ``hoptrace.harness.Service`` objects (their ``url`` and ``consumes``);
        services started untraced make no spans and are left out."""
        from hoptrace.harness.launch._services import port_of

        ports: dict[int, str] = {}
        queues: dict[str, str] = {}
        for service in (s for s in services if s.traced):
            port = port_of(service.url) if service.url else None
            if port is not None:
                ports[port] = service.name
            for queue in service.consumes:
                queues[queue] = service.name
        return cls(ports, queues)


@dataclass(frozen=True)
class Completeness:
    """What a trace still waits for, and what only a quiet period can rule out."""

    pending: tuple[str, ...] = ()
    """Work that has not finished, one sentence each (a span still running, a hop not answered yet)."""
    uncertain: tuple[str, ...] = ()
    """What the harness cannot see, one sentence each."""

    @property
    def decided(self) -> bool:
        """``True`` when facts alone say the trace is complete."""
        return not self.pending and not self.uncertain


def assess(
    trace: Trace, started: Sequence[OpenSpan] | None, topology: Topology, now_ns: int | None = None
) -> Completeness:
    """Judge ``trace`` against the spans reported as started (``None``: the backend keeps no such reports)."""
    now = time.time_ns() if now_ns is None else now_ns
    pending: list[str] = []
    uncertain: list[str] = []
    started_by_id = {record.span_id: record for record in started or ()}
    running = [record for record in started_by_id.values() if trace.span(record.span_id) is None]
    pending += [_running(record, now) for record in running]
    running_parents = {record.parent_span_id for record in running}
    entry = trace.entry_span_id
    unknown_parents = [s for s in trace.orphans if s.parent_span_id not in started_by_id]
    continued = any(span.parent_span_id == entry for span in trace.spans)
    if entry and trace.spans and not continued and not unknown_parents and entry not in running_parents:
        pending.append(f"no span continues the caller's span {entry} yet")
    for span in trace.spans:
        if span.span_id in running_parents or span.kind not in (SpanKind.CLIENT, SpanKind.PRODUCER):
            continue
        callee = SpanKind.SERVER if span.kind == SpanKind.CLIENT else SpanKind.CONSUMER
        if any(hop.kind == callee for hop in trace.next_hops(span)):
            continue
        target = _started_target(span, topology)
        if target is not None:
            pending.append(f"{_describe(span)} to {target} has no {callee.name} child yet")
        elif _expects_callee(span):
            uncertain.append(
                f"{_describe(span)} has no {callee.name} child, and the harness did not start its target"
            )
    if started is None:
        uncertain.append("the backend does not report which spans are still running")
        # With reports, a parent that nobody reported is not on its way: the orphan is a fact.
        uncertain += [
            f"the parent {s.parent_span_id} of {_describe(s)} has not arrived" for s in unknown_parents
        ]
    else:
        unreported = sorted({s.service_name for s in trace.spans if s.span_id not in started_by_id})
        if unreported:
            uncertain.append(f"spans of {', '.join(unreported)} were not reported when they started")
    return Completeness(tuple(pending), tuple(uncertain))


def _running(record: OpenSpan, now_ns: int) -> str:
    age = max(0.0, (now_ns - record.start_time_unix_nano) / 1e9)
    return (
        f'{record.service_name} {record.kind.name} span {record.span_id} "{record.name}" started '
        f"{age:.1f} s ago and has not ended"
    )


def _describe(span: Span) -> str:
    return f'{span.service_name} {span.kind.name} "{span.name}" (span {span.span_id})'


def _started_target(span: Span, topology: Topology) -> str | None:
    """The started service this CLIENT/PRODUCER span reached, if the harness started it."""
    if span.kind == SpanKind.PRODUCER:
        for key in _QUEUE_ATTRIBUTES:
            queue = span.attributes.get(key)
            if isinstance(queue, str) and queue in topology.queues:
                return f"queue {queue} (consumed by {topology.queues[queue]})"
        return None
    if "http.response.status_code" not in span.attributes:
        return None  # no answer came back: nothing ran on the other side
    port, host = span.attributes.get("server.port"), span.attributes.get("server.address")
    if isinstance(port, int) and port in topology.http_ports and (host is None or host in _LOOPBACK):
        return f"{topology.http_ports[port]} ({host}:{port})"
    return None


def _expects_callee(span: Span) -> bool:
    return span.kind == SpanKind.PRODUCER or "http.response.status_code" in span.attributes
