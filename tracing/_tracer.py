"""The tracer used by hoptrace's hop instrumentation, and the shared suppression check."""

from __future__ import annotations

import logging
from functools import cache

from opentelemetry import context, trace


@cache
def hop_tracer() -> trace.Tracer:
    """Return the tracer for hop spans (:class:`hoptrace.tracing._spans.hop.HopTracer`). It follows the
    global tracer provider, installed before or after this call."""
    from hoptrace.tracing._spans.hop import HopTracer

    return HopTracer()


_SUPPRESS_KEYS = (context._SUPPRESS_INSTRUMENTATION_KEY, context._SUPPRESS_HTTP_INSTRUMENTATION_KEY)


def instrumentation_suppressed() -> bool:
    """True while OpenTelemetry asks instrumentation to stay quiet (e.g. inside an exporter's own calls).
    Runs on every hop: reads the current context once (``get_value`` would read it once per key)."""
    current = context.get_current()
    return bool(current.get(_SUPPRESS_KEYS[0]) or current.get(_SUPPRESS_KEYS[1]))


_reported: set[str] = set()


def instrumentation_failed(where: str, exc: Exception) -> None:
    """Say once per place, in one warning line, that hoptrace's own code failed there.

    The hop then proceeds untraced: instrumentation never turns a working call into a failing one.
    """
    if where not in _reported:
        _reported.add(where)
        logging.getLogger("hoptrace.tracing").warning(
            "hoptrace: %s runs untraced after an internal error: %r", where, exc
        )
