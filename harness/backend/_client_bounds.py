"""Bounds on the clients of the backend's HTTP servers: how many connections, and how slow.

uvicorn holds an idle socket, a half-sent header or a body sent one byte at a time for as long as the
client likes, and accepts connections until the process runs out of file descriptors (then asyncio
logs every failed ``accept``). Under ``ulimit -n 1024``, 1,100 idle sockets made the API unreachable.
So each server's connections go through :class:`ConnectionGuard`:

- at most ``max_connections`` at once. A new connection beyond it closes the connection that has been
  waiting longest for a complete request (idle keep-alive, or headers still arriving), so that a flood
  of idle sockets cannot lock real clients out; if every connection is busy with a request, the new
  one is closed at once;
- a connection must deliver a request's headers within ``header_timeout_seconds`` of opening (or of
  its previous response), and the body within ``body_timeout_seconds`` of the headers, or is closed.

uvicorn has no such settings (its ``limit_concurrency`` answers 503 but keeps every socket; its
keep-alive timeout starts only after a response), hence this subclass of its h11 protocol, which
relies only on uvicorn's documented protocol hooks and h11's connection states.
"""

from __future__ import annotations

import asyncio
import resource
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from hoptrace.harness.backend._h2c_front_door import FrontDoorProtocol

FD_RESERVE = 128
"""File descriptors kept for everything but HTTP clients (gRPC, the --db log, pipes, libraries)."""


@dataclass(frozen=True, slots=True)
class ClientBounds:
    max_connections: int
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.header_timeout_seconds <= 0 or self.body_timeout_seconds <= 0:
            raise ValueError(f"client bounds must be positive, got {self}")


def connection_budget(servers: int) -> int:
    """Connections each of ``servers`` servers (HTTP and gRPC) may hold, from the file descriptor limit.

    Raises the soft limit to the hard one first, as Go programs such as Tempo do at start.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65_536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
            soft = max(soft, target)
        except (ValueError, OSError):
            pass
    return max(8, min(4096, (soft - FD_RESERVE) // servers))


@dataclass(slots=True)
class GuardCounters:
    evicted: int = 0
    """Waiting connections closed to make room for a new one."""
    refused: int = 0
    """New connections closed because every slot was busy with a request."""
    timed_out: int = 0
    """Connections closed because headers or body came too slowly."""


class _Guarded(Protocol):
    def close(self) -> None: ...


class ConnectionGuard:
    """One server's connection slots and timeouts; used on its event loop thread only."""

    def __init__(self, bounds: ClientBounds) -> None:
        self.bounds = bounds
        self.counters = GuardCounters()
        self._connections: set[_Guarded] = set()
        self._waiting: OrderedDict[_Guarded, None] = OrderedDict()

    def protocol_class(self) -> type[GuardedH11Protocol]:
        """The uvicorn ``http`` protocol class bound to this guard (pass it as ``Config(http=...)``)."""
        return type("BoundGuardedH11Protocol", (GuardedH11Protocol,), {"guard": self})

    def front_door_class(self, grpc_port: int) -> type[GuardedFrontDoor]:
        """Like :meth:`protocol_class`, for a port that also relays gRPC to ``grpc_port``."""
        attributes = {"guard": self, "relay_port": grpc_port, "http_class": self.protocol_class()}
        return type("BoundGuardedFrontDoor", (GuardedFrontDoor,), attributes)

    def admit(self, protocol: _Guarded) -> bool:
        if len(self._connections) >= self.bounds.max_connections:
            if not self._waiting:
                self.counters.refused += 1
                return False
            oldest, _ = self._waiting.popitem(last=False)
            self.counters.evicted += 1
            oldest.close()
        self._connections.add(protocol)
        return True

    def waiting(self, protocol: _Guarded) -> None:
        self._waiting[protocol] = None

    def busy(self, protocol: _Guarded) -> None:
        self._waiting.pop(protocol, None)

    def release(self, protocol: _Guarded) -> None:
        self._connections.discard(protocol)
        self._waiting.pop(protocol, None)


class _ClientTimer:
    """A connection's pending timeout: when it fires, the guard counts it and the connection closes."""

    def __init__(self, guard: ConnectionGuard, connection: _Guarded) -> None:
        self._guard = guard
        self._connection = connection
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, seconds: float) -> None:
        self.cancel()
        self._handle = asyncio.get_running_loop().call_later(seconds, self._expire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _expire(self) -> None:
        self._handle = None
        self._guard.counters.timed_out += 1
        self._guard.busy(self._connection)
        self._connection.close()


class _GuardedConnection(asyncio.Protocol):
    """What both guarded protocols share: a slot in the guard, a timer, and closing on either's behalf."""

    guard: ConnectionGuard
    _timer: _ClientTimer
    _guarded_transport: asyncio.Transport | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()
        self.guard.release(self)
        super().connection_lost(exc)

    def close(self) -> None:
        self._timer.cancel()
        transport = self._guarded_transport
        if transport is not None and not transport.is_closing():
            transport.close()


class GuardedH11Protocol(_GuardedConnection, H11Protocol):
    """uvicorn's h11 protocol under a :class:`ConnectionGuard` (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer = _ClientTimer(self.guard, self)
        self._phase = "waiting"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._guarded_transport = transport
        if not self.guard.admit(self):
            transport.abort()
            return
        self._await_request()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_request()
            self._follow_request()  # a pipelined request may already be under way

    def _await_request(self) -> None:
        self._phase = "waiting"
        self.guard.waiting(self)
        self._timer.arm(self.guard.bounds.header_timeout_seconds)

    def _follow_request(self) -> None:
        state = self.conn.their_state
        if state is h11.IDLE or self._phase == "handling":
            return
        if state is h11.SEND_BODY:
            if self._phase != "body":
                self._phase = "body"
                self.guard.busy(self)
                self._timer.arm(self.guard.bounds.body_timeout_seconds)
            return
        self._phase = "handling"  # the request is complete; the query deadline bounds the rest
        self.guard.busy(self)
        self._timer.cancel()


class GuardedFrontDoor(_GuardedConnection, FrontDoorProtocol):
    """The API port's front door under a :class:`ConnectionGuard`: until its first bytes decide, a
    connection holds a slot and must send within the header timeout. An HTTP/1.1 connection then gives
    its slot to the guarded h11 protocol it is handed to; a relayed gRPC connection keeps it as busy."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer = _ClientTimer(self.guard, self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert isinstance(transport, asyncio.Transport)
        self._guarded_transport = transport
        if not self.guard.admit(self):
            transport.abort()
            return
        self.guard.waiting(self)
        self._timer.arm(self.guard.bounds.header_timeout_seconds)

    def _hand_to_http(self) -> None:
        self._timer.cancel()
        self.guard.release(self)
        super()._hand_to_http()

    def _open_relay(self) -> None:
        self._timer.cancel()
        self.guard.busy(self)
        super()._open_relay()
