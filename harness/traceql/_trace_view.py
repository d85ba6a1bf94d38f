"""One trace's spans with the tree that structural operators and trace intrinsics need.

Spans are addressed by their index in :attr:`TraceView.spans`. The tree is built once, in linear time:
each span's parent index (``-1`` for a root, or for a span whose parent was never received), its
children, a pre-order walk, and nested-set numbers (``nestedSetLeft``/``Right``/``Parent``, numbered
from 1 as Tempo numbers them; a root's ``nestedSetParent`` is -1).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

from hoptrace.harness._model import Span


class TraceView:
    """A trace's spans (ordered as given) and lookups over them. Immutable once built; thread safe."""

    def __init__(self, spans: Sequence[Span]) -> None:
        self.spans = list(spans)
        self.by_id = {span.span_id: span for span in self.spans}
        roots = [span for span in self.spans if not span.parent_span_id]
        self.root = min(roots, key=lambda span: span.start_time_unix_nano) if roots else None
        if self.spans:
            start = min(span.start_time_unix_nano for span in self.spans)
            end = max(span.end_time_unix_nano for span in self.spans)
            self.duration_nanos = max(0, end - start)
        else:
            self.duration_nanos = 0

    @cached_property
    def index_of(self) -> dict[int, int]:
        """``id(span)`` -> its index."""
        return {id(span): index for index, span in enumerate(self.spans)}

    @cached_property
    def parents(self) -> list[int]:
        positions = {span.span_id: index for index, span in enumerate(self.spans)}
        return [positions.get(span.parent_span_id, -1) if span.parent_span_id else -1 for span in self.spans]

    @cached_property
    def children(self) -> list[list[int]]:
        children: list[list[int]] = [[] for _ in self.spans]
        for index, parent in enumerate(self.parents):
            if parent >= 0:
                children[parent].append(index)
        return children

    @cached_property
    def preorder(self) -> list[int]:
        """Every span once, each parent before its children (spans caught in a parent cycle last)."""
        order: list[int] = []
        seen = [False] * len(self.spans)
        starts = [index for index, parent in enumerate(self.parents) if parent < 0]
        for start in [*starts, *range(len(self.spans))]:
            if seen[start]:
                continue
            stack = [start]
            seen[start] = True
            while stack:
                index = stack.pop()
                order.append(index)
                for child in reversed(self.children[index]):
                    if not seen[child]:
                        seen[child] = True
                        stack.append(child)
        return order

    @cached_property
    def nested_set(self) -> tuple[list[int], list[int]]:
        """``(left, right)`` numbers per span: ``a`` is an ancestor of ``d`` iff
        ``left[a] < left[d] and right[d] < right[a]``."""
        left = [0] * len(self.spans)
        right = [0] * len(self.spans)
        counter = 1
        seen = [False] * len(self.spans)
        starts = [index for index, parent in enumerate(self.parents) if parent < 0]
        for start in [*starts, *range(len(self.spans))]:
            if seen[start]:
                continue
            seen[start] = True
            stack: list[tuple[int, bool]] = [(start, False)]
            while stack:
                index, leaving = stack.pop()
                if leaving:
                    right[index] = counter
                    counter += 1
                    continue
                left[index] = counter
                counter += 1
                stack.append((index, True))
                for child in reversed(self.children[index]):
                    if not seen[child]:
                        seen[child] = True
                        stack.append((child, False))
        return left, right

    def ancestors(self, span: Span) -> list[Span]:
        """``span``'s parent, grandparent... up to its root (nearest first)."""
        found: list[Span] = []
        seen = {span.span_id}
        parent = self.by_id.get(span.parent_span_id or "")
        while parent is not None and parent.span_id not in seen:
            found.append(parent)
            seen.add(parent.span_id)
            parent = self.by_id.get(parent.parent_span_id or "")
        return found
