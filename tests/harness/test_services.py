"""The service launcher: readiness by log line or URL, logs on failure, OTLP settings, no leaked processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hoptrace.harness import poll_until
from hoptrace.harness._errors import ServiceFailedToStart
from hoptrace.harness.launch._services import DEFAULT_EXPORT_DELAY_MS, ServiceLauncher

PY = sys.executable


def _gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" in status.read_text()
    except OSError:
        return True


def test_ready_log_gives_the_url_and_services_get_otlp_settings(tmp_path: Path) -> None:
    with ServiceLauncher("http://127.0.0.1:4317", log_dir=tmp_path) as launcher:
        server = launcher.start(
            "files",
            [PY, "-m", "http.server", "0", "--bind", "127.0.0.1"],
            ready_log=r"port (?P<port>\d+)",
            cwd=tmp_path,
            traced=False,
        )
        assert server.url is not None
        assert httpx.get(server.url).status_code == 200
        script = (
            "import os; print('env', os.environ['OTEL_SERVICE_NAME'], os.environ['OTEL_BSP_SCHEDULE_DELAY'],"
        )
        script += " os.environ['OTEL_EXPORTER_OTLP_ENDPOINT'], os.environ['EXTRA'], flush=True)"
        env_dump = launcher.start(
            "probe", [PY, "-c", script], ready_log=r"env \S+", env={"EXTRA": "yes"}, traced=False
        )
        assert f"env probe {DEFAULT_EXPORT_DELAY_MS} http://127.0.0.1:4317 yes" in env_dump.log()
    assert launcher.services == []
    assert "--- probe (" in launcher.logs()  # stopped services' logs stay available for failure reports


def test_service_that_crashes_at_start_shows_its_log(tmp_path: Path) -> None:
    with ServiceLauncher("http://127.0.0.1:4317", log_dir=tmp_path) as launcher:
        script = "import sys; print('config error: DATABASE_URL is not set', flush=True); sys.exit(3)"
        with pytest.raises(ServiceFailedToStart) as info:
            launcher.start("broken", [PY, "-c", script], ready_log="never printed", traced=False)
    text = str(info.value)
    assert "broken exited with code 3" in text
    assert "config error: DATABASE_URL is not set" in text


def test_service_never_ready_times_out_naming_the_probe(tmp_path: Path) -> None:
    with (
        ServiceLauncher("http://127.0.0.1:4317", log_dir=tmp_path) as launcher,
        pytest.raises(ServiceFailedToStart, match=r"slow was not ready \(http://127.0.0.1:9/ answering\)"),
    ):
        launcher.start(
            "slow",
            [PY, "-c", "import threading; threading.Event().wait()"],
            ready_url="http://127.0.0.1:9/",
            timeout=0.5,
            traced=False,
        )


def test_stop_all_leaves_no_process_behind_not_even_grandchildren(tmp_path: Path) -> None:
    script = (
        "import subprocess, sys; forever = 'import threading; threading.Event().wait()';"
        " child = subprocess.Popen([sys.executable, '-c', forever]);"
        " print('child', child.pid, flush=True); child.wait()"
    )
    with ServiceLauncher("http://127.0.0.1:4317", log_dir=tmp_path) as launcher:
        parent = launcher.start("parent", [PY, "-c", script], ready_log=r"child (?P<pid>\d+)", traced=False)
        grandchild = int(parent.log().split()[1])
        parent_pid = parent.process.pid
        assert not _gone(grandchild)
    poll_until(
        lambda: _gone(grandchild) and _gone(parent_pid), timeout=10, what="the service and its child gone"
    )
    assert os.path.exists(parent.process.log_path)


def test_command_that_cannot_run_is_a_clear_error(tmp_path: Path) -> None:
    launcher = ServiceLauncher("http://127.0.0.1:4317", log_dir=tmp_path)
    with launcher, pytest.raises(ServiceFailedToStart, match="ghost: cannot run /nonexistent/ghost"):
        launcher.start("ghost", ["/nonexistent/ghost"], traced=False)


def test_services_die_with_a_killed_harness_process() -> None:
    # SIGKILL skips atexit: the kernel's parent-death signal must still stop what the harness started.
    script = (
        "import sys, threading; from hoptrace.harness.launch._process import ManagedProcess;"
        " forever = [sys.executable, '-c', 'import threading; threading.Event().wait()'];"
        " print(ManagedProcess('child', forever).pid, flush=True); threading.Event().wait()"
    )
    with subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE, text=True) as harness_process:
        assert harness_process.stdout is not None
        child = int(harness_process.stdout.readline())
        harness_process.kill()
    poll_until(lambda: _gone(child), timeout=10, what=f"process {child} gone after the harness was killed")
