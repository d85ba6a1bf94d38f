"""hoptrace's embedded trace backend: OTLP in, Tempo's HTTP API out."""

from __future__ import annotations

__all__: list[str] = []
