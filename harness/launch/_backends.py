"""Trace backends behind one interface: embedded (in-process or subprocess) or Grafana Tempo.

Every backend exposes ``tempo_url`` (Tempo's HTTP API), ``otlp_grpc_endpoint`` / ``otlp_http_endpoint``
(where services export) and ``stop()``. ``open_backend`` starts one and waits, with backoff, until ``/ready``
answers; failures raise ``BackendNotReady`` naming what failed and the URL. ``stop()`` is idempotent and
stops only what was started (an attached Tempo URL is left alone).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from hoptrace.harness._errors import BackendNotReady, ServiceFailedToStart
from hoptrace.harness._polling import free_port, polling
from hoptrace.harness.launch._compose import compose_file, docker_engine_answers
from hoptrace.harness.launch._process import ManagedProcess
from hoptrace.harness.launch._services import hoptrace_command
from hoptrace.harness.tempo._client import OPEN_SPANS_PATH
from hoptrace.tracing.environment_variables import HOPTRACE_TEMPO_BIN


@dataclass
class Backend:
    """A running trace backend; a context manager that stops it."""

    kind: str
    """``embedded``, ``embedded-subprocess``, ``tempo-url``, ``tempo-binary`` or ``tempo-compose``."""
    tempo_url: str
    otlp_grpc_endpoint: str
    otlp_http_endpoint: str
    open_spans_url: str | None = None
    """Where services report spans as they start (``HOPTRACE_OPEN_SPANS_URL``), when the backend takes
    such reports (the embedded one does; Tempo does not)."""
    _stop: list[Callable[[], object]] = field(default_factory=list, repr=False)

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        while self._stop:
            self._stop.pop()()


@dataclass(frozen=True)
class BackendPorts:
    """Where an embedded backend listens; port 0 picks a free port."""

    host: str = "127.0.0.1"
    http_port: int = 0
    """Tempo's HTTP API."""
    otlp_grpc_port: int = 0
    otlp_http_port: int = 0


def open_backend(
    kind: str = "embedded",
    *,
    tempo_url: str | None = None,
    otlp_endpoint: str | None = None,
    subprocess_mode: bool = False,
    timeout: float = 30.0,
    ports: BackendPorts | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> Backend:
    """Start (or attach to) a backend. ``kind`` is ``embedded`` or ``tempo``.

    ``ports`` places the embedded backend (default: free ports on 127.0.0.1). With ``subprocess_mode`` it
    runs as ``hoptrace backend`` in its own process, with ``env`` added to this process's environment and
    ``cwd`` as its working directory. Raises ``OSError`` (in process) or ``BackendNotReady`` when a port is
    busy. For ``tempo``: ``tempo_url`` attaches to a running Tempo (services export to ``otlp_endpoint``,
    default the same host on 4317); else the binary from ``$HOPTRACE_TEMPO_BIN`` or PATH runs with a
    generated config; else ``docker compose`` runs ``compose/``'s ``tempo`` service when a Docker engine
    answers.
    """
    where = ports or BackendPorts()
    if kind == "embedded":
        backend = (
            _embedded_subprocess(where, timeout, env, cwd) if subprocess_mode else _embedded_in_process(where)
        )
    elif kind == "tempo":
        backend = _tempo(tempo_url, otlp_endpoint, timeout)
    else:
        raise ValueError(f"unknown backend {kind!r}: expected 'embedded' or 'tempo'")
    try:
        wait_ready(backend.tempo_url, what=f"{backend.kind} backend", timeout=timeout)
    except BaseException:
        backend.stop()
        raise
    return backend


def wait_ready(tempo_url: str, *, what: str, timeout: float) -> None:
    """Poll ``{tempo_url}/ready`` with backoff until it answers 200, or raise ``BackendNotReady``."""
    last = "no answer yet"
    for _ in polling(timeout):
        try:
            response = httpx.get(f"{tempo_url}/ready", timeout=2.0)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text.strip()[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
    raise BackendNotReady(f"{what} at {tempo_url} was not ready after {timeout:g} s: {last}")


def _embedded_in_process(ports: BackendPorts) -> Backend:
    from hoptrace.harness.backend import EmbeddedBackend

    server = EmbeddedBackend(
        host=ports.host,
        http_port=ports.http_port,
        otlp_grpc_port=ports.otlp_grpc_port,
        otlp_http_port=ports.otlp_http_port,
    )
    server.start()
    backend = Backend(
        "embedded",
        server.http_url,
        server.otlp_grpc_endpoint,
        server.otlp_http_endpoint,
        open_spans_url=server.open_spans_url,
    )
    backend._stop.append(server.stop)
    return backend


_ENDPOINT = re.compile(r"(?P<key>\w+)=(?P<url>https?://\S+)")


def _embedded_subprocess(
    ports: BackendPorts, timeout: float, env: Mapping[str, str] | None, cwd: str | Path | None
) -> Backend:
    command = [*hoptrace_command(), "backend", "--host", ports.host, "--http-port", str(ports.http_port)]
    command += ["--otlp-grpc-port", str(ports.otlp_grpc_port), "--otlp-http-port", str(ports.otlp_http_port)]
    process = ManagedProcess("hoptrace-backend", command, env={**os.environ, **(env or {})}, cwd=cwd)
    try:
        line = process.wait_for_log(r"ready: .*otlp_http=\S+", timeout=timeout).group(0)
    except ServiceFailedToStart as exc:
        raise BackendNotReady(str(exc)) from exc
    urls = {m["key"]: m["url"] for m in _ENDPOINT.finditer(line)}
    if not {"tempo_api", "otlp_grpc", "otlp_http"} <= urls.keys():
        process.stop()
        raise BackendNotReady(f"cannot read the endpoints from `hoptrace backend`'s line: {line!r}")
    backend = Backend(
        "embedded-subprocess",
        urls["tempo_api"],
        urls["otlp_grpc"],
        urls["otlp_http"],
        open_spans_url=f"{urls['tempo_api']}{OPEN_SPANS_PATH}",
    )
    backend._stop.append(process.stop)
    return backend


def _tempo(tempo_url: str | None, otlp_endpoint: str | None, timeout: float) -> Backend:
    if tempo_url:
        host = urllib.parse.urlsplit(tempo_url).hostname or "127.0.0.1"
        grpc = otlp_endpoint or f"http://{host}:4317"
        return Backend("tempo-url", tempo_url.rstrip("/"), grpc, f"http://{host}:4318")
    binary = os.environ.get(HOPTRACE_TEMPO_BIN) or shutil.which("tempo")
    if binary:
        return _tempo_binary(binary)
    compose = compose_file()
    if compose is not None and docker_engine_answers():
        return _tempo_compose(compose, timeout)
    raise BackendNotReady(
        "no Tempo to use: pass --tempo-url, set HOPTRACE_TEMPO_BIN (or put `tempo` on PATH), "
        "or run a Docker engine for compose/"
    )


def tempo_config(data_dir: Path, http_port: int, grpc_port: int, otlp_grpc: int, otlp_http: int) -> str:
    """A single-binary Tempo config with short idle and cutoff times, so traces are searchable in ~1 s."""
    return f"""\
stream_over_http_enabled: true
server:
  http_listen_address: 127.0.0.1
  http_listen_port: {http_port}
  grpc_listen_port: {grpc_port}
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 127.0.0.1:{otlp_grpc}
        http:
          endpoint: 127.0.0.1:{otlp_http}
ingester:
  trace_idle_period: 1s
  flush_check_period: 1s
  max_block_duration: 1m
query_frontend:
  search:
    query_backend_after: 1h
    query_ingesters_until: 1h
storage:
  trace:
    backend: local
    wal:
      path: {data_dir}/wal
    local:
      path: {data_dir}/blocks
"""


def _tempo_binary(binary: str) -> Backend:
    # Untested here: Tempo cannot be fetched or built on these machines.
    data_dir = Path(tempfile.mkdtemp(prefix="hoptrace-tempo-"))
    ports = [free_port() for _ in range(4)]
    config = data_dir / "tempo.yaml"
    config.write_text(tempo_config(data_dir, *ports))
    process = ManagedProcess("tempo", [binary, f"-config.file={config}"], log_dir=data_dir)
    backend = Backend(
        "tempo-binary",
        f"http://127.0.0.1:{ports[0]}",
        f"http://127.0.0.1:{ports[2]}",
        f"http://127.0.0.1:{ports[3]}",
    )
    backend._stop += [lambda: shutil.rmtree(data_dir, ignore_errors=True), process.stop]
    return backend


def _tempo_compose(compose: Path, timeout: float) -> Backend:
    # Untested here: no Docker engine on these machines. Uses compose/'s published ports.
    command = ["docker", "compose", "-f", str(compose)]
    subprocess.run([*command, "up", "-d", "tempo"], check=True, timeout=timeout)
    backend = Backend(
        "tempo-compose", "http://127.0.0.1:3200", "http://127.0.0.1:4317", "http://127.0.0.1:4318"
    )
    backend._stop.append(lambda: subprocess.run([*command, "stop", "tempo"], check=False, timeout=60))
    return backend
