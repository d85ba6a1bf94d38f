"""FastAPI, zero-code: hoptrace's ASGI middleware is the one telemetry a FastAPI app gets.

FastAPI 0.165 and later ship their own OpenTelemetry support (``fastapi.telemetry``). Under hoptrace it
would add a second SERVER span per request (it recognises only upstream's ``OpenTelemetryMiddleware``),
its own ``http.server.*`` metrics, optionally its own OTLP exporters (``FASTAPI_OTEL_AUTO_CONFIGURE``), and
it extracts the raw ``baggage`` header itself, which would put a tenant forged by an outside caller in
the context of the request, past hoptrace's edge rule. Its inner spans (dependencies, endpoint,
serialization) exist only below its own SERVER span.

So, when the ASGI instrumentation is on, the bootstrap wraps ``FastAPI.__init__`` and passes FastAPI's
public switch, ``telemetry={"tracing": False, "metrics": False, "auto_configure": False}``, merged over what
the application passed (its other options, e.g. ``logs`` and ``exclude``, are kept). FastAPI then reads no
header and records nothing of its own; hoptrace's SERVER span is named after FastAPI's route template,
continues the caller's trace, applies the edge rule and carries the tenant. FastAPI releases without
``fastapi.telemetry`` are left as they are: hoptrace's middleware already is their only telemetry. To keep
FastAPI's own telemetry instead, disable hoptrace's: ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=asgi``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

import wrapt

TELEMETRY_OFF = {"tracing": False, "metrics": False, "auto_configure": False}
"""What hoptrace turns off in ``FastAPI(telemetry=...)``: the parts that would duplicate its own."""


def instrument_fastapi(applications: ModuleType) -> bool:
    """Make every ``fastapi.FastAPI`` built from now on leave tracing, metrics and exporters to hoptrace.

    ``applications`` is ``fastapi.applications``. Returns whether FastAPI has native telemetry to turn off
    (``False`` for older releases, which are left untouched). Idempotent; raises nothing for supported
    FastAPI releases."""
    fastapi_class = applications.FastAPI
    if "telemetry" not in inspect.signature(fastapi_class.__init__).parameters:
        return False
    if getattr(fastapi_class, "_hoptrace_patched", False):
        return True

    def init(
        wrapped: Callable[..., None], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        kwargs["telemetry"] = {**(kwargs.get("telemetry") or {}), **TELEMETRY_OFF}
        wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(fastapi_class, "__init__", init)
    fastapi_class._hoptrace_patched = True
    return True
