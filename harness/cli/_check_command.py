"""``hoptrace check`` (assert a trace held by a backend; exit 0 or 1; JUnit XML) and ``hoptrace trace``.

Only argparse is imported here; the implementation (``hoptrace.harness.cli._check``) is imported when a
command runs.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

_DEFAULT_URL = "http://127.0.0.1:3200"


def register(subparsers: Any) -> None:
    # HOPTRACE_TEMPO_URL (see tracing/environment_variables.py), spelled out: command modules import only
    # the stdlib.
    default_url = os.environ.get("HOPTRACE_TEMPO_URL", _DEFAULT_URL)
    check = subparsers.add_parser(
        "check",
        help="assert a trace held by a backend (exit 0 or 1)",
        description="Wait for a trace in a Tempo-compatible backend and assert its shape. Exit 0 when every "
        "expectation holds, 1 when one does not, 2 for a malformed expectation.",
    )
    which = check.add_mutually_exclusive_group(required=True)
    which.add_argument("--trace-id", help="the trace id (hex, as in traceparent)")
    which.add_argument(
        "--traceparent",
        metavar="HEADER",
        help="the W3C traceparent the caller sent (00-TRACE_ID-SPAN_ID-FLAGS): its trace id is checked, and "
        "its span id is the caller's, the parent of the trace's root",
    )
    check.add_argument(
        "--caller-span-id",
        metavar="SPAN_ID",
        help="span id of the untraced caller whose traceparent started the trace: spans below it are roots, "
        "not orphans (default: taken from --traceparent, else inferred when the trace has no parentless span "
        "and exactly one unknown parent)",
    )
    check.add_argument("--tempo-url", default=default_url, help="Tempo API base URL (default %(default)s)")
    check.add_argument(
        "--expect-chain",
        action="append",
        default=[],
        metavar="CHAIN",
        help='hops in order, e.g. "api:SERVER > api:PRODUCER > worker:CONSUMER" (repeatable)',
    )
    check.add_argument(
        "--expect-attr",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="an attribute present (with that value) on every span, e.g. tenant.id=acme (repeatable)",
    )
    check.add_argument(
        "--expect-count",
        action="append",
        default=[],
        metavar="HOP=N",
        help="exactly N spans match the hop, e.g. inventory:SERVER=2 (repeatable)",
    )
    check.add_argument(
        "--expect-propagation",
        action="store_true",
        help="one root (its parent may be the caller's span), no orphans, every CLIENT/PRODUCER continued "
        "by a SERVER/CONSUMER",
    )
    check.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (default %(default)s)")
    check.add_argument(
        "--export-delay-ms",
        type=float,
        default=None,
        help="the services' OTEL_BSP_SCHEDULE_DELAY; traces whose completeness the backend cannot tell "
        "are complete after 1.5 times it without a new span (default: $OTEL_BSP_SCHEDULE_DELAY, else 50)",
    )
    check.add_argument("--junit-xml", metavar="PATH", help="also write the results as JUnit XML")
    check.set_defaults(handler=_check)

    trace = subparsers.add_parser("trace", help="print a trace as a tree")
    trace.add_argument("trace_id", metavar="ID", help="the trace id (hex or base64)")
    trace.add_argument("--tempo-url", default=default_url, help="Tempo API base URL (default %(default)s)")
    trace.add_argument("--timeout", type=float, default=0.0, help="seconds to wait for it (default: no wait)")
    trace.set_defaults(handler=_trace)


def _check(args: argparse.Namespace) -> int:
    from hoptrace.harness.cli._check import run_check

    return run_check(args)


def _trace(args: argparse.Namespace) -> int:
    from hoptrace.harness.cli._check import print_trace

    return print_trace(args.trace_id, args.tempo_url, args.timeout)
