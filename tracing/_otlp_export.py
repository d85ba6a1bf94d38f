"""OTLP span exporters that send :mod:`hoptrace.tracing._otlp_encoding`'s bytes over the SDK's transports.

They are the OpenTelemetry exporters (``opentelemetry-exporter-otlp-proto-grpc`` / ``-http``) with one
step replaced: encoding. Everything else is theirs, so every ``OTEL_EXPORTER_OTLP_*`` setting (endpoint,
headers, timeout, compression, certificates), retries with back-off, and the kept-alive connection (one gRPC
channel; one HTTP connection pool) behave exactly as before. The gRPC exporter sends the pre-encoded
request through a stub whose serializer passes bytes through; the HTTP exporter posts them.

Both hook into protected members of the SDK's exporters (checked against 1.45). :func:`fast_otlp_exporter`
builds one and checks that the hook took; if the installed SDK differs, it returns the stock exporter, so
an SDK upgrade can only make export slower, never break it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from hoptrace.tracing._otlp_encoding import encode_spans

logger = logging.getLogger("hoptrace.tracing")

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _BytesTraceServiceStub:
    """A ``TraceServiceStub`` whose ``Export`` takes the request already serialised."""

    def __init__(self, channel: Any) -> None:
        self.Export = channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=None,  # grpc sends bytes as they are
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


class GrpcBytesSpanExporter(GrpcSpanExporter):
    """The SDK's OTLP/gRPC span exporter, encoding with :func:`encode_spans`."""

    def _initialize_channel_and_stub(self) -> None:
        super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]
        self._client: Any = _BytesTraceServiceStub(self._channel)

    def _translate_data(self, data: Sequence[ReadableSpan]) -> bytes:  # type: ignore[override]
        return encode_spans(data)

    @property
    def hooked(self) -> bool:
        return isinstance(getattr(self, "_client", None), _BytesTraceServiceStub)


class HttpBytesSpanExporter(HttpSpanExporter):
    """The SDK's OTLP/HTTP span exporter, encoding with :func:`encode_spans`.

    Like the SDK's: a request larger than its ``max_request_size`` is dropped (and the export fails). It
    also posts through the SDK's own urllib3 transport instead of its ``requests`` one (a third of the CPU
    per request, same kept-alive pool, same TLS settings) when that changes nothing else: the session is the
    SDK's default one (no credential provider) and no proxy variable is set (``requests`` honours them).
    """

    def __init__(self, endpoint: str | None = None) -> None:
        super().__init__(endpoint=endpoint)
        try:
            _post_with_urllib3(getattr(self, "_client", None))
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


def _post_with_urllib3(client: Any) -> None:
    """Swap ``client``'s ``requests`` transport for the SDK's urllib3 one with the same TLS settings, when
    the session is a default one and no proxy variable is set."""
    import requests
    from opentelemetry.exporter.http.transport._requests import RequestsHTTPTransport
    from opentelemetry.exporter.http.transport._urllib3 import Urllib3HTTPTransport

    transport = client._transport
    session = getattr(transport, "_session", None)
    if type(transport) is not RequestsHTTPTransport or type(session) is not requests.Session:
        return
    if session.auth is not None or session.proxies or any(k.lower().endswith("_proxy") for k in os.environ):
        return
    client._transport = Urllib3HTTPTransport(verify=session.verify, cert=session.cert)
    session.close()


def fast_otlp_exporter(protocol: str, endpoint: str | None) -> SpanExporter:
    """An OTLP span exporter for ``protocol`` (``grpc`` | ``http/protobuf``) and ``endpoint`` (``None``:
    the ``OTEL_EXPORTER_OTLP_*`` variables decide; over HTTP, the full ``/v1/traces`` URL). The fast one
    when the installed SDK exporter has the expected hooks, else the SDK's own. Raises what the SDK's
    constructor raises for a bad configuration."""
    if protocol == "http/protobuf":
        http = HttpBytesSpanExporter(endpoint=endpoint)
        if http.hooked:
            return http
        logger.debug("hoptrace: the SDK's OTLP/HTTP exporter changed; using it as it is")
        return HttpSpanExporter(endpoint=endpoint)
    grpc = GrpcBytesSpanExporter(endpoint=endpoint)
    if grpc.hooked:
        return grpc
    logger.debug("hoptrace: the SDK's OTLP/gRPC exporter changed; using it as it is")
    grpc.shutdown()
    return GrpcSpanExporter(endpoint=endpoint)
