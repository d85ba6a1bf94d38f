"""A lean HTTP/1.1 transport for OTLP/HTTP over plain ``http://``: one kept-alive socket, no pool.

Why: with spans encoded by hand (:mod:`hoptrace.tracing._otlp.encoding`), posting a batch became the
largest cost of the export thread. urllib3 (pool manager, connection pool, retry and timeout objects,
``http.client``'s request and its ``email``-based response header parser) spent ~0.9M CPU instructions per
post, and in a service exporting every second that is a few percent of the service's CPU. This transport
writes the request line and headers as one bytes object, sends it with the body, and reads the status
line, the headers and the body (``Content-Length``, chunked, or until the server closes) itself. h11, the
sans-I/O HTTP/1.1 library httpcore builds on, was the library to use, but one request/response cycle through
it costs ~200 µs of CPU here, about what urllib3 costs, against ~10 µs for this parser of OTLP's small
responses.

It implements the SDK's ``BaseHTTPTransport`` interface, so the SDK's OTLP/HTTP client still does
everything else as before: headers (``OTEL_EXPORTER_OTLP_*HEADERS``), compression, timeouts, retries with
back-off, ``Retry-After``, the immediate retry of a connection error. It is used only where urllib3 would
have been (no proxy variable, the SDK's default session) and only for ``http://`` endpoints; ``https://``
keeps urllib3 and its TLS settings. Errors are classified as urllib3's were: failing to connect and a
connection lost (reset, or closed before a complete response) are connection errors (the SDK retries them),
a read timeout and a malformed response are not. Redirects are not followed (neither were they).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.exporter.http.transport._base import BaseHTTPResult, BaseHTTPTransport

_MAX_HEADER_BYTES = 64 * 1024
"""A response whose status line and headers are longer than this is malformed."""
_MAX_BODY_BYTES = 16 * 1024 * 1024
"""A response body longer than this is malformed (an OTLP response is a few bytes)."""
_RECEIVE = 64 * 1024


class ConnectFailed(ConnectionError):
    """The connection to the endpoint could not be made (refused, unresolvable, timed out)."""


class ConnectionLost(ConnectionError):
    """The connection broke, or the server closed it, before a complete response arrived."""


class ResponseTimeout(TimeoutError):
    """The request was sent and no complete response arrived in time (not retried at once, as urllib3's
    read timeout was not)."""


class MalformedResponse(ValueError):
    """The server answered something that is not an HTTP/1.x response."""


class Headers(Mapping[str, str]):
    """Response headers: case-insensitive names, repeated headers joined with ``", "``."""

    def __init__(self, pairs: dict[str, str]) -> None:
        self._pairs = pairs  # lower-case names

    def __getitem__(self, name: str) -> str:
        return self._pairs[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:
        return self._pairs.get(name.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)


_NO_HEADERS = Headers({})


@dataclass(frozen=True, slots=True)
class HttpResult(BaseHTTPResult):
    """One response (``status_code``, ``reason``, headers and body), or the ``error`` that stopped it."""

    response_headers: Headers | None = field(default=None, compare=False)
    body: bytes = b""

    def content(self) -> bytes:
        return self.body

    def headers(self) -> Mapping[str, str]:
        return self.response_headers if self.response_headers is not None else _NO_HEADERS


def is_plain_http(url: str) -> bool:
    """Whether this transport can post to ``url`` (an ``http://`` URL with a host)."""
    try:
        parts = urllib.parse.urlsplit(url)
        return parts.scheme.lower() == "http" and bool(parts.hostname) and parts.port != 0
    except ValueError:
        return False


class _Target:
    """Where one URL points: the address to connect to and the request's first bytes."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() != "http" or not parts.hostname:
            raise ValueError(f"not a plain http:// URL: {url!r}")
        self.address = (parts.hostname, parts.port or 80)
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.host = host


class KeepAliveHttpTransport(BaseHTTPTransport):
    """Posts over one kept-alive HTTP/1.1 connection per endpoint address (reconnecting when the server
    closed it); see the module docstring. Thread-safe: requests are serialised. ``request`` never raises:
    a failure is returned as the result's ``error``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: dict[str, _Target] = {}
        self._socket: socket.socket | None = None
        self._connected_to: tuple[str, int] | None = None
        self._head_cache: tuple[object, str] | None = None

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        data: bytes | None = None,
    ) -> BaseHTTPResult:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            try:
                target = self._targets.get(url)
                if target is None:
                    target = self._targets[url] = _Target(url)
                head = self._head(method, target, headers or {}, len(data or b""))
                sock = self._connection(target.address, deadline)
                try:
                    _send(sock, head, data or b"", deadline)
                    result, keep = _receive(sock, deadline, method)
                except BaseException:
                    self._close()
                    raise
                if not keep:
                    self._close()
                return result
            except Exception as error:
                return HttpResult(error=error)

    def is_connection_error(self, exception: Exception | None) -> bool:
        return isinstance(exception, ConnectionError)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _head(self, method: str, target: _Target, headers: Mapping[str, str], length: int) -> bytes:
        """The request line and headers; everything but the length is cached for the same headers."""
        key = (method, target, tuple(headers.items()))
        cached = self._head_cache
        if cached is None or cached[0] != key:
            lines = [f"{method} {target.path} HTTP/1.1", f"Host: {target.host}"]
            for name, value in headers.items():
                name, value = str(name), str(value)
                if not name or any(c in name for c in "\r\n:\0 \t") or any(c in value for c in "\r\n\0"):
                    raise ValueError(f"invalid HTTP header {name!r}")
                if name.lower() not in ("host", "content-length", "transfer-encoding", "connection"):
                    lines.append(f"{name}: {value}")
            cached = self._head_cache = (key, "\r\n".join(lines))
        return f"{cached[1]}\r\nContent-Length: {length}\r\n\r\n".encode("latin-1")

    def _connection(self, address: tuple[str, int], deadline: float | None) -> socket.socket:
        sock = self._socket
        if sock is not None and (self._connected_to != address or _closed_by_peer(sock)):
            self._close()
            sock = None
        if sock is None:
            try:
                sock = socket.create_connection(address, timeout=_remaining(deadline))
            except OSError as exc:
                raise ConnectFailed(f"cannot connect to {address[0]}:{address[1]}: {exc}") from exc
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socket, self._connected_to = sock, address
        return sock

    def _close(self) -> None:
        sock, self._socket, self._connected_to = self._socket, None, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise ResponseTimeout("the export timeout passed")
    return left


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether an idle kept-alive connection became readable: the server closed it (or sent something
    unasked), so it cannot carry the next request."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _send(sock: socket.socket, head: bytes, body: bytes, deadline: float | None) -> None:
    try:
        sock.settimeout(_remaining(deadline))
        if len(body) <= 16 * 1024:
            sock.sendall(head + body)
        else:
            sock.sendall(head)
            sock.sendall(body)
    except TimeoutError as exc:
        raise ResponseTimeout("timed out sending the request") from exc
    except OSError as exc:
        raise ConnectionLost(f"connection lost while sending: {exc}") from exc


class _Reader:
    """Buffered reads of one response, within the deadline."""

    def __init__(self, sock: socket.socket, deadline: float | None) -> None:
        self._sock = sock
        self._deadline = deadline
        self.buffer = b""
        self.received_any = False

    def more(self) -> bool:
        """Read what arrived; ``False`` when the server closed the connection."""
        try:
            self._sock.settimeout(_remaining(self._deadline))
            chunk = self._sock.recv(_RECEIVE)
        except TimeoutError as exc:
            raise ResponseTimeout("timed out waiting for the response") from exc
        except OSError as exc:
            raise ConnectionLost(f"connection lost while reading the response: {exc}") from exc
        if not chunk:
            return False
        self.received_any = True
        self.buffer += chunk
        return True

    def until(self, marker: bytes, limit: int) -> bytes:
        """Everything up to ``marker`` (consumed, not returned)."""
        while True:
            end = self.buffer.find(marker)
            if end >= 0:
                found, self.buffer = self.buffer[:end], self.buffer[end + len(marker) :]
                return found
            if len(self.buffer) > limit:
                raise MalformedResponse("response line or headers too long")
            if not self.more():
                raise ConnectionLost("the server closed the connection before a complete response")

    def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not self.more():
                raise ConnectionLost("the server closed the connection before the end of the response")
        found, self.buffer = self.buffer[:count], self.buffer[count:]
        return found


def _receive(sock: socket.socket, deadline: float | None, method: str) -> tuple[HttpResult, bool]:
    """Read one response: the result, and whether the connection can carry another request."""
    reader = _Reader(sock, deadline)
    while True:
        version, status, reason, pairs = _status_and_headers(reader)
        if not 100 <= status < 200 or status == 101:
            break  # 1xx responses (100 Continue) precede the real one
    keep = version == "HTTP/1.1" and "close" not in pairs.get("connection", "").lower()
    if version == "HTTP/1.0":
        keep = "keep-alive" in pairs.get("connection", "").lower()
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif "chunked" in pairs.get("transfer-encoding", "").lower():
        body = _chunked(reader)
    elif "content-length" in pairs:
        try:
            length = int(pairs["content-length"].split(",")[0].strip())
        except ValueError as exc:
            raise MalformedResponse("bad Content-Length") from exc
        if not 0 <= length <= _MAX_BODY_BYTES:
            raise MalformedResponse("bad Content-Length")
        body = reader.exactly(length)
    else:  # delimited by the server closing the connection
        while reader.more():
            if len(reader.buffer) > _MAX_BODY_BYTES:
                raise MalformedResponse("response body too long")
        body, keep = reader.buffer, False
    if reader.buffer:  # bytes past the response: the connection's framing is unknown from here
        keep = False
    return HttpResult(status_code=status, reason=reason, response_headers=Headers(pairs), body=body), keep


def _status_and_headers(reader: _Reader) -> tuple[str, int, str, dict[str, str]]:
    head = reader.until(b"\r\n\r\n", _MAX_HEADER_BYTES).decode("latin-1")
    status_line, *lines = head.split("\r\n")
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise MalformedResponse(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    pairs: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise MalformedResponse(f"bad header line: {line[:80]!r}")
        key, value = name.lower(), value.strip()
        pairs[key] = f"{pairs[key]}, {value}" if key in pairs else value
    return version, int(code), reason.strip(), pairs


def _chunked(reader: _Reader) -> bytes:
    body = b""
    while True:
        size_line = reader.until(b"\r\n", 1024).split(b";")[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError as exc:
            raise MalformedResponse("bad chunk size") from exc
        if size == 0:
            while reader.until(b"\r\n", _MAX_HEADER_BYTES):  # trailers, up to the empty line
                pass
            return body
        body += reader.exactly(size)
        if len(body) > _MAX_BODY_BYTES:
            raise MalformedResponse("response body too long")
        if reader.exactly(2) != b"\r\n":
            raise MalformedResponse("bad chunk end")
