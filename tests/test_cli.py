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
