"""TraceQL's structural operators over one trace, each in time linear in the trace's spans.

``left`` and ``right`` are sets of span indices (see :class:`TraceView`); each function returns the
indices the operator keeps. ``A > B`` keeps the B spans whose parent is in A, ``A < B`` the B spans
that are the parent of an A span, ``A >> B`` the B spans with an ancestor in A, ``A << B`` the B spans
with a descendant in A, ``A ~ B`` the B spans with a sibling (same parent, another span) in A.
``!op`` keeps the B spans that ``op`` does not keep; ``&op`` keeps what ``op`` keeps plus the A spans
at the other end of each kept relation.

Ancestry flags are propagated along a pre-order walk (down) or its reverse (up), never by walking each
span's ancestor chain, so a 10k-span chain costs 10k steps, not 10k².
"""

from __future__ import annotations

from collections import Counter

from hoptrace.harness.traceql._trace_view import TraceView


def _below(trace: TraceView, marked: set[int]) -> list[bool]:
    """Per span: whether one of its ancestors is in ``marked``."""
    flags = [False] * len(trace.spans)
    parents = trace.parents
    for index in trace.preorder:
        parent = parents[index]
        if parent >= 0:
            flags[index] = flags[parent] or parent in marked
    return flags


def _above(trace: TraceView, marked: set[int]) -> list[bool]:
    """Per span: whether one of its descendants is in ``marked``."""
    flags = [False] * len(trace.spans)
    parents = trace.parents
    for index in reversed(trace.preorder):
        parent = parents[index]
        if parent >= 0 and (flags[index] or index in marked):
            flags[parent] = True
    return flags


def _with_sibling_in(trace: TraceView, marked: set[int], candidates: set[int]) -> set[int]:
    keys = [span.parent_span_id for span in trace.spans]
    counts = Counter(keys[index] for index in marked)
    return {index for index in candidates if counts[keys[index]] - (index in marked) > 0}


def _relation(trace: TraceView, op: str, left: set[int], right: set[int]) -> set[int]:
    """The ``right`` spans in relation ``op`` (one of ``> < >> << ~``) with some ``left`` span."""
    parents = trace.parents
    if op == ">":
        return {index for index in right if parents[index] in left}
    if op == "<":
        return {parents[index] for index in left if parents[index] >= 0} & right
    if op == ">>":
        below = _below(trace, left)
        return {index for index in right if below[index]}
    if op == "<<":
        above = _above(trace, left)
        return {index for index in right if above[index]}
    return _with_sibling_in(trace, left, right)


_INVERSE = {">": "<", "<": ">", ">>": "<<", "<<": ">>", "~": "~"}


def structural(trace: TraceView, op: str, left: set[int], right: set[int]) -> set[int]:
    """Apply a structural operator (``> < >> << ~``, each also as ``!op`` and ``&op``)."""
    if op.startswith("!"):
        return right - _relation(trace, op[1:], left, right)
    if op.startswith("&"):
        relation = op[1:]
        kept_right = _relation(trace, relation, left, right)
        return kept_right | _relation(trace, _INVERSE[relation], kept_right, left)
    return _relation(trace, op, left, right)
