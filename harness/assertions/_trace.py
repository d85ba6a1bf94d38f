"""``Trace``: the spans of one trace as a tree, with selection and assertions.

A ``Trace`` is immutable and built from ``hoptrace.harness._model.Span`` objects, whichever backend they came
from.
Each ``assert_*`` method raises ``TraceAssertionError`` (an ``AssertionError``) whose message is the whole
trace drawn as a tree, with matched spans marked ``✓``, the culprits marked ``✗``, what is missing and why.
The matching ``check_*`` functions in ``hoptrace.harness.assertions._checks`` return a ``Verdict`` instead of
raising.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cached_property

from hoptrace.harness._errors import TraceAssertionError
from hoptrace.harness._model import Span, SpanKind
from hoptrace.harness.assertions import _checks
from hoptrace.harness.assertions._checks import Selector, Verdict
from hoptrace.harness.assertions._render import render_tree

HOP_KINDS = frozenset({SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER})
"""Kinds that mark a hop between processes; INTERNAL spans are transparent to chains."""


class Trace:
    """The spans of one trace, arranged as a tree.

    ``entry_span_id`` is the span id of an untraced caller (the test's HTTP client sends a ``traceparent``
    naming it): spans whose parent is that id count as roots, not orphans.
    """

    def __init__(self, spans: Iterable[Span], *, entry_span_id: str | None = None) -> None:
        unique = {span.span_id: span for span in spans}
        self.spans: tuple[Span, ...] = tuple(
            sorted(unique.values(), key=lambda s: (s.start_time_unix_nano, s.span_id))
        )
        self.entry_span_id = entry_span_id
        self.trace_id: str = self.spans[0].trace_id if self.spans else ""
        self._by_id: Mapping[str, Span] = {span.span_id: span for span in self.spans}
        children: dict[str | None, list[Span]] = {}
        for span in self.spans:
            children.setdefault(span.parent_span_id, []).append(span)
        self._children = children

    def __len__(self) -> int:
        return len(self.spans)

    def __iter__(self) -> Iterator[Span]:
        return iter(self.spans)

    def __repr__(self) -> str:
        return f"<Trace {self.trace_id or '(empty)'}: {len(self.spans)} spans>"

    # ---- structure
    def span(self, span_id: str) -> Span | None:
        return self._by_id.get(span_id)

    def parent(self, span: Span) -> Span | None:
        return self._by_id.get(span.parent_span_id) if span.parent_span_id else None

    def children(self, span: Span) -> list[Span]:
        return list(self._children.get(span.span_id, ()))

    def descendants(self, span: Span) -> Iterator[Span]:
        for child in self.children(span):
            yield child
            yield from self.descendants(child)

    def next_hops(self, span: Span) -> list[Span]:
        """The hop spans directly below ``span``, looking through INTERNAL spans."""
        found: list[Span] = []
        for child in self.children(span):
            if child.kind in HOP_KINDS:
                found.append(child)
            else:
                found.extend(self.next_hops(child))
        return found

    @cached_property
    def roots(self) -> list[Span]:
        """Spans with no parent, or whose parent is the untraced entry caller."""
        return [s for s in self.spans if s.parent_span_id is None or s.parent_span_id == self.entry_span_id]

    @cached_property
    def orphans(self) -> list[Span]:
        """Spans whose parent is neither in the trace nor the entry caller."""
        return [
            s
            for s in self.spans
            if s.parent_span_id is not None
            and s.parent_span_id != self.entry_span_id
            and s.parent_span_id not in self._by_id
        ]

    @property
    def services(self) -> list[str]:
        return sorted({span.service_name for span in self.spans})

    # ---- selection
    def select(self, selector: Selector) -> list[Span]:
        """Spans matching a hop (``"api:SERVER"``), a TraceQL spanset filter (``"{ span.x = 1 }"``) or a
        predicate. Raises ``InvalidExpression`` for a malformed expression."""
        return _checks.select(self, selector)

    def find(self, selector: Selector) -> Span:
        """The single span matching ``selector``; raises ``TraceAssertionError`` unless exactly one does."""
        self.require(_checks.span_count(self, selector, exactly=1))
        return self.select(selector)[0]

    # ---- assertions
    def render(self, verdict: Verdict | None = None) -> str:
        """The trace as an indented tree, annotated with ``verdict`` when given."""
        return render_tree(self, verdict)

    def require(self, verdict: Verdict) -> Trace:
        """Raise ``TraceAssertionError`` with the annotated tree unless ``verdict`` holds; returns self."""
        if not verdict.ok:
            raise TraceAssertionError(self.render(verdict))
        return self

    def assert_single_root(self) -> Trace:
        return self.require(_checks.single_root(self))

    def assert_no_orphans(self) -> Trace:
        return self.require(_checks.no_orphans(self))

    def assert_propagation(self, *, external: Selector | None = None) -> Trace:
        """Every CLIENT/PRODUCER span has a SERVER/CONSUMER span below it in this trace, except the callers
        matched by ``external`` (calls to untraced systems); one root; no orphans."""
        return self.require(_checks.propagation(self, external=external))

    def assert_chain(self, expression: str) -> Trace:
        return self.require(_checks.chain(self, expression))

    def assert_parent_child(self, parent: Selector, child: Selector) -> Trace:
        return self.require(_checks.relation(self, parent, child, "parent"))

    def assert_descendant(self, ancestor: Selector, descendant: Selector) -> Trace:
        return self.require(_checks.relation(self, ancestor, descendant, "ancestor"))

    def assert_siblings(self, first: Selector, second: Selector) -> Trace:
        return self.require(_checks.relation(self, first, second, "sibling"))

    def assert_attribute(self, key: str, value: object = _checks.ANY, *, on: Selector | None = None) -> Trace:
        """Every span (or each span matched by ``on``) has attribute ``key``, equal to ``value`` if given."""
        return self.require(_checks.attribute(self, key, value, on=on))

    def assert_span_count(
        self,
        selector: Selector,
        *,
        exactly: int | None = None,
        at_least: int | None = None,
        at_most: int | None = None,
    ) -> Trace:
        return self.require(
            _checks.span_count(self, selector, exactly=exactly, at_least=at_least, at_most=at_most)
        )

    def assert_service_edges(self, expected: Iterable[tuple[str, str]], *, exact: bool = False) -> Trace:
        """The (client, server) service pairs that service-graph metrics would count include ``expected``
        (equal it if ``exact``)."""
        return self.require(_checks.service_edges(self, expected, exact=exact))

    def assert_linked(self, selector: Selector, trace_id: str, span_id: str | None = None) -> Trace:
        """Some span matched by ``selector`` links to ``trace_id`` (and ``span_id`` if given)."""
        return self.require(_checks.linked(self, selector, trace_id, span_id))

    @property
    def service_edges(self) -> set[tuple[str, str]]:
        return _checks.edges(self)


Predicate = Callable[[Span], bool]
