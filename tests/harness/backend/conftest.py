"""Fixtures: a running EmbeddedBackend, and "services" that export to it with the OTel SDK's own OTLP
exporters (synchronously, so a span is stored once it has ended)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from hoptrace.harness.backend import EmbeddedBackend

ServiceFactory = Callable[[str, str], TracerProvider]


@pytest.fixture
def backend() -> Iterator[EmbeddedBackend]:
    with EmbeddedBackend() as running:
        yield running


@pytest.fixture
def service(backend: EmbeddedBackend) -> Iterator[ServiceFactory]:
    """``service(name, "grpc" | "http")`` -> a TracerProvider exporting to ``backend`` over that protocol."""
    providers: list[TracerProvider] = []

    def make(name: str, protocol: str) -> TracerProvider:
        if protocol == "grpc":
            exporter: GrpcSpanExporter | HttpSpanExporter = GrpcSpanExporter(
                endpoint=backend.otlp_grpc_endpoint, insecure=True
            )
        else:
            exporter = HttpSpanExporter(endpoint=f"{backend.otlp_http_endpoint}/v1/traces")
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        provider.shutdown()


@pytest.fixture
def tempo(backend: EmbeddedBackend) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=backend.http_url, timeout=10) as client:
        yield client


@pytest.fixture
def otlp_http(backend: EmbeddedBackend) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=backend.otlp_http_endpoint, timeout=10) as client:
        yield client
