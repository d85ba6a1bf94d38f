"""RED metrics end to end: a Starlette service under ``hoptrace run`` serves /metrics, a real Prometheus
(exemplar storage on) scrapes it, and the counts it stores are exactly the traffic we sent."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from hoptrace.harness import Service, ServiceLauncher, free_port, poll_until
from hoptrace.harness.backend import EmbeddedBackend
from tests.compose.prometheus_server import PrometheusServer

PROMTOOL = "/usr/bin/promtool"
T = TypeVar("T")

APP = """
import os
from contextlib import asynccontextmanager

import aio_pika
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

QUEUE = os.environ["RED_QUEUE"]
channels = []


async def order(request):
    status = int(request.query_params.get("status", "200"))
    return PlainTextResponse("order", status_code=status)


async def health(request):
    return PlainTextResponse("ok")


async def enqueue(request):
    body = request.query_params.get("body", "ok").encode()
    await channels[0].default_exchange.publish(aio_pika.Message(body), routing_key=QUEUE)
    return PlainTextResponse("queued", status_code=202)


async def handle(message):
    async with message.process(requeue=False):  # a failed message is rejected, never redelivered
        if message.body == b"fail":
            raise RuntimeError("cannot process this order")


@asynccontextmanager
async def lifespan(app):
    connection = await aio_pika.connect(os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1/"))
    channel = await connection.channel()
    queue = await channel.declare_queue(QUEUE, auto_delete=True)
    await queue.consume(handle)
    channels.append(channel)
    yield
    await connection.close()


routes = [
    Route("/orders/{order_id}", order),
    Route("/health", health),
    Route("/enqueue", enqueue, methods=["POST"]),
]
app = Starlette(routes=routes, lifespan=lifespan)
"""

# (tenant, HTTP status) -> requests sent. Different ids per request: the label must stay the route template.
TRAFFIC = {("acme", 200): 5, ("acme", 503): 2, ("globex", 200): 3, ("globex", 500): 1}
ROUTE = "GET /orders/{order_id}"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Service, EmbeddedBackend, str]]:
    (tmp_path / "red_app.py").write_text(textwrap.dedent(APP))
    metrics_port = free_port()
    env = {
        "HOPTRACE_METRICS_PORT": str(metrics_port),
        "HOPTRACE_TENANT_HEADER": "X-Tenant-ID",
        "RED_QUEUE": f"hoptrace-red-{uuid.uuid4().hex}",
    }
    with EmbeddedBackend() as backend, ServiceLauncher(backend.otlp_grpc_endpoint, env=env) as launcher:
        command = [sys.executable, "-m", "uvicorn", "red_app:app", "--app-dir", str(tmp_path)]
        started = launcher.start(
            "shop",
            [*command, "--host", "127.0.0.1", "--port", "0", "--no-access-log"],
            ready_log=r"Uvicorn running on (?P<url>http://[^:\s]+:(?P<port>\d+))",
        )
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        poll_until(
            lambda: _answers(metrics_url),
            timeout=30,
            what=f"{metrics_url} answering",
            on_timeout=launcher.logs,
        )
        yield started, backend, metrics_url


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def prometheus(tmp_path: Path, service: tuple[Service, EmbeddedBackend, str]) -> Iterator[str]:
    _, _, metrics_url = service
    target = metrics_url.removeprefix("http://").removesuffix("/metrics")
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "shop", "static_configs": [{"targets": [target]}]}],
    }
    with PrometheusServer(tmp_path, config) as server:
        yield server.url


def _query(prometheus: str, promql: str) -> dict[tuple[str, ...], float]:
    """Instant query; returns {(tenant, status_code): value} for each series."""
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert body["status"] == "success", body
    return {
        (item["metric"].get("tenant", ""), item["metric"].get("status_code", "")): float(item["value"][1])
        for item in body["data"]["result"]
    }


def _drive_traffic(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        order_id = 0
        for (tenant, status), count in TRAFFIC.items():
            for _ in range(count):
                order_id += 1
                response = client.get(
                    f"/orders/{order_id}", params={"status": status}, headers={"X-Tenant-ID": tenant}
                )
                assert response.status_code == status
        assert client.get("/health").status_code == 200  # no tenant header


def test_prometheus_scrapes_exact_red_counts_and_exemplars_of_real_traces(
    service: tuple[Service, EmbeddedBackend, str], prometheus: str
) -> None:
    shop, backend, metrics_url = service
    assert shop.url is not None
    _drive_traffic(shop.url)

    expected_calls = {
        ("acme", "STATUS_CODE_UNSET"): 5.0,
        ("acme", "STATUS_CODE_ERROR"): 2.0,
        ("globex", "STATUS_CODE_UNSET"): 3.0,
        ("globex", "STATUS_CODE_ERROR"): 1.0,
    }
    route = f'service="shop",span_name="{ROUTE}",span_kind="SPAN_KIND_SERVER"'
    calls = poll_until(
        lambda: (
            (got := _query(prometheus, f"traces_spanmetrics_calls_total{{{route}}}")) == expected_calls
            and got
        ),
        timeout=60,
        what=f"Prometheus to hold calls {expected_calls}",
    )
    assert calls == expected_calls
    assert _query(prometheus, f"traces_spanmetrics_latency_count{{{route}}}") == expected_calls
    assert _query(prometheus, f'traces_spanmetrics_latency_bucket{{{route},le="+Inf"}}') == expected_calls
    health = _query(prometheus, 'traces_spanmetrics_calls_total{service="shop",span_name="GET /health"}')
    assert health == {("", "STATUS_CODE_UNSET"): 1.0}
    # A recipe from the README: error ratio per tenant.
    errors = _query(
        prometheus,
        f'sum by (tenant) (traces_spanmetrics_calls_total{{{route},status_code="STATUS_CODE_ERROR"}})'
        f" / sum by (tenant) (traces_spanmetrics_calls_total{{{route}}})",
    )
    assert errors == {("acme", ""): 2 / 7, ("globex", ""): 1 / 4}

    exemplars = poll_until(lambda: _exemplars(prometheus, route), timeout=60, what="exemplars in Prometheus")
    trace_ids = {e["labels"]["trace_id"] for series in exemplars for e in series["exemplars"]}
    assert all(len(trace_id) == 32 for trace_id in trace_ids)
    some_trace = sorted(trace_ids)[0]
    spans = poll_until(
        lambda: backend.store.get_trace(some_trace), timeout=30, what=f"trace {some_trace} in the backend"
    )
    assert [span.name for span in spans] == [ROUTE]

    text = httpx.get(metrics_url).text  # Prometheus text format, what promtool lints
    lint = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")


def test_readme_promql_recipes_are_valid_promql(prometheus: str) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("PromQL recipes", 1)[1].split("\n\n", 2)[1]
    recipes = re.findall(r"^\|[^|]+\| `(.+)` \|$", section, flags=re.MULTILINE)
    assert len(recipes) == 7
    for promql in recipes:
        body = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
        assert body["status"] == "success", (promql, body)


def _exemplars(prometheus: str, route: str) -> list[dict[str, Any]] | None:
    now = time.time()
    body = httpx.get(
        f"{prometheus}/api/v1/query_exemplars",
        params={
            "query": f"traces_spanmetrics_latency_bucket{{{route}}}",
            "start": now - 600,
            "end": now + 60,
        },
        timeout=10,
    ).json()
    assert body["status"] == "success", body
    data: list[dict[str, Any]] = body["data"]
    return data or None


# (tenant, message body) -> messages published; "fail" makes the consumer raise.
MESSAGES = {("acme", "ok"): 3, ("acme", "fail"): 1, ("globex", "ok"): 2, ("globex", "fail"): 2}


def test_queue_hops_give_delivered_consumed_and_failed_per_tenant(
    service: tuple[Service, EmbeddedBackend, str], prometheus: str
) -> None:
    shop, _, _ = service
    assert shop.url is not None
    with httpx.Client(base_url=shop.url, timeout=10) as client:
        for (tenant, body), count in MESSAGES.items():
            for _ in range(count):
                response = client.post("/enqueue", params={"body": body}, headers={"X-Tenant-ID": tenant})
                assert response.status_code == 202

    consumer = 'service="shop",span_kind="SPAN_KIND_CONSUMER"'
    expected_consumer = {
        ("acme", "STATUS_CODE_UNSET"): 3.0,
        ("acme", "STATUS_CODE_ERROR"): 1.0,
        ("globex", "STATUS_CODE_UNSET"): 2.0,
        ("globex", "STATUS_CODE_ERROR"): 2.0,
    }
    poll_until(
        lambda: _query(prometheus, f"traces_spanmetrics_calls_total{{{consumer}}}") == expected_consumer,
        timeout=60,
        what=f"Prometheus to hold consumer calls {expected_consumer}",
        on_timeout=lambda: shop.log(40),
    )
    # The README's three recipes, on the counters themselves (rate() would not give exact numbers).
    producer = 'service="shop",span_kind="SPAN_KIND_PRODUCER"'
    delivered = _query(prometheus, f"sum by (tenant) (traces_spanmetrics_calls_total{{{producer}}})")
    consumed = _query(
        prometheus,
        f'sum by (tenant) (traces_spanmetrics_calls_total{{{consumer},status_code!="STATUS_CODE_ERROR"}})',
    )
    failed = _query(
        prometheus,
        f'sum by (tenant) (traces_spanmetrics_calls_total{{{consumer},status_code="STATUS_CODE_ERROR"}})',
    )
    assert (delivered, consumed, failed) == (
        {("acme", ""): 4.0, ("globex", ""): 4.0},
        {("acme", ""): 3.0, ("globex", ""): 2.0},
        {("acme", ""): 1.0, ("globex", ""): 2.0},
    )
