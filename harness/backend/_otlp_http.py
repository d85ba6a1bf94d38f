"""OTLP/HTTP ``POST /v1/traces`` as a Starlette app: binary protobuf or JSON, optionally gzip.

Answers follow https://opentelemetry.io/docs/specs/otlp/#otlphttp-response: 200 with an
``ExportTraceServiceResponse`` (``partial_success`` when spans were rejected), and for failures a
``google.rpc.Status`` body in the request's encoding with 400 (malformed), 413 (too large), 415
(unsupported content type) or 503 + ``Retry-After`` (store full).
"""

from __future__ import annotations

import zlib

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc.code_pb2 import INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE
from google.rpc.status_pb2 import Status
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from hoptrace.harness.backend._errors import InvalidPayload, PayloadTooLarge, Unavailable
from hoptrace.harness.backend._json_pool import JsonDecoder
from hoptrace.harness.backend._receiver import Receiver

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def build_otlp_http_app(receiver: Receiver, json_decoder: JsonDecoder) -> Starlette:
    """The OTLP/HTTP trace receiver app. Its handler never raises: every failure is an OTLP answer
    (a client that leaves mid-body gets none, and is not logged)."""

    async def export_traces(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in (PROTOBUF, JSON):
            receiver.count_invalid()
            return _status_response(
                415,
                INVALID_ARGUMENT,
                f"unsupported content type {content_type!r}; use {PROTOBUF} or {JSON}",
                JSON,
            )
        try:
            body = await _read_body(request, receiver.max_request_bytes)
            if content_type == JSON:
                body = await json_decoder.decode(body)
        except Unavailable as exc:
            return _unavailable(exc, content_type)
        except ClientDisconnect:
            receiver.count_invalid()  # an incomplete request; nobody is listening for the answer
            return Response(status_code=400)
        except InvalidPayload as exc:
            receiver.count_invalid()
            return _status_response(400, INVALID_ARGUMENT, str(exc), content_type)
        except PayloadTooLarge as exc:
            receiver.count_too_large()
            return _status_response(413, RESOURCE_EXHAUSTED, str(exc), content_type)
        try:
            # On a worker thread: a large request must not stall the event loop.
            response = await run_in_threadpool(receiver.export_protobuf, body)
        except InvalidPayload as exc:
            return _status_response(400, INVALID_ARGUMENT, str(exc), content_type)
        except PayloadTooLarge as exc:
            return _status_response(413, RESOURCE_EXHAUSTED, str(exc), content_type)
        except Unavailable as exc:
            return _unavailable(exc, content_type)
        return _message_response(200, response, content_type)

    return Starlette(routes=[Route("/v1/traces", export_traces, methods=["POST"])])


async def _read_body(request: Request, limit: int) -> bytes:
    """Read (and gunzip) the body, refusing more than ``limit`` bytes at either stage."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise InvalidPayload(f"unsupported content encoding {encoding!r}; use gzip or none")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request of {declared} bytes exceeds the {limit} byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request exceeds the {limit} byte limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    if encoding == "identity":
        return body
    return await run_in_threadpool(gunzip, body, limit)


def gunzip(body: bytes, limit: int) -> bytes:
    """Every member of a gzip body (RFC 1952 allows several, concatenated), at most ``limit`` bytes.

    Raises :class:`InvalidPayload` for bad or truncated gzip, :class:`PayloadTooLarge` past ``limit``.
    """
    parts: list[bytes] = []
    size = 0
    remaining = body
    while True:
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            data = decompressor.decompress(remaining, limit - size + 1)
        except zlib.error as exc:
            raise InvalidPayload(f"request body is not valid gzip: {exc}") from exc
        size += len(data)
        if size > limit or decompressor.unconsumed_tail:
            raise PayloadTooLarge(f"request exceeds the {limit} byte limit once decompressed")
        if not decompressor.eof:
            raise InvalidPayload("gzip request body is truncated")
        parts.append(data)
        remaining = decompressor.unused_data
        if not remaining.strip(b"\0"):  # trailing zero padding, as gzip(1) tolerates
            return b"".join(parts)


def _unavailable(exc: Unavailable, content_type: str) -> Response:
    headers = {"Retry-After": str(exc.retry_after_seconds)}
    return _status_response(503, UNAVAILABLE, str(exc), content_type, headers)


def _status_response(
    http_status: int, code: int, message: str, content_type: str, headers: dict[str, str] | None = None
) -> Response:
    return _message_response(http_status, Status(code=code, message=message), content_type, headers)


def _message_response(
    http_status: int, message: Message, content_type: str, headers: dict[str, str] | None = None
) -> Response:
    if content_type == JSON:
        body = json_format.MessageToJson(message, indent=None).encode()
    else:
        body = message.SerializeToString()
        content_type = PROTOBUF
    return Response(body, status_code=http_status, media_type=content_type, headers=headers)
