"""``hoptrace run`` and ``hoptrace sitecustomize-path``: placeholders until the bootstrap lands."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    run = subparsers.add_parser("run", help="run CMD with the tracing bootstrap active")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command and its arguments, after --")
    run.set_defaults(handler=_not_built)
    path = subparsers.add_parser("sitecustomize-path", help="print the directory to put first on PYTHONPATH")
    path.set_defaults(handler=_not_built)


def _not_built(args: argparse.Namespace) -> int:
    raise SystemExit(f"hoptrace {args.command}: not built yet")
