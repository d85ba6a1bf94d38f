"""Settings: explicit argument > environment > default; bad arguments raise, bad environment degrades."""

from __future__ import annotations

import logging

import pytest

from hoptrace.tracing import ConfigurationError
from hoptrace.tracing._settings import UnusableEnvironment, resolve_settings


def test_defaults_without_environment() -> None:
    settings = resolve_settings({})
    assert settings.protocol == "grpc"
    assert settings.endpoint is None
    assert settings.sampler is None
    assert settings.edge is False
    assert settings.trust_inbound_baggage is False
    assert settings.log_correlation is True
    assert settings.disabled_instrumentations == frozenset()


def test_argument_beats_environment() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "HOPTRACE_TENANT_HEADER": "X-Tenant-ID",
        "HOPTRACE_TRUST_INBOUND_BAGGAGE": "false",
    }
    settings = resolve_settings(
        environ, protocol="http/protobuf", tenant_header="X-Org", trust_inbound_baggage=True
    )
    assert (settings.protocol, settings.tenant_header, settings.trust_inbound_baggage) == (
        "http/protobuf",
        "x-org",
        True,
    )


def test_tenant_header_makes_the_service_an_edge_unless_told_otherwise() -> None:
    assert resolve_settings({"HOPTRACE_TENANT_HEADER": "X-Tenant-ID"}).edge is True
    assert resolve_settings({"HOPTRACE_TENANT_HEADER": "X-Tenant-ID", "HOPTRACE_EDGE": "false"}).edge is False
    assert resolve_settings({"HOPTRACE_EDGE": "true"}).edge is True


def test_disabled_instrumentations_accept_upstream_spelling() -> None:
    environ = {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "aio-pika, HTTPX,requests"}
    assert resolve_settings(environ).disabled_instrumentations == {"aio_pika", "httpx"}


@pytest.mark.parametrize(
    "arguments",
    [
        {"protocol": "carrier-pigeon"},
        {"endpoint": "not a url"},
        {"sampler": "sometimes"},
        {"sampler": "traceidratio", "sampler_arg": 2.0},
        {"tenant_header": "X Tenant"},
        {"service_name": " "},
        {"disabled_instrumentations": ["kafka"]},
        {"log_format": "xml"},
        {"edge": "yes"},
        {"tenant_secret": "short"},
        {"tenant_secret": ["long-enough-secret-1", "short"]},
    ],
)
def test_bad_argument_raises_configuration_error(arguments: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        resolve_settings({}, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "::not-a-url::"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://host:99999"},
        {"HOPTRACE_TENANT_HEADER": "X Tenant"},
        {"HOPTRACE_TENANT_SECRET": "long-enough-secret-1,short"},
    ],
)
def test_environment_without_fallback_is_unusable(environ: dict[str, str]) -> None:
    with pytest.raises(UnusableEnvironment):
        resolve_settings(environ)


def test_bad_environment_value_with_a_fallback_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hoptrace.tracing"):
        settings = resolve_settings(
            {"OTEL_TRACES_SAMPLER": "sometimes", "HOPTRACE_TRUST_INBOUND_BAGGAGE": "maybe"}
        )
    assert settings.sampler == "parentbased_always_on"
    assert settings.trust_inbound_baggage is False
    assert len(caplog.records) == 2
    assert all(record.getMessage().startswith("hoptrace: ") for record in caplog.records)


def test_tenant_secrets_are_a_comma_separated_list_and_the_argument_wins() -> None:
    environ = {"HOPTRACE_TENANT_SECRET": " new-secret-0123456789 , old-secret-0123456789 ,"}
    assert resolve_settings(environ).tenant_secrets == ("new-secret-0123456789", "old-secret-0123456789")
    assert resolve_settings({"HOPTRACE_TENANT_SECRET": " , "}).tenant_secrets == ()
    argument = resolve_settings(environ, tenant_secret=["argument-secret-0123"])
    assert argument.tenant_secrets == ("argument-secret-0123",)


def test_unusable_secret_is_never_echoed() -> None:
    with pytest.raises(UnusableEnvironment) as raised:
        resolve_settings({"HOPTRACE_TENANT_SECRET": "long-enough-secret-1,sh0rt"})
    assert "sh0rt" not in str(raised.value) and "long-enough" not in str(raised.value)


def test_grpc_endpoint_may_be_host_and_port() -> None:
    assert resolve_settings({}, endpoint="collector:4317").endpoint == "collector:4317"
    with pytest.raises(ConfigurationError):
        resolve_settings({}, endpoint="collector:4317", protocol="http/protobuf")


@pytest.mark.parametrize("endpoint", ["collector:4317", "[::1]:4317", "10.0.0.7:1", "a.b-c:65535"])
def test_grpc_host_and_port_forms_accepted(endpoint: str) -> None:
    assert resolve_settings({}, endpoint=endpoint, protocol="grpc").endpoint == endpoint


@pytest.mark.parametrize(
    "endpoint",
    [":4317", "collector:", "collector:123456", "collector:43a7", "coll ector:4317", "host_1:4317"],
)
def test_grpc_malformed_host_and_port_refused(endpoint: str) -> None:
    with pytest.raises(ConfigurationError):
        resolve_settings({}, endpoint=endpoint, protocol="grpc")


def test_sampler_ratio_from_environment() -> None:
    settings = resolve_settings({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"})
    assert (settings.sampler, settings.sampler_arg) == ("traceidratio", 0.25)
