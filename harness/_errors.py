"""The harness's exceptions. All derive from ``hoptrace.tracing.HoptraceError``::

HoptraceError
 ├── ConfigurationError
 └── HarnessError
      ├── BackendNotReady      a backend did not answer its readiness probe in time
      ├── BackendUnreachable   a request to a running backend failed (names the URL)
      ├── ServiceFailedToStart a service exited or never became ready (carries its log)
      ├── TraceNotFound        no span of a trace arrived before the timeout
      ├── TraceIncomplete      spans arrived but the expectations never held
      ├── TraceAssertionError  a Trace.assert_* failed (also an AssertionError); the message is the tree
      ├── InvalidExpression    a chain or TraceQL expression could not be parsed (says where)
      └── ConditionTimeout     poll_until gave up: the condition never held before its deadline
"""

from __future__ import annotations

from hoptrace.tracing import HoptraceError


class HarnessError(HoptraceError):
    """Root of the harness's own errors."""


class BackendNotReady(HarnessError):
    """A trace backend did not become ready in time."""


class BackendUnreachable(HarnessError):
    """A request to a trace backend failed."""


class ServiceFailedToStart(HarnessError):
    """A service under test exited or did not become ready; the message carries its log."""


class TraceNotFound(HarnessError):
    """No span of the requested trace arrived before the timeout."""


class TraceIncomplete(HarnessError):
    """Spans arrived, but the trace was not complete, or its expectations did not hold, before the timeout.

    ``pending`` lists the work that had not finished (spans still running, hops not answered), one sentence
    each; empty when everything had finished and only the expectations failed."""

    def __init__(self, message: str, pending: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.pending = pending


class InvalidExpression(HarnessError, ValueError):
    """A chain or TraceQL expression is malformed; the message says where."""


class TraceAssertionError(HarnessError, AssertionError):
    """A trace assertion failed; the message draws the trace as a tree: what matched, what is missing."""


class ConditionTimeout(HarnessError):
    """``poll_until`` gave up: the condition did not hold before the deadline; the message says what."""
