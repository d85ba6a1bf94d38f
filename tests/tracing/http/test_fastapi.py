"""FastAPI's native telemetry is turned off where it would double hoptrace's, and only there."""

from __future__ import annotations

import inspect
import types

import fastapi.applications
import httpx
import pytest

from hoptrace.tracing._http.asgi import TracingMiddleware
from hoptrace.tracing._http.fastapi import TELEMETRY_OFF, instrument_fastapi
from hoptrace.tracing._propagation import EdgePolicy
from tests.tracing.conftest import FinishedSpans

NATIVE_TELEMETRY = "telemetry" in inspect.signature(fastapi.FastAPI.__init__).parameters


def test_native_telemetry_is_off_and_the_options_hoptrace_does_not_own_are_kept() -> None:
    # FastAPI < 0.165 (the oldest tested is 0.115.0) has no native telemetry: nothing to turn off.
    assert instrument_fastapi(fastapi.applications) is NATIVE_TELEMETRY
    assert instrument_fastapi(fastapi.applications) is NATIVE_TELEMETRY, "idempotent"
    if not NATIVE_TELEMETRY:
        return

    def exclude(scope: object) -> bool:
        return False

    app = fastapi.FastAPI(telemetry={"tracing": True, "logs": False, "exclude": exclude})
    config = app._telemetry
    assert {key: config[key] for key in TELEMETRY_OFF} == TELEMETRY_OFF  # type: ignore[literal-required]
    assert (config["logs"], config["exclude"]) == (False, exclude)


def test_fastapi_releases_without_native_telemetry_are_left_alone() -> None:
    class OldFastAPI:
        def __init__(self, *, debug: bool = False) -> None:
            self.debug = debug

    module = types.ModuleType("fastapi.applications")
    module.FastAPI = OldFastAPI  # type: ignore[attr-defined]
    assert not instrument_fastapi(module)
    assert OldFastAPI(debug=True).debug


@pytest.mark.asyncio
async def test_one_server_span_named_after_the_route_and_no_forged_tenant(spans: FinishedSpans) -> None:
    instrument_fastapi(fastapi.applications)
    app = fastapi.FastAPI()
    seen: dict[str, object] = {}

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        from opentelemetry import baggage

        seen.update(baggage.get_all())
        return {"item": item_id}

    edge = TracingMiddleware(app, EdgePolicy(edge=True, tenant_header="x-tenant-id"))
    transport = httpx.ASGITransport(app=edge)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        headers = {"x-tenant-id": "acme", "baggage": "tenant.id=evil"}
        assert (await client.get("/items/7", headers=headers)).status_code == 200
    server = [span for span in spans.all() if span.kind.name == "SERVER"]
    assert [span.name for span in server] == ["GET /items/{item_id}"]
    assert server[0].attributes["tenant.id"] == "acme"
    assert seen == {"tenant.id": "acme"}
