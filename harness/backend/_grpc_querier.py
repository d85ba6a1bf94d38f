"""Tempo's gRPC ``tempopb.StreamingQuerier``, served by grpcio on a loopback port behind the API port.

Grafana's Tempo data source calls it with streaming on: ``Search``, ``MetricsQueryRange``,
``MetricsQueryInstant`` and the tag calls. Each method answers from the same code as the HTTP API: the
JSON document is built once and converted with protobuf's JSON mapping into the messages of
``_tempopb/tempo.proto`` (ours), so both encodings always agree. A stream carries one complete answer.
A bad query ends the call with INVALID_ARGUMENT and the message HTTP would give with its 400; a
query past its deadline with DEADLINE_EXCEEDED (HTTP's 504).
:mod:`._h2c_front_door` relays the API port's HTTP/2 connections here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from hoptrace.harness._errors import InvalidExpression
from hoptrace.harness.backend._json import finite_json
from hoptrace.harness.backend._metrics_api import (
    instant_request_nanos,
    query_instant,
    query_range,
    range_request_nanos,
)
from hoptrace.harness.backend._query_gate import QueryTimeout
from hoptrace.harness.backend._search import SearchRequest, search, tags_query
from hoptrace.harness.backend._store import TraceStore
from hoptrace.harness.backend._tags import (
    SCOPES,
    V1_SCOPES,
    parse_tag,
    tag_values_v1,
    tag_values_v2,
    tags_v1,
    tags_v2,
)
from hoptrace.harness.backend._tempo_api import MAX_SEARCH_LIMIT, MAX_SPANS_PER_SPANSET
from hoptrace.harness.backend._tempopb import tempo_pb2
from hoptrace.harness.backend._time_params import DEFAULT_SINCE_NANOS, default_step_nanos
from hoptrace.harness.traceql import autocomplete_filter, parse_metrics_query, parse_traceql

logger = logging.getLogger(__name__)

SERVICE = "tempopb.StreamingQuerier"


def _message(document: dict[str, Any], message: Message) -> Message:
    """``document`` (the HTTP answer) as ``message``; raises ``ParseError`` if it does not fit the proto."""
    json_format.ParseDict(finite_json(document), message)  # NaN as "NaN", as protobuf's JSON spells it
    return message


class GrpcQuerier:
    """grpcio serving :data:`SERVICE` over ``store`` on ``127.0.0.1`` (a free port, see :attr:`port`)."""

    def __init__(self, store: TraceStore, max_workers: int = 4) -> None:
        self._store = store
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="hoptrace-querier"),
            options=[("grpc.so_reuseport", 0)],
        )
        methods: dict[str, tuple[Callable[[Any], Message], type[Message]]] = {
            "Search": (self._search, tempo_pb2.SearchRequest),
            "SearchTags": (self._tags, tempo_pb2.SearchTagsRequest),
            "SearchTagsV2": (self._tags_v2, tempo_pb2.SearchTagsRequest),
            "SearchTagValues": (self._tag_values, tempo_pb2.SearchTagValuesRequest),
            "SearchTagValuesV2": (self._tag_values_v2, tempo_pb2.SearchTagValuesRequest),
            "MetricsQueryRange": (self._query_range, tempo_pb2.QueryRangeRequest),
            "MetricsQueryInstant": (self._query_instant, tempo_pb2.QueryInstantRequest),
        }
        handlers = {
            name: grpc.unary_stream_rpc_method_handler(
                self._streamed(answer),
                request_deserializer=request_type.FromString,
                response_serializer=lambda message: message.SerializeToString(),
            )
            for name, (answer, request_type) in methods.items()
        }
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port: int = self._server.add_insecure_port("127.0.0.1:0")
        if self.port == 0:
            raise OSError("cannot bind the gRPC querier on a loopback port")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace_seconds: float = 1.0) -> None:
        """Stop accepting calls and wait for running ones up to ``grace_seconds``. Blocks."""
        self._server.stop(grace_seconds).wait()

    @staticmethod
    def _streamed(answer: Callable[[Any], Message]) -> Callable[[Any, Any], Iterator[Message]]:
        def call(request: Any, context: Any) -> Iterator[Message]:
            try:
                response = answer(request)
            except (InvalidExpression, ValueError) as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                return
            except QueryTimeout as exc:  # HTTP answers 504
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc))
                return
            except Exception:
                logger.exception("the gRPC querier failed to answer")
                context.abort(grpc.StatusCode.INTERNAL, "the query failed; see the backend's log")
                return
            yield response

        return call

    def _search(self, request: Any) -> Message:
        if request.Query.strip():
            query = parse_traceql(request.Query)
        elif request.Tags:
            query = tags_query(" ".join(f'{key}="{value}"' for key, value in request.Tags.items()))
        else:
            query = parse_traceql("{}")
        document = search(
            self._store,
            SearchRequest(
                query=query,
                start_seconds=request.start or None,
                end_seconds=request.end or None,
                limit=min(request.Limit or 20, MAX_SEARCH_LIMIT),
                spans_per_spanset=min(request.SpansPerSpanSet or 3, MAX_SPANS_PER_SPANSET),
                min_duration_nanos=request.MinDurationMs * 1_000_000 or None,
                max_duration_nanos=request.MaxDurationMs * 1_000_000 or None,
            ),
        )
        return _message(document, tempo_pb2.SearchResponse())

    def _tags(self, request: Any) -> Message:
        return _message(tags_v1(self._store, _scope(request.scope)), tempo_pb2.SearchTagsResponse())

    def _tags_v2(self, request: Any) -> Message:
        query = autocomplete_filter(request.query) if request.query.strip() else None
        document = tags_v2(self._store, _scope(request.scope), query)
        return _message(document, tempo_pb2.SearchTagsV2Response())

    def _tag_values(self, request: Any) -> Message:
        field = parse_tag(request.tagName, V1_SCOPES)
        if field is None:
            raise ValueError("tagName is empty")
        return _message(tag_values_v1(self._store, field), tempo_pb2.SearchTagValuesResponse())

    def _tag_values_v2(self, request: Any) -> Message:
        field = parse_tag(request.tagName)
        if field is None:
            raise ValueError("tagName is empty")
        query = autocomplete_filter(request.query) if request.query.strip() else None
        return _message(tag_values_v2(self._store, field, query), tempo_pb2.SearchTagValuesV2Response())

    def _query_range(self, request: Any) -> Message:
        query = parse_metrics_query(request.query)
        end = request.end or time.time_ns()
        start = request.start or end - DEFAULT_SINCE_NANOS
        step = request.step or default_step_nanos(start, end)
        metrics_request = range_request_nanos(query, start, end, step, request.exemplars or None)
        return _message(query_range(self._store, metrics_request), tempo_pb2.QueryRangeResponse())

    def _query_instant(self, request: Any) -> Message:
        query = parse_metrics_query(request.query)
        end = request.end or time.time_ns()
        start = request.start or end - DEFAULT_SINCE_NANOS
        document = query_instant(self._store, instant_request_nanos(query, start, end))
        return _message(document, tempo_pb2.QueryInstantResponse())


def _scope(scope: str) -> str | None:
    if scope in ("", "all"):
        return None
    if scope not in SCOPES:
        raise ValueError(f"invalid scope {scope!r}; use {', '.join(SCOPES)} or all")
    return scope
