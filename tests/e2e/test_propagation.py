"""One trace and the tenant across real processes: api -> httpx -> inventory, and api -> RabbitMQ ->
worker (callback and iterator consumers) -> httpx -> inventory.

Every service is a plain Starlette/aio-pika program (tests/tracing/apps: the hop variants users write, which
the demo services do not all show) started through the harness's ``ServiceLauncher`` (``hoptrace run``),
exporting over OTLP to an embedded backend; the broker is the real RabbitMQ.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hoptrace.harness import Service, ServiceLauncher, Span, SpanKind
from hoptrace.harness.backend import EmbeddedBackend
from tests.tracing.processes import REPO, wait_for_spans

TENANT = "acme"


@dataclass
class Stack:
    backend: EmbeddedBackend
    launcher: ServiceLauncher
    api_url: str
    inventory_url: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # The test apps are importable from the repository root (PYTHONPATH), as a service's own code would be.
    env = {"AMQP_URL": os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1/"), "PYTHONPATH": str(REPO)}
    with EmbeddedBackend() as backend, ServiceLauncher(backend.otlp_grpc_endpoint, env=env) as launcher:
        inventory = launcher.start_asgi("inventory", "tests.tracing.apps.inventory:app")
        launcher.env["INVENTORY_URL"] = str(inventory.url)
        api = launcher.start_asgi(
            "api", "tests.tracing.apps.api:app", env={"HOPTRACE_TENANT_HEADER": "X-Tenant-ID"}
        )
        yield Stack(backend, launcher, str(api.url), str(inventory.url), launcher.env)


def _start_uvicorn(
    stack: Stack, name: str, app: str, *flags: str, env: dict[str, str] | None = None
) -> Service:
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "0", *flags]
    service = stack.launcher.start(name, command, ready_log=_UVICORN_READY, env=env, cwd=REPO)
    # With --workers or --reload, the supervisor prints the address before a worker listens on it.
    service.process.wait_for_log(r"Application startup complete", timeout=30)
    return service


_UVICORN_READY = r"Uvicorn running on (?P<url>http://[^:\s]+:(?P<port>\d+))"


def _call(method: str, url: str, trace_id: str) -> dict[str, object]:
    """Call the edge as an outside client would: its own traceparent, a tenant header, forged baggage.

    urllib, not httpx: the test process's own httpx may be instrumented by other tests."""
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    request.add_header("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01")
    request.add_header("X-Tenant-ID", TENANT)
    request.add_header("baggage", "tenant.id=forged,role=admin")
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


def _summary(spans: list[Span]) -> list[tuple[str, str, SpanKind]]:
    return sorted((span.service_name, span.name, span.kind) for span in spans)


def _assert_one_tree_with_tenant(spans: list[Span]) -> None:
    by_id = {span.span_id: span for span in spans}
    roots = [span for span in spans if span.parent_span_id not in by_id]
    assert len(roots) == 1, f"expected one root (the edge's server span), got {_summary(roots)}"
    assert roots[0].service_name == "api" and roots[0].kind is SpanKind.SERVER
    for span in spans:
        assert span.attributes.get("tenant.id") == TENANT, f"{span.service_name}:{span.name} lacks the tenant"


def test_http_hop_keeps_one_trace_and_the_tenant(stack: Stack) -> None:
    trace_id = secrets.token_hex(16)
    # The edge dropped the forged inbound baggage and sent only the tenant from its header onwards.
    assert _call("GET", f"{stack.api_url}/orders/7", trace_id)["inventory"] == {
        "item": "7",
        "baggage": f"tenant.id={TENANT}",
    }
    spans = wait_for_spans(stack.backend, trace_id, 3)
    assert _summary(spans) == [
        ("api", "GET", SpanKind.CLIENT),
        ("api", "GET /orders/{order_id}", SpanKind.SERVER),
        ("inventory", "GET /items/{item_id}", SpanKind.SERVER),
    ]
    _assert_one_tree_with_tenant(spans)
    client = next(span for span in spans if span.kind is SpanKind.CLIENT)
    inventory = next(span for span in spans if span.service_name == "inventory")
    assert inventory.parent_span_id == client.span_id


# Through the Starlette route, or through the FastAPI router mounted two levels deep.
PUBLISH_ROUTES = {
    "/orders/9/publish/{queue}": "POST /orders/{order_id}/publish/{queue}",
    "/v2/tenants/acme/shop/orders/9/publish/{queue}": (
        "POST /v2/tenants/{tenant}/shop/orders/{order_id}/publish/{queue}"
    ),
}


@pytest.mark.parametrize(
    ("mode", "path"),
    [
        ("callback", "/orders/9/publish/{queue}"),
        ("iterator", "/orders/9/publish/{queue}"),
        ("wait_for", "/orders/9/publish/{queue}"),
        ("timeout", "/orders/9/publish/{queue}"),
        ("task", "/orders/9/publish/{queue}"),
        ("get", "/v2/tenants/acme/shop/orders/9/publish/{queue}"),
    ],
)
def test_queue_hop_keeps_one_trace_and_the_tenant(stack: Stack, mode: str, path: str) -> None:
    # A per-run id in the queue name is folded out of span names (the real name is an attribute).
    queue = f"hoptrace-e2e-{mode}-{uuid.uuid4().hex}"
    destination = f"hoptrace-e2e-{mode}-{{id}}"
    argv = [sys.executable, "-m", "tests.tracing.apps.worker", mode, queue]
    worker = stack.launcher.start(f"worker-{mode}", argv, ready_log=r"^ready$", cwd=REPO)
    trace_id = secrets.token_hex(16)
    _call("POST", stack.api_url + path.format(queue=queue), trace_id)
    spans = wait_for_spans(stack.backend, trace_id, 5)
    worker.stop()
    assert _summary(spans) == [
        ("api", PUBLISH_ROUTES[path], SpanKind.SERVER),
        ("api", f"publish {destination}", SpanKind.PRODUCER),
        ("inventory", "GET /items/{item_id}", SpanKind.SERVER),
        (f"worker-{mode}", "GET", SpanKind.CLIENT),
        (f"worker-{mode}", f"process {destination}", SpanKind.CONSUMER),
    ]
    _assert_one_tree_with_tenant(spans)
    by_name = {span.name: span for span in spans}
    consumer = by_name[f"process {destination}"]
    assert consumer.attributes["messaging.destination.name"] == queue
    assert consumer.parent_span_id == by_name[f"publish {destination}"].span_id
    assert by_name["GET"].parent_span_id == consumer.span_id  # the work after get() / the pull, until ack


@pytest.mark.parametrize(
    "flags",
    [("--workers", "2"), ("--reload", "--reload-dir", "tests/tracing/apps")],
    ids=["workers", "reload"],
)
def test_uvicorn_child_processes_are_traced(stack: Stack, flags: tuple[str, ...]) -> None:
    service = _start_uvicorn(stack, "inventory-workers", "tests.tracing.apps.inventory:app", *flags)
    trace_id = secrets.token_hex(16)
    request = urllib.request.Request(f"{service.url}/items/3")
    request.add_header("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["item"] == "3"
    (span,) = wait_for_spans(stack.backend, trace_id, 1)
    service.stop()
    assert (span.service_name, span.name, span.kind) == (
        "inventory-workers",
        "GET /items/{item_id}",
        SpanKind.SERVER,
    )


def test_uvicorn_service_flushes_queued_spans_when_terminated(stack: Stack) -> None:
    # A minute-long batch delay: the span can only reach the backend through the flush at SIGTERM.
    env = {"OTEL_BSP_SCHEDULE_DELAY": "60000"}
    service = _start_uvicorn(stack, "inventory-flush", "tests.tracing.apps.inventory:app", env=env)
    trace_id = secrets.token_hex(16)
    request = urllib.request.Request(f"{service.url}/items/5")
    request.add_header("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    service.stop()  # SIGTERM
    (span,) = wait_for_spans(stack.backend, trace_id, 1)
    assert span.service_name == "inventory-flush"
