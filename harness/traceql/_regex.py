"""The one place TraceQL compiles a regular expression (``=~``, ``!~``), so that the engine behind it
can change in one place."""

from __future__ import annotations

import re

from hoptrace.harness._errors import InvalidExpression


def compile_regex(pattern: str) -> re.Pattern[str]:
    """Compile ``pattern`` for a fully anchored match (callers use ``fullmatch``).

    Raises ``InvalidExpression`` naming the pattern when it does not compile.
    """
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidExpression(f"invalid regular expression {pattern!r}: {exc}") from None
