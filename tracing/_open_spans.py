"""Report every span when it starts, so a test harness knows which spans are still running.

Exporters only ever see finished spans: a trace that looks complete may still have work running, and a
harness that waits for "no new span for a while" guesses. With ``HOPTRACE_OPEN_SPANS_URL`` set (the
harness's launcher sets it to its embedded backend), :class:`OpenSpanReporter` sends a small "open" record
of each span as it starts; the backend keeps these apart from the traces (the Tempo API never shows them),
and the harness counts a span as running until its finished version arrives.

Wire format (hoptrace's own, JSON over HTTP ``POST``): ``{"service": NAME, "spans": [{"traceId": HEX32,
"spanId": HEX16, "parentSpanId": HEX16 | "", "name": STR, "kind": "server" | "client" | "producer" |
"consumer" | "internal", "startTimeUnixNano": INT}]}``.

Cost and safety: ``on_start`` only appends a tuple to a bounded buffer and wakes one sender thread, which
batches whatever accumulated into one request over a kept-alive ``http.client`` connection (stdlib, so the
report is never itself traced by the httpx instrumentation). A full buffer or a failing backend drops
records and counts them (one warning line, then only counting): a dropped record only makes the harness
fall back to waiting for quiet. Nothing here raises into the service. Fork-safe: a child starts afresh.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span, SpanProcessor

from hoptrace.tracing import environment_variables as env

logger = logging.getLogger("hoptrace.tracing")

MAX_BUFFERED = 10_000
"""Records waiting to be sent; past this, new ones are dropped and counted."""
_BATCH = 512
_TIMEOUT_SECONDS = 2.0
_KINDS = ("internal", "server", "client", "producer", "consumer")  # OTel API SpanKind values 0..4

_Record = tuple[int, int, int, str, int, int]
"""trace id, span id, parent span id (0: none), name, kind value, start time (ns)."""


class OpenSpanReporter(SpanProcessor):
    """Sends an "open" record of each span that starts to ``url``; see the module docstring.

    Thread-safe. ``on_start`` never blocks on the network and never raises.
    """

    def __init__(self, url: str, service_name: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{env.HOPTRACE_OPEN_SPANS_URL} must be an http(s) URL, got {url!r}")
        self._parts = parts
        self._service = service_name
        self._init_state()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._init_state)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._buffer: list[_Record] = []
        self._thread: threading.Thread | None = None
        self._connection: http.client.HTTPConnection | None = None
        self._closed = False
        self.dropped = 0
        """Records not delivered (buffer full, or the backend did not take them)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            context = span.get_span_context()
            parent = span.parent
            record = (
                context.trace_id,
                context.span_id,
                parent.span_id if parent is not None else 0,
                span.name,
                span.kind.value,
                span.start_time or 0,
            )
            with self._lock:
                if len(self._buffer) >= MAX_BUFFERED:
                    self._drop(1, "the buffer is full")
                    return
                self._buffer.append(record)
                if self._thread is None:
                    self._start_sender()
            self._wake.set()
        except Exception:  # a harness aid must never break the traced service
            logger.debug("hoptrace: open-span record not taken", exc_info=True)

    def shutdown(self) -> None:
        self._closed = True
        self._wake.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def _start_sender(self) -> None:
        thread = threading.Thread(target=self._run, name="hoptrace-open-spans", daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            while True:
                with self._lock:
                    batch, self._buffer = self._buffer[:_BATCH], self._buffer[_BATCH:]
                if not batch:
                    break
                self._send(batch)

    def _send(self, batch: list[_Record]) -> None:
        body = json.dumps({"service": self._service, "spans": [_json(record) for record in batch]})
        for attempt in (1, 2):  # a kept-alive connection the server closed fails once; reconnect
            try:
                connection = self._connection or self._connect()
                connection.request(
                    "POST", self._parts.path or "/", body, {"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    self._drop(len(batch), f"the backend answered {response.status}")
                return
            except (OSError, http.client.HTTPException) as exc:
                self._close_connection()
                if attempt == 2:
                    self._drop(len(batch), f"cannot reach {self._parts.netloc}: {exc}")

    def _connect(self) -> http.client.HTTPConnection:
        port = self._parts.port
        connection_class = (
            http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
        )
        self._connection = connection_class(self._parts.hostname or "", port, timeout=_TIMEOUT_SECONDS)
        return self._connection

    def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _drop(self, count: int, reason: str) -> None:
        first = self.dropped == 0
        self.dropped += count
        if first:
            logger.warning(
                "hoptrace: %d open-span record(s) not reported (%s); further ones are only counted",
                count,
                reason,
            )


def _json(record: _Record) -> dict[str, Any]:
    trace_id, span_id, parent_id, name, kind, start = record
    return {
        "traceId": f"{trace_id:032x}",
        "spanId": f"{span_id:016x}",
        "parentSpanId": f"{parent_id:016x}" if parent_id else "",
        "name": name,
        "kind": _KINDS[kind] if 0 <= kind < len(_KINDS) else "internal",
        "startTimeUnixNano": start,
    }


def open_span_reporter_from_environment(
    environ: Mapping[str, str], resource: Resource
) -> OpenSpanReporter | None:
    """The reporter when ``HOPTRACE_OPEN_SPANS_URL`` is set, else ``None``. A bad URL logs one warning and
    returns ``None``; never raises."""
    url = environ.get(env.HOPTRACE_OPEN_SPANS_URL, "").strip()
    if not url:
        return None
    service = str(resource.attributes.get("service.name", ""))
    try:
        return OpenSpanReporter(url, service)
    except ValueError as exc:
        logger.warning("hoptrace: %s; spans that are still running are not reported", exc)
        return None
