"""Start the demo shop (inventory, worker, api) on a launcher: for ``hoptrace demo``, tests and benchmarks.

The three services are the demo's own (no tracing code in them); ``hoptrace run`` traces them. An order
makes a 7-span trace: ``api`` SERVER, its CLIENT call to ``inventory`` (SERVER), its PRODUCER to the
queue, the ``worker``'s CONSUMER, its CLIENT call to ``inventory`` (SERVER).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hoptrace.harness._polling import free_port
from hoptrace.harness.launch._services import Service, ServiceLauncher

HTTP_CHAIN = "api:SERVER > api:CLIENT > inventory:SERVER"
QUEUE_CHAIN = "api:SERVER > api:PRODUCER > worker:CONSUMER > worker:CLIENT > inventory:SERVER"
SPANS_PER_ORDER = 7
"""Spans in the trace of one accepted order."""


@dataclass(frozen=True)
class DemoShop:
    """The started shop: send ``POST {api.url}/orders {"item": "widget"}`` (with ``X-Tenant-ID``)."""

    api: Service
    inventory: Service
    worker: Service
    queue: str

    @property
    def services(self) -> tuple[Service, ...]:
        return (self.inventory, self.worker, self.api)


def start_demo_shop(
    launcher: ServiceLauncher,
    amqp_url: str,
    queue: str,
    *,
    metrics: bool = False,
    first_message_delay_ms: int = 0,
    api_port: int = 0,
    inventory_port: int = 0,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> DemoShop:
    """Start inventory, worker and api (in that order: each needs the previous) and return them.

    ``metrics`` gives each a ``/metrics`` endpoint on a free port; ``first_message_delay_ms`` makes the
    worker wait that long before it takes its first message (a deliberately slow first message); ``env``
    is added to every service's environment. Blocks until all three are ready; raises
    ``ServiceFailedToStart``.
    """
    common = {**(env or {}), "AMQP_URL": amqp_url, "DEMO_QUEUE": queue}

    def with_metrics(extra: Mapping[str, str]) -> dict[str, str]:
        return {**common, **extra, **({"HOPTRACE_METRICS_PORT": str(free_port())} if metrics else {})}

    inventory = launcher.start_asgi(
        "inventory", "hoptrace.harness.demo.inventory:app", port=inventory_port, env=with_metrics({}), cwd=cwd
    )
    common["DEMO_INVENTORY_URL"] = str(inventory.url)
    delay = {"DEMO_WORKER_FIRST_MESSAGE_DELAY_MS": str(first_message_delay_ms)}
    worker = launcher.start(
        "worker",
        [sys.executable, "-m", "hoptrace.harness.demo.worker"],
        ready_log="worker ready",
        env=with_metrics(delay),
        cwd=cwd,
        consumes=queue,
    )
    api = launcher.start_asgi(
        "api",
        "hoptrace.harness.demo.api:app",
        port=api_port,
        env=with_metrics({"HOPTRACE_TENANT_HEADER": "X-Tenant-ID"}),
        cwd=cwd,
    )
    return DemoShop(api=api, inventory=inventory, worker=worker, queue=queue)
