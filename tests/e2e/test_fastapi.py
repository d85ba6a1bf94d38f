"""Zero-code FastAPI in one shared environment: edge -> httpx -> orders -> RabbitMQ -> worker -> httpx ->
orders, every process under ``hoptrace run`` (the harness's ServiceLauncher) with the same hoptrace
configuration, the same tenant secret included, as a platform's shared base image would give them.

The environment also sets ``FASTAPI_OTEL_AUTO_CONFIGURE=true``: FastAPI would add its own OTLP exporter
(over HTTP; with the gRPC protocol it logs that it cannot), unless hoptrace turned that off.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import textwrap
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hoptrace.harness import ServiceLauncher, Span, SpanKind
from hoptrace.harness.backend import EmbeddedBackend
from tests.tracing.processes import run_traced, wait_for_spans

SECRET = "shared-image-secret-" + secrets.token_hex(8)
APPS = "tests.tracing.apps.fastapi_shop"
# edge SERVER + CLIENT, orders SERVER + PRODUCER, worker CONSUMER + CLIENT, orders SERVER (item look-up)
CHAIN_SPANS = 7


@dataclass
class Shop:
    backend: EmbeddedBackend
    launcher: ServiceLauncher
    edge_url: str
    orders_url: str
    queue: str


@pytest.fixture(scope="module")
def shop() -> Iterator[Shop]:
    queue = f"fastapi-orders-{uuid.uuid4().hex[:8]}"
    shared = {
        "AMQP_URL": os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1/"),
        "QUEUE": queue,
        "HOPTRACE_TENANT_HEADER": "X-Tenant-ID",
        "HOPTRACE_TENANT_SECRET": SECRET,
        "FASTAPI_OTEL_AUTO_CONFIGURE": "true",
        "PYTHONPATH": os.getcwd(),
    }
    with EmbeddedBackend() as backend, ServiceLauncher(backend.otlp_grpc_endpoint, env=shared) as launcher:
        try:
            orders = launcher.start_asgi("orders", f"{APPS}:orders")
            assert orders.url is not None
            launcher.start(
                "worker",
                [sys.executable, "-m", "tests.tracing.apps.worker", "callback", queue],
                ready_log="^ready$",
                env={"INVENTORY_URL": orders.url},
            )
            edge = launcher.start_asgi("edge", f"{APPS}:edge", env={"ORDERS_URL": orders.url})
            assert edge.url is not None
            yield Shop(backend, launcher, edge.url, orders.url, queue)
        except BaseException:
            print(launcher.logs())
            raise


def _post(url: str, trace_id: str, headers: dict[str, str]) -> dict[str, object]:
    """POST as an outside client would (urllib: the test process's own httpx may be instrumented)."""
    request = urllib.request.Request(url, method="POST", data=b"")
    request.add_header("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01")
    for name, value in headers.items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


def _chain(shop: Shop, headers: dict[str, str]) -> tuple[list[Span], str]:
    trace_id = secrets.token_hex(16)
    answer = _post(f"{shop.edge_url}/orders/7", trace_id, headers)
    seen_by_orders = answer["orders"]
    assert isinstance(seen_by_orders, dict)
    return wait_for_spans(shop.backend, trace_id, CHAIN_SPANS), str(seen_by_orders["baggage"])


def _servers(spans: list[Span]) -> list[tuple[str, str]]:
    return sorted((span.service_name, span.name) for span in spans if span.kind is SpanKind.SERVER)


def _tenants(spans: list[Span]) -> dict[str, object]:
    return {f"{span.service_name}:{span.name}": span.attributes.get("tenant.id") for span in spans}


def test_one_server_span_per_request_and_the_tenant_on_every_span(shop: Shop) -> None:
    spans, sent_to_orders = _chain(shop, {"X-Tenant-ID": "acme"})
    assert _servers(spans) == [
        ("edge", "POST /orders/{order_id}"),
        ("orders", "GET /items/{item_id}"),
        ("orders", "POST /orders/{order_id}"),
    ], "FastAPI's own SERVER span must not double hoptrace's"
    assert not [span.name for span in spans if span.scope_name == "fastapi"]
    assert set(_tenants(spans).values()) == {"acme"}, _tenants(spans)
    assert sent_to_orders.startswith("tenant.id=acme;hoptrace.sig=")
    assert len(spans) == CHAIN_SPANS
    assert "automatic telemetry" not in shop.launcher.logs(tail_lines=10_000), "FastAPI configured exporters"


@pytest.mark.parametrize("with_header", [True, False])
def test_forged_baggage_reaches_no_span_and_no_downstream_request(shop: Shop, with_header: bool) -> None:
    forged = {"baggage": "tenant.id=evil,role=admin"}
    spans, sent_to_orders = _chain(shop, {**forged, "X-Tenant-ID": "acme"} if with_header else forged)
    assert "evil" not in sent_to_orders and "role" not in sent_to_orders
    expected = {"acme"} if with_header else {None}
    assert set(_tenants(spans).values()) == expected, _tenants(spans)


def test_forged_baggage_sent_straight_to_an_internal_service_is_dropped(shop: Shop) -> None:
    trace_id = secrets.token_hex(16)
    answer = _post(f"{shop.orders_url}/orders/8", trace_id, {"baggage": "tenant.id=evil"})
    assert answer["baggage"] == "tenant.id=evil", "the service's own code still sees the raw header"
    # orders SERVER + PRODUCER, worker CONSUMER + CLIENT, orders SERVER (item look-up)
    spans = wait_for_spans(shop.backend, trace_id, 5)
    assert set(_tenants(spans).values()) == {None}, _tenants(spans)


PUBLISH_WITHOUT_SECRET = textwrap.dedent(
    """
    import asyncio, os, aio_pika, hoptrace.tracing
    from opentelemetry import trace

    async def main():
        async with await aio_pika.connect(os.environ["AMQP_URL"]) as connection:
            channel = await connection.channel()
            with hoptrace.tracing.tenant("acme"), hoptrace.tracing.span("outsider") as span:
                message = aio_pika.Message(b'{"order": 9}')
                await channel.default_exchange.publish(message, routing_key=os.environ["QUEUE"])
        print(format(span.get_span_context().trace_id, "032x"), flush=True)

    asyncio.run(main())
    """
)


def test_a_message_from_a_process_without_the_secret_is_consumed_without_tenant(shop: Shop) -> None:
    env = shop.launcher.service_env("outsider")
    del env["HOPTRACE_TENANT_SECRET"]
    result = run_traced(PUBLISH_WITHOUT_SECRET, env)
    assert result.returncode == 0, result.stderr
    trace_id = result.stdout.strip()
    # outsider span + PRODUCER, worker CONSUMER + CLIENT, orders SERVER (item look-up)
    spans = wait_for_spans(shop.backend, trace_id, 5)
    tenants = {span.service_name: span.attributes.get("tenant.id") for span in spans}
    assert tenants == {"outsider": "acme", "worker": None, "orders": None}, _tenants(spans)
