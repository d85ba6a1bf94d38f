"""Each package's ``__all__`` names exactly what it exports, and every name resolves."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "package", ["hoptrace.tracing", "hoptrace.processors", "hoptrace.harness", "hoptrace.harness.backend"]
)
def test_every_name_in_all_resolves(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    assert sorted(module.__all__) == sorted(set(module.__all__))


@pytest.mark.parametrize("package", ["hoptrace.tracing", "hoptrace.processors", "hoptrace.harness"])
def test_public_names_are_listed_in_all(package: str) -> None:
    module = importlib.import_module(package)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith(package)
    }
    assert public <= set(module.__all__)
