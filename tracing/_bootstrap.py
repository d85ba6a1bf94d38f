"""Activation: install the tracer provider, the processor chain, the hop instrumentation and log correlation.

:func:`bootstrap_from_environment` is what ``sitecustomize`` calls (zero-code);
:func:`hoptrace.tracing.configure`
calls :func:`activate` with explicit arguments. Activation happens at most once per process; later calls
are harmless no-ops. In the zero-code path nothing raises into the host: a broken configuration logs one
warning line and the service runs untraced.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from hoptrace.tracing._errors import HoptraceError
from hoptrace.tracing._settings import Settings, UnusableEnvironment, resolve_settings
from hoptrace.tracing.environment_variables import HOPTRACE_OPEN_SPANS_URL

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler

logger = logging.getLogger("hoptrace.tracing")

_lock = threading.Lock()
_active: Settings | None = None


def active_settings() -> Settings | None:
    """The settings tracing was activated with in this process, or ``None``."""
    return _active


def bootstrap_from_environment() -> bool:
    """Activate tracing from the ``OTEL_*``/``HOPTRACE_*`` variables; returns whether it activated.

    Never raises: any failure logs one warning line and leaves the process untraced.
    """
    try:
        return activate(resolve_settings())
    except Exception as exc:
        reason = str(exc) if isinstance(exc, HoptraceError) else repr(exc)
        logger.warning("hoptrace: tracing is off for this process: %s", reason)
        return False


def activate(settings: Settings) -> bool:
    """Install tracing for this process with ``settings``.

    Returns ``True`` when this call activated tracing, ``False`` when it was already active or
    ``OTEL_SDK_DISABLED`` is true. Raises :class:`UnusableEnvironment` when the propagators named by
    ``OTEL_PROPAGATORS`` do not exist. ``tracecontext`` and ``baggage`` are hoptrace's W3C propagators.
    Thread-safe.
    """
    global _active
    with _lock:
        if _active is not None or settings.sdk_disabled:
            return False
        _install_propagators(settings)
        from opentelemetry import trace

        from hoptrace.tracing._hooks import install_instrumentation_hooks
        from hoptrace.tracing._lifecycle import flush_on_sigterm
        from hoptrace.tracing._propagation import EdgePolicy

        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            provider = _provider(settings)
            trace.set_tracer_provider(provider)
            flush_on_sigterm(provider)
        else:
            logger.warning(
                "hoptrace: a TracerProvider was already installed; hops are traced into it, "
                "without hoptrace's processors"
            )
        policy = EdgePolicy(settings.edge, settings.trust_inbound_baggage, settings.tenant_header)
        install_instrumentation_hooks(settings, policy)
        if "logging" not in settings.disabled_instrumentations:
            from hoptrace.tracing._logging import install_log_correlation

            install_log_correlation(settings)
        _active = settings
        return True


def _install_propagators(settings: Settings) -> None:
    """Resolve ``OTEL_PROPAGATORS`` with hoptrace's W3C propagators, and install the tenant secrets."""
    import os

    from hoptrace.tracing._tenant_signature import TenantKeys, configure_tenant_keys
    from hoptrace.tracing._w3c.selection import propagator_from_environment

    try:
        propagator = propagator_from_environment(os.environ)
        from opentelemetry import propagate  # resolves OTEL_PROPAGATORS again at import: may raise too
    except ValueError as exc:
        raise UnusableEnvironment(f"OTEL_PROPAGATORS: {exc}") from exc
    propagate.set_global_textmap(propagator)
    configure_tenant_keys(TenantKeys(settings.tenant_secrets) if settings.tenant_secrets else None)


def _provider(settings: Settings) -> TracerProvider:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    from hoptrace.tracing._pipeline import ExporterWarmUp, build_span_processors
    from hoptrace.tracing._spans.dispatch import SpanProcessorDispatch

    resource = Resource.create({SERVICE_NAME: settings.service_name} if settings.service_name else {})
    provider = TracerProvider(
        resource=resource, sampler=_sampler(settings), active_span_processor=SpanProcessorDispatch()
    )
    processors = build_span_processors(settings, resource)
    for processor in processors:
        provider.add_span_processor(processor)
    reporter = _open_span_reporter(resource)
    if reporter is not None:  # under the harness: its first trace is waited for, so be ready for it
        provider.add_span_processor(reporter)
        for processor in processors:
            if isinstance(processor, ExporterWarmUp):
                processor.warm_up()
    return provider


def _open_span_reporter(resource: Resource) -> SpanProcessor | None:
    """The harness's open-span reporter when it asked for one; its module (with http.client, ~2.6M CPU
    instructions) is imported only then."""
    if not os.environ.get(HOPTRACE_OPEN_SPANS_URL, "").strip():
        return None
    from hoptrace.tracing._open_spans import open_span_reporter_from_environment

    return open_span_reporter_from_environment(os.environ, resource)


def _sampler(settings: Settings) -> Sampler | None:
    if settings.sampler is None:
        return None
    from opentelemetry.sdk.trace import sampling

    rate = 1.0 if settings.sampler_arg is None else settings.sampler_arg
    samplers: dict[str, Callable[[], Sampler]] = {
        "always_on": lambda: sampling.ALWAYS_ON,
        "always_off": lambda: sampling.ALWAYS_OFF,
        "parentbased_always_on": lambda: sampling.DEFAULT_ON,
        "parentbased_always_off": lambda: sampling.DEFAULT_OFF,
        "traceidratio": lambda: sampling.TraceIdRatioBased(rate),
        "parentbased_traceidratio": lambda: sampling.ParentBasedTraceIdRatio(rate),
    }
    return samplers[settings.sampler]()
