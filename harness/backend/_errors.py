"""The embedded backend's exceptions, below ``hoptrace.harness.HarnessError``::

HarnessError
 └── BackendError
      ├── InvalidPayload     an OTLP request could not be decoded (OTLP: 400 / INVALID_ARGUMENT)
      ├── PayloadTooLarge    a request exceeds the size or store limits (413 / RESOURCE_EXHAUSTED)
      └── Unavailable        cannot take the request now; retry later (503 + Retry-After / UNAVAILABLE)
           └── StoreFull     no room without evicting recent traces
"""

from __future__ import annotations

from hoptrace.harness._errors import HarnessError


class BackendError(HarnessError):
    """Root of the embedded backend's errors."""


class InvalidPayload(BackendError, ValueError):
    """An OTLP request body is malformed; the message says what was wrong."""


class PayloadTooLarge(BackendError):
    """A request is larger than the configured request limit, or than the whole store."""


class Unavailable(BackendError):
    """The backend cannot take the request now (e.g. its disk log cannot keep up); the sender retries."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def __reduce__(self) -> tuple[type[Unavailable], tuple[str, int]]:
        return type(self), (str(self), self.retry_after_seconds)


class StoreFull(Unavailable):
    """The store cannot take these spans without evicting traces younger than the retention floor."""
