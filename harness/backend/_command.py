"""``hoptrace backend``: run the embedded backend in the foreground until SIGINT or SIGTERM.

Only argparse is imported here; the backend is imported when the command runs, so other commands start
fast.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    backend = subparsers.add_parser(
        "backend",
        help="run the embedded trace backend (OTLP in, Tempo HTTP API out) in the foreground",
        description="Receive OTLP traces over gRPC and HTTP and serve them through Tempo's HTTP API. "
        "Prints its endpoints on one line when ready; stops cleanly on SIGINT or SIGTERM.",
    )
    backend.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    backend.add_argument("--http-port", type=int, default=3200, help="Tempo API port (default %(default)s)")
    backend.add_argument(
        "--otlp-grpc-port", type=int, default=4317, help="OTLP/gRPC port (default %(default)s)"
    )
    backend.add_argument(
        "--otlp-http-port", type=int, default=4318, help="OTLP/HTTP port (default %(default)s)"
    )
    backend.add_argument("--max-spans", type=int, default=1_000_000, help="spans kept (default %(default)s)")
    backend.add_argument(
        "--max-bytes",
        type=int,
        default=512 * 1024 * 1024,
        help="approximate bytes kept (default %(default)s)",
    )
    backend.add_argument(
        "--max-request-bytes",
        type=int,
        default=64 * 1024 * 1024,
        help="largest OTLP request accepted, after decompression (default %(default)s)",
    )
    backend.add_argument(
        "--min-retention-seconds",
        type=float,
        default=10.0,
        help="traces written more recently are never evicted; when only those are left, senders get "
        "UNAVAILABLE/503 with Retry-After (default %(default)s)",
    )
    backend.add_argument(
        "--service-graph-wait-seconds",
        type=float,
        default=10.0,
        help="how long a client or server span waits for its other side before it counts as unpaired "
        "(default %(default)s, as Tempo)",
    )
    backend.add_argument(
        "--query-timeout-seconds",
        type=float,
        default=30.0,
        help="a search or tag query running longer is answered 504, as Tempo's query timeout "
        "(default %(default)s)",
    )
    backend.add_argument(
        "--max-connections",
        type=int,
        help="connections each port holds at once; past it the connection waiting longest for a request "
        "is closed (default: from the file descriptor limit, which is raised to its hard limit)",
    )
    backend.add_argument(
        "--header-timeout-seconds",
        type=float,
        default=10.0,
        help="a client must send a request's headers within this time of connecting or of its previous "
        "response, or is disconnected (default %(default)s)",
    )
    backend.add_argument(
        "--body-timeout-seconds",
        type=float,
        default=60.0,
        help="a client must send a request's body within this time of its headers (default %(default)s)",
    )
    backend.add_argument(
        "--forward-otlp",
        metavar="URL",
        help="also send everything accepted to this upstream OTLP endpoint (e.g. a real Tempo), "
        "retrying with a bounded buffer; never blocks ingest",
    )
    backend.add_argument(
        "--forward-otlp-protocol",
        choices=("http/protobuf", "grpc"),
        default="http/protobuf",
        help="protocol for --forward-otlp (default %(default)s; /v1/traces is added to http URLs)",
    )
    backend.add_argument(
        "--db",
        metavar="PATH",
        help="keep a log of every accepted request in this directory, written before the request is "
        "acknowledged and replayed at start, so acknowledged spans survive restarts and crashes",
    )
    backend.add_argument(
        "--db-max-bytes",
        type=int,
        help="bound of the --db log on disk; it is compacted at half of it, and past it senders get "
        "503/UNAVAILABLE until compaction catches up (default: twice --max-bytes)",
    )
    backend.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import gc
    import sys

    # The store holds millions of small objects, and ingest and queries allocate many more: with the
    # default thresholds (700, 10, 10) the cyclic collector took 40% of ingest's CPU here, rescanning the
    # store while holding the interpreter lock. Collecting less often cut it to 8% (bench/backend_ingest.py).
    gc.set_threshold(50_000, 20, 100)

    from hoptrace.harness.backend import ClientBounds, EmbeddedBackend, StoreLimits
    from hoptrace.harness.backend._client_bounds import connection_budget
    from hoptrace.harness.launch._foreground import stop_signals, wait_until_stopped

    try:
        backend = EmbeddedBackend(
            args.host,
            args.http_port,
            args.otlp_grpc_port,
            args.otlp_http_port,
            limits=StoreLimits(args.max_spans, args.max_bytes, args.min_retention_seconds),
            max_request_bytes=args.max_request_bytes,
            service_graph_wait_seconds=args.service_graph_wait_seconds,
            forward_otlp=args.forward_otlp,
            forward_otlp_protocol=args.forward_otlp_protocol,
            persist_path=args.db,
            persist_max_bytes=args.db_max_bytes,
            query_timeout_seconds=args.query_timeout_seconds,
            client_bounds=ClientBounds(
                args.max_connections or connection_budget(servers=3),
                args.header_timeout_seconds,
                args.body_timeout_seconds,
            ),
        )
    except (ValueError, OSError) as exc:
        print(f"hoptrace backend: {exc}", file=sys.stderr)
        return 2
    with stop_signals() as stop:
        try:
            try:
                backend.start()
            except OSError as exc:
                print(f"hoptrace backend: cannot bind a port on {args.host}: {exc}", file=sys.stderr)
                return 1
            print(backend.endpoints_line(), flush=True)
            wait_until_stopped(stop)
        finally:
            backend.stop()
    print("hoptrace backend stopped", flush=True)
    return 0
