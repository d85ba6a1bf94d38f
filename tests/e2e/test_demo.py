"""``hoptrace demo`` end to end, as the README runs it, and against a backend reached by URL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from hoptrace.harness import free_port
from hoptrace.harness.launch._backends import open_backend

HOPTRACE = str(Path(sys.executable).parent / "hoptrace")


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HOPTRACE, "demo", *args], capture_output=True, text=True, timeout=180)


def test_demo_asserts_every_trace_including_the_failing_order() -> None:
    api, inventory, tempo = free_port(), free_port(), free_port()
    result = demo("--api-port", str(api), "--inventory-port", str(inventory), "--http-port", str(tempo))
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert f"service   api: http://127.0.0.1:{api}" in out
    assert f"service   inventory: http://127.0.0.1:{inventory}" in out
    assert f"Tempo API http://127.0.0.1:{tempo}," in out
    assert "demo: every assertion held (4 orders" in out
    assert out.count("\nok      order") == 4
    assert "unobtainium for globex (fails on purpose" in out
    assert "inventory SERVER POST /reserve/{item}  ERROR" in out
    assert "tenant=acme" in out and "tenant=globex" in out
    # RED metrics scraped from the services' /metrics: both reservations of globex, one of them failed.
    assert re.search(r"inventory\s+SERVER\s+POST /reserve/\{item\}\s+globex\s+2\s+1\s", out), out
    assert re.search(r"api\s+SERVER\s+POST /orders\s+acme\s+2\s+0\s", out), out


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


def test_demo_services_get_the_given_working_directory_and_environment(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = demo("--cwd", str(missing))
    assert result.returncode == 1
    assert "FAILED to start" in result.stdout and str(missing) in result.stdout
    bad = demo("--env", "NO_EQUALS_SIGN")
    assert bad.returncode == 2
    assert "--env wants KEY=VALUE, got 'NO_EQUALS_SIGN'" in bad.stderr


def test_demo_names_an_unreachable_tempo_and_exits_1() -> None:
    result = demo("--backend", "tempo", "--tempo-url", "http://127.0.0.1:9", "--ready-timeout", "0.5")
    assert result.returncode == 1
    assert "tempo-url backend at http://127.0.0.1:9 was not ready after 0.5 s" in result.stdout


def test_demo_keep_leaves_the_backend_up_for_hoptrace_trace_until_ctrl_c() -> None:
    with subprocess.Popen([HOPTRACE, "demo", "--keep"], stdout=subprocess.PIPE, text=True) as demo_process:
        try:
            assert demo_process.stdout is not None
            lines: list[str] = []
            for line in demo_process.stdout:  # blocks until the demo prints; ends if it exits
                lines.append(line)
                if line.startswith("  hoptrace trace TRACE_ID --tempo-url"):
                    break
            tempo_url = lines[-1].split()[-1]
            trace_id = re.findall(r"^trace ([0-9a-f]{32}):", "".join(lines), re.M)[-1]
            shown = subprocess.run(
                [HOPTRACE, "trace", trace_id, "--tempo-url", tempo_url],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert shown.returncode == 0, shown.stderr
            assert "inventory SERVER POST /reserve/{item}" in shown.stdout
            demo_process.send_signal(signal.SIGINT)
            assert demo_process.wait(timeout=60) == 0
        finally:
            if demo_process.poll() is None:
                demo_process.kill()


def test_demo_exits_1_when_the_services_lose_the_trace() -> None:
    # Every service misconfigured (no propagators): the api starts its own traces, so none of the traces the
    # demo started ever arrives, and the demo must say so and fail.
    env = {**os.environ, "OTEL_PROPAGATORS": "none"}
    result = subprocess.run(
        [HOPTRACE, "demo", "--timeout", "1"], capture_output=True, text=True, timeout=180, env=env
    )
    assert result.returncode == 1, result.stdout
    assert result.stdout.count("FAILED  order") == 4
    assert "not found at http://127.0.0.1:" in result.stdout
    assert "Traces it holds from the last 10 minutes:" in result.stdout
    assert "demo: SOME ASSERTIONS FAILED" in result.stdout
