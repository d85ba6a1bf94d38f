"""OTLP span exporters that send :mod:`hoptrace.tracing._otlp.encoding`'s bytes over the SDK's transports.

They are the OpenTelemetry exporters (``opentelemetry-exporter-otlp-proto-grpc`` / ``-http``) with one
step replaced: encoding. Everything else is theirs, so every ``OTEL_EXPORTER_OTLP_*`` setting (endpoint,
headers, timeout, compression, certificates), retries with back-off, and the kept-alive connection (one gRPC
channel; one HTTP connection pool) behave exactly as before. The gRPC exporter sends the pre-encoded
request through a stub whose serializer passes bytes through; the HTTP exporter posts them.

The exporters live in :mod:`hoptrace.tracing._otlp.grpc` and :mod:`hoptrace.tracing._otlp.http`.
Both hook into protected members of the SDK's exporters (checked against 1.45). :func:`fast_otlp_exporter`
builds one and checks that the hook took; if the installed SDK differs, it returns the stock exporter, so
an SDK upgrade can only make export slower, never break it.
"""

from __future__ import annotations

import logging

from opentelemetry.sdk.trace.export import SpanExporter

logger = logging.getLogger("hoptrace.tracing")


def fast_otlp_exporter(protocol: str, endpoint: str | None) -> SpanExporter:
    """An OTLP span exporter for ``protocol`` (``grpc`` | ``http/protobuf``) and ``endpoint`` (``None``:
    the ``OTEL_EXPORTER_OTLP_*`` variables decide; over HTTP, the full ``/v1/traces`` URL). The fast one
    when the installed SDK exporter has the expected hooks, else the SDK's own. Only that protocol's
    client stack is imported. Raises what the SDK's constructor raises for a bad configuration."""
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

        from hoptrace.tracing._otlp.http import HttpBytesSpanExporter

        http = HttpBytesSpanExporter(endpoint=endpoint)
        if http.hooked:
            return http
        logger.debug("hoptrace: the SDK's OTLP/HTTP exporter changed; using it as it is")
        return HttpSpanExporter(endpoint=endpoint)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

    from hoptrace.tracing._otlp.grpc import GrpcBytesSpanExporter

    grpc = GrpcBytesSpanExporter(endpoint=endpoint)
    if grpc.hooked:
        return grpc
    logger.debug("hoptrace: the SDK's OTLP/gRPC exporter changed; using it as it is")
    grpc.shutdown()
    return GrpcSpanExporter(endpoint=endpoint)
