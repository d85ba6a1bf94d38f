"""Random and mutated payloads never crash the receivers or poison the store (property tests)."""

from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hoptrace.harness.backend import EmbeddedBackend, InvalidPayload, StoreLimits, TraceStore
from hoptrace.harness.backend._otlp_json import parse_json_request
from hoptrace.harness.backend._receiver import Receiver

from .test_bad_input import request

VALID = request(0x11, spans=3, name="fuzzed")


def _export(receiver: Receiver, body: bytes) -> None:
    try:
        receiver.export_protobuf(body)
    except InvalidPayload as exc:
        assert str(exc)
    for trace_id, _ in receiver.store.snapshot():
        receiver.store.get_trace(trace_id.hex())  # whatever was stored decodes again


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_protobuf_bodies_are_stored_or_refused(body: bytes) -> None:
    _export(Receiver(TraceStore(StoreLimits(min_retention_seconds=0))), body)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_valid_requests_are_stored_or_refused(data: st.DataObject) -> None:
    body = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(body) - 1))
        body[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    _export(Receiver(TraceStore(StoreLimits(min_retention_seconds=0))), bytes(body[:cut]))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "name", "kind", "x"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_random_json_documents_parse_or_raise_invalid_payload(document: object) -> None:
    try:
        parse_json_request(json.dumps(document).encode())
    except InvalidPayload as exc:
        assert str(exc)


def test_random_http_bodies_get_otlp_answers_and_the_server_keeps_serving() -> None:
    with (
        EmbeddedBackend() as backend,
        httpx.Client(base_url=backend.otlp_http_endpoint, timeout=10) as client,
    ):

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            st.binary(max_size=512),
            st.sampled_from(["application/x-protobuf", "application/json", "text/plain"]),
            st.sampled_from(["identity", "gzip"]),
        )
        def post(body: bytes, content_type: str, encoding: str) -> None:
            response = client.post(
                "/v1/traces",
                content=body,
                headers={"Content-Type": content_type, "Content-Encoding": encoding},
            )
            assert response.status_code in (200, 400, 415)

        post()
        assert client.post(
            "/v1/traces", content=VALID, headers={"Content-Type": "application/x-protobuf"}
        ).is_success
        assert httpx.get(f"{backend.http_url}/ready").status_code == 200
        assert [span.name for span in backend.store.get_trace("11" * 16)] == ["fuzzed"] * 3
