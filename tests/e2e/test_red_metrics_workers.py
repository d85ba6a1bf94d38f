"""RED metrics where production runs: a service of several worker processes under ``hoptrace run`` serves one
``/metrics`` whose counts are the exact sum over its workers, with exemplars, also after a worker was killed
and replaced. uvicorn ``--workers 3`` and ``--reload``, gunicorn with uvicorn workers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from hoptrace.harness import Service, ServiceLauncher, free_port, poll_until
from hoptrace.harness.backend import EmbeddedBackend

APP = """
import os

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def order(request):
    return PlainTextResponse(str(os.getpid()))


app = Starlette(routes=[Route("/orders/{order_id}", order)])
"""
ROUTE = re.compile(r'^traces_spanmetrics_calls_total\{.*span_name="GET /orders/\{order_id\}".* (\S+)$')
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


class Shop:
    """The service under test: its URL, its /metrics URL, and the requests each worker pid served."""

    def __init__(self, service: Service, url: str, metrics_url: str) -> None:
        self.service, self.url, self.metrics_url = service, url, metrics_url
        self.served: dict[int, int] = {}

    def order_until(self, done: Callable[[], bool], limit: int = 3000, *, restarting: bool = False) -> None:
        """Send requests, each on a new connection (so the kernel spreads them), until ``done()``.

        ``restarting``: the server is replacing its worker, so a connection it accepts and then closes
        unanswered (the old worker shutting down) or refuses (the new one not listening yet) is sent again;
        no request is handled then, so the served and counted totals still match."""
        for number in range(limit):
            if done():
                return
            try:
                response = httpx.get(
                    f"{self.url}/orders/{number}", headers={"Connection": "close"}, timeout=10
                )
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError):
                if restarting:
                    continue
                raise
            assert response.status_code == 200
            pid = int(response.text)
            self.served[pid] = self.served.get(pid, 0) + 1
        raise AssertionError(f"after {limit} requests, served by {self.served}; log:\n{self.service.log(40)}")

    def counted(self) -> float | None:
        text = httpx.get(self.metrics_url, headers={"Accept": OPENMETRICS}, timeout=10).text
        samples = [float(match.group(1)) for match in map(ROUTE.match, text.splitlines()) if match]
        return samples[0] if len(samples) == 1 else None

    def wait_until_counted_exactly(self) -> str:
        """Poll /metrics until the route's calls equal the requests served (spans end just after the
        response is sent); return the OpenMetrics exposition."""
        total = sum(self.served.values())
        poll_until(
            lambda: self.counted() == total,
            timeout=30,
            what=f"/metrics to count exactly {total} calls",
            on_timeout=lambda: f"counted {self.counted()}; log:\n{self.service.log(40)}",
        )
        return httpx.get(self.metrics_url, headers={"Accept": OPENMETRICS}, timeout=10).text


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[tuple[ServiceLauncher, Path]]:
    (tmp_path / "shop_app.py").write_text(textwrap.dedent(APP))
    with EmbeddedBackend() as backend, ServiceLauncher(backend.otlp_grpc_endpoint) as launcher:
        yield launcher, tmp_path


def _start(launcher: ServiceLauncher, app_dir: Path, command: list[str], ready_log: str, port: int) -> Shop:
    metrics_port = free_port()
    service = launcher.start(
        "shop",
        command,
        ready_log=ready_log,
        env={"HOPTRACE_METRICS_PORT": str(metrics_port)},
        cwd=app_dir,
        timeout=60,
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    poll_until(
        lambda: _answers(metrics_url), timeout=30, what=f"{metrics_url} answering", on_timeout=launcher.logs
    )
    return Shop(service, f"http://127.0.0.1:{port}", metrics_url)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _exemplar_trace_ids(exposition: str) -> set[str]:
    return set(
        re.findall(r'span_name="GET /orders/\{order_id\}".*# \{.*trace_id="([0-9a-f]{32})"', exposition)
    )


def test_uvicorn_workers_are_summed_exactly_with_exemplars(launcher: tuple[ServiceLauncher, Path]) -> None:
    services, app_dir = launcher
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "shop_app:app", "--port", str(port), "--workers", "3"]
    shop = _start(services, app_dir, [*command, "--no-access-log"], r"Application startup complete", port)
    shop.order_until(lambda: len(shop.served) == 3)  # every worker served some
    exposition = shop.wait_until_counted_exactly()
    assert _exemplar_trace_ids(exposition)
    text = httpx.get(shop.metrics_url, timeout=10).text  # the summed Prometheus text, as promtool lints it
    lint = subprocess.run(
        ["/usr/bin/promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")


def test_gunicorn_workers_are_summed_exactly_and_a_killed_worker_loses_nothing(
    launcher: tuple[ServiceLauncher, Path],
) -> None:
    services, app_dir = launcher
    port = free_port()
    command = [
        *(sys.executable, "-m", "gunicorn", "shop_app:app", "--bind", f"127.0.0.1:{port}"),
        *("--workers", "3", "--worker-class", "uvicorn_worker.UvicornWorker"),
    ]
    shop = _start(services, app_dir, command, r"Application startup complete", port)
    shop.order_until(lambda: len(shop.served) == 3)
    shop.wait_until_counted_exactly()
    victim = max(shop.served, key=lambda pid: shop.served[pid])
    os.kill(victim, signal.SIGKILL)  # gunicorn's master starts a replacement
    shop.order_until(lambda: len(shop.served) == 4)  # the replacement served some too
    exposition = shop.wait_until_counted_exactly()  # the killed worker's counts are still in the sum
    assert _exemplar_trace_ids(exposition)


def test_uvicorn_reload_keeps_the_counts_of_the_replaced_worker(
    launcher: tuple[ServiceLauncher, Path],
) -> None:
    services, app_dir = launcher
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "shop_app:app", "--port", str(port), "--reload"]
    shop = _start(
        services, app_dir, [*command, "--reload-dir", str(app_dir)], r"Application startup complete", port
    )
    shop.order_until(lambda: sum(shop.served.values()) >= 3)
    shop.wait_until_counted_exactly()
    (app_dir / "shop_app.py").write_text(
        textwrap.dedent(APP) + "\n# changed\n"
    )  # uvicorn restarts its worker
    shop.order_until(lambda: len(shop.served) == 2, restarting=True)
    shop.wait_until_counted_exactly()
