"""The zero-code bootstrap for real: ``hoptrace run`` in subprocesses, exporting to an embedded backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from hoptrace.harness.backend import EmbeddedBackend
from hoptrace.tracing._activation import SITECUSTOMIZE_DIR
from tests.tracing.processes import HOPTRACE, run_traced, traced_env, wait_for_spans

MAKE_SPAN = textwrap.dedent(
    """
    from opentelemetry import trace
    with trace.get_tracer("t").start_as_current_span("job") as span:
        pass
    print(format(span.get_span_context().trace_id, "032x"), flush=True)  # after the span has ended
    """
)
PROVIDER = "from opentelemetry import trace; print(type(trace.get_tracer_provider()).__name__)"


@pytest.fixture(scope="module")
def backend() -> Iterator[EmbeddedBackend]:
    with EmbeddedBackend() as running:
        yield running


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_hoptrace_run_exports_spans_at_normal_exit(backend: EmbeddedBackend, protocol: str) -> None:
    env = traced_env(backend, protocol, OTEL_SERVICE_NAME="job-runner", OTEL_BSP_SCHEDULE_DELAY="60000")
    result = run_traced(MAKE_SPAN, env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (span,) = wait_for_spans(backend, result.stdout.strip(), 1)
    assert (span.name, span.service_name) == ("job", "job-runner")


def test_sitecustomize_path_prints_the_directory_holding_the_bootstrap() -> None:
    result = subprocess.run([HOPTRACE, "sitecustomize-path"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == SITECUSTOMIZE_DIR
    assert (Path(SITECUSTOMIZE_DIR) / "sitecustomize.py").is_file()


def test_application_sitecustomize_still_runs_and_children_are_traced(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import os\nos.environ['APP_SITECUSTOMIZE'] = 'ran'\n")
    env = traced_env(None)
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    code = textwrap.dedent(
        f"""
        import os, subprocess, sys
        {PROVIDER}
        print(os.environ.get("APP_SITECUSTOMIZE"))
        subprocess.run([sys.executable, "-c", {PROVIDER!r}], check=True)
        """
    )
    result = run_traced(code, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["TracerProvider", "ran", "TracerProvider"]


def test_bootstrap_directory_leaves_sys_path_and_children_are_still_traced() -> None:
    # The service's own imports never look in it (a failed import would pay for it on every request).
    on_path = "import os, sys; print(any(os.path.realpath(p) == sys.argv[1] for p in sys.path if p))"
    code = textwrap.dedent(
        f"""
        import os, subprocess, sys
        {PROVIDER}
        {on_path}
        kept = os.environ["PYTHONPATH"].split(os.pathsep)
        print(any(os.path.realpath(e) == sys.argv[1] for e in kept if e))
        subprocess.run([sys.executable, "-c", {PROVIDER!r} + "; " + {on_path!r}, sys.argv[1]], check=True)
        """
    )
    result = subprocess.run(
        [HOPTRACE, "run", "--", sys.executable, "-c", code, os.path.realpath(SITECUSTOMIZE_DIR)],
        env=traced_env(None),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["TracerProvider", "False", "True", "TracerProvider", "False"]


def test_calling_the_bootstrap_again_is_harmless() -> None:
    code = textwrap.dedent(
        """
        import hoptrace.tracing
        from hoptrace.tracing._bootstrap import bootstrap_from_environment
        print(hoptrace.tracing.configure(service_name="again"), bootstrap_from_environment())
        """
    )
    result = run_traced(code, traced_env(None))
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "False False", "")


def test_configure_activates_tracing_without_the_zero_code_path(backend: EmbeddedBackend) -> None:
    code = (
        "import hoptrace.tracing\nprint(hoptrace.tracing.configure(service_name='manual'), flush=True)\n"
        + MAKE_SPAN
    )
    env = traced_env(backend, OTEL_SERVICE_NAME="from-env")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    activated, trace_id = result.stdout.split()
    assert activated == "True"
    (span,) = wait_for_spans(backend, trace_id, 1)
    assert span.service_name == "manual"  # the argument beats OTEL_SERVICE_NAME


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "::not-a-url::"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
        ("OTEL_PROPAGATORS", "tracecontext,no-such-propagator"),
        ("HOPTRACE_TENANT_HEADER", "X Tenant"),
        ("HOPTRACE_TENANT_SECRET", "too-short"),
    ],
)
def test_broken_configuration_logs_one_line_and_runs_untraced(variable: str, value: str) -> None:
    result = run_traced(PROVIDER, traced_env(None, **{variable: value}))
    assert result.returncode == 0
    assert result.stdout.strip() == "ProxyTracerProvider"
    (line,) = result.stderr.splitlines()
    assert line.startswith("hoptrace: tracing is off for this process:")
    assert variable in line


PROPAGATORS = (
    "from opentelemetry import propagate; "
    "print(','.join(type(p).__module__ for p in propagate.get_global_textmap()._propagators))"
)


@pytest.mark.parametrize(
    ("configured", "modules"),
    [
        (None, ["tracecontext", "baggage"]),
        ("baggage,tracecontext", ["baggage", "tracecontext"]),
        ("tracecontext", ["tracecontext"]),
    ],
)
def test_standard_propagator_names_mean_hoptrace_w3c_propagators(
    configured: str | None, modules: list[str]
) -> None:
    env = traced_env(None) if configured is None else traced_env(None, OTEL_PROPAGATORS=configured)
    result = run_traced(PROPAGATORS, env)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip().split(",") == [f"hoptrace.tracing._w3c.{module}" for module in modules]


def test_unknown_sampler_warns_once_and_keeps_tracing() -> None:
    result = run_traced(PROVIDER, traced_env(None, OTEL_TRACES_SAMPLER="sometimes"))
    assert (result.returncode, result.stdout.strip()) == (0, "TracerProvider")
    (line,) = result.stderr.splitlines()
    assert "OTEL_TRACES_SAMPLER" in line


def test_sdk_disabled_means_untraced_and_silent() -> None:
    result = run_traced(PROVIDER, traced_env(None, OTEL_SDK_DISABLED="true"))
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "ProxyTracerProvider", "")


def test_interpreter_without_hoptrace_runs_untraced_with_one_line(tmp_path: Path) -> None:
    # -S: no site-packages, so neither hoptrace nor OpenTelemetry is importable; the cwd is not the repo.
    code = "import sys; sys.path.insert(0, sys.argv[1]); import sitecustomize; print('served')"
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, SITECUSTOMIZE_DIR],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "served"
    (line,) = result.stderr.splitlines()
    assert line.startswith("hoptrace: tracing is off for this process: bootstrap not importable")


def test_queued_spans_are_flushed_at_sigterm(backend: EmbeddedBackend) -> None:
    code = MAKE_SPAN + "import threading\nthreading.Event().wait()\n"
    env = traced_env(backend, OTEL_BSP_SCHEDULE_DELAY="60000")
    with subprocess.Popen(
        [HOPTRACE, "run", "--", sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            trace_id = process.stdout.readline().strip()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == -signal.SIGTERM
        finally:
            process.kill()
    wait_for_spans(backend, trace_id, 1)


def test_forked_child_gets_a_working_exporter(backend: EmbeddedBackend) -> None:
    code = textwrap.dedent(
        """
        import os
        from opentelemetry import trace
        tracer = trace.get_tracer("t")
        with tracer.start_as_current_span("parent") as span:
            pass
        trace.get_tracer_provider().force_flush()  # the parent's exporter has connected before the fork
        pid = os.fork()
        if pid == 0:
            with tracer.start_as_current_span("child", context=trace.set_span_in_context(span)):
                pass
            trace.get_tracer_provider().force_flush()
            os._exit(0)
        os.waitpid(pid, 0)
        print(format(span.get_span_context().trace_id, "032x"))
        """
    )
    result = run_traced(code, traced_env(backend))
    assert result.returncode == 0, result.stderr
    names = sorted(span.name for span in wait_for_spans(backend, result.stdout.strip(), 2))
    assert names == ["child", "parent"]


def test_log_records_are_correlated_and_extra_fields_still_win() -> None:
    code = textwrap.dedent(
        """
        import logging
        from opentelemetry import trace
        import sys
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(trace_id)s %(span_id)s %(tenant)s|%(message)s"))
        log = logging.getLogger("app")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.info("outside")
        with trace.get_tracer("t").start_as_current_span("job") as span:
            log.info("inside")
            log.info("own", extra={"tenant": "from-extra", "order": 1})
        ids = span.get_span_context()
        print(format(ids.trace_id, "032x"), format(ids.span_id, "016x"))
        """
    )
    result = run_traced(code, traced_env(None))
    assert result.returncode == 0, result.stderr
    *logged, ids = result.stdout.splitlines()
    trace_id, span_id = ids.split()
    assert logged == [
        "  |outside",
        f"{trace_id} {span_id} |inside",
        f"{trace_id} {span_id} from-extra|own",
    ]


def test_json_log_format_is_opt_in_by_environment() -> None:
    code = "import logging\nlogging.getLogger('app').warning('hello', extra={'password': 'hunter2'})\n"
    result = run_traced(code, traced_env(None, HOPTRACE_LOG_FORMAT="json"))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stderr)
    assert (document["message"], document["password"], document["trace_id"]) == ("hello", "[REDACTED]", "")


def test_hoptrace_run_keeps_the_exit_status_and_reports_usage_errors() -> None:
    env = traced_env(None)
    status = run_traced("import sys; sys.exit(7)", env)
    assert status.returncode == 7
    missing = subprocess.run([HOPTRACE, "run", "--"], env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert "missing command" in missing.stderr
    unknown = subprocess.run(
        [HOPTRACE, "run", "--", "no-such-command-hoptrace"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 127
    assert "cannot run 'no-such-command-hoptrace'" in unknown.stderr
