"""OTLP/HTTP span export of :mod:`hoptrace.tracing._otlp.encoding`'s bytes through the SDK's exporter
(its HTTP client, settings and retries); see :mod:`hoptrace.tracing._otlp.export`."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from hoptrace.tracing._otlp.encoding import encode_spans
from hoptrace.tracing._otlp.http_transport import KeepAliveHttpTransport, is_plain_http

logger = logging.getLogger("hoptrace.tracing")


class HttpBytesSpanExporter(HttpSpanExporter):
    """The SDK's OTLP/HTTP span exporter, encoding with :func:`encode_spans`.

    Like the SDK's: a request larger than its ``max_request_size`` is dropped (and the export fails). It
    also posts through the SDK's own urllib3 transport instead of its ``requests`` one (a third of the CPU
    per request, same kept-alive pool, same TLS settings) when that changes nothing else: the session is the
    SDK's default one (no credential provider) and no proxy variable is set (``requests`` honours them).
    """

    def __init__(self, endpoint: str | None = None) -> None:
        if _keep_alive_from_the_start(endpoint):
            # The SDK would build a ``requests`` session only for it to be swapped: importing ``requests``
            # costs each service ~40 ms of CPU on its first export, with the GIL held, while it serves.
            try:
                super().__init__(endpoint=endpoint, _transport=KeepAliveHttpTransport())
            except TypeError:  # an SDK without the ``_transport`` parameter
                pass
            else:
                if is_plain_http(self._client._endpoint):
                    return
        super().__init__(endpoint=endpoint)
        try:
            _leaner_transport(getattr(self, "_client", None))
        except Exception as exc:  # another SDK version: keep its transport
            logger.debug("hoptrace: keeping the SDK's requests transport", exc_info=exc)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        body = encode_spans(spans)
        limit = self._max_request_size
        if limit and limit > 0 and len(body) > limit:
            logger.warning("hoptrace: span batch of %d bytes exceeds max_request_size %d", len(body), limit)
            return SpanExportResult.FAILURE
        result = self._client.export(body)
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE

    @property
    def hooked(self) -> bool:
        client = getattr(self, "_client", None)
        return (
            callable(getattr(client, "export", None))
            and isinstance(getattr(self, "_shutdown", None), bool)
            and isinstance(getattr(self, "_max_request_size", None), int)
        )


def _keep_alive_from_the_start(endpoint: str | None) -> bool:
    """Whether the SDK's exporter would get a default ``requests`` session that :func:`_leaner_transport`
    swaps for :class:`KeepAliveHttpTransport`: a plain ``http://`` endpoint (resolved as the SDK resolves
    it; the caller checks the SDK's own result too), no credential provider and no proxy variable."""
    resolved = (
        endpoint
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or "http://localhost:4318"
    )
    return is_plain_http(resolved) and not any(
        name.lower().endswith("_proxy") or "CREDENTIAL_PROVIDER" in name.upper() for name in os.environ
    )


def _leaner_transport(client: Any) -> None:
    """Swap ``client``'s ``requests`` transport, when its session is a default one and no proxy variable is
    set, for :class:`KeepAliveHttpTransport` (``http://``) or the SDK's urllib3 one with the same TLS
    settings (``https://``)."""
    import requests
    from opentelemetry.exporter.http.transport._requests import RequestsHTTPTransport

    transport = client._transport
    session = getattr(transport, "_session", None)
    if type(transport) is not RequestsHTTPTransport or type(session) is not requests.Session:
        return
    if session.auth is not None or session.proxies or any(k.lower().endswith("_proxy") for k in os.environ):
        return
    if is_plain_http(client._endpoint):
        client._transport = KeepAliveHttpTransport()
    else:
        from opentelemetry.exporter.http.transport._urllib3 import Urllib3HTTPTransport

        client._transport = Urllib3HTTPTransport(verify=session.verify, cert=session.cert)
    session.close()
