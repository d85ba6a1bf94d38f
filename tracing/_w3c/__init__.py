"""hoptrace's W3C propagators: Trace Context (Level 1 and 2) and Baggage, as the current specs write them.

Written here rather than taken from ``opentelemetry-api`` because upstream's propagators fail the specs
where it matters for hoptrace (measured with the W3C suites, see DESIGN.md): duplicate ``traceparent``
headers, Level 2's tracestate key grammar, baggage properties, percent-encoding and the size limits. Both
are registered under the standard names (``tracecontext``, ``baggage``) in the ``opentelemetry_propagator``
entry point group, and the bootstrap prefers them to upstream's, so ``OTEL_PROPAGATORS`` keeps working.
"""

from __future__ import annotations

import functools
import re


@functools.cache
def compiled(pattern: str) -> re.Pattern[str]:
    """``pattern``, compiled on its first use rather than at import: every traced service imports the
    propagators at start-up, where compiling their patterns cost ~1.7M CPU instructions (bench/startup.py)."""
    return re.compile(pattern)
