"""The pytest API a user can guess (pytester, real processes): base URLs, ports, cwd and environment,
fixtures with docstrings, a stack shared by a module, and log folders removed or kept with the session's
outcome."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hoptrace.harness import free_port

pytest_plugins = ["pytester"]

APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
import os

async def healthz(request):
    return JSONResponse({"ok": True})

async def orders(request):
    return JSONResponse({"where": os.getcwd(), "flavour": os.environ.get("FLAVOUR")})

app = Starlette(routes=[Route("/healthz", healthz), Route("/orders", orders)])
"""

SHARED = """
import sys
import pytest

STARTS = []

@pytest.fixture(scope="module")
def shop(module_traced_services, tmp_path_factory):
    STARTS.append(1)
    with open("{dirs}", "a") as record:
        record.write(f"{{module_traced_services.log_dir}}\\n")
    return module_traced_services.start_asgi(
        "shop", "shopapp:app", port={port}, cwd="{cwd}", env={{"FLAVOUR": "mint"}}
    )

def test_url_is_the_base_url_and_port_cwd_env_hold(shop, trace_client):
    assert shop.url == "http://127.0.0.1:{port}"
    body = trace_client.get(f"{{shop.url}}/orders").json()
    assert body == {{"where": "{cwd}", "flavour": "mint"}}

def test_ready_url_gives_the_base_url(traced_services):
    port = {other_port}
    with open("{dirs}", "a") as record:
        record.write(f"{{traced_services.log_dir}}\\n")
    service = traced_services.start(
        "plain",
        [sys.executable, "-m", "uvicorn", "shopapp:app", "--port", str(port)],
        ready_url=f"http://127.0.0.1:{{port}}/healthz",
        cwd="{cwd}",
    )
    assert service.url == f"http://127.0.0.1:{{port}}"

def test_the_module_started_its_shop_once(shop):
    assert len(STARTS) == 1

def test_outcome(shop):
    assert {outcome}
"""


@pytest.fixture(autouse=True)
def _inner_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def _run(pytester: pytest.Pytester, outcome: str) -> tuple[pytest.RunResult, list[str], list[str]]:
    """Run the inner module; returns its result, the log folders it printed, those its launchers used."""
    app_dir = pytester.mkdir("apps")
    (app_dir / "shopapp.py").write_text(APP)
    dirs = pytester.path / "log-dirs.txt"
    source = SHARED.format(port=free_port(), other_port=free_port(), cwd=app_dir, outcome=outcome, dirs=dirs)
    pytester.makepyfile(test_shop=source)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    printed = re.findall(r"^(\S*hoptrace-services-\S+)$", result.stdout.str(), re.MULTILINE)
    return result, printed, dirs.read_text().split()


def test_shared_stack_ports_cwd_env_and_logs_removed_after_a_passing_session(
    pytester: pytest.Pytester,
) -> None:
    result, printed, used = _run(pytester, "True")
    result.assert_outcomes(passed=4)
    assert printed == []
    assert "service logs kept" not in result.stdout.str()
    assert len(used) == 2  # the module's launcher and the one test's launcher
    assert not any(Path(folder).exists() for folder in used)


def test_logs_are_kept_and_printed_after_a_failing_session(pytester: pytest.Pytester) -> None:
    result, kept, used = _run(pytester, "False")
    result.assert_outcomes(passed=3, failed=1)
    assert "hoptrace: service logs kept" in result.stdout.str()
    assert sorted(kept) == sorted(used)
    for folder in kept:
        assert Path(folder).is_dir()
        assert list(Path(folder).glob("*.log"))


def test_every_fixture_has_a_docstring(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    out = result.stdout.str()
    plugin_part = out.split("from hoptrace.harness.pytest_plugin", 1)[1].split("\n", 1)[1]
    plugin_part = plugin_part.split("fixtures defined from", 1)[0]
    names = (
        "hoptrace_backend",
        "tempo_client",
        "rabbitmq",
        "traced_services",
        "module_traced_services",
        "session_traced_services",
        "trace_client",
        "wait_for_trace",
        "expect_trace",
    )
    for name in names:
        assert re.search(rf"^{name}( \[\w+ scope\])?( -- .*)?$", plugin_part, re.MULTILINE), name
    assert "no docstring available" not in plugin_part


def test_backend_ports_option_places_the_embedded_backend(pytester: pytest.Pytester) -> None:
    ports = [free_port() for _ in range(3)]
    pytester.makepyfile(
        test_ports=f"""
def test_ports(hoptrace_backend):
    assert hoptrace_backend.tempo_url == "http://127.0.0.1:{ports[0]}"
    assert hoptrace_backend.otlp_grpc_endpoint == "http://127.0.0.1:{ports[1]}"
    assert hoptrace_backend.otlp_http_endpoint == "http://127.0.0.1:{ports[2]}"
"""
    )
    option = "--hoptrace-backend-ports=" + ",".join(map(str, ports))
    pytester.runpytest("-p", "no:cacheprovider", option).assert_outcomes(passed=1)
    bad = pytester.runpytest("-p", "no:cacheprovider", "--hoptrace-backend-ports=1,2")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--hoptrace-backend-ports wants HTTP,OTLP_GRPC,OTLP_HTTP" in bad.stderr.str()
