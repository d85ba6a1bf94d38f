"""``hoptrace demo``: placeholder until the harness lands."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="run the demo services and assert their traces")
    demo.set_defaults(handler=_not_built)


def _not_built(args: argparse.Namespace) -> int:
    raise SystemExit(f"hoptrace {args.command}: not built yet")
