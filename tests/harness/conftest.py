"""Fixtures for the harness's own tests: a real embedded backend and SDK "services" exporting to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hoptrace.harness.launch._backends import Backend, open_backend
from hoptrace.harness.tempo._client import TempoClient
from tests.harness.otlp import Services


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    with open_backend("embedded") as running:
        yield running


@pytest.fixture
def client(backend: Backend) -> Iterator[TempoClient]:
    with TempoClient(backend.tempo_url) as tempo:
        yield tempo


@pytest.fixture
def sdk_services(backend: Backend) -> Iterator[Services]:
    services = Services(backend.otlp_grpc_endpoint)
    yield services
    services.shutdown()


@pytest.fixture
def reporting_services(backend: Backend) -> Iterator[Services]:
    """SDK "services" that also report their spans as they start, as services under the harness do."""
    services = Services(backend.otlp_grpc_endpoint, backend.open_spans_url)
    yield services
    services.shutdown()
