"""The complete conditions of a query that is still being typed, for tag-value autocomplete.

While a user types a value, Grafana's editor sends the whole unfinished query (``{ .a = "x" && .b = ``)
as ``q`` to ``/api/v2/search/tag/{tag}/values``. Tempo answers 200 and filters by what it can read; so
does :func:`autocomplete_filter`: it keeps each ``field op value`` condition of the first spanset filter
that parses on its own, and joins them with ``&&``.
"""

from __future__ import annotations

import re

from hoptrace.harness._errors import InvalidExpression
from hoptrace.harness.traceql._ast import Pipeline
from hoptrace.harness.traceql._parser import parse_traceql

_CONDITION = re.compile(
    r"""(?P<field>(?:[A-Za-z]+:)?[A-Za-z_][\w:]*|(?:[A-Za-z]+)?\.(?:"(?:\\.|[^"\\])*"|[^\s{}()=!<>~&|,"`]+))"""
    r"""\s*(?P<op>=~|!~|!=|>=|<=|=|>|<)\s*"""
    r"""(?P<value>"(?:\\.|[^"\\])*"|`[^`]*`|-?[\w.]+)"""
)


def autocomplete_filter(query: str) -> Pipeline | None:
    """``query`` parsed if it is complete; else the filter its complete conditions make; else ``None``.

    Never raises for bad text: an unreadable query filters nothing, as in Tempo.
    """
    try:
        return parse_traceql(query)
    except InvalidExpression:
        pass
    opening = query.find("{")
    if opening < 0:
        return None
    closing = query.find("}", opening)
    body = query[opening + 1 : closing if closing >= 0 else len(query)]
    conditions = []
    for match in _CONDITION.finditer(body):
        condition = match.group(0)
        try:
            parse_traceql("{ " + condition + " }")
        except InvalidExpression:
            continue
        conditions.append(condition)
    if not conditions:
        return None
    try:
        return parse_traceql("{ " + " && ".join(conditions) + " }")
    except InvalidExpression:  # pragma: no cover - each condition parsed alone
        return None
