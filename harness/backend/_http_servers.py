"""Run ASGI apps on uvicorn in one background thread, each on a socket bound before start.

Binding the sockets first makes port 0 usable (the port is known before uvicorn runs) and turns a busy
port into an ``OSError`` in the caller's thread. Uvicorn installs no signal handlers off the main thread,
so the process's own SIGINT/SIGTERM handling is left alone.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Mapping

import uvicorn
from starlette.types import ASGIApp

from hoptrace.harness._errors import BackendNotReady


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
        protocols: Mapping[int, type[asyncio.Protocol]] | None = None,
    ) -> None:
        """``protocols`` maps an index in ``apps`` to the uvicorn ``http`` protocol class that serves it
        (e.g. :func:`~hoptrace.harness.backend._h2c_front_door.front_door_protocol`); others use uvicorn's."""
        chosen = protocols or {}
        self._servers = [
            (
                uvicorn.Server(
                    uvicorn.Config(
                        app,
                        http=chosen.get(index, "auto"),
                        lifespan="off",
                        log_level="warning",
                        access_log=False,
                        timeout_graceful_shutdown=2,
                    )
                ),
                sock,
            )
            for index, (app, sock) in enumerate(apps)
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
        await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in self._servers))
