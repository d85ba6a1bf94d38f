"""hoptrace's exception hierarchy.

One root, so callers can catch everything hoptrace raises with one clause::

    HoptraceError
     ├── ConfigurationError      a bad argument to configure() or to a processor
     └── (harness errors, defined in harness: BackendNotReady, TraceIncomplete, ...)

Code that runs inside a user's service never lets these escape into the host: the bootstrap
catches them, logs one warning and leaves the service untraced.
"""

from __future__ import annotations


class HoptraceError(Exception):
    """Root of every exception hoptrace raises."""


class ConfigurationError(HoptraceError, ValueError):
    """An explicit configuration value is invalid. Raised at construction, never per call."""
