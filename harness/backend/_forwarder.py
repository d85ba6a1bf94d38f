"""``--forward-otlp``: tee accepted OTLP requests to an upstream endpoint (for example a real Tempo).

Ingest never waits for the upstream: :meth:`OtlpForwarder.submit` appends to a queue bounded in bytes
(dropping the oldest request when full, counted) and one background thread sends, retrying failures
with exponential backoff a bounded number of times (counted). Permanent refusals (HTTP 400/413,
gRPC INVALID_ARGUMENT) are not retried. Thread safe.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import grpc
import httpx

logger = logging.getLogger(__name__)

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOCOLS = ("http/protobuf", "grpc")
_PERMANENT_HTTP = {400, 401, 403, 404, 405, 413, 415}
_PERMANENT_GRPC = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAUTHENTICATED,
}


@dataclass(frozen=True, slots=True)
class ForwarderCounters:
    sent: int
    failed: int
    """Requests given up on after the retries, or refused permanently by the upstream."""
    dropped: int
    """Requests dropped from a full queue."""
    queued_bytes: int


def check_forward_target(url: str, protocol: str) -> None:
    """Raise ``ValueError`` unless ``url`` is an http(s) URL with a host and ``protocol`` is known."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"forward URL must be http(s)://host:port, got {url!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"forward protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


class _Permanent(Exception):
    pass


class OtlpForwarder:
    """Sends every submitted ``ExportTraceServiceRequest`` (serialized) to ``url`` on its own thread.

    ``url`` is the upstream's base URL (``http://tempo:4318``; ``/v1/traces`` is added for
    http/protobuf unless present) or, for ``protocol="grpc"``, ``http://tempo:4317``. Bad arguments
    raise ``ValueError``.
    """

    def __init__(
        self,
        url: str,
        protocol: str = "http/protobuf",
        max_queued_bytes: int = 64 * 1024 * 1024,
        max_attempts: int = 5,
        initial_backoff_seconds: float = 0.2,
        timeout_seconds: float = 10.0,
    ) -> None:
        check_forward_target(url, protocol)
        parts = urlsplit(url)
        if max_queued_bytes < 1 or max_attempts < 1:
            raise ValueError("max_queued_bytes and max_attempts must be positive")
        self.url = url
        self.protocol = protocol
        self._max_queued_bytes = max_queued_bytes
        self._max_attempts = max_attempts
        self._backoff = initial_backoff_seconds
        self._timeout = timeout_seconds
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._in_flight = 0
        self._sent = self._failed = self._dropped = 0
        self._condition = threading.Condition()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hoptrace-forward-otlp", daemon=True)
        if protocol == "grpc":
            target = parts.netloc
            self._channel: grpc.Channel | None = (
                grpc.secure_channel(target, grpc.ssl_channel_credentials())
                if parts.scheme == "https"
                else grpc.insecure_channel(target)
            )
            self._http: httpx.Client | None = None
        else:
            path = parts.path.rstrip("/")
            self._endpoint = (
                url.rstrip("/") if path.endswith("/v1/traces") else f"{url.rstrip('/')}/v1/traces"
            )
            self._http = httpx.Client(timeout=timeout_seconds)
            self._channel = None
        self._thread.start()

    def submit(self, request: bytes) -> None:
        """Queue one serialized request. Never blocks beyond a short lock; drops the oldest when full."""
        with self._condition:
            self._queue.append(request)
            self._queued_bytes += len(request)
            while self._queued_bytes > self._max_queued_bytes and len(self._queue) > 1:
                self._queued_bytes -= len(self._queue.popleft())
                self._dropped += 1
            self._condition.notify_all()

    def flush(self, timeout_seconds: float) -> bool:
        """Block until every queued request was sent or given up on; False on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._queue and not self._in_flight, timeout_seconds)

    def counters(self) -> ForwarderCounters:
        with self._condition:
            return ForwarderCounters(self._sent, self._failed, self._dropped, self._queued_bytes)

    def close(self, timeout_seconds: float = 2.0) -> None:
        """Try to send what is queued for up to ``timeout_seconds``, then stop the thread."""
        self.flush(timeout_seconds)
        self._closing.set()
        with self._condition:
            self._condition.notify_all()
        self._thread.join(timeout=timeout_seconds + self._timeout)
        if self._http is not None:
            self._http.close()
        if self._channel is not None:
            self._channel.close()

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._queue or self._closing.is_set())
                if not self._queue:
                    return
                request = self._queue.popleft()
                self._queued_bytes -= len(request)
                self._in_flight = 1
            sent = self._send_with_retries(request)
            with self._condition:
                self._in_flight = 0
                if sent:
                    self._sent += 1
                else:
                    self._failed += 1
                self._condition.notify_all()

    def _send_with_retries(self, request: bytes) -> bool:
        delay = self._backoff
        for attempt in range(1, self._max_attempts + 1):
            try:
                self._send(request)
                return True
            except _Permanent as exc:
                logger.warning("forwarding to %s refused permanently: %s", self.url, exc)
                return False
            except (httpx.HTTPError, grpc.RpcError, OSError) as exc:
                if attempt == self._max_attempts or self._closing.wait(delay):
                    logger.warning("forwarding to %s failed after %d attempt(s): %s", self.url, attempt, exc)
                    return False
                delay = min(delay * 2, 5.0)
        return False  # pragma: no cover - the loop always returns

    def _send(self, request: bytes) -> None:
        if self._http is not None:
            response = self._http.post(
                self._endpoint, content=request, headers={"Content-Type": "application/x-protobuf"}
            )
            if response.status_code in _PERMANENT_HTTP:
                raise _Permanent(f"HTTP {response.status_code}: {response.text[:200]}")
            response.raise_for_status()
            return
        assert self._channel is not None
        try:
            self._channel.unary_unary(EXPORT_METHOD)(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            if exc.code() in _PERMANENT_GRPC:
                raise _Permanent(f"gRPC {exc.code()}: {exc.details()}") from exc
            raise
