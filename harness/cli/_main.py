"""The ``hoptrace`` command line.

Each subcommand lives with the code it drives and registers itself through ``register(subparsers)``;
those modules import nothing heavy at top level, and the chosen command's implementation is imported when
it runs. ``hoptrace run`` and ``hoptrace sitecustomize-path`` start fastest: their module's
``run_directly(arguments)`` runs their common forms without argparse (bench/startup.py).
"""

from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False  # not typing's: see hoptrace.harness
if TYPE_CHECKING:  # nor collections.abc (~8M CPU instructions): ``hoptrace run`` imports this module
    import argparse
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
    import argparse

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
    modules: Sequence[str] = COMMAND_MODULES
    if arguments[:1] and arguments[0] in RUN_COMMANDS:
        # ``hoptrace run -- CMD`` precedes every traced service: its common forms skip argparse (and what
        # argparse imports, ~5 ms); anything else (help, options, errors) is parsed below, with its messages.
        direct: int | None = importlib.import_module(COMMAND_MODULES[0]).run_directly(arguments)
        if direct is not None:
            return direct
        modules = COMMAND_MODULES[:1]
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
