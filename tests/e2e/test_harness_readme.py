"""The README's example test is real: it runs, with the plugin, against real services, broker and backend."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_test_passes(pytester: pytest.Pytester) -> None:
    section = README.read_text().split(
        "The pytest plugin comes with `pip install 'hoptrace[harness]'`. A complete test:", 1
    )[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "the README's harness section lost its example"
    assert len([line for line in match.group(1).splitlines() if line.strip()]) <= 16  # "about 15 lines"
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_readme_example=match.group(1))
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
