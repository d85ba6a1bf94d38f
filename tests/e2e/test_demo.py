"""``hoptrace demo`` end to end, as the README runs it, and against a backend reached by URL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness._backends import open_backend

HOPTRACE = str(Path(sys.executable).parent / "hoptrace")


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HOPTRACE, "demo", *args], capture_output=True, text=True, timeout=180)


def test_demo_asserts_every_trace_including_the_failing_order() -> None:
    result = demo()
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "demo: every assertion held (4 orders" in out
    assert out.count("\nok      order") == 4
    assert "unobtainium for globex (fails on purpose" in out
    assert "inventory SERVER POST /reserve/{item}  ERROR" in out
    assert "tenant=acme" in out and "tenant=globex" in out
    assert "RED summary" in out


def test_demo_against_a_tempo_api_by_url() -> None:
    # Real Tempo cannot run here: the embedded backend, as its own process, stands in for it behind the URL.
    with open_backend("embedded", subprocess_mode=True) as backend:
        result = demo(
            "--backend",
            "tempo",
            "--tempo-url",
            backend.tempo_url,
            "--otlp-endpoint",
            backend.otlp_grpc_endpoint,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"backend   tempo-url: Tempo API {backend.tempo_url}" in result.stdout


def test_demo_names_an_unreachable_tempo_and_exits_1() -> None:
    result = demo("--backend", "tempo", "--tempo-url", "http://127.0.0.1:9", "--ready-timeout", "0.5")
    assert result.returncode == 1
    assert "tempo-url backend at http://127.0.0.1:9 was not ready after 0.5 s" in result.stdout
