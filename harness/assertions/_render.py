"""Draw a trace as an indented tree, annotated with a ``Verdict``: the picture a failed assertion shows.

One line per span: mark (``✓`` matched, ``✗`` culprit), tree branch, ``service KIND name``, status,
duration, tenant. Orphans (parent never arrived) are drawn as extra top-level spans and say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hoptrace.harness._model import Span, StatusCode

if TYPE_CHECKING:
    from hoptrace.harness.assertions._checks import Verdict
    from hoptrace.harness.assertions._trace import Trace

TENANT_KEY = "tenant.id"


def render_tree(trace: Trace, verdict: Verdict | None = None) -> str:
    """Return the tree as text; with ``verdict``, a header says what was expected, why it failed, what is
    missing."""
    lines: list[str] = []
    if verdict is not None:
        lines.append(f"expected: {verdict.expectation}")
        if not verdict.ok:
            lines += [f"  why: {line}" for line in verdict.why.splitlines() if line]
            lines += [f"  missing: {item}" for item in verdict.missing]
    services = ", ".join(trace.services) or "no service"
    lines.append(f"trace {trace.trace_id or '(no spans)'}: {len(trace)} span(s) from {services}")
    rows: list[tuple[str, str, Span]] = []
    tops = trace.roots + trace.orphans  # disjoint: an orphan has a parent id that is not the entry
    for index, top in enumerate(tops):
        _walk(trace, top, "", index == len(tops) - 1, rows, top=True)
    width = max((len(prefix) + len(label) for prefix, label, _ in rows), default=0)
    orphan_ids = {s.span_id for s in trace.orphans}
    for prefix, label, span in rows:
        mark = _mark(span, verdict)
        lines.append(
            f"  {mark} {(prefix + label).ljust(width)}  {_details(span, span.span_id in orphan_ids)}"
        )
    return "\n".join(lines)


def _walk(
    trace: Trace, span: Span, indent: str, last: bool, rows: list[tuple[str, str, Span]], *, top: bool
) -> None:
    branch = "" if top else ("└─ " if last else "├─ ")
    rows.append((indent + branch, f"{span.service_name or '?'} {span.kind.name} {span.name}", span))
    children = trace.children(span)
    child_indent = indent if top else indent + ("   " if last else "│  ")
    for index, child in enumerate(children):
        _walk(trace, child, child_indent, index == len(children) - 1, rows, top=False)


def _mark(span: Span, verdict: Verdict | None) -> str:
    if verdict is None:
        return " "
    if span.span_id in verdict.culprits:
        return "✗"
    return "✓" if span.span_id in verdict.matched else " "


def _details(span: Span, orphan: bool) -> str:
    status = span.status.name
    if span.status == StatusCode.ERROR and span.status_message:
        status += f" ({span.status_message})"
    parts = [status, f"{span.duration_nano / 1e6:.1f} ms"]
    tenant = span.attributes.get(TENANT_KEY, span.resource_attributes.get(TENANT_KEY))
    parts.append(f"tenant={tenant}" if tenant is not None else "tenant=-")
    if orphan:
        parts.append(f"ORPHAN: parent {span.parent_span_id} missing")
    return "  ".join(parts)
