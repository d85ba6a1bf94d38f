"""Docker Compose with the repository's ``compose/`` files, when a Docker engine answers (never here).

Both the RabbitMQ launcher and the Tempo backend fall back to it; nothing else in the harness needs Docker.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path


def compose_file() -> Path | None:
    """``compose/docker-compose.yml`` of the source tree this package runs from, or ``None``."""
    for parent in Path(__file__).resolve().parents:
        for name in ("docker-compose.yml", "compose.yml", "compose.yaml"):
            candidate = parent / "compose" / name
            if candidate.exists():
                return candidate
    return None


def docker_engine_answers() -> bool:
    """``True`` when ``docker info`` succeeds (a client binary alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    return False
