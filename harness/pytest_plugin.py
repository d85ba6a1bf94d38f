"""hoptrace's pytest plugin (entry point ``pytest11``): hooks and fixtures only; heavy imports are lazy.

Fixtures:
- ``hoptrace_backend`` (session): the trace backend chosen by ``--trace-backend`` (embedded by default).
- ``tempo_client`` (session): a ``TempoClient`` on that backend.
- ``rabbitmq`` (session): a broker (``AMQP_URL`` if it answers, else a private ``rabbitmq-server``).
- ``traced_services``: a ``ServiceLauncher`` exporting to the backend; stops its services at teardown.
  ``module_traced_services`` and ``session_traced_services`` are the same, shared by a module or the session,
  so that a module's tests start their stack once (in a module- or session-scoped fixture of their own).
- ``trace_client``: a ``TraceClient`` whose requests each start a new, known trace.
- ``wait_for_trace``: ``wait_for_trace(response_or_trace_id, until=..., timeout=...) -> Trace``.
- ``expect_trace``: ``expect_trace(response_or_trace_id, *expectations)`` registers expectations that are
  checked at teardown, all of them, with every failure reported.
On failure, the last traces fetched (as trees) and the services' logs are added to the report. The
services' log folders are removed after a passing session, and kept, with their paths printed, after a
failing one.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hoptrace.harness.assertions._trace import Trace
    from hoptrace.harness.launch._backends import Backend
    from hoptrace.harness.launch._rabbitmq import RabbitMQ
    from hoptrace.harness.launch._services import ServiceLauncher
    from hoptrace.harness.launch._trace_client import TraceClient, TracedResponse
    from hoptrace.harness.tempo._client import TempoClient

_STATE = pytest.StashKey["_TestState"]()
_KEPT = pytest.StashKey[list[Any]]()
_LAUNCHERS = pytest.StashKey[list["ServiceLauncher"]]()
_KEPT_LOGS = pytest.StashKey[list[str]]()
_SHARED_LAUNCHERS = ("module_traced_services", "session_traced_services")


class _TestState:
    def __init__(self) -> None:
        self.traces: list[Trace] = []
        self.launchers: list[ServiceLauncher] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hoptrace", "hoptrace end-to-end trace assertions")
    group.addoption(
        "--trace-backend",
        choices=("embedded", "tempo"),
        default="embedded",
        help="trace backend for the hoptrace fixtures (default: embedded)",
    )
    group.addoption(
        "--tempo-url", default=None, help="use the Tempo API at this URL (with --trace-backend=tempo)"
    )
    group.addoption(
        "--tempo-otlp-endpoint",
        default=None,
        help="OTLP/gRPC endpoint of that Tempo (default: its host, 4317)",
    )
    group.addoption(
        "--hoptrace-keep",
        action="store_true",
        default=False,
        help="keep the backend and services running after the tests, until Ctrl-C, for debugging",
    )
    group.addoption(
        "--hoptrace-export-delay-ms",
        type=int,
        default=50,
        help="OTEL_BSP_SCHEDULE_DELAY given to services; the quiet period of waits follows it (default 50)",
    )
    group.addoption(
        "--hoptrace-timeout", type=float, default=15.0, help="seconds to wait for a trace (default 15)"
    )
    group.addoption(
        "--hoptrace-backend-ports",
        default=None,
        metavar="HTTP,OTLP_GRPC,OTLP_HTTP",
        help="ports of the embedded backend: Tempo API, OTLP/gRPC, OTLP/HTTP (default: free ports)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hoptrace(timeout=None): end-to-end trace test; timeout overrides --hoptrace-timeout for its waits",
    )
    _backend_ports(config.getoption("--hoptrace-backend-ports", None))  # a bad value fails before any test
    config.stash[_KEPT] = []
    config.stash[_LAUNCHERS] = []
    config.stash[_KEPT_LOGS] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    state = item.stash.get(_STATE, None)
    if report.failed:
        for trace in state.traces[-3:] if state is not None else ():
            report.sections.append((f"hoptrace trace {trace.trace_id}", trace.render()))
        launchers = list(state.launchers) if state is not None else []
        funcargs = getattr(item, "funcargs", {})
        launchers += [funcargs[name] for name in _SHARED_LAUNCHERS if name in funcargs]
        logs = "\n".join(filter(None, (launcher.logs() for launcher in launchers)))
        if logs:
            report.sections.append(("hoptrace service logs", logs))
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    launchers = session.config.stash.get(_LAUNCHERS, [])
    if session.config.getoption("--hoptrace-keep", False):
        return
    if exitstatus == 0:
        for launcher in launchers:
            launcher.remove_logs()
    else:
        session.config.stash[_KEPT_LOGS] = sorted({str(launcher.log_dir) for launcher in launchers})


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    kept = config.stash.get(_KEPT_LOGS, [])
    if kept:
        terminalreporter.write_sep("-", "hoptrace: service logs kept")
        for path in kept:
            terminalreporter.write_line(path)


def pytest_unconfigure(config: pytest.Config) -> None:
    kept = config.stash.get(_KEPT, [])
    if kept:
        _wait_for_ctrl_c(config, kept)


@pytest.fixture(scope="session")
def hoptrace_backend(pytestconfig: pytest.Config) -> Iterator[Backend]:
    """The session's trace backend (a ``hoptrace.harness.Backend``): ``--trace-backend`` picks it, embedded
    by default on free ports (``--hoptrace-backend-ports`` places it). Stopped at the end of the session."""
    from hoptrace.harness.launch._backends import open_backend

    backend = open_backend(
        pytestconfig.getoption("--trace-backend"),
        tempo_url=pytestconfig.getoption("--tempo-url"),
        otlp_endpoint=pytestconfig.getoption("--tempo-otlp-endpoint"),
        ports=_backend_ports(pytestconfig.getoption("--hoptrace-backend-ports")),
    )
    if pytestconfig.getoption("--hoptrace-keep"):
        pytestconfig.stash[_KEPT].append(backend)
        yield backend
        return
    with backend:
        yield backend


@pytest.fixture(scope="session")
def tempo_client(hoptrace_backend: Backend) -> Iterator[TempoClient]:
    """A ``hoptrace.harness.TempoClient`` on ``hoptrace_backend``'s Tempo API (session)."""
    from hoptrace.harness.tempo._client import TempoClient

    with TempoClient(hoptrace_backend.tempo_url) as client:
        yield client


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQ]:
    """A RabbitMQ broker for the session: ``AMQP_URL`` if it answers, else a private ``rabbitmq-server``.
    ``rabbitmq.url`` is its AMQP URL; ``rabbitmq.unique_name("orders")`` names a queue no other test uses."""
    from hoptrace.harness.launch._rabbitmq import start_rabbitmq

    with start_rabbitmq() as broker:
        yield broker


@pytest.fixture
def traced_services(request: pytest.FixtureRequest, hoptrace_backend: Backend) -> Iterator[ServiceLauncher]:
    """A ``hoptrace.harness.ServiceLauncher`` for this test: ``start(name, command, ...)`` and
    ``start_asgi(name, "module:app", ...)`` run services under ``hoptrace run``, exporting to
    ``hoptrace_backend``, and return a ``Service`` whose ``url`` is its base URL. Every service is stopped
    at the end of the test, children included."""
    yield from _launcher(request, hoptrace_backend)


@pytest.fixture(scope="module")
def module_traced_services(
    request: pytest.FixtureRequest, hoptrace_backend: Backend
) -> Iterator[ServiceLauncher]:
    """``traced_services`` shared by the tests of one module: start a stack once, in a module-scoped
    fixture of your own, and every test of the module reuses it. Stopped after the module's last test."""
    yield from _launcher(request, hoptrace_backend)


@pytest.fixture(scope="session")
def session_traced_services(
    request: pytest.FixtureRequest, hoptrace_backend: Backend
) -> Iterator[ServiceLauncher]:
    """``traced_services`` shared by the whole session (use it from session-scoped fixtures). Stopped at
    the end of the session."""
    yield from _launcher(request, hoptrace_backend)


def _launcher(request: pytest.FixtureRequest, backend: Backend) -> Iterator[ServiceLauncher]:
    from hoptrace.harness.launch._services import ServiceLauncher

    launcher = ServiceLauncher(
        backend.otlp_grpc_endpoint,
        export_delay_ms=request.config.getoption("--hoptrace-export-delay-ms"),
        open_spans_url=backend.open_spans_url,
    )
    request.config.stash[_LAUNCHERS].append(launcher)
    if request.scope == "function":
        _state(request).launchers.append(launcher)
    if request.config.getoption("--hoptrace-keep"):
        request.config.stash[_KEPT].append(launcher)
        yield launcher
        return
    with launcher:
        yield launcher


@pytest.fixture
def trace_client() -> Iterator[TraceClient]:
    """A ``hoptrace.harness.TraceClient``: ``trace_client.post(url, tenant="acme", json=...)`` sends a request
    that starts a new, known trace (a fresh ``traceparent``) and returns a ``TracedResponse`` to hand to
    ``wait_for_trace`` or ``expect_trace``."""
    from hoptrace.harness.launch._trace_client import TraceClient

    with TraceClient() as client:
        yield client


@pytest.fixture
def wait_for_trace(request: pytest.FixtureRequest, tempo_client: TempoClient) -> Callable[..., Trace]:
    """``wait_for_trace(response_or_trace_id, *, until=(), timeout=None) -> Trace``: blocks until the trace
    is complete (no span still running, every hop to a started service answered) and ``until`` holds, then
    returns it; raises ``TraceIncomplete`` / ``TraceNotFound`` naming what is open or missing after
    ``timeout`` (default: the ``hoptrace`` marker's, else ``--hoptrace-timeout``)."""
    from hoptrace.harness.assertions._wait import wait_for_trace as wait

    state = _state(request)
    launchers = request.config.stash[_LAUNCHERS]
    marker = request.node.get_closest_marker("hoptrace")
    default_timeout = (marker.kwargs.get("timeout") if marker else None) or request.config.getoption(
        "--hoptrace-timeout"
    )

    def wait_for(target: TracedResponse | str, *, until: Any = (), timeout: float | None = None) -> Trace:
        trace_id, entry = (
            (target, None) if isinstance(target, str) else (target.trace_id, target.entry_span_id)
        )
        try:
            trace = wait(
                tempo_client,
                trace_id,
                until=until,
                timeout=timeout or default_timeout,
                export_delay_ms=request.config.getoption("--hoptrace-export-delay-ms"),
                entry_span_id=entry,
                services=[s for launcher in launchers for s in launcher.services],
            )
        except Exception:
            _remember_partial(state, tempo_client, trace_id, entry)
            raise
        state.traces.append(trace)
        return trace

    return wait_for


@pytest.fixture
def expect_trace(wait_for_trace: Callable[..., Trace]) -> Iterator[Callable[..., None]]:
    """``expect_trace(response_or_trace_id, *expectations)``: checked at the end of the test, all of them;
    the test errors with every expectation that did not hold, each with its trace drawn as a tree."""
    expected: list[tuple[Any, tuple[Any, ...]]] = []

    def expect(target: TracedResponse | str, *expectations: Any) -> None:
        expected.append((target, expectations))

    yield expect
    failures: list[str] = []
    for target, expectations in expected:
        try:
            wait_for_trace(target, until=expectations)
        except AssertionError as exc:
            failures.append(str(exc))
        except Exception as exc:  # TraceIncomplete / TraceNotFound: report every trace, not just the first
            failures.append(f"{type(exc).__name__}: {exc}")
    if failures:
        pytest.fail(
            f"{len(failures)} of {len(expected)} expected trace(s) did not hold:\n\n" + "\n\n".join(failures),
            pytrace=False,
        )


def _backend_ports(text: str | None) -> Any:
    from hoptrace.harness.launch._backends import BackendPorts

    if not text:
        return None
    parts = text.split(",")
    if len(parts) != 3 or not all(part.strip().isdigit() for part in parts):
        raise pytest.UsageError(
            f"--hoptrace-backend-ports wants HTTP,OTLP_GRPC,OTLP_HTTP ports, got {text!r}"
        )
    http, grpc, otlp_http = (int(part) for part in parts)
    return BackendPorts(http_port=http, otlp_grpc_port=grpc, otlp_http_port=otlp_http)


def _state(request: pytest.FixtureRequest) -> _TestState:
    node: pytest.Item = request.node
    if _STATE not in node.stash:
        node.stash[_STATE] = _TestState()
    return node.stash[_STATE]


def _remember_partial(state: _TestState, client: TempoClient, trace_id: str, entry: str | None) -> None:
    from hoptrace.harness.assertions._trace import Trace

    try:
        spans = client.get_trace(trace_id) or []
    except Exception:  # the report is best effort; the original error is what matters
        return
    state.traces.append(Trace(spans, entry_span_id=entry))


def _wait_for_ctrl_c(config: pytest.Config, kept: list[Any]) -> None:
    from hoptrace.harness.launch._foreground import run_until_stop_signal

    lines = ["hoptrace: --hoptrace-keep: still running (Ctrl-C to stop):"]
    for thing in kept:
        if hasattr(thing, "tempo_url"):
            lines.append(
                f"  backend {thing.kind}: Tempo API {thing.tempo_url}  (hoptrace trace ID --tempo-url ...)"
            )
        for service in getattr(thing, "services", []):
            lines.append(f"  service {service.name}: {service.url or '-'}  log {service.process.log_path}")
    print("\n".join(lines), flush=True)
    try:
        run_until_stop_signal()
    finally:
        for thing in reversed(kept):
            (thing.stop_all if hasattr(thing, "stop_all") else thing.stop)()
