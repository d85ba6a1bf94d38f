"""Resolve the bootstrap's settings: explicit argument > environment > default, in one place.

A bad explicit argument raises :class:`~hoptrace.tracing.ConfigurationError` (the caller can fix their code).
A bad environment value either falls back to the default with one warning line, or, when no sensible fallback
exists (an unparsable endpoint or an unknown protocol), raises :class:`UnusableEnvironment`, which the
bootstrap turns into one warning line and an untraced service.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple
from urllib.parse import urlsplit

from hoptrace.tracing import environment_variables as env
from hoptrace.tracing._errors import ConfigurationError, HoptraceError

logger = logging.getLogger("hoptrace.tracing")

PROTOCOLS = ("grpc", "http/protobuf")
SAMPLERS = (
    "always_on",
    "always_off",
    "parentbased_always_on",
    "parentbased_always_off",
    "traceidratio",
    "parentbased_traceidratio",
)
INSTRUMENTATIONS = ("httpx", "asgi", "aio_pika", "logging")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")
# Patterns that only some settings need, as strings: re compiles (and caches) them on first use.
_HEADER_NAME = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_HOST_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-[]:"


class UnusableEnvironment(HoptraceError):
    """An environment variable holds a value the bootstrap cannot run with; the service runs untraced."""


class Settings(NamedTuple):
    """Everything the bootstrap needs, resolved and validated. Immutable.

    A named tuple rather than a frozen dataclass: every traced service builds this class at start-up, where
    a dataclass of these fields costs ~7 M instructions more (bench/startup.py).
    """

    service_name: str | None
    """Explicit ``service.name``; ``None``: from ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES``."""
    protocol: str
    endpoint: str | None
    """Explicit OTLP endpoint (argument); ``None`` lets the exporter read ``OTEL_EXPORTER_OTLP_*``."""
    sampler: str | None
    """Validated sampler name from the argument or ``OTEL_TRACES_SAMPLER``; ``None`` is the SDK default."""
    sampler_arg: float | None
    tenant_header: str | None
    edge: bool
    trust_inbound_baggage: bool
    disabled_instrumentations: frozenset[str]
    log_correlation: bool
    log_format: str | None
    sdk_disabled: bool
    tenant_secrets: tuple[str, ...] = ()
    """``HOPTRACE_TENANT_SECRET``: the first signs the tenant, all verify; empty: no signed tenant."""


def resolve_settings(
    environ: Mapping[str, str] | None = None,
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    sampler: str | None = None,
    sampler_arg: float | None = None,
    tenant_header: str | None = None,
    edge: bool | None = None,
    trust_inbound_baggage: bool | None = None,
    disabled_instrumentations: Iterable[str] | None = None,
    log_correlation: bool | None = None,
    log_format: str | None = None,
    tenant_secret: str | Sequence[str] | None = None,
) -> Settings:
    """Resolve every setting (argument > ``environ`` > default).

    Raises :class:`ConfigurationError` for a bad argument and :class:`UnusableEnvironment` for an environment
    value without a sensible fallback; logs one warning per other bad environment value. Never blocks.
    """
    environ = os.environ if environ is None else environ
    resolved_protocol = _protocol(protocol, environ)
    resolved_header = _tenant_header(tenant_header, environ)
    resolved_sampler = _sampler(sampler, environ)
    return Settings(
        service_name=_non_empty("service_name", service_name),
        protocol=resolved_protocol,
        endpoint=_endpoint(endpoint, environ, resolved_protocol),
        sampler=resolved_sampler,
        sampler_arg=_sampler_arg(sampler_arg, environ, resolved_sampler),
        tenant_header=resolved_header,
        edge=_flag("edge", edge, environ, env.HOPTRACE_EDGE, default=resolved_header is not None),
        trust_inbound_baggage=_flag(
            "trust_inbound_baggage", trust_inbound_baggage, environ, env.HOPTRACE_TRUST_INBOUND_BAGGAGE
        ),
        disabled_instrumentations=_disabled(disabled_instrumentations, environ),
        log_correlation=_flag(
            "log_correlation", log_correlation, environ, env.HOPTRACE_LOG_CORRELATION, default=True
        ),
        log_format=_log_format(log_format, environ),
        sdk_disabled=environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true",
        tenant_secrets=_tenant_secrets(tenant_secret, environ),
    )


def _non_empty(name: str, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _protocol(argument: str | None, environ: Mapping[str, str]) -> str:
    if argument is not None:
        if argument not in PROTOCOLS:
            raise ConfigurationError(f"protocol must be one of {PROTOCOLS}, got {argument!r}")
        return argument
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = environ.get(name, "").strip()
        if value:
            if value not in PROTOCOLS:
                raise UnusableEnvironment(f"{name}={value!r} is not one of {', '.join(PROTOCOLS)}")
            return value
    return "grpc"


def _endpoint(argument: str | None, environ: Mapping[str, str], protocol: str) -> str | None:
    if argument is not None:
        if not _valid_endpoint(argument, protocol):
            raise ConfigurationError(
                f"endpoint must be an http(s) URL such as http://127.0.0.1:4317, got {argument!r}"
            )
        return argument
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        value = environ.get(name, "").strip()
        if value:
            if not _valid_endpoint(value, protocol):
                raise UnusableEnvironment(
                    f"{name}={value!r} is not an http(s) URL such as http://127.0.0.1:4317"
                )
            return None
    return None


def _valid_endpoint(value: str, protocol: str) -> bool:
    if protocol == "grpc" and _host_port(value):
        return True
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _host_port(value: str) -> bool:
    """Whether ``value`` is ``HOST:PORT`` (gRPC's form without a scheme): host characters, then ``:`` and one
    to five digits. Written out rather than as a pattern, which every traced service compiled at start-up."""
    host, colon, port = value.rpartition(":")
    valid_host = bool(host) and not host.strip(_HOST_CHARACTERS)
    return bool(colon) and valid_host and 1 <= len(port) <= 5 and port.isdecimal()


def _sampler(argument: str | None, environ: Mapping[str, str]) -> str | None:
    if argument is not None:
        if argument not in SAMPLERS:
            raise ConfigurationError(f"sampler must be one of {SAMPLERS}, got {argument!r}")
        return argument
    value = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if value and value not in SAMPLERS:
        logger.warning(
            "hoptrace: unknown OTEL_TRACES_SAMPLER=%r (expected one of %s); using parentbased_always_on",
            value,
            ", ".join(SAMPLERS),
        )
        return "parentbased_always_on"
    return value or None


def _sampler_arg(argument: float | None, environ: Mapping[str, str], sampler: str | None) -> float | None:
    if sampler not in ("traceidratio", "parentbased_traceidratio"):
        return None
    if argument is not None:
        if not 0.0 <= argument <= 1.0:
            raise ConfigurationError(f"sampler_arg must be a ratio between 0 and 1, got {argument!r}")
        return argument
    raw = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    try:
        value = float(raw) if raw else 1.0
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        logger.warning("hoptrace: OTEL_TRACES_SAMPLER_ARG=%r is not a ratio between 0 and 1; using 1.0", raw)
        return 1.0
    return value


def _tenant_header(argument: str | None, environ: Mapping[str, str]) -> str | None:
    if argument is not None:
        if not re.fullmatch(_HEADER_NAME, argument):
            raise ConfigurationError(f"tenant_header must be an HTTP header name, got {argument!r}")
        return argument.lower()
    value = environ.get(env.HOPTRACE_TENANT_HEADER, "").strip()
    if not value:
        return None
    if not re.fullmatch(_HEADER_NAME, value):
        raise UnusableEnvironment(f"{env.HOPTRACE_TENANT_HEADER}={value!r} is not an HTTP header name")
    return value.lower()


def _flag(
    name: str, argument: bool | None, environ: Mapping[str, str], variable: str, *, default: bool = False
) -> bool:
    if argument is not None:
        if not isinstance(argument, bool):
            raise ConfigurationError(f"{name} must be a bool, got {argument!r}")
        return argument
    raw = environ.get(variable)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return default if value == "" else False
    logger.warning("hoptrace: %s=%r is not true or false; using %s", variable, raw, str(default).lower())
    return default


def _disabled(argument: Iterable[str] | None, environ: Mapping[str, str]) -> frozenset[str]:
    if argument is not None:
        names = {_normalise(name) for name in argument}
        unknown = names - set(INSTRUMENTATIONS)
        if unknown:
            raise ConfigurationError(f"unknown instrumentations {sorted(unknown)}; known: {INSTRUMENTATIONS}")
        return frozenset(names)
    raw = environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    # Unknown names are legitimately meant for other instrumentations, so they are ignored silently.
    return frozenset(name for name in map(_normalise, raw.split(",")) if name in INSTRUMENTATIONS)


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _log_format(argument: str | None, environ: Mapping[str, str]) -> str | None:
    if argument is not None:
        if argument != "json":
            raise ConfigurationError(f"log_format must be 'json' or None, got {argument!r}")
        return argument
    value = environ.get(env.HOPTRACE_LOG_FORMAT, "").strip().lower()
    if value and value != "json":
        logger.warning(
            "hoptrace: %s=%r is not 'json'; leaving log formatting alone", env.HOPTRACE_LOG_FORMAT, value
        )
        return None
    return value or None


def _tenant_secrets(argument: str | Sequence[str] | None, environ: Mapping[str, str]) -> tuple[str, ...]:
    from hoptrace.tracing._tenant_signature import TenantKeys

    if argument is not None:
        secrets = _split_secrets(argument if isinstance(argument, str) else ",".join(argument))
        try:
            TenantKeys(secrets)
        except ValueError as exc:
            raise ConfigurationError(f"tenant_secret: {exc}") from None
        return secrets
    secrets = _split_secrets(environ.get(env.HOPTRACE_TENANT_SECRET, ""))
    if not secrets:
        return ()
    try:
        TenantKeys(secrets)
    except ValueError as exc:
        # Never echo the secret itself. Untraced beats unsigned: a weak key would let callers forge tenants.
        raise UnusableEnvironment(f"{env.HOPTRACE_TENANT_SECRET}: {exc}") from None
    return secrets


def _split_secrets(raw: str) -> tuple[str, ...]:
    return tuple(secret.strip() for secret in raw.split(",") if secret.strip())
