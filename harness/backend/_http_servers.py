"""Run ASGI apps on uvicorn in one background thread, each on a socket bound before start.

Binding the sockets first makes port 0 usable (the port is known before uvicorn runs) and turns a busy
port into an ``OSError`` in the caller's thread. Uvicorn installs no signal handlers off the main thread,
so the process's own SIGINT/SIGTERM handling is left alone. Each server bounds its clients (see
:mod:`._client_bounds`), and what clients cause in the log is logged once, then counted (:mod:`._log_once`).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Mapping

import uvicorn
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from hoptrace.harness._errors import BackendNotReady
from hoptrace.harness.backend._client_bounds import ClientBounds, ConnectionGuard, GuardCounters
from hoptrace.harness.backend._log_once import log_once


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 picks a free port). Raises ``OSError`` if busy."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP, and
    # without it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class HttpServers:
    """Serves each ``(app, socket)`` pair with uvicorn on one daemon thread until :meth:`stop`."""

    def __init__(
        self,
        apps: list[tuple[ASGIApp, socket.socket]],
        bounds: ClientBounds,
        grpc_relay_ports: Mapping[int, int] | None = None,
    ) -> None:
        """``grpc_relay_ports`` maps an index in ``apps`` to a loopback gRPC port: that server also relays
        HTTP/2 connections there (see :mod:`._h2c_front_door`). Every server bounds its clients by
        ``bounds``."""
        log_once()
        relays = grpc_relay_ports or {}
        self.guards = [ConnectionGuard(bounds) for _ in apps]
        self._servers = [
            (
                uvicorn.Server(
                    uvicorn.Config(
                        app,
                        http=(
                            guard.front_door_class(relays[index])
                            if index in relays
                            else guard.protocol_class()
                        ),
                        lifespan="off",
                        log_level="warning",
                        access_log=False,
                        timeout_graceful_shutdown=2,
                    )
                ),
                sock,
            )
            for index, ((app, sock), guard) in enumerate(zip(apps, self.guards, strict=True))
        ]
        self._thread = threading.Thread(target=self._run, name="hoptrace-backend-http", daemon=True)
        self._failure: BaseException | None = None

    def start(self, timeout_seconds: float = 10.0) -> None:
        """Start serving; blocks until every server accepts requests. Raises ``BackendNotReady``."""
        self._thread.start()
        deadline = time.monotonic() + timeout_seconds
        # uvicorn has no start callback: poll its flag (it is set within milliseconds).
        while not all(server.started for server, _ in self._servers):
            if self._failure is not None or not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise BackendNotReady(f"the backend's HTTP servers did not start: {self._failure!r}")
            time.sleep(0.002)

    def closed_connections(self) -> GuardCounters:
        """Connections the servers closed to bound their clients, summed (read from any thread)."""
        total = GuardCounters()
        for guard in self.guards:
            total.evicted += guard.counters.evicted
            total.refused += guard.counters.refused
            total.timed_out += guard.counters.timed_out
        return total

    def stop(self) -> None:
        """Ask every server to finish its requests and exit; blocks until the thread ends."""
        for server, _ in self._servers:
            server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        for _, sock in self._servers:
            sock.close()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve_all())
        except BaseException as exc:  # reported to start(); a thread has nobody else to tell
            self._failure = exc

    async def _serve_all(self) -> None:
        # The first call imports anyio's asyncio backend and starts a worker thread (~35-100 ms): now,
        # not in the first query (every API call that reads the store runs in the thread pool).
        await run_in_threadpool(lambda: None)
        await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in self._servers))
