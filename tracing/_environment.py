"""Every ``HOPTRACE_*`` environment variable, each with its contract.

This is the single place where hoptrace's own variables are named. The standard ``OTEL_*`` variables
keep their meaning from the OpenTelemetry specification and are read where the SDK reads them.
Precedence everywhere: an explicit argument beats the environment, which beats the default.
"""

from __future__ import annotations

HOPTRACE_TENANT_HEADER = "HOPTRACE_TENANT_HEADER"
"""Request header that an edge service turns into the ``tenant.id`` baggage entry, e.g. ``X-Tenant-ID``.
Unset: no header is read."""

HOPTRACE_TRUST_INBOUND_BAGGAGE = "HOPTRACE_TRUST_INBOUND_BAGGAGE"
"""``true`` keeps W3C ``baggage`` sent by callers. Default ``false``: inbound baggage is dropped at the
edge (hops between hoptrace services still carry it, see the tracing docs)."""

HOPTRACE_METRICS_PORT = "HOPTRACE_METRICS_PORT"
"""Port of the in-process ``/metrics`` endpoint serving span-derived RED metrics. Unset: no endpoint."""

HOPTRACE_METRICS_HOST = "HOPTRACE_METRICS_HOST"
"""Bind address of the ``/metrics`` endpoint. Default ``127.0.0.1``."""

HOPTRACE_TEMPO_URL = "HOPTRACE_TEMPO_URL"
"""Base URL of the Tempo HTTP API that ``hoptrace check`` and ``hoptrace trace`` query. Default
``http://127.0.0.1:3200`` (where ``hoptrace backend`` and compose's Tempo listen)."""

HOPTRACE_TEMPO_BIN = "HOPTRACE_TEMPO_BIN"
"""Path of a Grafana Tempo binary for ``--trace-backend=tempo`` / ``hoptrace demo --backend tempo`` when no
``--tempo-url`` is given. Unset: ``tempo`` on PATH, else ``docker compose`` with ``compose/``."""
