"""The README's table lists every HOPTRACE_* variable defined in tracing/environment_variables.py."""

from __future__ import annotations

import re
from pathlib import Path

from hoptrace.tracing import environment_variables as _environment

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_lists_every_hoptrace_variable() -> None:
    defined = {name for name in vars(_environment) if name.startswith("HOPTRACE_")}
    text = README.read_text()
    table = text[text.index("**Every `HOPTRACE_*` variable**") :]
    listed = set(re.findall(r"^\| `(HOPTRACE_[A-Z_]+)` \|", table, flags=re.MULTILINE))
    assert defined - listed == set(), "add these variables to the README's table"
    assert listed - defined == set(), "these README rows name variables that do not exist"
