"""Waiting for a condition: re-check it with backoff until it holds or a deadline passes.

This is the one polling mechanism of the harness and of hoptrace's own tests; nothing waits with a fixed
sleep. Blocks the calling thread; holds no state between calls, so it is thread-safe.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from hoptrace.harness._errors import ConditionTimeout

T = TypeVar("T")


def polling(timeout: float, *, first: float = 0.01, ceiling: float = 0.5) -> Iterator[None]:
    """Yield at once, then again after pauses growing 1.5x from ``first`` to ``ceiling`` seconds.

    The caller re-checks its condition at each yield and leaves the loop when it holds. The last yield
    comes at the deadline, ``timeout`` seconds from the first; a loop that runs out means it passed.
    """
    deadline = time.monotonic() + timeout
    delay = first
    while True:
        yield
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(delay, remaining))  # the pause between two checks of the caller's condition
        delay = min(delay * 1.5, ceiling)


def poll_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    on_timeout: Callable[[], str] | None = None,
    first: float = 0.01,
    ceiling: float = 0.5,
) -> T:
    """Call ``probe`` (see :func:`polling` for the pace) until it returns a truthy value; return that value.

    Raises ``ConditionTimeout`` naming ``what``, followed by the text of ``on_timeout()`` (the state worth
    seeing), when ``timeout`` seconds pass first. Exceptions from ``probe`` propagate at once.
    """
    for _ in polling(timeout, first=first, ceiling=ceiling):
        value = probe()
        if value:
            return value
    detail = f"\n{on_timeout()}" if on_timeout is not None else ""
    raise ConditionTimeout(f"timed out after {timeout:g} s waiting for {what}{detail}")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, for programs that cannot bind port 0 and report it back
    (another process may take it before the caller binds it: use port 0 where the program allows)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
