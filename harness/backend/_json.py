"""JSON answers as Tempo writes them, including the numbers JSON itself cannot spell.

Tempo marshals its responses with protobuf's JSON mapping, which writes a non-finite double as the
string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``. The OpenTelemetry JS SDK exports such doubles, so an
attribute, a metrics sample or an exemplar may hold one; Starlette's ``JSONResponse`` refuses them (a
500), this response encodes them as Tempo does.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import JSONResponse


def finite_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by protobuf JSON's spelling of it (a copy)."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if math.isnan(value):
            return "NaN"
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {key: finite_json(member) for key, member in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(member) for member in value]
    return value


def dumps_tempo_json(content: Any) -> bytes:
    """Compact UTF-8 JSON of ``content``, non-finite floats spelled as protobuf JSON spells them."""
    try:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:  # a NaN or an infinity somewhere: rare, so pay for the walk only then
        text = json.dumps(finite_json(content), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")


class TempoJSONResponse(JSONResponse):
    """A ``JSONResponse`` that never fails on NaN or ±Inf; see :func:`dumps_tempo_json`."""

    def render(self, content: Any) -> bytes:
        return dumps_tempo_json(content)
