"""``hoptrace backend``: placeholder until the embedded backend lands."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    backend = subparsers.add_parser("backend", help="run the embedded trace backend in the foreground")
    backend.set_defaults(handler=_not_built)


def _not_built(args: argparse.Namespace) -> int:
    raise SystemExit(f"hoptrace {args.command}: not built yet")
