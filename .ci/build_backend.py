"""setuptools' build backend, leaving the checkout as it found it.

``pip install .`` and ``pip wheel .`` build in the source tree, and setuptools leaves ``build/`` (and
``hoptrace.egg-info/``) behind, where they go stale and confuse the next build. setuptools has no option for
an out-of-tree build directory through PEP 517, so this wrapper removes what the build created. Editable
installs are setuptools' own, unchanged.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from setuptools import build_meta
from setuptools.build_meta import *  # noqa: F403  (every hook not overridden below is setuptools')

_LEFTOVERS = (Path("build"), Path("hoptrace.egg-info"))


@contextmanager
def _clean_checkout() -> Iterator[None]:
    existing = {path for path in _LEFTOVERS if path.exists()}
    try:
        yield
    finally:
        for path in _LEFTOVERS:
            if path not in existing:
                shutil.rmtree(path, ignore_errors=True)


def _cleaning(hook: Callable[..., str]) -> Callable[..., str]:
    def wrapped(*args: Any, **kwargs: Any) -> str:
        with _clean_checkout():
            return hook(*args, **kwargs)

    return wrapped


build_wheel = _cleaning(build_meta.build_wheel)
build_sdist = _cleaning(build_meta.build_sdist)
