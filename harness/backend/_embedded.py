"""The embedded backend as one in-process object: OTLP receivers, store and Tempo API."""

from __future__ import annotations

import logging
from importlib import import_module
from pathlib import Path
from types import TracebackType

from google.protobuf.message import DecodeError

from hoptrace.harness.backend._client_bounds import ClientBounds, connection_budget
from hoptrace.harness.backend._errors import PayloadTooLarge
from hoptrace.harness.backend._forwarder import OtlpForwarder, check_forward_target
from hoptrace.harness.backend._grpc_querier import GrpcQuerier
from hoptrace.harness.backend._grpc_receiver import GrpcReceiver
from hoptrace.harness.backend._http_servers import HttpServers, bind_socket
from hoptrace.harness.backend._json_pool import JsonDecoder
from hoptrace.harness.backend._metrics import BackendCollector, metrics_endpoint
from hoptrace.harness.backend._open_spans import PATH as OPEN_SPANS_PATH
from hoptrace.harness.backend._open_spans import OpenSpanRegistry, with_open_spans
from hoptrace.harness.backend._otlp_http import build_otlp_http_app
from hoptrace.harness.backend._persistence import RequestLog, store_records
from hoptrace.harness.backend._query_gate import DEFAULT_QUERY_TIMEOUT_SECONDS, QueryGate
from hoptrace.harness.backend._receiver import DEFAULT_MAX_REQUEST_BYTES, Receiver
from hoptrace.harness.backend._service_graph import ServiceGraph
from hoptrace.harness.backend._store import StoreLimits, TraceStore
from hoptrace.harness.backend._tempo_api import build_tempo_app
from hoptrace.harness.traceql import parse_traceql

logger = logging.getLogger(__name__)


class EmbeddedBackend:
    """hoptrace's trace backend, in process: OTLP in over gRPC and HTTP, Tempo's HTTP API out.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. Port 0 picks a free port; after
    :meth:`start` the chosen endpoints are in :attr:`http_url`, :attr:`otlp_grpc_endpoint` and
    :attr:`otlp_http_endpoint` (all ``http://HOST:PORT``). :attr:`store` answers in-process queries.

    ``limits`` bound the store; ``max_request_bytes`` bounds one OTLP request (after decompression);
    ``service_graph_wait_seconds`` is how long a client or server span waits for its other side before it
    counts as unpaired. ``forward_otlp`` (a URL) tees every accepted request to an upstream OTLP
    endpoint over ``forward_otlp_protocol`` (``http/protobuf`` or ``grpc``), see :class:`OtlpForwarder`.
    ``persist_path`` is a directory that keeps a log of every accepted request, written before the
    request is acknowledged and replayed at construction (which raises ``OSError`` if the directory is
    unusable), bounded by ``persist_max_bytes`` (default: twice the store's byte limit); see
    :class:`RequestLog`. A search or tag query past ``query_timeout_seconds`` is answered 504; queries
    are time-sliced against ingest (see ``QueryGate``). ``client_bounds`` limits each port's connections
    and how slowly a client may send (see :class:`ClientBounds`).

    :meth:`start` blocks until every endpoint accepts requests and raises ``OSError`` if a port is
    busy, ``hoptrace.harness.BackendNotReady`` if a server does not come up. Servers run on background
    threads; the object itself is not meant to be shared between threads while starting or stopping.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        http_port: int = 0,
        otlp_grpc_port: int = 0,
        otlp_http_port: int = 0,
        *,
        limits: StoreLimits | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        service_graph_wait_seconds: float = 10.0,
        forward_otlp: str | None = None,
        forward_otlp_protocol: str = "http/protobuf",
        persist_path: str | Path | None = None,
        persist_max_bytes: int | None = None,
        query_timeout_seconds: float = DEFAULT_QUERY_TIMEOUT_SECONDS,
        client_bounds: ClientBounds | None = None,
    ) -> None:
        self.host = host
        self.client_bounds = client_bounds or ClientBounds(connection_budget(servers=3))
        """Connections per port and client timeouts (default: from the file descriptor limit)."""
        self.store = TraceStore(limits, query_gate=QueryGate(query_timeout_seconds))
        self.open_spans = OpenSpanRegistry()
        """Spans that services reported when they started (``/hoptrace/v1/open-spans``); never in
        :attr:`store`."""
        self.receiver = Receiver(self.store, max_request_bytes)
        self.service_graph = ServiceGraph(service_graph_wait_seconds)
        self.receiver.add_listener(self.service_graph.add)
        self._forward = (forward_otlp, forward_otlp_protocol) if forward_otlp else None
        if self._forward is not None:
            check_forward_target(*self._forward)  # a bad URL fails here, not at start()
            self.receiver.add_request_listener(self._forward_request)
        self.forwarder: OtlpForwarder | None = None
        """The running forwarder when ``forward_otlp`` is set (between start and stop)."""
        self.persist_path = Path(persist_path) if persist_path is not None else None
        self.persistence: RequestLog | None = None
        """The request log when ``persist_path`` is set."""
        if self.persist_path is not None:
            self.persistence = RequestLog(
                self.persist_path, persist_max_bytes or 2 * self.store.limits.max_bytes
            )
            self._replay(self.persistence)
        self._metrics = metrics_endpoint(
            BackendCollector(
                self.receiver,
                self.store,
                self.service_graph,
                lambda: self.forwarder,
                lambda: self.persistence,
                lambda: self._http.closed_connections() if self._http is not None else None,
            )
        )
        self._ports = (http_port, otlp_grpc_port, otlp_http_port)
        self._json_decoder: JsonDecoder | None = None
        self._grpc: GrpcReceiver | None = None
        self._http: HttpServers | None = None
        self._querier: GrpcQuerier | None = None
        self.http_url = ""
        self.otlp_grpc_endpoint = ""
        self.otlp_http_endpoint = ""

    def start(self) -> EmbeddedBackend:
        """Bind and start every endpoint; see the class docstring. Returns ``self``."""
        if self._grpc is not None:
            raise RuntimeError("this EmbeddedBackend is already started")
        parse_traceql("{ }")  # builds the parser's tables (~50 ms) now, not in the first query
        import_module("numpy.ma")  # numpy's unique() imports it on first use (~20 ms): not in the index
        http_port, grpc_port, otlp_http_port = self._ports
        tempo_socket = bind_socket(self.host, http_port)
        try:
            otlp_socket = bind_socket(self.host, otlp_http_port)
        except OSError:
            tempo_socket.close()
            raise
        self._json_decoder = JsonDecoder()
        try:
            self._querier = querier = GrpcQuerier(self.store)
        except OSError:
            tempo_socket.close()
            otlp_socket.close()
            raise
        self._http = HttpServers(
            [
                (with_open_spans(build_tempo_app(self.store, self._metrics), self.open_spans), tempo_socket),
                (build_otlp_http_app(self.receiver, self._json_decoder), otlp_socket),
            ],
            self.client_bounds,
            # gRPC streaming (Grafana's) shares the Tempo API's port, as in Tempo.
            grpc_relay_ports={0: querier.port},
        )
        try:
            if self._forward is not None:
                self.forwarder = OtlpForwarder(*self._forward)
            if self.persistence is not None:
                self.persistence.open(lambda: store_records(self.store))
                self.receiver.set_journal(self.persistence.append)
            self._grpc = GrpcReceiver(self.receiver, self.host, grpc_port, self.client_bounds)
            self._grpc.start()
            querier.start()
            self._http.start()
        except BaseException:
            self.stop()
            raise
        base = f"http://[{self.host}]" if ":" in self.host else f"http://{self.host}"
        self.http_url = f"{base}:{tempo_socket.getsockname()[1]}"
        self.otlp_http_endpoint = f"{base}:{otlp_socket.getsockname()[1]}"
        self.otlp_grpc_endpoint = f"{base}:{self._grpc.port}"
        return self

    def stop(self) -> None:
        """Stop every endpoint, letting in-flight requests finish (about a second at most). Idempotent."""
        grpc_receiver, http, self._grpc, self._http = self._grpc, self._http, None, None
        if grpc_receiver is not None:
            grpc_receiver.stop()
        if http is not None:
            http.stop()
        querier, self._querier = self._querier, None
        if querier is not None:
            querier.stop()
        json_decoder, self._json_decoder = self._json_decoder, None
        if json_decoder is not None:
            json_decoder.close()
        forwarder, self.forwarder = self.forwarder, None
        if forwarder is not None:
            forwarder.close()
        if self.persistence is not None:
            self.receiver.set_journal(None)
            self.persistence.close()

    def _replay(self, log: RequestLog) -> None:
        for record in log.replay():
            try:
                self.receiver.replay(record)
            except (DecodeError, PayloadTooLarge) as exc:
                logger.warning("skipping a request log record that cannot be stored again: %s", exc)

    def _forward_request(self, request: bytes) -> None:
        forwarder = self.forwarder
        if forwarder is not None:
            forwarder.submit(request)

    def __enter__(self) -> EmbeddedBackend:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def open_spans_url(self) -> str:
        """Where services report spans as they start (``HOPTRACE_OPEN_SPANS_URL``); after :meth:`start`."""
        return f"{self.http_url}{OPEN_SPANS_PATH}" if self.http_url else ""

    def endpoints_line(self) -> str:
        """One line naming every endpoint, as ``hoptrace backend`` prints it when ready."""
        line = (
            f"hoptrace backend ready: tempo_api={self.http_url} otlp_grpc={self.otlp_grpc_endpoint} "
            f"otlp_http={self.otlp_http_endpoint}"
        )
        return line if self._forward is None else f"{line} forward_otlp={self._forward[0]}"
