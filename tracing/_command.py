"""``hoptrace run -- CMD...`` and ``hoptrace sitecustomize-path``.

``run`` is a thin ``exec``: it puts hoptrace's ``sitecustomize`` directory first on ``PYTHONPATH`` and
replaces itself with CMD, so CMD keeps its pid, its signals and its exit status, and only one extra
interpreter start is paid. Only argparse is imported at top level (CLI start-up is benchmarked).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="run CMD with the tracing bootstrap active",
        description="Run CMD with the tracing bootstrap active, configured by OTEL_* and HOPTRACE_* vars.",
    )
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command and its arguments, after --")
    run.set_defaults(handler=_run)
    path = subparsers.add_parser("sitecustomize-path", help="print the directory to put first on PYTHONPATH")
    path.set_defaults(handler=_print_path)


def _run(args: argparse.Namespace) -> int:
    from hoptrace.tracing._activation import activation_environment

    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        sys.stderr.write("hoptrace run: missing command (usage: hoptrace run -- CMD [ARGS...])\n")
        return 2
    try:
        os.execvpe(command[0], command, activation_environment(os.environ))
    except OSError as exc:
        sys.stderr.write(f"hoptrace run: cannot run {command[0]!r}: {exc.strerror or exc}\n")
        return 127
    return 0  # not reached: exec replaced this process


def _print_path(args: argparse.Namespace) -> int:
    from hoptrace.tracing._activation import SITECUSTOMIZE_DIR

    print(SITECUSTOMIZE_DIR)
    return 0
