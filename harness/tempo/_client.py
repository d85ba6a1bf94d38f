"""``TempoClient``: one client for Tempo's HTTP API, used against the embedded backend and real Tempo.

It fetches a trace by id (``/api/v2/traces/{id}``, falling back to v1 ``/api/traces/{id}`` on servers that
lack v2), runs TraceQL searches and lists tags. It is synchronous, blocks for at most ``timeout`` seconds per
request, and is safe to share between threads (httpx's client is). Transport failures become
``BackendUnreachable`` naming the URL; a 400 on a query becomes ``InvalidExpression`` with the server's text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from hoptrace.harness._errors import BackendUnreachable, InvalidExpression
from hoptrace.harness._model import OpenSpan, Span, SpanKind
from hoptrace.harness.tempo._json import TempoJsonError, decode_attributes, decode_id, decode_trace


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One trace found by a TraceQL search."""

    trace_id: str
    root_service_name: str
    root_trace_name: str
    start_time_unix_nano: int
    duration_ms: int
    matched_span_ids: tuple[str, ...] = ()
    matched_attributes: Mapping[str, object] = field(default_factory=dict)


class TempoClient:
    """Client for a Tempo-compatible HTTP API at ``base_url`` (e.g. ``http://127.0.0.1:3200``)."""

    def __init__(
        self, base_url: str, *, timeout: float = 5.0, headers: Mapping[str, str] | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=dict(headers or {}))
        self._v2: bool | None = None  # learnt from the first trace found
        self._open_spans: bool | None = None  # whether the backend takes open-span reports

    def __enter__(self) -> TempoClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def ready(self) -> bool:
        """``True`` when ``/ready`` answers 200; never raises."""
        try:
            return self._http.get("/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def get_trace(self, trace_id: str) -> list[Span] | None:
        """The spans of ``trace_id`` (hex, or base64), or ``None`` when the backend does not know it (404)."""
        hex_id = decode_id(trace_id.strip(), 16, trimmed_hex=True)
        if hex_id is None:
            raise ValueError("empty trace id")
        if self._v2 is not False:
            response = self._get(f"/api/v2/traces/{hex_id}")
            if response.status_code == 200:
                self._v2 = True
                return self._decode(response)
            if response.status_code != 404 or self._v2:
                self._raise_unless_missing(response)
                return None
        response = self._get(f"/api/traces/{hex_id}")
        if response.status_code == 200:
            self._v2 = False
            return self._decode(response)
        self._raise_unless_missing(response)
        return None

    def started_spans(self, trace_id: str) -> list[OpenSpan] | None:
        """The spans of ``trace_id`` that services reported when they started (finished ones included), from
        hoptrace's embedded backend; ``None`` when the backend keeps no such records (real Tempo). Not part
        of Tempo's API."""
        if self._open_spans is False:
            return None
        hex_id = decode_id(trace_id.strip(), 16, trimmed_hex=True)
        if hex_id is None:
            raise ValueError("empty trace id")
        response = self._get(f"{OPEN_SPANS_PATH}/{hex_id}")
        if response.status_code == 404:
            self._open_spans = False
            return None
        body = self._json(response)
        self._open_spans = True
        try:
            return [_open_span(raw) for raw in body.get("spans") or []]
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendUnreachable(
                f"{response.request.url} answered open spans hoptrace cannot read: {exc}"
            ) from exc

    def search(
        self,
        query: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 20,
        spans_per_spanset: int | None = None,
    ) -> list[SearchHit]:
        """Run a TraceQL search; ``start``/``end`` are unix seconds, as Tempo takes them."""
        params: dict[str, str | int] = {"q": query, "limit": limit}
        if start is not None:
            params["start"] = start
        if end is not None:
            params["end"] = end
        if spans_per_spanset is not None:
            params["spss"] = spans_per_spanset
        response = self._get("/api/search", params=params)
        if response.status_code == 400:
            raise InvalidExpression(f"TraceQL rejected by {self.base_url}: {response.text.strip()}")
        body = self._json(response)
        return [_hit(raw) for raw in body.get("traces") or []]

    def tags(self) -> list[str]:
        """Every tag name the backend knows (v2 ``/api/v2/search/tags``, else v1 ``/api/search/tags``)."""
        response = self._get("/api/v2/search/tags")
        if response.status_code == 200:
            scopes = self._json(response).get("scopes") or []
            return sorted({tag for scope in scopes for tag in scope.get("tags") or []})
        return sorted(self._json(self._get("/api/search/tags")).get("tagNames") or [])

    def tag_values(self, tag: str) -> list[str]:
        """Values seen for ``tag`` (``/api/v2/search/tag/{tag}/values``), as strings."""
        body = self._json(self._get(f"/api/v2/search/tag/{tag}/values"))
        return [str(item.get("value")) for item in body.get("tagValues") or []]

    def _get(self, path: str, params: Mapping[str, str | int] | None = None) -> httpx.Response:
        try:
            return self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise BackendUnreachable(
                f"trace backend at {self.base_url} did not answer GET {path}: {exc!r}; is it running?"
            ) from exc

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise BackendUnreachable(
                f"{response.request.method} {response.request.url} answered {response.status_code}: "
                f"{response.text.strip()[:300]}"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise BackendUnreachable(
                f"{response.request.url} answered non-JSON: {response.text[:200]!r}"
            ) from exc
        if not isinstance(body, dict):
            raise BackendUnreachable(f"{response.request.url} answered unexpected JSON: {body!r:.200}")
        return body

    def _decode(self, response: httpx.Response) -> list[Span]:
        try:
            return decode_trace(self._json(response))
        except TempoJsonError as exc:
            raise BackendUnreachable(
                f"{response.request.url} answered a trace hoptrace cannot read: {exc}"
            ) from exc

    def _raise_unless_missing(self, response: httpx.Response) -> None:
        if response.status_code != 404:
            self._json(response)  # raises with the status and body


OPEN_SPANS_PATH = "/hoptrace/v1/open-spans"
"""The embedded backend's open-span records (``hoptrace.harness.backend._open_spans``)."""


def _open_span(raw: Mapping[str, Any]) -> OpenSpan:
    return OpenSpan(
        trace_id=str(raw["traceId"]),
        span_id=str(raw["spanId"]),
        parent_span_id=str(raw.get("parentSpanId") or "") or None,
        name=str(raw.get("name", "")),
        kind=SpanKind(raw.get("kind", "internal")),
        service_name=str(raw.get("service", "")),
        start_time_unix_nano=int(raw.get("startTimeUnixNano", 0)),
    )


def _hit(raw: Mapping[str, Any]) -> SearchHit:
    span_ids: list[str] = []
    attributes: dict[str, object] = {}
    spansets = list(raw.get("spanSets") or []) or ([raw["spanSet"]] if raw.get("spanSet") else [])
    for spanset in spansets:
        for span in spanset.get("spans") or []:
            span_id = decode_id(span.get("spanID"), 8, trimmed_hex=True)
            if span_id:
                span_ids.append(span_id)
            attributes.update(decode_attributes(span.get("attributes")))
    return SearchHit(
        trace_id=decode_id(raw.get("traceID"), 16, trimmed_hex=True) or "",
        root_service_name=str(raw.get("rootServiceName", "")),
        root_trace_name=str(raw.get("rootTraceName", "")),
        start_time_unix_nano=int(raw.get("startTimeUnixNano", 0)),
        duration_ms=int(raw.get("durationMs", 0) or 0),
        matched_span_ids=tuple(span_ids),
        matched_attributes=attributes,
    )
