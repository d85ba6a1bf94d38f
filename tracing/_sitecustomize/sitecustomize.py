"""hoptrace's ``sitecustomize``: activates tracing, then runs the application's own ``sitecustomize``.

Python imports the first ``sitecustomize`` on ``sys.path`` at start-up; ``hoptrace run`` puts this
directory first. Then the next ``sitecustomize`` on ``sys.path`` (the application's, or the distribution's)
still runs: it is chained, not hidden. Then this directory leaves ``sys.path``: the service's own imports
never look in it. Nothing here raises: ``site`` would print a traceback and go on,
but a service should not start with a traceback because of its tracing.
"""

from __future__ import annotations

import os
import sys


def _activate() -> None:
    try:
        from hoptrace.tracing._bootstrap import bootstrap_from_environment
    except Exception as exc:  # e.g. an interpreter that does not have hoptrace installed
        sys.stderr.write(f"hoptrace: tracing is off for this process: bootstrap not importable ({exc!r})\n")
        return
    bootstrap_from_environment()


def _chain() -> None:
    import importlib.machinery
    import importlib.util

    here = os.path.realpath(os.path.dirname(__file__))
    rest = [entry for entry in sys.path if os.path.realpath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # what site.py does for a failing sitecustomize
        sys.stderr.write(
            f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{type(exc).__name__}: {exc}\n"
        )


def _leave_sys_path() -> None:
    """Take this directory off ``sys.path`` once its work is done: every import the service makes would
    otherwise look here first, and failed ones are frequent (httpcore tries ``import sniffio`` on each
    request: ~45k CPU instructions each for this directory alone). ``PYTHONPATH`` keeps it, so child
    processes are still traced."""
    try:
        here = os.path.realpath(os.path.dirname(__file__))
        sys.path[:] = [entry for entry in sys.path if not entry or os.path.realpath(entry) != here]
    except Exception as exc:  # e.g. a non-path entry someone put on sys.path: leave it as it is
        sys.stderr.write(f"hoptrace: the bootstrap's directory stays on sys.path ({exc!r})\n")


_activate()
_chain()
_leave_sys_path()
