"""Lazy public names for package ``__init__`` modules (PEP 562), shared by tracing, processors and harness.

The ``hoptrace`` CLI and the bootstrap start in every traced process, and their start-up time is
benchmarked: a package's ``__init__`` names its public API but imports each implementation module only
when one of its names is first used. Type checkers see the real names through ``TYPE_CHECKING`` imports
in each ``__init__``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return the ``__getattr__`` and ``__dir__`` of ``package``, whose names ``exports`` maps to modules.

    A resolved name is cached in ``namespace`` (the package's ``globals()``), so it is imported once.
    Unknown names raise ``AttributeError`` as usual. Thread-safe as Python's import system is.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace.get("__all__", ()), *exports})

    return __getattr__, __dir__
