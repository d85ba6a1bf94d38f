"""``hoptrace run -- CMD...`` and ``hoptrace sitecustomize-path``.

``run`` is a thin ``exec``: it puts hoptrace's ``sitecustomize`` directory first on ``PYTHONPATH`` and
replaces itself with CMD, so CMD keeps its pid, its signals and its exit status, and only one extra
interpreter start is paid. Nothing but os and sys is imported at top level, and the common forms skip
argparse (:func:`run_directly`): CLI start-up is benchmarked.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's (~3 ms): this module is imported by every ``hoptrace run``
if TYPE_CHECKING:  # nor collections.abc (~8M CPU instructions)
    import argparse
    from collections.abc import Sequence
    from typing import Any


def register(subparsers: Any) -> None:
    import argparse

    run = subparsers.add_parser(
        "run",
        help="run CMD with the tracing bootstrap active",
        description="Run CMD with the tracing bootstrap active, configured by OTEL_* and HOPTRACE_* vars.",
    )
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command and its arguments, after --")
    run.set_defaults(handler=_run)
    path = subparsers.add_parser("sitecustomize-path", help="print the directory to put first on PYTHONPATH")
    path.set_defaults(handler=_print_path)


def run_directly(arguments: Sequence[str]) -> int | None:
    """Run ``run -- CMD...``, ``run CMD...`` (CMD not starting with ``-``) or ``sitecustomize-path`` without
    building a parser; return ``None`` for anything else (help, options), which the CLI then parses."""
    if list(arguments) == ["sitecustomize-path"]:
        return _print_path()
    if len(arguments) > 1 and arguments[0] == "run" and (arguments[1] == "--" or arguments[1][:1] != "-"):
        return _exec(arguments[1:])
    return None


def _run(args: argparse.Namespace) -> int:
    return _exec(args.cmd)


def _exec(cmd: Sequence[str]) -> int:
    from hoptrace.tracing._activation import activation_environment

    command = list(cmd)
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


def _print_path(args: argparse.Namespace | None = None) -> int:
    from hoptrace.tracing._activation import SITECUSTOMIZE_DIR

    print(SITECUSTOMIZE_DIR)
    return 0
