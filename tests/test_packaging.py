"""The distribution as users install it: one ``hoptrace`` import package, a bootstrap that never shadows a
service's own modules, and a plain ``pip install hoptrace`` that brings no harness dependencies.

The wheel is built from this checkout and installed into fresh virtualenvs, as a service's image or a CI job
would install it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from hoptrace.harness import ServiceLauncher, SpanKind, TraceClient, poll_until
from hoptrace.harness.backend import EmbeddedBackend

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*command: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip wheel .`` builds from this checkout (which must stay clean: no ``build/``)."""
    had_build = (ROOT / "build").exists()
    out = tmp_path_factory.mktemp("dist")
    _run(BIN / "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", out, ROOT)
    assert had_build or not (ROOT / "build").exists(), "building the wheel left build/ in the checkout"
    (built,) = out.glob("hoptrace-*.whl")
    return built


@pytest.fixture(scope="module")
def bare_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding ``pip install hoptrace`` (the built wheel) without extras."""
    venv = tmp_path_factory.mktemp("service-venv")
    _run(sys.executable, "-m", "venv", venv)
    pip = venv / "bin" / "pip"
    _run(pip, "install", "-q", "--disable-pip-version-check", wheel)
    return venv


def test_the_wheel_installs_only_under_the_hoptrace_name(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top_level = {name.split("/")[0] for name in names if not name.startswith("hoptrace-")}
    assert top_level == {"hoptrace"}
    assert "hoptrace/__init__.py" not in names  # a namespace package: nothing to import at the top
    bootstrap_dir = {name for name in names if name.startswith("hoptrace/tracing/_sitecustomize/")}
    assert bootstrap_dir == {"hoptrace/tracing/_sitecustomize/sitecustomize.py"}
    assert "hoptrace/harness/traceql/_grammar.lark" in names


def test_the_wheel_holds_every_module_of_the_checkout(wheel: Path) -> None:
    # A subpackage missing from pyproject's package list would be left out: the bootstrap then fails to
    # import in every regular install (editable installs, as in this checkout, still find it).
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = [
        f"{folder}/{path.relative_to(ROOT / folder)}"
        for folder in ("tracing", "processors", "harness")
        for path in (ROOT / folder).rglob("*.py")
        if f"hoptrace/{folder}/{path.relative_to(ROOT / folder)}" not in names
    ]
    assert missing == []


def test_a_plain_install_brings_no_harness_dependencies(bare_venv: Path) -> None:
    installed = _run(bare_venv / "bin" / "pip", "list", "--format=freeze", "--disable-pip-version-check")
    names = {line.split("==")[0].lower().replace("_", "-") for line in installed.splitlines()}
    assert {"opentelemetry-sdk", "grpcio", "prometheus-client"} <= names
    assert not names & {"uvicorn", "starlette", "lark", "httpx", "aio-pika", "fastapi"}


def test_a_harness_command_without_the_extra_says_how_to_install_it(bare_venv: Path) -> None:
    result = subprocess.run(
        [bare_venv / "bin" / "hoptrace", "backend", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "usage: hoptrace backend" in result.stdout  # argparse alone works
    result = subprocess.run(
        [bare_venv / "bin" / "hoptrace", "demo"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "pip install 'hoptrace[harness]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_traced_httpx_and_asgi_service_runs_in_a_plain_install(bare_venv: Path, tmp_path: Path) -> None:
    _run(
        bare_venv / "bin" / "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "httpx",
        "starlette",
        "uvicorn",
    )
    app = tmp_path / "shop.py"
    app.write_text(SHOP)
    hoptrace_run = [str(bare_venv / "bin" / "hoptrace"), "run", "--"]
    with EmbeddedBackend() as backend, ServiceLauncher(backend.otlp_grpc_endpoint) as launcher:
        # traced=False: the command is the plain install's own `hoptrace run`, not this interpreter's.
        service = launcher.start(
            "shop",
            [*hoptrace_run, *_uvicorn(bare_venv / "bin" / "python")],
            ready_log=_UVICORN_READY,
            cwd=tmp_path,
            env={"PYTHONPATH": ""},
            traced=False,
        )
        assert service.url is not None
        _assert_traced_hop(backend, service.url, launcher)


def test_a_service_with_its_own_tracing_processors_harness_and_sitecustomize_modules(tmp_path: Path) -> None:
    (tmp_path / "tracing.py").write_text("def setup():\n    return 'own tracing'\n")
    (tmp_path / "processors.py").write_text("def charge():\n    return 'own processors'\n")
    (tmp_path / "harness.py").write_text("def fixture():\n    return 'own harness'\n")
    (tmp_path / "sitecustomize.py").write_text("import os\nos.environ['OWN_SITECUSTOMIZE'] = 'ran'\n")
    (tmp_path / "shop.py").write_text(
        "import os\nimport harness, processors, tracing\n"
        "OWN = [tracing.setup(), processors.charge(), harness.fixture(),\n"
        "       os.environ.get('OWN_SITECUSTOMIZE')]\n" + SHOP.replace('"own": None', '"own": OWN')
    )
    sitecustomize_dir = _run(BIN / "hoptrace", "sitecustomize-path").strip()
    own = ["own tracing", "own processors", "own harness", "ran"]
    with EmbeddedBackend() as backend, ServiceLauncher(backend.otlp_grpc_endpoint) as launcher:
        # The service's directory comes after the bootstrap's on PYTHONPATH, as a Dockerfile would set it.
        via_run = launcher.start(
            "shop-run",
            _uvicorn(sys.executable),
            ready_log=_UVICORN_READY,
            env={"PYTHONPATH": str(tmp_path)},
            cwd=tmp_path,
        )
        via_path = launcher.start(
            "shop-path",
            _uvicorn(sys.executable),
            ready_log=_UVICORN_READY,
            env={"PYTHONPATH": f"{sitecustomize_dir}{os.pathsep}{tmp_path}"},
            cwd=tmp_path,
            traced=False,
        )
        for service in (via_run, via_path):
            assert service.url is not None
            _assert_traced_hop(backend, service.url, launcher, own=own)


def test_importing_the_processors_does_not_import_the_bootstrap() -> None:
    code = (
        "import sys, hoptrace.processors as p\n"
        "p.TenantSpanProcessor, p.RedMetricsSpanProcessor, p.RedactionSpanProcessor\n"
        "p.start_metrics_endpoint, p.PeriodicRedMetricsExport\n"
        "print(sorted(m for m in sys.modules if m.startswith('hoptrace.')))"
    )
    loaded = _run(sys.executable, "-c", code, cwd=Path("/"))
    assert "hoptrace.processors" in loaded
    assert "hoptrace.tracing" not in loaded and "hoptrace.harness" not in loaded


# A service that calls itself over httpx: one request makes a SERVER span, a CLIENT span and a second SERVER.
SHOP = textwrap.dedent(
    """
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route


    async def order(request: Request) -> JSONResponse:
        base = f"{request.url.scheme}://{request.url.netloc}"
        async with httpx.AsyncClient(base_url=base) as client:
            stock = (await client.get(f"/stock/{request.path_params['item']}")).json()
        return JSONResponse({"stock": stock, "own": None})


    async def stock(request: Request) -> JSONResponse:
        return JSONResponse({"item": request.path_params["item"], "available": 3})


    app = Starlette(routes=[Route("/orders/{item}", order), Route("/stock/{item}", stock)])
    """
)
_UVICORN_READY = r"Uvicorn running on (?P<url>http://[^:\s]+:(?P<port>\d+))"


def _uvicorn(python: str | Path) -> list[str]:
    return [str(python), "-m", "uvicorn", "shop:app", "--host", "127.0.0.1", "--port", "0"]


def _assert_traced_hop(
    backend: EmbeddedBackend, service_url: str, launcher: ServiceLauncher, own: list[str] | None = None
) -> None:
    with TraceClient(service_url) as client:
        response = client.get("/orders/widget")
    assert response.status_code == 200
    assert response.json()["own"] == own
    spans = poll_until(
        lambda: found if len(found := backend.store.get_trace(response.trace_id)) >= 3 else None,
        timeout=20,
        what=f"3 spans of trace {response.trace_id}",
        on_timeout=launcher.logs,
    )
    assert sorted((span.kind, span.name) for span in spans) == [
        (SpanKind.CLIENT, "GET"),
        (SpanKind.SERVER, "GET /orders/{item}"),
        (SpanKind.SERVER, "GET /stock/{item}"),
    ]
    by_id = {span.span_id: span for span in spans}
    assert sum(span.parent_span_id not in by_id for span in spans) == 1, "one trace tree"
