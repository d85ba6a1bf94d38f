"""``hoptrace demo``: start a backend, RabbitMQ and the demo services, drive orders, assert every trace.

Orders for two tenants go to the ``api``; each trace must show the stock check over HTTP and the queue hop
to the ``worker`` and on to the ``inventory``, with the tenant on every span. One order (``unobtainium``)
fails on purpose: its trace must show the inventory's ERROR, and every other trace must have none.
Exit code 0 only when every assertion holds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import httpx

from hoptrace.harness._errors import HarnessError, TraceIncomplete, TraceNotFound
from hoptrace.harness._model import Span, StatusCode
from hoptrace.harness.assertions import _checks
from hoptrace.harness.assertions._trace import Trace
from hoptrace.harness.assertions._wait import wait_for_trace
from hoptrace.harness.demo._red import red_summary
from hoptrace.harness.demo._shop import HTTP_CHAIN, QUEUE_CHAIN, start_demo_shop
from hoptrace.harness.demo.inventory import FAILING_ITEM
from hoptrace.harness.launch._backends import BackendPorts, open_backend
from hoptrace.harness.launch._foreground import run_until_stop_signal
from hoptrace.harness.launch._rabbitmq import start_rabbitmq
from hoptrace.harness.launch._services import Service, ServiceLauncher
from hoptrace.harness.launch._trace_client import TraceClient
from hoptrace.harness.tempo._client import TempoClient

FAILED_RESERVATION = '{ resource.service.name = "inventory" && kind = server && status = error }'


@dataclass(frozen=True)
class Order:
    tenant: str
    item: str
    quantity: int

    @property
    def fails_on_purpose(self) -> bool:
        return self.item == FAILING_ITEM


ORDERS = (
    Order("acme", "widget", 2),
    Order("acme", "gadget", 1),
    Order("globex", "widget", 5),
    Order("globex", FAILING_ITEM, 1),
)


@dataclass
class DemoOptions:
    backend: str = "embedded"
    tempo_url: str | None = None
    otlp_endpoint: str | None = None
    amqp_url: str | None = None
    keep: bool = False
    timeout: float = 20.0
    ready_timeout: float = 30.0
    backend_ports: BackendPorts | None = None
    """Where the embedded backend listens (default: free ports)."""
    api_port: int = 0
    inventory_port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    """Added to every demo service's environment."""
    cwd: str | None = None
    """The demo services' working directory."""


def expectations(order: Order) -> list[Callable[[Trace], _checks.Verdict]]:
    """What the trace of ``order`` must show."""
    checks: list[Callable[[Trace], _checks.Verdict]] = [
        partial(_checks.chain, expression=HTTP_CHAIN),
        partial(_checks.chain, expression=QUEUE_CHAIN),
        partial(_checks.attribute, key="tenant.id", value=order.tenant),
        _checks.single_root,
        _checks.no_orphans,
    ]
    if order.fails_on_purpose:
        checks.append(partial(_checks.span_count, selector=FAILED_RESERVATION, exactly=1))
    else:
        checks.append(partial(_checks.span_count, selector=_is_error, exactly=0))
    return checks


def _is_error(span: Span) -> bool:
    return span.status == StatusCode.ERROR


def run_demo(options: DemoOptions, say: Callable[[str], None] = print) -> int:
    """Run the whole demo; returns the exit code. Everything started is stopped before returning."""
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        try:
            backend = stack.enter_context(
                open_backend(
                    options.backend,
                    tempo_url=options.tempo_url,
                    otlp_endpoint=options.otlp_endpoint,
                    timeout=options.ready_timeout,
                    ports=options.backend_ports,
                )
            )
            say(f"backend   {backend.kind}: Tempo API {backend.tempo_url}, OTLP {backend.otlp_grpc_endpoint}")
            broker = stack.enter_context(start_rabbitmq(options.amqp_url))
            say(f"rabbitmq  {broker.how}: {broker.url}")
            launcher = stack.enter_context(
                ServiceLauncher(
                    backend.otlp_grpc_endpoint, env=options.env, open_spans_url=backend.open_spans_url
                )
            )
            api_url = _start_services(launcher, broker.url, broker.unique_name("orders"), options)
        except HarnessError as exc:
            say(f"FAILED to start: {exc}")
            return 1
        for service in launcher.services:
            where = service.url or "(queue consumer)"
            say(f"service   {service.name}: {where}  log {service.process.log_path}")
        say("")
        try:
            ok = _drive_and_assert(api_url, backend.tempo_url, options.timeout, say, launcher.services)
        except (HarnessError, httpx.HTTPError) as exc:  # a service or the backend went away mid-run
            say(f"FAILED while driving orders: {exc!r}")
            ok = False
        say("RED summary (span-derived, from each service's /metrics):")
        metrics = [(s.name, s.metrics_url) for s in launcher.services if s.metrics_url]
        say(red_summary(metrics))
        say("")
        verdict = "every assertion held" if ok else "SOME ASSERTIONS FAILED"
        say(f"demo: {verdict} ({len(ORDERS)} orders, {time.monotonic() - started:.1f} s)")
        if not ok:
            say(launcher.logs(20))
        if options.keep:
            _keep_running(backend.tempo_url, say)
    return 0 if ok else 1


def _start_services(launcher: ServiceLauncher, amqp_url: str, queue: str, options: DemoOptions) -> str:
    """Start inventory, worker and api; returns the api's URL."""
    shop = start_demo_shop(
        launcher,
        amqp_url,
        queue,
        metrics=True,
        api_port=options.api_port,
        inventory_port=options.inventory_port,
        cwd=options.cwd,
    )
    return str(shop.api.url)


def _drive_and_assert(
    api_url: str, tempo_url: str, timeout: float, say: Callable[[str], None], services: list[Service]
) -> bool:
    all_ok = True
    with TraceClient(api_url) as client, TempoClient(tempo_url) as tempo:
        sent = []
        for order in ORDERS:
            response = client.post(
                "/orders", tenant=order.tenant, json={"item": order.item, "quantity": order.quantity}
            )
            sent.append((order, response))
            if response.status_code != 202:
                say(f"order {order.item} for {order.tenant}: api answered {response.status_code}")
                say(response.response.text)
                all_ok = False
        for order, response in sent:
            title = f"order {order.quantity} x {order.item} for {order.tenant}"
            title += " (fails on purpose: inventory answers 500)" if order.fails_on_purpose else ""
            checks = expectations(order)
            try:
                trace = wait_for_trace(
                    tempo,
                    response.trace_id,
                    until=checks,
                    timeout=timeout,
                    entry_span_id=response.entry_span_id,
                    services=services,
                )
            except (TraceIncomplete, TraceNotFound) as exc:
                say(f"FAILED  {title}\n{exc}\n")
                all_ok = False
                continue
            say(f"ok      {title}: {len(trace)} spans, chains hold, tenant.id={order.tenant} on every span")
            http, queue = _checks.chain(trace, HTTP_CHAIN), _checks.chain(trace, QUEUE_CHAIN)
            both = _checks.Verdict(
                True, f"{HTTP_CHAIN}  and  {QUEUE_CHAIN}", matched=http.matched | queue.matched
            )
            say(trace.render(both) + "\n")
    return all_ok


def _keep_running(tempo_url: str, say: Callable[[str], None]) -> None:
    say(
        f"--keep: everything stays up until Ctrl-C. Look at any trace with\n"
        f"  hoptrace trace TRACE_ID --tempo-url {tempo_url}\n"
        f"or query the Tempo API at {tempo_url}/api/search?q={{}} (Grafana's Tempo data source works too)."
    )
    run_until_stop_signal()
