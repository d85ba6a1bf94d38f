"""What callers and outages can write into a service's log: one warning line each, then counters.

Real processes: the FastAPI edge of ``tests/tracing/apps/fastapi_shop.py`` under ``hoptrace run`` (the
harness's ServiceLauncher). ``GET /counts`` both makes a traced request and returns
``hoptrace.tracing.counts()``, so the tests see what the service counted instead of printing.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from hoptrace.harness import ServiceLauncher, free_port, poll_until
from hoptrace.harness.backend import EmbeddedBackend

EDGE = "tests.tracing.apps.fastapi_shop:edge"
SECRET = "log-noise-test-secret-0123"
EXPORTER_RECORDS = 6
"""Exporter log records (retries and failed batches) the outage test waits for, several failed batches'
worth, with the exporter's default settings (upstream prints each: 20-33 a minute, measured)."""


class Client:
    """One keep-alive HTTP/1.1 connection to a service (http.client: the test's own httpx may be traced)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)

    def counts(self, headers: dict[str, str] | None = None) -> dict[str, int]:
        self._connection.request("GET", "/counts", headers=headers or {})
        response = self._connection.getresponse()
        assert response.status == 200
        result: dict[str, int] = json.loads(response.read())
        return result

    def close(self) -> None:
        self._connection.close()


def warning_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "WARNING" in line or "hoptrace:" in line or "rror" in line]


def down_backend_launcher(protocol: str = "grpc") -> ServiceLauncher:
    """A launcher whose services export to a port where nothing listens: the backend is down throughout."""
    env = {
        "ORDERS_URL": "http://127.0.0.1:9",
        "HOPTRACE_TENANT_HEADER": "X-Tenant-ID",
        "PYTHONPATH": os.getcwd(),
    }
    return ServiceLauncher(f"http://127.0.0.1:{free_port()}", protocol=protocol, env=env)


@pytest.fixture(scope="module")
def launcher() -> Iterator[ServiceLauncher]:
    """Services exporting to a live backend (a service whose backend is down takes seconds to exit)."""
    env = {
        "ORDERS_URL": "http://127.0.0.1:9",
        "HOPTRACE_TENANT_HEADER": "X-Tenant-ID",
        "PYTHONPATH": os.getcwd(),
    }
    with EmbeddedBackend() as backend, ServiceLauncher(backend.otlp_grpc_endpoint, env=env) as running:
        yield running


def run_outage(launcher: ServiceLauncher, seconds: float) -> tuple[dict[str, int], str]:
    """Serve traffic with the backend down until ``seconds`` passed and the exporter logged at least
    ``EXPORTER_RECORDS`` records; return the final counts and the service's log."""
    service = launcher.start_asgi("edge", EDGE)
    assert service.url is not None
    client = Client(service.url)
    started = time.monotonic()
    try:
        counts = poll_until(
            lambda: (
                now
                if (now := client.counts())["exporter_log_records"] >= EXPORTER_RECORDS
                and time.monotonic() - started >= seconds
                else None
            ),
            timeout=seconds + 120,
            what=f"{EXPORTER_RECORDS} exporter log records under traffic",
            on_timeout=lambda: service.log(),
            ceiling=0.2,
        )
    finally:
        client.close()
    return counts, service.log()


# gRPC (the default protocol) keeps the backend down for the whole minute the issue names; OTLP/HTTP
# until the exporter has logged EXPORTER_RECORDS records (about 15 s), to keep CI short.
@pytest.mark.parametrize(("protocol", "seconds"), [("grpc", 60), ("http/protobuf", 0)])
def test_backend_down_under_traffic_gives_one_warning_line(protocol: str, seconds: float) -> None:
    with down_backend_launcher(protocol) as launcher:
        counts, log = run_outage(launcher, seconds=seconds)
    assert counts["dropped_spans"] > 0
    (line,) = warning_lines(log)
    assert line.startswith("hoptrace: dropped ") and f"OTLP export over {protocol} failed" in line, log
    assert "Transient error" not in log


@pytest.mark.parametrize("secret", [None, SECRET], ids=["edge-rule", "tenant-secret"])
def test_a_thousand_requests_with_10kb_of_forged_baggage_leave_the_log_under_1kb(
    launcher: ServiceLauncher, secret: str | None
) -> None:
    env = {"HOPTRACE_TENANT_SECRET": secret} if secret else {}
    service = launcher.start_asgi(f"edge-{len(launcher.services)}", EDGE, env=env)
    assert service.url is not None
    before = len(service.log().encode())
    forged = ",".join(f"k{index}=" + "v" * 95 + ";hoptrace.sig=forged" for index in range(90))
    assert 10_000 <= len(forged) < 11_000
    client = Client(service.url)
    try:
        for _ in range(1000):
            counts = client.counts({"baggage": f"tenant.id=evil;hoptrace.sig=AAAA,{forged}"})
    finally:
        client.close()
    dropped = counts["untrusted_baggage"] + counts["malformed_baggage"]
    assert dropped >= 1000, counts
    grown = len(service.log().encode()) - before
    assert grown < 1024, service.log()
    assert len(warning_lines(service.log())) == 1, service.log()
