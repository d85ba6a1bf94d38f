"""``OTEL_PROPAGATORS`` resolved with hoptrace's W3C propagators for the standard names.

``opentelemetry-api`` and hoptrace both register ``tracecontext`` and ``baggage`` in the
``opentelemetry_propagator`` entry point group; which one ``opentelemetry.propagate`` loads depends on the
order of installed distributions. The bootstrap resolves the list itself so the choice is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator

from hoptrace.tracing._w3c.baggage import BaggagePropagator
from hoptrace.tracing._w3c.tracecontext import TraceContextPropagator

DEFAULT_PROPAGATORS = "tracecontext,baggage"
_OURS: dict[str, type[TextMapPropagator]] = {
    "tracecontext": TraceContextPropagator,
    "baggage": BaggagePropagator,
}


class W3CPropagators(CompositePropagator):
    """A composite of hoptrace's own propagators only, which read no header but their ``fields``."""

    def __init__(self, propagators: Sequence[TextMapPropagator]) -> None:
        super().__init__(propagators)
        self.own_fields = frozenset(self.fields)


def propagator_from_environment(environ: Mapping[str, str]) -> CompositePropagator:
    """The propagators named by ``OTEL_PROPAGATORS`` (default ``tracecontext,baggage``), in order: a
    :class:`W3CPropagators` when all of them are hoptrace's.

    ``none`` anywhere means no propagation. Raises ``ValueError`` naming an unknown propagator."""
    names = [name.strip() for name in (environ.get("OTEL_PROPAGATORS") or DEFAULT_PROPAGATORS).split(",")]
    if any(name.lower() == "none" for name in names):
        return W3CPropagators([])
    propagators = [_propagator(name) for name in names if name]
    if all(isinstance(propagator, tuple(_OURS.values())) for propagator in propagators):
        return W3CPropagators(propagators)
    return CompositePropagator(propagators)


def w3c_fields(textmap: TextMapPropagator) -> frozenset[str] | None:
    """Every header ``textmap`` may read, when it is a :class:`W3CPropagators`; else ``None`` (unknown)."""
    return textmap.own_fields if isinstance(textmap, W3CPropagators) else None


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
