"""OTLP/gRPC ``TraceService/Export`` on grpcio.

The method is registered through a generic handler with no deserializer, so grpcio hands over the raw
request bytes and the :class:`Receiver` parses them with upb in one call (no per-span Python objects from
grpc's own deserialization path). grpcio enforces the request size limit itself and answers
RESOURCE_EXHAUSTED; the other OTLP answers are set here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.code_pb2 import UNAVAILABLE
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status

from hoptrace.harness.backend._client_bounds import ClientBounds
from hoptrace.harness.backend._errors import InvalidPayload, PayloadTooLarge, Unavailable
from hoptrace.harness.backend._receiver import Receiver

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class GrpcReceiver:
    """An OTLP/gRPC trace receiver bound on ``host:port`` (0 picks a free port, see :attr:`port`)."""

    def __init__(
        self, receiver: Receiver, host: str, port: int, bounds: ClientBounds, max_workers: int = 8
    ) -> None:
        self._receiver = receiver
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="hoptrace-otlp-grpc"),
            options=[
                ("grpc.max_receive_message_length", receiver.max_request_bytes),
                # Without this two backends could share an explicit port and split the traffic.
                ("grpc.so_reuseport", 0),
                # Enforced before the handshake, on raw sockets too: idle sockets cannot take every
                # file descriptor. A connection that does not complete its handshake is closed.
                ("grpc.max_allowed_incoming_connections", bounds.max_connections),
                ("grpc.server_handshake_timeout_ms", int(bounds.header_timeout_seconds * 1000)),
            ],
        )
        handler = grpc.unary_unary_rpc_method_handler(self._export)
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),)
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.port: int = self._server.add_insecure_port(address)
        except RuntimeError as exc:  # grpcio's way of saying the port is busy
            raise OSError(f"cannot bind the OTLP/gRPC receiver on {address}: {exc}") from exc
        if self.port == 0:
            raise OSError(f"cannot bind the OTLP/gRPC receiver on {address}")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace_seconds: float = 1.0) -> None:
        """Stop accepting calls and wait for running ones up to ``grace_seconds``. Blocks."""
        self._server.stop(grace_seconds).wait()

    def _export(self, request: bytes, context: Any) -> bytes:
        try:
            response = self._receiver.export_protobuf(request)
        except InvalidPayload as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except PayloadTooLarge as exc:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except Unavailable as exc:
            retry_info = RetryInfo(retry_delay=Duration(seconds=exc.retry_after_seconds))
            status = Status(code=UNAVAILABLE, message=str(exc))
            status.details.add().Pack(retry_info)
            context.set_trailing_metadata(
                (
                    # The OTLP spec's place for RetryInfo, and the key opentelemetry-python reads.
                    ("grpc-status-details-bin", status.SerializeToString()),
                    ("google.rpc.retryinfo-bin", retry_info.SerializeToString()),
                )
            )
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        data: bytes = response.SerializeToString()
        return data
