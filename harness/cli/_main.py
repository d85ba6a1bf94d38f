"""The ``hoptrace`` command line.

Each subcommand lives with the code it drives and registers itself through ``register(subparsers)``;
those modules import only argparse at top level, so ``hoptrace run`` starts fast. The chosen command's
implementation is imported when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "hoptrace.tracing._command",  # run, sitecustomize-path
    "hoptrace.harness.backend._command",  # backend
    "hoptrace.harness.demo._command",  # demo
    "hoptrace.harness.cli._check_command",  # check, trace
)


RUN_COMMANDS = frozenset({"run", "sitecustomize-path"})
"""Registered by ``hoptrace.tracing._command`` alone: for them no other command module is imported, so the
extra interpreter start that ``hoptrace run`` costs every traced service stays small (bench/startup.py)."""


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    """The parser with the subcommands of ``modules`` (default: all)."""
    parser = argparse.ArgumentParser(
        prog="hoptrace",
        description="Zero-code OpenTelemetry tracing across HTTP and RabbitMQ hops, and tools to test it.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in modules:
        importlib.import_module(module_name).register(subparsers)
    return parser


# What ``pip install 'hoptrace[harness]'`` adds: the commands other than ``run`` need them.
HARNESS_EXTRA_MODULES = frozenset({"httpx", "aio_pika", "starlette", "uvicorn", "lark"})


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (2 when the command needs the harness extra)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    modules = COMMAND_MODULES[:1] if arguments[:1] and arguments[0] in RUN_COMMANDS else COMMAND_MODULES
    args = build_parser(modules).parse_args(arguments)
    try:
        result: int = args.handler(args)
    except ModuleNotFoundError as exc:
        if exc.name not in HARNESS_EXTRA_MODULES:
            raise
        print(
            f"hoptrace {args.command}: needs {exc.name}, which comes with the harness extra: "
            "pip install 'hoptrace[harness]'",
            file=sys.stderr,
        )
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
