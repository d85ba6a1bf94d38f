"""OTLP/gRPC span export of :mod:`hoptrace.tracing._otlp.encoding`'s bytes through the SDK's exporter
(its channel, settings and retries); see :mod:`hoptrace.tracing._otlp.export`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan

from hoptrace.tracing._otlp.encoding import encode_spans

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
