"""``OTEL_PROPAGATORS`` resolved with hoptrace's W3C propagators for the standard names.

``opentelemetry-api`` and hoptrace both register ``tracecontext`` and ``baggage`` in the
``opentelemetry_propagator`` entry point group; which one ``opentelemetry.propagate`` loads depends on the
order of installed distributions. The bootstrap resolves the list itself so the choice is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator

from hoptrace.tracing._w3c.baggage import BaggagePropagator
from hoptrace.tracing._w3c.tracecontext import TraceContextPropagator

DEFAULT_PROPAGATORS = "tracecontext,baggage"
_OURS: dict[str, type[TextMapPropagator]] = {
    "tracecontext": TraceContextPropagator,
    "baggage": BaggagePropagator,
}


def propagator_from_environment(environ: Mapping[str, str]) -> CompositePropagator:
    """The propagators named by ``OTEL_PROPAGATORS`` (default ``tracecontext,baggage``), in order.

    ``none`` anywhere means no propagation. Raises ``ValueError`` naming an unknown propagator."""
    names = [name.strip() for name in (environ.get("OTEL_PROPAGATORS") or DEFAULT_PROPAGATORS).split(",")]
    if any(name.lower() == "none" for name in names):
        return CompositePropagator([])
    return CompositePropagator([_propagator(name) for name in names if name])


def _propagator(name: str) -> TextMapPropagator:
    ours = _OURS.get(name)
    if ours is not None:
        return ours()
    # Imported here: importlib.metadata costs ~10 ms at start-up, and the default propagators need none.
    from importlib.metadata import entry_points

    found = list(entry_points(group="opentelemetry_propagator", name=name))
    if not found:
        raise ValueError(f"propagator {name!r} is not installed (a typo, or a missing package?)")
    propagator: TextMapPropagator = found[0].load()()
    return propagator
