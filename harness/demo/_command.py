"""``hoptrace demo``: only argparse here; the demo is imported when the command runs."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the demo services and assert their traces (exit 0 only if all hold)",
        description="Start a trace backend, RabbitMQ and three traced demo services (api, inventory, "
        "worker), send orders for two tenants, and assert each end-to-end trace. One order fails on purpose.",
    )
    demo.add_argument(
        "--backend",
        choices=("embedded", "tempo"),
        default="embedded",
        help="trace backend (default embedded)",
    )
    demo.add_argument("--tempo-url", help="with --backend tempo: use the Tempo API at this URL")
    demo.add_argument("--otlp-endpoint", help="with --tempo-url: its OTLP/gRPC endpoint (default: host:4317)")
    demo.add_argument("--amqp-url", help="RabbitMQ to use (default: $AMQP_URL, else start a private one)")
    demo.add_argument("--keep", action="store_true", help="leave everything running until Ctrl-C")
    demo.add_argument(
        "--timeout", type=float, default=20.0, help="seconds to wait for each trace (default 20)"
    )
    demo.add_argument(
        "--ready-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the backend to be ready (default 30)",
    )
    demo.add_argument(
        "--http-port", type=int, default=0, help="the embedded backend's Tempo API port (default: free)"
    )
    demo.add_argument("--otlp-grpc-port", type=int, default=0, help="its OTLP/gRPC port (default: free)")
    demo.add_argument("--otlp-http-port", type=int, default=0, help="its OTLP/HTTP port (default: free)")
    demo.add_argument("--api-port", type=int, default=0, help="the api service's port (default: free)")
    demo.add_argument("--inventory-port", type=int, default=0, help="the inventory's port (default: free)")
    demo.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add a variable to every demo service's environment (repeatable)",
    )
    demo.add_argument("--cwd", help="working directory of the demo services (default: this one)")
    demo.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import sys

    from hoptrace.harness.demo._run import DemoOptions, run_demo
    from hoptrace.harness.launch._backends import BackendPorts

    env = dict(item.partition("=")[::2] for item in args.env)
    bad = [item for item in args.env if "=" not in item or not item.partition("=")[0]]
    if bad:
        print(f"hoptrace demo: --env wants KEY=VALUE, got {bad[0]!r}", file=sys.stderr)
        return 2
    options = DemoOptions(
        args.backend,
        args.tempo_url,
        args.otlp_endpoint,
        args.amqp_url,
        args.keep,
        args.timeout,
        args.ready_timeout,
        backend_ports=BackendPorts(
            http_port=args.http_port, otlp_grpc_port=args.otlp_grpc_port, otlp_http_port=args.otlp_http_port
        ),
        api_port=args.api_port,
        inventory_port=args.inventory_port,
        env=env,
        cwd=args.cwd,
    )
    return run_demo(options)
