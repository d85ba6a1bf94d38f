"""In-process fixtures for the hop instrumentation: one global in-memory tracer provider per test session.

OpenTelemetry allows one global tracer provider per process, and hoptrace's hops use the global one, so
the session installs it once (with the tenant processor and hoptrace's propagators, as the bootstrap
does) and each test starts with an empty exporter. Bootstrap behaviour (activation, environment,
signals) is tested in subprocesses.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hoptrace.processors import TenantSpanProcessor
from hoptrace.tracing._aio_pika.instrument import instrument_aio_pika
from hoptrace.tracing._w3c.selection import propagator_from_environment

_exporter = InMemorySpanExporter()


class FinishedSpans:
    """The spans finished during one test, looked up by name."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    def all(self) -> list[ReadableSpan]:
        return list(self._exporter.get_finished_spans())

    def named(self, name: str) -> ReadableSpan:
        matches = [span for span in self.all() if span.name == name]
        assert len(matches) == 1, f"expected one span named {name!r}, got {[s.name for s in self.all()]}"
        return matches[0]


@pytest.fixture(scope="session", autouse=True)
def _global_provider() -> InMemorySpanExporter:
    current = trace.get_tracer_provider()
    if isinstance(current, trace.ProxyTracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(TenantSpanProcessor())
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    propagate.set_global_textmap(propagator_from_environment({}))  # hoptrace's W3C ones, as the bootstrap
    return _exporter


@pytest.fixture
def spans(_global_provider: InMemorySpanExporter) -> Iterator[FinishedSpans]:
    _global_provider.clear()
    yield FinishedSpans(_global_provider)
    _global_provider.clear()


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1/")


@pytest.fixture(params=["plain", "robust"])
async def channel(request: pytest.FixtureRequest, amqp_url: str) -> AsyncIterator[AbstractChannel]:
    """A channel to the real broker, over a plain and over a robust connection, with aio-pika instrumented."""
    instrument_aio_pika()
    connect: Callable[..., Any] = aio_pika.connect if request.param == "plain" else aio_pika.connect_robust
    connection = await connect(amqp_url)
    async with connection:
        yield await connection.channel()
