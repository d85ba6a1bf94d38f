"""The lean OTLP/HTTP transport (``KeepAliveHttpTransport``): what it sends, how it reads every framing of a
response, when it keeps or renews its connection, and how it classifies failures for the SDK's retries.

The peer is a real HTTP/1.1 server on a loopback socket that answers each request with the bytes a test
scripts, so framings that the embedded backend never produces (chunked, close-delimited, 1xx) are covered;
delivery to the embedded backend itself is tested in ``test_encoding.py``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.common.http import _OTLPHTTPClient

from hoptrace.tracing._otlp.http_transport import (
    ConnectFailed,
    ConnectionLost,
    KeepAliveHttpTransport,
    MalformedResponse,
    ResponseTimeout,
    is_plain_http,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"


class ScriptedServer:
    """Accepts connections and answers the n-th request with ``answers[n]`` (``None``: close the connection
    without answering; ``b""``: answer nothing and keep the connection open; an HTTP/1.0 answer is followed
    by closing the connection, which ends its body). Records each request's head
    and body, and the number of connections accepted."""

    def __init__(self, answers: list[bytes | None], close_after_each: bool = False) -> None:
        self.answers = answers
        self.close_after_each = close_after_each
        self.requests: list[tuple[bytes, bytes]] = []
        self.connections = 0
        self.closed = threading.Semaphore(0)
        """Released each time the server has closed a connection."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1/traces"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                self._answer(conn)
            self.closed.release()

    def _answer(self, conn: socket.socket) -> None:
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
            )
            while len(buffer) < length:
                buffer += conn.recv(65536)
            body, buffer = buffer[:length], buffer[length:]
            index = len(self.requests)
            self.requests.append((head, body))
            answer = self.answers[index] if index < len(self.answers) else OK
            if answer is None:
                return
            conn.sendall(answer)
            if self.close_after_each or answer.startswith(b"HTTP/1.0"):
                return

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def transport() -> Iterator[KeepAliveHttpTransport]:
    made = KeepAliveHttpTransport()
    yield made
    made.close()


def serve(*answers: bytes | None, close_after_each: bool = False) -> ScriptedServer:
    return ScriptedServer(list(answers), close_after_each)


def test_posts_the_body_with_the_given_headers_and_keeps_the_connection(
    transport: KeepAliveHttpTransport,
) -> None:
    server = serve(OK, OK)
    headers = {"content-type": "application/x-protobuf", "authorization": "Bearer abc"}
    for body in (b"\x0a\x01x", b"second"):
        result = transport.request("POST", server.url, headers=headers, data=body, timeout=5)
        assert (result.status_code, result.reason, result.error) == (200, "OK", None)
    assert [body for _, body in server.requests] == [b"\x0a\x01x", b"second"]
    head = server.requests[0][0].decode().split("\r\n")
    assert head[0] == "POST /v1/traces HTTP/1.1"
    assert set(head[1:]) == {
        f"Host: 127.0.0.1:{server.url.split(':')[2].split('/')[0]}",
        "content-type: application/x-protobuf",
        "authorization: Bearer abc",
        "Content-Length: 3",
    }
    assert server.connections == 1
    server.close()


def test_reads_chunked_and_close_delimited_bodies_and_headers_case_insensitively(
    transport: KeepAliveHttpTransport,
) -> None:
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nX-A: 1\r\nx-a: 2\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n4;ext=1\r\nbusy\r\n3\r\n...\r\n0\r\nTrailer: t\r\n\r\n"
    )
    close_delimited = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nno good"
    server = serve(chunked, close_delimited, OK, close_after_each=False)
    first = transport.request("POST", server.url, data=b"a", timeout=5)
    assert (first.status_code, first.content(), first.headers()["retry-after"]) == (503, b"busy...", "7")
    assert first.headers().get("X-A") == "1, 2"
    second = transport.request("POST", server.url, data=b"b", timeout=5)
    assert (second.status_code, second.reason, second.content()) == (400, "Bad Request", b"no good")
    third = transport.request("POST", server.url, data=b"c", timeout=5)  # HTTP/1.0 closed: a new connection
    assert third.status_code == 200
    assert server.connections == 2
    server.close()


def test_a_connection_the_server_closed_while_idle_is_replaced_before_the_next_post(
    transport: KeepAliveHttpTransport,
) -> None:
    server = serve(OK, OK, OK, close_after_each=True)  # closes after answering, without saying so
    for _ in range(3):
        result = transport.request("POST", server.url, data=b"x", timeout=5)
        assert (result.status_code, result.error) == (200, None)
        assert server.closed.acquire(timeout=5)  # the server has closed it before the next post
    assert server.connections == 3
    server.close()


def test_a_post_racing_the_server_closing_the_connection_is_retried_by_the_sdk_client(
    transport: KeepAliveHttpTransport,
) -> None:
    server = serve(OK, OK, OK, OK, OK, close_after_each=True)
    client = _OTLPHTTPClient(transport, server.url, "spans", timeout=10)
    for _ in range(5):
        assert client.export(b"spans").success
    assert len(server.requests) == 5
    server.close()


def test_failures_are_classified_as_urllib3_classified_them(transport: KeepAliveHttpTransport) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    refused = transport.request("POST", f"http://127.0.0.1:{port}/v1/traces", data=b"x", timeout=5)
    assert isinstance(refused.error, ConnectFailed) and transport.is_connection_error(refused.error)

    server = serve(None, b"", b"SMTP ready\r\n\r\n")
    lost = transport.request("POST", server.url, data=b"x", timeout=5)  # closed without an answer
    assert isinstance(lost.error, ConnectionLost) and transport.is_connection_error(lost.error)
    silent = transport.request("POST", server.url, data=b"x", timeout=0.3)  # never answers
    assert isinstance(silent.error, ResponseTimeout) and not transport.is_connection_error(silent.error)
    garbage = transport.request("POST", server.url, data=b"x", timeout=5)
    assert isinstance(garbage.error, MalformedResponse) and not transport.is_connection_error(garbage.error)
    server.close()


def test_a_header_that_would_split_the_request_is_refused(transport: KeepAliveHttpTransport) -> None:
    server = serve(OK)
    result = transport.request(
        "POST", server.url, headers={"x-a": "1\r\nX-Injected: 2"}, data=b"x", timeout=5
    )
    assert isinstance(result.error, ValueError)
    assert server.requests == []
    server.close()


def test_the_sdk_client_retries_through_it(transport: KeepAliveHttpTransport) -> None:
    """The SDK's OTLP/HTTP client keeps its retry rules: a 503 with Retry-After is retried, and a stale
    connection (closed without an answer) is retried at once."""
    busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n"
    server = serve(busy, None, OK)
    client = _OTLPHTTPClient(transport, server.url, "spans", timeout=10)
    assert client.export(b"spans").success
    assert [body for _, body in server.requests] == [b"spans"] * 3
    server.close()


@pytest.mark.parametrize(
    ("url", "plain"),
    [
        ("http://127.0.0.1:4318/v1/traces", True),
        ("HTTP://collector/v1/traces", True),
        ("https://collector:4318/v1/traces", False),
        ("http:///v1/traces", False),
        ("unix:///tmp/otlp.sock", False),
    ],
)
def test_only_plain_http_urls_take_it(url: str, plain: bool) -> None:
    assert is_plain_http(url) is plain
