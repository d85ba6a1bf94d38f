"""Start services under ``hoptrace run`` with OTLP pointed at the backend and short export delays.

``ServiceLauncher.start(...)`` runs any command; ``start_asgi(...)`` runs an ASGI app with uvicorn, on a free
port by default (port 0, read back from uvicorn's log line, so there is no race for ports). Readiness is an
HTTP URL answering, or a log line matching a regex. A service that exits or never becomes ready raises
``ServiceFailedToStart`` with its log. ``stop_all()`` (or leaving the ``with`` block) stops every service
it started, children included. Every service's output goes to one log folder per launcher; the launcher
made it, so :meth:`ServiceLauncher.remove_logs` may delete it (the pytest plugin does after a passing run).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from hoptrace.harness.launch._process import ManagedProcess
from hoptrace.tracing.environment_variables import HOPTRACE_OPEN_SPANS_URL

DEFAULT_EXPORT_DELAY_MS = 50
"""``OTEL_BSP_SCHEDULE_DELAY`` given to services (the SDK's default is 5000 ms)."""

_UVICORN_READY = r"Uvicorn running on (?P<url>http://[^:\s]+:(?P<port>\d+))"


def hoptrace_command() -> list[str]:
    """The ``hoptrace`` console script of this interpreter (or ``python -m hoptrace.harness.cli._main``)."""
    script = Path(sys.executable).parent / "hoptrace"
    if script.exists():
        return [str(script)]
    found = shutil.which("hoptrace")
    return [found] if found else [sys.executable, "-m", "hoptrace.harness.cli._main"]


@dataclass
class Service:
    """A running service.

    ``url`` is its base URL (``http://127.0.0.1:8000``, no path) when it serves HTTP, so
    ``f"{service.url}/orders"`` is its ``/orders``. ``consumes`` names the queues it consumes, as given to
    :meth:`ServiceLauncher.start`: ``wait_for_trace`` expects a CONSUMER span below every message
    published to one of them.
    """

    name: str
    process: ManagedProcess
    url: str | None = None
    metrics_url: str | None = None
    consumes: tuple[str, ...] = ()
    traced: bool = True
    """``False`` when started without ``hoptrace run``: it makes no spans, so no hop to it is waited for."""

    def log(self, tail_lines: int | None = None) -> str:
        return self.process.log(tail_lines)

    def stop(self) -> None:
        self.process.stop()


class ServiceLauncher:
    """Starts traced services exporting to ``otlp_endpoint``; a context manager that stops them all.

    ``protocol`` is ``grpc`` or ``http/protobuf``; ``export_delay_ms`` becomes ``OTEL_BSP_SCHEDULE_DELAY``
    (``wait_for_trace`` derives its quiet period from the same number). ``open_spans_url`` (the backend's
    ``Backend.open_spans_url``) becomes ``HOPTRACE_OPEN_SPANS_URL``: the services then report each span as
    it starts, and ``wait_for_trace`` knows what is still running. Not thread-safe.
    """

    def __init__(
        self,
        otlp_endpoint: str,
        *,
        protocol: str = "grpc",
        export_delay_ms: int = DEFAULT_EXPORT_DELAY_MS,
        env: Mapping[str, str] | None = None,
        log_dir: str | Path | None = None,
        open_spans_url: str | None = None,
    ) -> None:
        self.otlp_endpoint = otlp_endpoint
        self.open_spans_url = open_spans_url
        self.protocol = protocol
        self.export_delay_ms = export_delay_ms
        self.env = dict(env or {})
        self.owns_log_dir = log_dir is None
        """``True`` when the launcher created :attr:`log_dir` (then :meth:`remove_logs` may delete it)."""
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="hoptrace-services-"))
        self.services: list[Service] = []
        """The services running now, in start order."""
        self._started: list[Service] = []  # also the stopped ones: their logs matter in failure reports

    def __enter__(self) -> ServiceLauncher:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop_all()

    def service_env(self, name: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment a service gets: ours, then the launcher's ``env``, then ``extra``."""
        env = dict(os.environ)
        env.update(
            {
                "OTEL_SERVICE_NAME": name,
                "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": self.protocol,
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_LOGS_EXPORTER": "none",
                "OTEL_TRACES_SAMPLER": "parentbased_always_on",
                "OTEL_BSP_SCHEDULE_DELAY": str(self.export_delay_ms),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.open_spans_url:
            env[HOPTRACE_OPEN_SPANS_URL] = self.open_spans_url
        env.update(self.env)
        env.update(extra or {})
        return env

    def start(
        self,
        name: str,
        command: Sequence[str],
        *,
        ready_url: str | None = None,
        ready_log: str | None = None,
        url: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float = 30.0,
        traced: bool = True,
        consumes: str | Sequence[str] = (),
    ) -> Service:
        """Run ``command`` under ``hoptrace run`` (or bare with ``traced=False``) and wait until ready.

        The service's base ``url`` is ``url`` if given, else taken from the groups ``url``/``port`` of
        ``ready_log``, else the scheme and host of ``ready_url`` (``http://h:1/healthz`` gives
        ``http://h:1``). ``env`` adds to (and overrides) the launcher's environment; ``cwd`` is the working
        directory. ``consumes`` names the queue(s) it consumes (see :class:`Service`). Blocks until ready;
        raises ``ServiceFailedToStart`` with the service's log.
        """
        argv = [*hoptrace_command(), "run", "--", *command] if traced else list(command)
        process = ManagedProcess(name, argv, env=self.service_env(name, env), cwd=cwd, log_dir=self.log_dir)
        queues = (consumes,) if isinstance(consumes, str) else tuple(consumes)
        service = Service(name, process, consumes=queues, traced=traced)
        self.services.append(service)
        self._started.append(service)
        if ready_log is not None:
            match = process.wait_for_log(ready_log, timeout=timeout)
            groups = match.groupdict()
            if groups.get("url"):
                service.url = groups["url"]
            elif groups.get("port"):
                service.url = f"http://127.0.0.1:{groups['port']}"
        if ready_url is not None:
            process.wait_ready(lambda: _answers(ready_url), what=f"{ready_url} answering", timeout=timeout)
            service.url = service.url or base_url(ready_url)
        if url is not None:
            service.url = url.rstrip("/")
        metrics_port = (env or {}).get("HOPTRACE_METRICS_PORT") or self.env.get("HOPTRACE_METRICS_PORT")
        if metrics_port:
            service.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        return service

    def start_asgi(
        self,
        name: str,
        app: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float = 30.0,
        traced: bool = True,
        uvicorn_args: Sequence[str] = (),
    ) -> Service:
        """Serve ``app`` (``module:attribute``, importable from ``cwd``) with uvicorn on ``host``:``port``.

        Port 0 (the default) picks a free port, read back from uvicorn's log. ``uvicorn_args`` are added to
        uvicorn's command line (e.g. ``["--workers", "2"]``). See :meth:`start` for the rest.
        """
        command = [sys.executable, "-m", "uvicorn", app, "--host", host, "--port", str(port)]
        command += ["--no-access-log", *uvicorn_args]
        return self.start(
            name, command, ready_log=_UVICORN_READY, env=env, cwd=cwd, timeout=timeout, traced=traced
        )

    def logs(self, tail_lines: int = 40) -> str:
        """The last lines of every service's log, for failure reports."""
        return "\n".join(
            f"--- {s.name} ({s.process.log_path}) ---\n{s.log(tail_lines)}" for s in self._started
        )

    def stop_all(self) -> None:
        """Stop every service, last started first. Idempotent."""
        while self.services:
            self.services.pop().stop()

    def remove_logs(self) -> None:
        """Delete the log folder if this launcher created it (call after :meth:`stop_all`)."""
        if self.owns_log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)


def port_of(url: str) -> int | None:
    """The TCP port ``url`` points at (the scheme's default when it names none); ``None`` if unparsable."""
    try:
        parts = urllib.parse.urlsplit(url)
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None


def base_url(url: str) -> str:
    """``scheme://host:port`` of ``url``: the base URL of the service that answers it."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else url.rstrip("/")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code < 500
    except httpx.HTTPError:
        return False
