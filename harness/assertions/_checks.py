"""The checks behind ``Trace.assert_*``: each returns a ``Verdict`` saying what matched, what is missing, why.

They never raise for a failed expectation (``Trace.require`` does); they raise ``InvalidExpression`` for a
malformed chain, hop or TraceQL selector.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from hoptrace.harness._errors import InvalidExpression
from hoptrace.harness._model import Span, SpanKind
from hoptrace.harness.assertions._chain import Chain, Hop, parse_chain

if TYPE_CHECKING:
    from hoptrace.harness.assertions._trace import Trace

Selector = str | Callable[[Span], bool]
"""A hop (``"api:SERVER"``, ``'*:CLIENT "GET"'``), a TraceQL spanset filter (``"{ kind = server }"``) or a
predicate over spans."""

ANY: Final = object()
"""Marker for "any value" in attribute checks."""

PROPAGATION_HINT = (
    "; the callee started a new trace: does it run under `hoptrace run`, and does the hop carry headers?"
)
"""Added to a broken-propagation verdict; only meaningful once the trace is complete."""

_CALLERS = frozenset({SpanKind.CLIENT, SpanKind.PRODUCER})
_CALLEES = frozenset({SpanKind.SERVER, SpanKind.CONSUMER})


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one expectation over a trace."""

    ok: bool
    expectation: str
    why: str = ""
    matched: frozenset[str] = frozenset()
    """Span ids that satisfied (part of) the expectation, marked ``✓`` in the tree."""
    culprits: frozenset[str] = frozenset()
    """Span ids where it failed, marked ``✗`` in the tree."""
    missing: tuple[str, ...] = ()


def describe(span: Span) -> str:
    """``api:PRODUCER "publish orders" (span 00f067aa0ba902b7)``."""
    return f'{span.service_name}:{span.kind.name} "{span.name}" (span {span.span_id})'


def select(trace: Trace, selector: Selector) -> list[Span]:
    if callable(selector):
        return [span for span in trace.spans if selector(span)]
    if selector.lstrip().startswith("{"):
        from hoptrace.harness.traceql import filter_spans  # evaluated locally, with the backend's own TraceQL

        return filter_spans(selector, trace.spans)
    hop = parse_hop(selector)
    return [span for span in trace.spans if hop.matches(span)]


def parse_hop(text: str) -> Hop:
    chain = parse_chain(text)
    if len(chain.hops) != 1:
        raise InvalidExpression(f"expected one hop such as 'api:SERVER', got a chain: {text!r}")
    return chain.hops[0]


def single_root(trace: Trace) -> Verdict:
    roots = trace.roots
    what = "a single root span"
    if len(roots) == 1:
        return Verdict(True, what, matched=frozenset({roots[0].span_id}))
    why = (
        "no span without a parent"
        if not roots
        else f"{len(roots)} root spans: " + ", ".join(describe(s) for s in roots)
    )
    return Verdict(False, what, why, culprits=_ids(roots))


def no_orphans(trace: Trace) -> Verdict:
    orphans = trace.orphans
    what = "no orphan spans (every parent present)"
    if not orphans:
        return Verdict(True, what)
    missing = tuple(f"parent {s.parent_span_id} of {describe(s)}" for s in orphans)
    return Verdict(
        False,
        what,
        f"{len(orphans)} span(s) whose parent never arrived",
        culprits=_ids(orphans),
        missing=missing,
    )


def propagation(trace: Trace, *, external: Selector | None = None) -> Verdict:
    what = "unbroken propagation: every CLIENT/PRODUCER is continued by a SERVER/CONSUMER in this trace"
    skip = _ids(select(trace, external)) if external is not None else frozenset()
    broken = [
        span
        for span in trace.spans
        if span.kind in _CALLERS
        and span.span_id not in skip
        and not any(hop.kind in _CALLEES for hop in trace.next_hops(span))
    ]
    problems = [f"broken hop after {describe(span)}: nothing continued the trace below it" for span in broken]
    if len(trace.roots) > 1:
        problems.append(f"{len(trace.roots)} roots: " + ", ".join(describe(s) for s in trace.roots))
    problems += [
        f"orphan {describe(s)}: parent {s.parent_span_id} is not in this trace" for s in trace.orphans
    ]
    if not problems:
        return Verdict(True, what)
    culprits = (
        _ids(broken) | (_ids(trace.roots) if len(trace.roots) > 1 else frozenset()) | _ids(trace.orphans)
    )
    missing = tuple(f"a SERVER/CONSUMER span below {describe(span)}" for span in broken)
    return Verdict(
        False,
        what,
        "\n".join(problems) + (PROPAGATION_HINT if broken else ""),
        culprits=culprits,
        missing=missing,
    )


def chain(trace: Trace, expression: str | Chain) -> Verdict:
    parsed = parse_chain(expression) if isinstance(expression, str) else expression
    what = f"chain {parsed}"
    best: list[Span] = []
    for start in (s for s in trace.spans if parsed.hops[0].matches(s)):
        path = _longest_path(trace, parsed.hops, [start])
        if len(path) > len(best):
            best = path
        if len(best) == len(parsed.hops):
            return Verdict(True, what, matched=_ids(best))
    if not best:
        present = sorted({f"{s.service_name}:{s.kind.name}" for s in trace.spans})
        why = f"no span matches the first hop {parsed.hops[0]}; present: {', '.join(present) or 'nothing'}"
        return Verdict(False, what, why, missing=(str(parsed.hops[0]),))
    last, wanted = best[-1], parsed.hops[len(best)]
    below = trace.next_hops(last) if wanted.direct else list(trace.descendants(last))
    found = ", ".join(describe(s) for s in below) or "nothing"
    why = (
        f"broken hop: {parsed.hops[len(best) - 1]} > {wanted}: below {describe(last)} "
        f"there is {found}, not a {wanted} span"
    )
    return Verdict(
        False,
        what,
        why,
        matched=_ids(best),
        culprits=frozenset({last.span_id}),
        missing=(f"{wanted} below {describe(last)}",),
    )


def _longest_path(trace: Trace, hops: tuple[Hop, ...], path: list[Span]) -> list[Span]:
    if len(path) == len(hops):
        return path
    hop = hops[len(path)]
    below = trace.next_hops(path[-1]) if hop.direct else list(trace.descendants(path[-1]))
    best = path
    for span in below:
        if hop.matches(span):
            candidate = _longest_path(trace, hops, [*path, span])
            if len(candidate) > len(best):
                best = candidate
                if len(best) == len(hops):
                    break
    return best


Relation = Literal["parent", "ancestor", "sibling"]


def relation(trace: Trace, first: Selector, second: Selector, mode: Relation) -> Verdict:
    a, b = select(trace, first), select(trace, second)
    what = {
        "parent": "{a} is the parent of {b}",
        "ancestor": "{a} is an ancestor of {b}",
        "sibling": "{a} and {b} are siblings",
    }[mode].format(a=_name(first), b=_name(second))
    for x in a:
        for y in b:
            if x is y:
                continue
            if (
                (mode == "parent" and y.parent_span_id == x.span_id)
                or (mode == "ancestor" and any(d is y for d in trace.descendants(x)))
                or (mode == "sibling" and x.parent_span_id == y.parent_span_id)
            ):
                return Verdict(True, what, matched=frozenset({x.span_id, y.span_id}))
    why = f"{_name(first)} matched {len(a)} span(s), {_name(second)} matched {len(b)}, none in that relation"
    return Verdict(False, what, why, matched=_ids(a) | _ids(b))


def attribute(trace: Trace, key: str, value: object = ANY, *, on: Selector | None = None) -> Verdict:
    spans = list(trace.spans) if on is None else select(trace, on)
    scope = "every span" if on is None else f"every {_name(on)} span"
    what = f"{key}={value!r} on {scope}" if value is not ANY else f"{key} on {scope}"
    bad = [s for s in spans if not _has(s, key, value)]
    if spans and not bad:
        return Verdict(True, what, matched=_ids(spans))
    why = (
        "no span to check"
        if not spans
        else f"{len(bad)} of {len(spans)} span(s) lack it: "
        + ", ".join(f"{describe(s)} has {key}={_attr(s, key)!r}" for s in bad)
    )
    return Verdict(False, what, why, matched=_ids(spans) - _ids(bad), culprits=_ids(bad))


def span_count(
    trace: Trace,
    selector: Selector,
    *,
    exactly: int | None = None,
    at_least: int | None = None,
    at_most: int | None = None,
) -> Verdict:
    spans = select(trace, selector)
    bounds = [
        f"exactly {exactly}" if exactly is not None else "",
        f"at least {at_least}" if at_least is not None else "",
        f"at most {at_most}" if at_most is not None else "",
    ]
    what = f"{' and '.join(b for b in bounds if b) or 'any number of'} {_name(selector)} span(s)"
    n = len(spans)
    ok = (
        (exactly is None or n == exactly)
        and (at_least is None or n >= at_least)
        and (at_most is None or n <= at_most)
    )
    return Verdict(ok, what, "" if ok else f"found {n}", matched=_ids(spans))


def edges(trace: Trace) -> set[tuple[str, str]]:
    """(client, server) service pairs as Tempo's service graph pairs them; a root SERVER gives ("user", s)."""
    found: set[tuple[str, str]] = set()
    root_ids = {root.span_id for root in trace.roots}
    for span in trace.spans:
        if span.kind not in _CALLEES:
            continue
        parent = trace.parent(span)
        if parent is not None and parent.kind in _CALLERS:
            found.add((parent.service_name, span.service_name))
        elif span.span_id in root_ids and span.kind == SpanKind.SERVER:
            found.add(("user", span.service_name))
    return found


def service_edges(trace: Trace, expected: Iterable[tuple[str, str]], *, exact: bool = False) -> Verdict:
    want, have = set(expected), edges(trace)
    what = ("exactly" if exact else "at least") + " the service edges " + _edges(want)
    missing, extra = want - have, (have - want if exact else set())
    if not missing and not extra:
        return Verdict(True, what)
    why = f"edges present: {_edges(have)}" + (f"; unexpected: {_edges(extra)}" if extra else "")
    return Verdict(False, what, why, missing=tuple(f"edge {a} -> {b}" for a, b in sorted(missing)))


def linked(trace: Trace, selector: Selector, trace_id: str, span_id: str | None) -> Verdict:
    spans = select(trace, selector)
    target = f"{trace_id}/{span_id}" if span_id else trace_id
    what = f"a {_name(selector)} span links to {target}"
    for span in spans:
        if any(ln.trace_id == trace_id and span_id in (None, ln.span_id) for ln in span.links):
            return Verdict(True, what, matched=frozenset({span.span_id}))
    links = ", ".join(f"{ln.trace_id}/{ln.span_id}" for s in spans for ln in s.links) or "none"
    return Verdict(False, what, f"{len(spans)} span(s) matched; their links: {links}", culprits=_ids(spans))


def _has(span: Span, key: str, value: object) -> bool:
    present = key in span.attributes or key in span.resource_attributes
    return present and (value is ANY or _attr(span, key) == value)


def _attr(span: Span, key: str) -> object:
    return span.attributes.get(key, span.resource_attributes.get(key))


def _ids(spans: Iterable[Span]) -> frozenset[str]:
    return frozenset(s.span_id for s in spans)


def _name(selector: Selector) -> str:
    return selector if isinstance(selector, str) else getattr(selector, "__name__", "predicate")


def _edges(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{a} -> {b}" for a, b in sorted(pairs)) + "}"
