"""Span export: OTLP bytes encoded straight from the SDK's spans (:mod:`.encoding`), sent over the SDK's
gRPC or HTTP transport (:mod:`.export`), and the exporters' own log records counted instead of repeated."""

from __future__ import annotations
