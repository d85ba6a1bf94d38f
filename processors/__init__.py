"""OpenTelemetry span processors: tenant attribution, span-derived RED metrics, redaction."""

from __future__ import annotations

__all__: list[str] = []
