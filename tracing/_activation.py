"""What ``hoptrace run`` changes in the environment of the command it runs. Cheap to import."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing nor collections.abc (~8M CPU instructions): ``hoptrace run`` imports this
if TYPE_CHECKING:
    from collections.abc import Mapping

SITECUSTOMIZE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sitecustomize")
"""The directory holding hoptrace's ``sitecustomize``; put it first on ``PYTHONPATH``."""


def activation_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Return a copy of ``environ`` with :data:`SITECUSTOMIZE_DIR` first on ``PYTHONPATH`` (once).

    Child processes inherit the variable, so they run the bootstrap too.
    """
    result = dict(environ)
    entries = [entry for entry in result.get("PYTHONPATH", "").split(os.pathsep) if entry]
    entries = [SITECUSTOMIZE_DIR, *(entry for entry in entries if entry != SITECUSTOMIZE_DIR)]
    result["PYTHONPATH"] = os.pathsep.join(entries)
    return result
