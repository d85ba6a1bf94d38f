"""HTTP hops: ASGI servers (a middleware uvicorn installs around every app, with route templates and
FastAPI's own telemetry switched off) and httpx clients (sync and async), each a span with the W3C context
and the tenant's baggage carried across."""

from __future__ import annotations
