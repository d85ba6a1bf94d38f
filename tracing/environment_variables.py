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
"""Port of the ``/metrics`` endpoint serving span-derived RED metrics. Unset: no endpoint. In a service of
several processes (uvicorn ``--workers``, gunicorn), the process that binds it serves the sum over all of
them (see ``HOPTRACE_METRICS_DIR``)."""

HOPTRACE_METRICS_DIR = "HOPTRACE_METRICS_DIR"
"""Directory where every process of one service keeps its RED series (one memory-mapped file each), so that
the process serving ``HOPTRACE_METRICS_PORT`` reports the exact sum over all of them: uvicorn ``--workers``
and ``--reload``, gunicorn workers, any traced child process. Unset (the usual case): the process that binds
the port creates a private temporary directory, sets this variable for its children, and removes the
directory when it exits (or, if it was killed, the next such process does). Set it yourself to keep counts
across restarts of the whole service (then clear it when you deploy, as with prometheus-client's
multiprocess directory)."""

HOPTRACE_METRICS_HOST = "HOPTRACE_METRICS_HOST"
"""Bind address of the ``/metrics`` endpoint. Default ``127.0.0.1``."""

HOPTRACE_TEMPO_URL = "HOPTRACE_TEMPO_URL"
"""Base URL of the Tempo HTTP API that ``hoptrace check`` and ``hoptrace trace`` query. Default
``http://127.0.0.1:3200`` (where ``hoptrace backend`` and compose's Tempo listen)."""

HOPTRACE_TEMPO_BIN = "HOPTRACE_TEMPO_BIN"
"""Path of a Grafana Tempo binary for ``--trace-backend=tempo`` / ``hoptrace demo --backend tempo`` when no
``--tempo-url`` is given. Unset: ``tempo`` on PATH, else ``docker compose`` with ``compose/``."""

HOPTRACE_EDGE = "HOPTRACE_EDGE"
"""``true`` marks this service as the trusted edge: inbound W3C ``baggage`` from callers is dropped (unless
``HOPTRACE_TRUST_INBOUND_BAGGAGE`` is ``true``) and the tenant comes from ``HOPTRACE_TENANT_HEADER``.
``false`` marks an internal service, which keeps the baggage that the hoptrace service calling it sent.
Default: ``true`` when ``HOPTRACE_TENANT_HEADER`` is set, else ``false``. Only inbound HTTP requests are
subject to it; messages consumed from RabbitMQ always come from inside and keep their baggage."""

HOPTRACE_TENANT_SECRET = "HOPTRACE_TENANT_SECRET"
"""Comma-separated secrets (each at least 16 characters) shared by the hoptrace services of one deployment.
The first signs the tenant entry every hop sends (an HMAC over the tenant and the trace id, in the baggage
property ``hoptrace.sig``); all of them verify. To rotate, roll out ``old,new``, then ``new,old``, then
``new``: every service verifies a key before any signs with it. Set, a tenant entry survives internal HTTP
and queue hops only when hoptrace signed it; an unsigned or badly signed one is dropped and counted, and an
edge keeps the inbound baggage of requests whose tenant hoptrace signed. One environment then serves every
service (no per-service ``HOPTRACE_EDGE``). Unset: no signing; ``HOPTRACE_EDGE`` alone decides. A secret
shorter than 16 characters leaves the service untraced with one warning line."""

HOPTRACE_LOG_CORRELATION = "HOPTRACE_LOG_CORRELATION"
"""``false`` leaves stdlib logging alone. Default ``true``: every ``logging.LogRecord`` gets the attributes
``trace_id``, ``span_id``, ``trace_flags`` and ``tenant`` (empty strings outside a span / tenant)."""

HOPTRACE_LOG_FORMAT = "HOPTRACE_LOG_FORMAT"
"""``json`` puts :class:`hoptrace.tracing.JsonFormatter` on the root logger's handlers (adding a stderr
handler if there is none) at start-up. Unset: log formatting is left to the application."""

# --- processors (RED metrics, redaction, tenant attribute): read by processors/_install.py ---

HOPTRACE_TENANT_ATTRIBUTE = "HOPTRACE_TENANT_ATTRIBUTE"
"""``false`` stops the bootstrap from copying the tenant (baggage ``tenant.id``) onto every span as the
``tenant.id`` attribute. Default ``true``. Propagation of the tenant in baggage is not affected."""

HOPTRACE_RED_METRICS = "HOPTRACE_RED_METRICS"
"""``false`` turns off span-derived RED metrics (``traces_spanmetrics_*``), and with them the ``/metrics``
endpoint and their OTLP export. Default ``true`` (the endpoint itself needs ``HOPTRACE_METRICS_PORT``)."""

HOPTRACE_METRICS_MAX_SERIES = "HOPTRACE_METRICS_MAX_SERIES"
"""Cardinality limit of the RED metrics: series per metric, the ``otel_metric_overflow="true"`` series
included. An integer >= 2; default ``2000``."""

HOPTRACE_METRICS_OTLP = "HOPTRACE_METRICS_OTLP"
"""``true`` also exports the RED metrics as OTLP metrics (cumulative), every ``OTEL_METRIC_EXPORT_INTERVAL``
milliseconds (default 60000), to the endpoint and protocol the spans use (``OTEL_EXPORTER_OTLP_*``).
Default ``false``."""

HOPTRACE_REDACTION = "HOPTRACE_REDACTION"
"""``false`` exports spans without masking secrets. Default ``true``: URL credentials, sensitive query
parameter values, secret-looking attribute keys, bearer/basic tokens and JWTs are masked before export
(rules in ``processors/_redaction.py`` and the README)."""

HOPTRACE_REDACT_KEYS = "HOPTRACE_REDACT_KEYS"
"""Comma-separated extra secret key words (regular expressions matched against whole components of an
attribute key, ignoring case), e.g. ``ssn,iban``. Added to the defaults."""

HOPTRACE_REDACT_QUERY_PARAMETERS = "HOPTRACE_REDACT_QUERY_PARAMETERS"
"""Comma-separated extra URL query parameter names whose values are masked, e.g. ``otp,code``. Added to
semconv's list (``AWSAccessKeyId``, ``Signature``, ``sig``, ``X-Goog-Signature``) and ``X-Amz-*``."""

# --- test harness aid ---

HOPTRACE_OPEN_SPANS_URL = "HOPTRACE_OPEN_SPANS_URL"
"""URL to which the bootstrap reports each span when it starts (an "open span" record, see
``hoptrace.tracing._open_spans``), so that a test harness knows which spans are still running and a trace's
completeness is a fact, not a guess. The harness's launcher sets it to its embedded backend's
``/hoptrace/v1/open-spans``. Unset (the default): nothing is reported. Costs one buffered append per span.
When set, the OTLP exporter is also built at start-up rather than at the first span, so that a fresh
service's first trace is not late."""
