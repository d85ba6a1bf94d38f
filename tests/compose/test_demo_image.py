"""What compose/demo/Dockerfile relies on, checked without Docker.

The image runs ``pip install .`` and then puts ``$(hoptrace sitecustomize-path)`` on ``PYTHONPATH``. So the
built distribution must ship that directory with its ``sitecustomize.py``, and a plain Python process
started with that ``PYTHONPATH`` (as every demo service is, with no code change) must come up traced.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.compose.stack import REPO, load_yaml


def sitecustomize_path() -> Path:
    hoptrace = Path(sys.executable).with_name("hoptrace")
    result = subprocess.run(
        [str(hoptrace), "sitecustomize-path"], capture_output=True, text=True, timeout=60, check=True
    )
    return Path(result.stdout.strip())


def test_the_distribution_ships_the_sitecustomize_directory() -> None:
    path = sitecustomize_path()
    entries = sorted(entry.name for entry in path.iterdir() if entry.name != "__pycache__")
    assert entries == ["sitecustomize.py"]
    shipped = ".".join(path.relative_to(REPO).parts)
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    package_data = config["tool"]["setuptools"]["package-data"]["hoptrace.tracing"]
    assert f"{shipped.removeprefix('tracing.')}/sitecustomize.py" in package_data


def test_a_plain_python_process_with_that_pythonpath_is_traced(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(sitecustomize_path()),
        "OTEL_SERVICE_NAME": "image-check",
        "OTEL_TRACES_EXPORTER": "none",
    }
    probe = "from opentelemetry import trace; print(type(trace.get_tracer_provider()).__module__)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip().startswith("opentelemetry.sdk.trace"), result.stdout + result.stderr
    untraced = {key: value for key, value in env.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", probe], env=untraced, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert not result.stdout.strip().startswith("opentelemetry.sdk.trace"), "the check must be able to fail"


def test_compose_file_builds_every_python_service_from_that_image() -> None:
    compose = load_yaml(REPO / "compose" / "docker-compose.yml")
    built = {name for name, service in compose["services"].items() if "build" in service}
    assert built == {"api", "inventory", "worker", "hoptrace-backend"}
    assert {compose["services"][name]["image"] for name in built} == {"hoptrace-demo:local"}
