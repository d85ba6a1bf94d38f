"""Find or start a RabbitMQ broker for traced services.

Order of preference: the broker at ``AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1/``) if it answers
the AMQP handshake; else a private ``rabbitmq-server`` (Debian's package) with its own data directory, node
name and free ports, stopped on ``stop()``; else ``docker compose`` with the repository's ``compose/`` files
when a Docker engine answers. ``BackendNotReady`` explains what was tried when none works.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
import uuid
from pathlib import Path
from types import TracebackType

from hoptrace.harness._errors import BackendNotReady, ServiceFailedToStart
from hoptrace.harness._polling import free_port
from hoptrace.harness.launch._compose import compose_file, docker_engine_answers
from hoptrace.harness.launch._process import ManagedProcess

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1/"
_PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"


def amqp_answers(url: str, timeout: float = 1.0) -> bool:
    """``True`` when a broker at ``url`` answers the AMQP 0-9-1 protocol header with Connection.Start."""
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 5672), timeout=timeout
        ) as sock:
            sock.sendall(_PROTOCOL_HEADER)
            frame = sock.recv(7)
    except OSError:
        return False
    return len(frame) == 7 and frame[0] == 1  # a METHOD frame: Connection.Start


class RabbitMQ:
    """A usable broker at ``url``; a context manager that stops what it started (nothing for ``AMQP_URL``)."""

    def __init__(
        self, url: str, *, how: str, process: ManagedProcess | None = None, data_dir: Path | None = None
    ):
        self.url = url
        self.how = how
        """``"AMQP_URL"``, ``"rabbitmq-server"`` or ``"compose"``."""
        self._process = process
        self._data_dir = data_dir

    def __enter__(self) -> RabbitMQ:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def unique_name(self, prefix: str) -> str:
        """A queue/exchange name no other test uses: ``prefix-<hex>``."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(timeout=15.0)
            self._process = None
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None


def start_rabbitmq(url: str | None = None, *, timeout: float = 60.0) -> RabbitMQ:
    """Return a broker, starting a private one if ``url`` (or ``AMQP_URL``) does not answer. Blocks until
    it accepts AMQP connections. Raises ``BackendNotReady`` saying what was tried."""
    url = url or os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL
    if amqp_answers(url):
        return RabbitMQ(url, how="AMQP_URL")
    tried = [f"no broker answered at {url}"]
    # Debian's /usr/sbin wrapper switches to the `rabbitmq` user, who cannot read our private data dir.
    debian = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
    server = str(debian) if debian.exists() else shutil.which("rabbitmq-server")
    if server is not None:
        return _start_private(server, timeout)
    tried.append("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    compose = compose_file()
    if compose is not None and docker_engine_answers():
        return _start_compose(compose, timeout)
    tried.append("no Docker engine for compose/")
    raise BackendNotReady("cannot get a RabbitMQ broker: " + "; ".join(tried))


def _start_private(server: str, timeout: float) -> RabbitMQ:
    data_dir = Path(tempfile.mkdtemp(prefix="hoptrace-rabbitmq-"))
    port, dist_port = free_port(), free_port()
    node = f"hoptrace-{uuid.uuid4().hex[:8]}@localhost"
    (data_dir / "enabled_plugins").write_text("[].\n")
    env = dict(os.environ)
    env.update(
        {
            "HOME": str(data_dir),  # the Erlang cookie lives in $HOME
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(data_dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(data_dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(data_dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(data_dir / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(data_dir / "advanced.config"),
            "RABBITMQ_PID_FILE": str(data_dir / "rabbitmq.pid"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(data_dir / "feature_flags"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(data_dir / "plugins-expand"),
            "ERL_CRASH_DUMP": str(data_dir / "erl_crash.dump"),
            "RABBITMQ_LOGS": "-",
        }
    )
    url = f"amqp://guest:guest@127.0.0.1:{port}/"
    process = ManagedProcess("rabbitmq-server", [server], env=env, cwd=data_dir, log_dir=data_dir)
    broker = RabbitMQ(url, how="rabbitmq-server", process=process, data_dir=data_dir)
    try:
        process.wait_ready(lambda: amqp_answers(url), what=f"AMQP on port {port}", timeout=timeout)
    except ServiceFailedToStart as exc:
        broker.stop()
        raise BackendNotReady(f"private rabbitmq-server did not start: {exc}") from exc
    return broker


def _start_compose(compose: Path, timeout: float) -> RabbitMQ:
    # Untested here (no Docker engine on these machines): uses the compose engineer's `rabbitmq` service.
    subprocess.run(
        ["docker", "compose", "-f", str(compose), "up", "-d", "--wait", "rabbitmq"],
        check=True,
        timeout=timeout,
    )
    user, password = os.environ.get("RABBITMQ_USER", "hoptrace"), os.environ.get("RABBITMQ_PASSWORD", "")
    url = f"amqp://{user}:{password}@127.0.0.1:5672/"  # compose/ publishes 5672 with these credentials
    if not amqp_answers(url, timeout=5.0):
        raise BackendNotReady(f"compose started rabbitmq from {compose}, but nothing answers at {url}")
    return RabbitMQ(url, how="compose")
