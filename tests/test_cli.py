"""The ``hoptrace`` console script is installed and lists every subcommand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_console_script_lists_every_subcommand() -> None:
    hoptrace = Path(sys.executable).parent / "hoptrace"
    result = subprocess.run([str(hoptrace), "--help"], capture_output=True, text=True, check=True)
    for command in ("run", "sitecustomize-path", "backend", "demo", "check", "trace"):
        assert command in result.stdout


def test_cli_start_up_imports_no_heavy_library() -> None:
    # `hoptrace run` execs the user's command after building this parser: anything imported here is paid
    # on every traced process start (bench/startup.py measures it).
    heavy = ("grpc", "httpx", "starlette", "uvicorn", "opentelemetry.sdk", "lark", "prometheus_client")
    code = (
        "import sys, hoptrace.harness.cli._main\n"
        "hoptrace.harness.cli._main.build_parser()\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_run_and_sitecustomize_path_build_no_parser() -> None:
    # Every traced process start pays for what `hoptrace run` imports before it execs (bench/startup.py):
    # its common forms skip argparse, and the packages on the way do not import typing.
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from hoptrace.harness.cli._main import main\n"
        "assert main(['sitecustomize-path']) == 0\n"
        "print(','.join(m for m in ('argparse', 'typing', 'shutil') if m in set(sys.modules) - before))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == ""  # the line after the printed path: nothing imported
