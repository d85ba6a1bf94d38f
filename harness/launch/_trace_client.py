"""``TraceClient``: HTTP requests that start a known trace, so a test can fetch exactly that trace.

Each request carries a fresh W3C ``traceparent`` (sampled) naming a new trace id and an entry span id, and,
when a tenant is given, the tenant header (default ``X-Tenant-ID``) that the edge service turns into baggage.
The entry span itself is never exported: ``Trace(..., entry_span_id=...)`` treats its children as roots.
Thread-safe as httpx's client is.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

DEFAULT_TENANT_HEADER = "X-Tenant-ID"


@dataclass(frozen=True, slots=True)
class TracedResponse:
    """An HTTP response plus the trace it started."""

    response: httpx.Response
    trace_id: str
    entry_span_id: str
    tenant: str | None

    @property
    def status_code(self) -> int:
        return self.response.status_code

    def json(self) -> Any:
        return self.response.json()


class TraceClient:
    """Sends HTTP requests that each start a new, known trace."""

    def __init__(
        self,
        base_url: str = "",
        *,
        tenant_header: str = DEFAULT_TENANT_HEADER,
        timeout: float = 10.0,
    ) -> None:
        self.tenant_header = tenant_header
        self._http = httpx.Client(base_url=base_url, timeout=timeout)
        self.sent: list[TracedResponse] = []
        """Every response so far, in order (the pytest plugin reads it for failure reports)."""

    def __enter__(self) -> TraceClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, url: str, *, tenant: str | None = None, **kwargs: Any) -> TracedResponse:
        """Send one request in a new trace; ``kwargs`` go to ``httpx.Client.request``."""
        trace_id, span_id = new_trace_id(), secrets.token_hex(8)
        headers = dict(kwargs.pop("headers", None) or {})
        headers["traceparent"] = f"00-{trace_id}-{span_id}-01"
        if tenant is not None:
            headers[self.tenant_header] = tenant
        response = self._http.request(method, url, headers=headers, **kwargs)
        # What was sent wins: in a test process that is itself traced (pytest under `hoptrace run`, or an
        # instrumented httpx), the instrumentation replaces this traceparent with its own CLIENT span's.
        sent = response.request.headers.get("traceparent", "").split("-")
        if len(sent) == 4 and len(sent[1]) == 32 and len(sent[2]) == 16:
            trace_id, span_id = sent[1], sent[2]
        traced = TracedResponse(response, trace_id, span_id, tenant)
        self.sent.append(traced)
        return traced

    def get(self, url: str, *, tenant: str | None = None, **kwargs: Any) -> TracedResponse:
        return self.request("GET", url, tenant=tenant, **kwargs)

    def post(self, url: str, *, tenant: str | None = None, **kwargs: Any) -> TracedResponse:
        return self.request("POST", url, tenant=tenant, **kwargs)


def new_trace_id() -> str:
    """A random, valid (non-zero) W3C trace id as 32 hex characters."""
    while True:
        trace_id = secrets.token_hex(16)
        if int(trace_id, 16):
            return trace_id
