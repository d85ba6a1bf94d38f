"""Instrument each library when (and only if) the service imports it.

Post-import hooks keep start-up cheap: a service pays for the httpx, aio-pika or uvicorn instrumentation
only when it imports that library, and a library imported before activation is instrumented at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType

import wrapt

from hoptrace.tracing._propagation import EdgePolicy
from hoptrace.tracing._settings import Settings

logger = logging.getLogger("hoptrace.tracing")


def install_instrumentation_hooks(settings: Settings, policy: EdgePolicy) -> None:
    """Register the post-import hooks for every instrumentation not disabled. Never raises."""
    disabled = settings.disabled_instrumentations
    if "httpx" not in disabled:
        _when_imported("httpx", _instrument_httpx)
    if "aio_pika" not in disabled:
        _when_imported("aio_pika", _instrument_aio_pika)
    if "asgi" not in disabled:
        # uvicorn/__init__ imports uvicorn.config, so this hook fires for any uvicorn use.
        _when_imported("uvicorn.config", lambda module: _instrument_uvicorn(module, policy))
        _when_imported("starlette.routing", _instrument_starlette_mounts)
        _when_imported("fastapi.applications", _instrument_fastapi)


def _when_imported(module_name: str, instrument: Callable[[ModuleType], None]) -> None:
    def hook(module: ModuleType) -> None:
        try:
            instrument(module)
        except Exception as exc:  # an unsupported library version must not break the import
            logger.warning("hoptrace: cannot instrument %s (%r); it runs untraced", module_name, exc)

    wrapt.register_post_import_hook(hook, module_name)


def _instrument_httpx(_module: ModuleType) -> None:
    from hoptrace.tracing._http.httpx import instrument_httpx

    instrument_httpx()


def _instrument_aio_pika(_module: ModuleType) -> None:
    from hoptrace.tracing._aio_pika.instrument import instrument_aio_pika

    instrument_aio_pika()


def _instrument_fastapi(applications: ModuleType) -> None:
    from hoptrace.tracing._http.fastapi import instrument_fastapi

    instrument_fastapi(applications)


def _instrument_uvicorn(config_module: ModuleType, policy: EdgePolicy) -> None:
    from hoptrace.tracing._http.asgi import instrument_uvicorn

    instrument_uvicorn(config_module, policy)


def _instrument_starlette_mounts(routing_module: ModuleType) -> None:
    from hoptrace.tracing._http.asgi_routes import instrument_starlette_mounts

    instrument_starlette_mounts(routing_module)
