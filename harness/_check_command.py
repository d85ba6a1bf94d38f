"""``hoptrace check`` and ``hoptrace trace``: placeholders until the harness lands."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    check = subparsers.add_parser("check", help="assert a trace held by a backend (exit 0 or 1)")
    check.set_defaults(handler=_not_built)
    trace = subparsers.add_parser("trace", help="print a trace as a tree")
    trace.set_defaults(handler=_not_built)


def _not_built(args: argparse.Namespace) -> int:
    raise SystemExit(f"hoptrace {args.command}: not built yet")
