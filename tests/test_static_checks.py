"""The code stays typed (mypy --strict), linted and formatted (ruff), as CONVENTIONS.md asks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_packages_pass_mypy_strict(tmp_path: Path) -> None:
    # mypy cannot follow setuptools' editable-install finder, so it reads the packages under their installed
    # names (hoptrace.tracing, ...) from a tree of links to the repository's folders.
    (tmp_path / "hoptrace").mkdir()
    for folder in ("tracing", "processors", "harness"):
        (tmp_path / "hoptrace" / folder).symlink_to(ROOT / folder)
    result = subprocess.run(
        [str(BIN / "mypy"), "--no-incremental", "--config-file", str(ROOT / "pyproject.toml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tree_passes_ruff_lint() -> None:
    result = _run(str(BIN / "ruff"), "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_tree_is_ruff_formatted() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr
