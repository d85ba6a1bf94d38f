"""OTLP/JSON decoding off the serving process's interpreter lock, for large bodies.

protobuf's JSON parser is pure Python: a 45 MiB body costs tens of seconds of CPU, and ``json.loads``
holds the interpreter lock for up to a second in one call, which stalls every other thread of the
backend (``/ready`` included). Bodies over :data:`OFF_PROCESS_BYTES` are therefore decoded in one
worker process (started on first use, with ``spawn`` so that no gRPC thread state is forked); smaller
ones, which cost milliseconds, on a thread. Either way the result is a binary request.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from starlette.concurrency import run_in_threadpool

from hoptrace.harness.backend._errors import InvalidPayload, Unavailable
from hoptrace.harness.backend._otlp_json import json_to_protobuf

OFF_PROCESS_BYTES = 1024 * 1024


class JsonDecoder:
    """Turns OTLP/JSON bodies into binary requests; see the module docstring. Thread and async safe."""

    def __init__(self, off_process_bytes: int = OFF_PROCESS_BYTES) -> None:
        self._off_process_bytes = off_process_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def decode(self, body: bytes) -> bytes:
        """The binary request; raises :class:`InvalidPayload`, or :class:`Unavailable` once closed."""
        if len(body) <= self._off_process_bytes:
            return await run_in_threadpool(json_to_protobuf, body)
        pool = self._worker_pool()
        try:
            return await run_in_threadpool(lambda: pool.submit(json_to_protobuf, body).result())
        except BrokenProcessPool as exc:  # the worker died (e.g. out of memory): this body's fault
            with self._lock:
                self._pool = None
            raise InvalidPayload(f"the JSON decoder failed on this {len(body)} byte body: {exc}") from exc

    def _worker_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise Unavailable("the backend is stopping", retry_after_seconds=1)
            if self._pool is None:
                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            return self._pool

    def close(self) -> None:
        """Stop the worker process, if one was started. Blocks until it exits."""
        with self._lock:
            pool, self._pool, self._closed = self._pool, None, True
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
