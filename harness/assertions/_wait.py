"""Wait until a trace is complete: expectations hold AND no new span arrived for a quiet period.

The quiet period comes from the services' batch-export delay (``OTEL_BSP_SCHEDULE_DELAY``, which the
launcher sets). Each service exports on its own timer, so a span that had ended when the last span arrived
is exported at most one delay later, plus the time of the export itself: 1.5 delays plus 20 ms without
news means nothing that had ended is still on its way. Spans of work still running are what the
expectations are for. Polling starts at 10 ms and backs off to 25 ms, so a complete trace is returned within
tens of milliseconds of its quiet period ending.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from hoptrace.harness._errors import TraceIncomplete, TraceNotFound
from hoptrace.harness._polling import polling
from hoptrace.harness.assertions._checks import Verdict, chain
from hoptrace.harness.assertions._trace import Trace
from hoptrace.harness.launch._services import DEFAULT_EXPORT_DELAY_MS
from hoptrace.harness.tempo._client import SearchHit, TempoClient

Expectation = str | Callable[[Trace], object]
"""A chain expression, or a callable over the trace: it fails by raising ``AssertionError`` (as the
``Trace.assert_*`` methods do), by returning a failed ``Verdict``, or by returning ``False``."""

_FIRST_POLL, _MAX_POLL = 0.01, 0.025


def quiet_period_for(export_delay_ms: float) -> float:
    """Seconds without a new span after which a trace is complete: 1.5 export delays plus 20 ms."""
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
) -> Trace:
    """Poll the backend until every expectation holds and the trace has been quiet; return it.

    Blocks the calling thread. Raises ``TraceNotFound`` (no span at all, with what the backend holds for
    the last minutes) or ``TraceIncomplete`` (the tree as received, and why each failing expectation
    fails) after ``timeout`` seconds; ``BackendUnreachable`` if the backend stops answering.
    """
    expectations = [until] if isinstance(until, str) or callable(until) else list(until)
    quiet = quiet_period if quiet_period is not None else quiet_period_for(export_delay_ms)
    start = time.monotonic()
    deadline = start + timeout
    seen: frozenset[str] = frozenset()
    last_change = start
    delay = _FIRST_POLL
    trace = Trace([], entry_span_id=entry_span_id)
    failures: list[str] = []
    while True:
        spans = client.get_trace(trace_id) or []
        now = time.monotonic()
        ids = frozenset(span.span_id for span in spans)
        if ids != seen:
            seen, last_change, delay = ids, now, _FIRST_POLL
            trace = Trace(spans, entry_span_id=entry_span_id)
            failures = _failures(trace, expectations)
        if seen and not failures and now - last_change >= quiet:
            return trace
        if now >= deadline:
            _give_up(client, trace_id, trace, failures, timeout)
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


def _give_up(client: TempoClient, trace_id: str, trace: Trace, failures: list[str], timeout: float) -> None:
    if not trace.spans:
        raise TraceNotFound(
            f"trace {trace_id} not found at {client.base_url} after {timeout:.1f} s.\n{_recent(client)}"
        )
    detail = "\n\n".join(failures) if failures else trace.render()
    raise TraceIncomplete(f"trace {trace_id} incomplete after {timeout:.1f} s:\n{detail}")


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
