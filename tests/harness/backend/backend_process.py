"""``hoptrace backend`` as its own process, for tests that kill it, limit it or read its log."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HOPTRACE = str(Path(sys.executable).parent / "hoptrace")
READY = re.compile(r"tempo_api=(\S+) otlp_grpc=http://(\S+) otlp_http=(\S+)")


@dataclass
class BackendProcess:
    process: subprocess.Popen[str]
    tempo_url: str
    otlp_grpc: str
    """``host:port``, as grpc channels take it."""
    otlp_http: str
    stderr: Path

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")


@contextmanager
def backend_process(
    log_dir: Path, *args: str, preexec_fn: Callable[[], None] | None = None
) -> Iterator[BackendProcess]:
    """Start ``hoptrace backend`` on free ports with ``args``; kill it on exit if it still runs.

    Its stderr goes to a file in ``log_dir`` (a pipe could fill up and stall it).
    """
    stderr = log_dir / f"backend-{len(list(log_dir.glob('backend-*.log')))}.log"
    command = [
        HOPTRACE,
        "backend",
        "--http-port",
        "0",
        "--otlp-grpc-port",
        "0",
        "--otlp-http-port",
        "0",
        *args,
    ]
    with stderr.open("w") as err:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=preexec_fn
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = READY.search(line)
        assert match is not None, f"backend did not start: {line!r} {stderr.read_text()}"
        yield BackendProcess(process, match[1], match[2], match[3], stderr)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
