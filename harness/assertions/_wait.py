"""Wait until a trace is complete and its expectations hold.

Complete means no span of the trace is still running and every hop the harness can see has been answered
(see :mod:`hoptrace.harness.assertions._completeness`): services under the harness report each span when
it starts, so a slow consumer's first message, or a long call, is waited for as a fact. A trace that facts
say is complete is returned once it held for ``settle`` seconds (one more poll, to let a report still on
its way arrive). Only what the harness cannot see (spans of processes that report nothing, as with real
Tempo, calls to services it did not start) waits for the old quiet period: no new span for 1.5 export
delays plus 20 ms. Polling starts at 10 ms and backs off to 25 ms.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from hoptrace.harness._errors import TraceAssertionError, TraceIncomplete, TraceNotFound
from hoptrace.harness._model import OpenSpan, Span
from hoptrace.harness._polling import polling
from hoptrace.harness.assertions._checks import PROPAGATION_HINT, Verdict, chain
from hoptrace.harness.assertions._completeness import Completeness, Topology, assess
from hoptrace.harness.assertions._trace import Trace
from hoptrace.harness.launch._services import DEFAULT_EXPORT_DELAY_MS
from hoptrace.harness.tempo._client import SearchHit, TempoClient

if TYPE_CHECKING:
    from hoptrace.harness.launch._services import Service

Expectation = str | Callable[[Trace], object]
"""A chain expression, or a callable over the trace: it fails by raising ``AssertionError`` (as the
``Trace.assert_*`` methods do), by returning a failed ``Verdict``, or by returning ``False``."""

_FIRST_POLL, _MAX_POLL = 0.005, 0.02
DEFAULT_SETTLE = 0.005
"""Seconds a trace that facts say is complete must stay unchanged before it is returned."""


def quiet_period_for(export_delay_ms: float) -> float:
    """Seconds without a new span after which a trace whose completeness the harness cannot see is taken as
    complete: 1.5 export delays plus 20 ms."""
    return 1.5 * export_delay_ms / 1000 + 0.02


def wait_for_trace(
    client: TempoClient,
    trace_id: str,
    *,
    until: Expectation | Sequence[Expectation] = (),
    timeout: float = 10.0,
    export_delay_ms: float = DEFAULT_EXPORT_DELAY_MS,
    quiet_period: float | None = None,
    entry_span_id: str | None = None,
    services: Iterable[Service] = (),
    settle: float = DEFAULT_SETTLE,
    fail_fast: bool = False,
    infer_entry: bool = False,
) -> Trace:
    """Poll the backend until the trace is complete and every expectation holds; return it.

    ``entry_span_id`` is the span id of the caller that started the trace (the ``traceparent`` it sent);
    with ``infer_entry`` a trace with no parentless span and a single unknown parent takes that parent as
    the caller. ``services`` are the services the harness started (their ports and ``consumes`` queues
    make hops visible). With ``fail_fast``, a trace that facts say is complete and that does not hold
    raises ``TraceAssertionError`` at once instead of waiting for the timeout.

    Blocks the calling thread. Raises ``TraceNotFound`` (no span at all, with what the backend holds for
    the last minutes) or ``TraceIncomplete`` (what is still running or missing, the tree as received, and
    why each failing expectation fails) after ``timeout`` seconds; ``BackendUnreachable`` if the backend
    stops answering.
    """
    expectations = [until] if isinstance(until, str) or callable(until) else list(until)
    quiet = quiet_period if quiet_period is not None else quiet_period_for(export_delay_ms)
    topology = Topology.of(services)
    start = time.monotonic()
    deadline = start + timeout
    seen: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    last_change = start
    delay = _FIRST_POLL
    trace = Trace([], entry_span_id=entry_span_id)
    started: list[OpenSpan] | None = None
    state = Completeness()
    failures: list[str] = []
    while True:
        spans = client.get_trace(trace_id) or []
        started = client.started_spans(trace_id) if spans else started
        now = time.monotonic()
        key = (frozenset(s.span_id for s in spans), frozenset(r.span_id for r in started or ()))
        if key != seen:
            seen, last_change, delay = key, now, _FIRST_POLL
            entry = entry_span_id or (inferred_entry(spans) if infer_entry else None)
            trace = Trace(spans, entry_span_id=entry)
            failures = _failures(trace, expectations)
            state = assess(trace, started, topology)
        quiet_for = now - last_change
        if spans and not state.pending:
            settled = quiet_for >= (settle if state.decided else quiet)
            if settled and not failures:
                return trace
            if settled and fail_fast and state.decided:
                raise TraceAssertionError(
                    f"trace {trace_id} is complete and does not hold:\n" + "\n\n".join(failures)
                )
        if now >= deadline:
            _give_up(client, trace_id, trace, failures, timeout, topology)
        time.sleep(min(delay, max(0.0, deadline - now)))  # polling the backend, with backoff
        delay = min(delay * 1.5, _MAX_POLL)


def wait_for_search(
    client: TempoClient, query: str, *, at_least: int = 1, timeout: float = 10.0, lookback: int = 3600
) -> list[SearchHit]:
    """Poll a TraceQL search until it finds ``at_least`` traces; return them. Raises ``TraceNotFound``."""
    hits: list[SearchHit] = []
    for _ in polling(timeout, first=_FIRST_POLL, ceiling=0.2):
        end = int(time.time()) + 1
        hits = client.search(query, start=end - lookback, end=end, limit=max(20, at_least))
        if len(hits) >= at_least:
            return hits
    raise TraceNotFound(
        f"TraceQL {query!r} matched {len(hits)} trace(s) at {client.base_url} after {timeout:.1f} s, "
        f"expected at least {at_least}"
    )


def _failures(trace: Trace, expectations: Sequence[Expectation]) -> list[str]:
    failures: list[str] = []
    for expectation in expectations:
        try:
            outcome = chain(trace, expectation) if isinstance(expectation, str) else expectation(trace)
        except AssertionError as exc:
            failures.append(str(exc))
            continue
        if isinstance(outcome, Verdict) and not outcome.ok:
            failures.append(trace.render(outcome))
        elif outcome is False:
            failures.append(f"expectation {getattr(expectation, '__name__', expectation)!r} returned False")
    return failures


def _give_up(
    client: TempoClient, trace_id: str, trace: Trace, failures: list[str], timeout: float, topology: Topology
) -> None:
    started = client.started_spans(trace_id)
    state = assess(trace, started, topology)
    if not trace.spans and not state.pending:
        raise TraceNotFound(
            f"trace {trace_id} not found at {client.base_url} after {timeout:.1f} s.\n{_recent(client)}"
        )
    if not state.pending:
        detail = "\n\n".join(failures) if failures else trace.render()
        raise TraceIncomplete(f"trace {trace_id} incomplete after {timeout:.1f} s:\n{detail}")
    # Unfinished work explains whatever does not hold yet: never blame propagation for it.
    running = "\n".join(f"  - {line}" for line in state.pending)
    detail = "\n\n".join(f.replace(PROPAGATION_HINT, "") for f in failures) if failures else trace.render()
    raise TraceIncomplete(
        f"trace {trace_id} incomplete after {timeout:.1f} s: its work has not finished:\n{running}\n"
        f"(what does not hold yet, as far as it arrived:)\n{detail}",
        state.pending,
    )


def inferred_entry(spans: Sequence[Span]) -> str | None:
    """The caller's span id when the trace has no parentless span and exactly one parent is unknown."""
    ids = {span.span_id for span in spans}
    if any(span.parent_span_id is None for span in spans):
        return None
    unknown = {span.parent_span_id for span in spans if span.parent_span_id not in ids}
    return unknown.pop() if len(unknown) == 1 else None


def _recent(client: TempoClient) -> str:
    end = int(time.time()) + 1
    try:
        hits = client.search("{}", start=end - 600, end=end, limit=10)
    except Exception as exc:  # the search is only a hint; the main error must still be raised
        return f"(could not list recent traces: {exc})"
    if not hits:
        return "The backend holds no trace from the last 10 minutes: are the services exporting to it?"
    lines = [f"  {h.trace_id}  {_root_label(client, h)}" for h in hits]
    return "Traces it holds from the last 10 minutes:\n" + "\n".join(lines)


def _root_label(client: TempoClient, hit: SearchHit) -> str:
    """``service  name`` of the trace's root; for a trace entered from an untraced caller (whose root has a
    parent, so Tempo's search says the root was not received) the first span below that caller."""
    if hit.root_service_name and not hit.root_service_name.startswith("<"):
        return f"{hit.root_service_name}  {hit.root_trace_name}"
    try:
        trace = Trace(client.get_trace(hit.trace_id) or [])
    except Exception:  # only a hint in an error message
        return "(root unknown)"
    tops = trace.roots or trace.orphans
    if not tops:
        return "(no span)"
    top = tops[0]
    caller = f" (called by span {top.parent_span_id})" if top.parent_span_id else ""
    return f"{top.service_name}  {top.name}{caller}"
