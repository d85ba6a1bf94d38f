"""A real Prometheus (Debian's ``/usr/bin/prometheus``) for tests: own data dir, free port, always torn down.

``PrometheusServer`` writes the given configuration next to a private TSDB directory, starts the server
on a free loopback port, waits for ``/-/ready`` and talks to it through the HTTP API.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import yaml

from hoptrace.harness import free_port, poll_until

PROMETHEUS = "/usr/bin/prometheus"
T = TypeVar("T")


class PrometheusServer:
    """One Prometheus process. Use as a context manager; ``stop()`` is idempotent.

    Not thread-safe. ``start()`` blocks until the server is ready (or raises ``AssertionError`` with its
    log if it exits or is not ready within ``ready_timeout`` seconds).
    """

    def __init__(self, workdir: Path, config: dict[str, Any], *, ready_timeout: float = 30.0) -> None:
        self.workdir = workdir
        self.config = config
        self.ready_timeout = ready_timeout
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._client = httpx.Client(timeout=5.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def start(self) -> PrometheusServer:
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.port = free_port()
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-remote-write-receiver",
                    "--enable-feature=exemplar-storage",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        poll_until(
            self._ready,
            timeout=self.ready_timeout,
            what=f"Prometheus ready at {self.url}",
            on_timeout=self.log,
        )
        return self

    def _ready(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise AssertionError(f"prometheus exited with {self._process.returncode}:\n{self.log()}")
        try:
            return self._client.get(f"{self.url}/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._client.close()

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _get(self, path: str, **params: str) -> Any:
        response = self._client.get(f"{self.url}{path}", params=params)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query: the result vector (``[{"metric": {...}, "value": [ts, "v"]}, ...]``)."""
        result: list[dict[str, Any]] = self._get("/api/v1/query", query=expr)["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts, pending and firing: ``[{"labels": {...}, "state": "firing", ...}, ...]``."""
        result: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return result

    def exemplars(self, expr: str, *, lookback: float = 300.0) -> list[dict[str, Any]]:
        """Exemplars of the series ``expr`` selects over the last ``lookback`` seconds, per series."""
        now = time.time()
        result: list[dict[str, Any]] = self._get(
            "/api/v1/query_exemplars", query=expr, start=str(now - lookback), end=str(now + 1)
        )
        return result

    def targets(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/api/v1/targets")["activeTargets"]
        return result
