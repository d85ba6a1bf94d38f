"""hoptrace's pytest plugin (entry point ``pytest11``): hooks and fixtures only; heavy imports are lazy.

Fixtures:
- ``hoptrace_backend`` (session): the trace backend chosen by ``--trace-backend`` (embedded by default).
- ``tempo_client`` (session): a ``TempoClient`` on that backend.
- ``rabbitmq`` (session): a broker (``AMQP_URL`` if it answers, else a private ``rabbitmq-server``).
- ``traced_services``: a ``ServiceLauncher`` exporting to the backend; stops its services at teardown.
- ``trace_client``: a ``TraceClient`` whose requests each start a new, known trace.
- ``wait_for_trace``: ``wait_for_trace(response_or_trace_id, until=..., timeout=...) -> Trace``.
- ``expect_trace``: ``expect_trace(response_or_trace_id, *expectations)`` registers expectations that are
  checked at teardown, all of them, with every failure reported.
On failure, the last traces fetched (as trees) and the services' logs are added to the report.
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hoptrace(timeout=None): end-to-end trace test; timeout overrides --hoptrace-timeout for its waits",
    )
    config.stash[_KEPT] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    state = item.stash.get(_STATE, None)
    if state is not None and report.failed:
        for trace in state.traces[-3:]:
            report.sections.append((f"hoptrace trace {trace.trace_id}", trace.render()))
        logs = "\n".join(filter(None, (launcher.logs() for launcher in state.launchers)))
        if logs:
            report.sections.append(("hoptrace service logs", logs))
    return report


def pytest_unconfigure(config: pytest.Config) -> None:
    kept = config.stash.get(_KEPT, [])
    if kept:
        _wait_for_ctrl_c(config, kept)


@pytest.fixture(scope="session")
def hoptrace_backend(pytestconfig: pytest.Config) -> Iterator[Backend]:
    from hoptrace.harness.launch._backends import open_backend

    backend = open_backend(
        pytestconfig.getoption("--trace-backend"),
        tempo_url=pytestconfig.getoption("--tempo-url"),
        otlp_endpoint=pytestconfig.getoption("--tempo-otlp-endpoint"),
    )
    if pytestconfig.getoption("--hoptrace-keep"):
        pytestconfig.stash[_KEPT].append(backend)
        yield backend
        return
    with backend:
        yield backend


@pytest.fixture(scope="session")
def tempo_client(hoptrace_backend: Backend) -> Iterator[TempoClient]:
    from hoptrace.harness.tempo._client import TempoClient

    with TempoClient(hoptrace_backend.tempo_url) as client:
        yield client


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQ]:
    from hoptrace.harness.launch._rabbitmq import start_rabbitmq

    with start_rabbitmq() as broker:
        yield broker


@pytest.fixture
def traced_services(request: pytest.FixtureRequest, hoptrace_backend: Backend) -> Iterator[ServiceLauncher]:
    from hoptrace.harness.launch._services import ServiceLauncher

    launcher = ServiceLauncher(
        hoptrace_backend.otlp_grpc_endpoint,
        export_delay_ms=request.config.getoption("--hoptrace-export-delay-ms"),
    )
    _state(request).launchers.append(launcher)
    if request.config.getoption("--hoptrace-keep"):
        request.config.stash[_KEPT].append(launcher)
        yield launcher
        return
    with launcher:
        yield launcher


@pytest.fixture
def trace_client() -> Iterator[TraceClient]:
    from hoptrace.harness.launch._trace_client import TraceClient

    with TraceClient() as client:
        yield client


@pytest.fixture
def wait_for_trace(request: pytest.FixtureRequest, tempo_client: TempoClient) -> Callable[..., Trace]:
    from hoptrace.harness.assertions._wait import wait_for_trace as wait

    state = _state(request)
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
            )
        except Exception:
            _remember_partial(state, tempo_client, trace_id, entry)
            raise
        state.traces.append(trace)
        return trace

    return wait_for


@pytest.fixture
def expect_trace(wait_for_trace: Callable[..., Trace]) -> Iterator[Callable[..., None]]:
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
