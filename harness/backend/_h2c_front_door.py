"""One TCP port for Tempo's HTTP API and its gRPC streaming API, as Tempo serves them.

Grafana opens gRPC (HTTP/2 without TLS, "h2c" with prior knowledge) on the data source URL's own host
and port. Every HTTP/2 connection starts with the fixed client preface ``PRI * HTTP/2.0...``, which no
HTTP/1.1 request line can start with; so the first bytes of a connection decide:

- the preface: the connection is relayed, byte for byte, to an in-process grpcio server on a loopback
  port (:class:`~hoptrace.harness.backend._grpc_querier.GrpcQuerier`);
- anything else: the connection is handed, with the bytes read so far, to uvicorn's own HTTP/1.1
  protocol, which then owns it as if it had accepted it.

Why a relay and not an ASGI server that speaks h2c: grpcio implements gRPC completely (HTTP/2 flow
control, trailers, deadlines, cancellation), while gRPC over ASGI would mean writing gRPC's framing
and status trailers by hand, and moving the whole HTTP API to another server. The relay costs one
loopback hop per gRPC connection and nothing for HTTP/1.1 traffic. Written by hand because no library
splits one listening socket between uvicorn and grpcio.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

logger = logging.getLogger(__name__)

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class _Relay(asyncio.Protocol):
    """The loopback side of a relayed connection: what grpcio sends goes back to the client."""

    def __init__(self, front: FrontDoorProtocol) -> None:
        self._front = front
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._front.send_to_client(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._front.close_client()

    def pause_writing(self) -> None:  # grpcio reads slower than the client sends
        self._front.pause_client()

    def resume_writing(self) -> None:
        self._front.resume_client()


def front_door_protocol(
    grpc_port: int, http_protocol: type[asyncio.Protocol] = AutoHTTPProtocol
) -> type[Any]:
    """A uvicorn ``http`` protocol class that relays HTTP/2 connections to ``127.0.0.1:grpc_port``."""

    class _BoundFrontDoor(FrontDoorProtocol):
        relay_port = grpc_port
        http_class = http_protocol

    return _BoundFrontDoor


class FrontDoorProtocol(asyncio.Protocol):
    """Reads a connection's first bytes, then relays it to gRPC or hands it to uvicorn's HTTP/1.1.

    uvicorn constructs it like its own protocols (``config``, ``server_state``, ``app_state``); use
    :func:`front_door_protocol` to bind the gRPC port. Runs on the server's event loop only.
    """

    relay_port = 0
    http_class: type[asyncio.Protocol] = AutoHTTPProtocol

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        self._http_arguments = {"config": config, "server_state": server_state, "app_state": app_state}
        self._buffer = b""
        self._client: asyncio.Transport | None = None
        self._relay: _Relay | None = None
        self._relay_buffer: list[bytes] | None = None

    # ---- the client's side
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._client = transport

    def data_received(self, data: bytes) -> None:
        if self._relay_buffer is not None:
            self._relay_buffer.append(data)
            return
        if self._relay is not None and self._relay.transport is not None:
            self._relay.transport.write(data)
            return
        self._buffer += data
        if len(self._buffer) < len(HTTP2_PREFACE) and HTTP2_PREFACE.startswith(self._buffer):
            return  # could still become the preface: wait for more
        if self._buffer.startswith(HTTP2_PREFACE):
            self._open_relay()
        else:
            self._hand_to_http()

    def eof_received(self) -> bool | None:
        if (
            self._relay is not None
            and self._relay.transport is not None
            and self._relay.transport.can_write_eof()
        ):
            self._relay.transport.write_eof()
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._relay is not None and self._relay.transport is not None:
            self._relay.transport.close()

    def pause_writing(self) -> None:  # the client reads slower than grpcio answers
        if self._relay is not None and self._relay.transport is not None:
            self._relay.transport.pause_reading()

    def resume_writing(self) -> None:
        if self._relay is not None and self._relay.transport is not None:
            self._relay.transport.resume_reading()

    # ---- called by the relay
    def send_to_client(self, data: bytes) -> None:
        if self._client is not None and not self._client.is_closing():
            self._client.write(data)

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()

    def pause_client(self) -> None:
        if self._client is not None:
            self._client.pause_reading()

    def resume_client(self) -> None:
        if self._client is not None:
            self._client.resume_reading()

    # ---- the two ways on
    def _hand_to_http(self) -> None:
        assert self._client is not None
        protocol = self.http_class(**self._http_arguments)
        self._client.set_protocol(protocol)
        protocol.connection_made(self._client)
        buffered, self._buffer = self._buffer, b""
        protocol.data_received(buffered)

    def _open_relay(self) -> None:
        relay = self._relay = _Relay(self)
        self._relay_buffer = [self._buffer]
        self._buffer = b""
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.create_connection(lambda: relay, "127.0.0.1", self.relay_port))
        task.add_done_callback(self._relay_opened)

    def _relay_opened(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is not None:
            logger.warning(
                "cannot relay a gRPC connection to the querier: %r",
                None if task.cancelled() else task.exception(),
            )
            self.close_client()
            return
        pending, self._relay_buffer = self._relay_buffer or [], None
        assert self._relay is not None and self._relay.transport is not None
        for chunk in pending:
            self._relay.transport.write(chunk)
