"""The one place TraceQL compiles a regular expression (``=~``, ``!~``), so that the engine behind it
can change in one place.

The engine is RE2 (the ``google-re2`` binding), the engine Go's ``regexp`` package implements and Tempo
uses: the same syntax (``\\z``, ``\\pL``, ``(?i)``; no backreferences or lookaround) and matching in
time linear in the input, so no pattern can make a query backtrack for seconds (``(a+)+$`` against 30
characters took Python's ``re`` 2^30 steps).
"""

from __future__ import annotations

from typing import Protocol

import re2

from hoptrace.harness._errors import InvalidExpression

MAX_PROGRAM_BYTES = 8 * 1024 * 1024
"""RE2's memory budget per compiled pattern (its default); a larger pattern is an invalid expression."""


class Regex(Protocol):
    """A compiled pattern: ``fullmatch`` returns a match object, or None."""

    def fullmatch(self, string: str) -> object | None: ...


def compile_regex(pattern: str) -> Regex:
    """Compile ``pattern`` with RE2 for a fully anchored match (callers use ``fullmatch``).

    Raises ``InvalidExpression`` naming the pattern when RE2 does not accept it.
    """
    options = re2.Options()
    options.max_mem = MAX_PROGRAM_BYTES
    options.log_errors = False
    try:
        compiled: Regex = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        detail = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise InvalidExpression(f"invalid regular expression {pattern!r}: {detail}") from None
    return compiled
