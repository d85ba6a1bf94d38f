"""The signed tenant (HOPTRACE_TENANT_SECRET): hoptrace services trust the tenant that hoptrace signed, and
nothing else, on HTTP and message hops; without a secret the edge rule alone applies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext

from hoptrace.tracing._counters import malformed_baggage, untrusted_baggage, untrusted_tenants
from hoptrace.tracing._propagation import EdgePolicy, extract, inbound_context, inject
from hoptrace.tracing._tenant_signature import TenantKeys, configure_tenant_keys

OLD, NEW = "old-secret-0123456789", "new-secret-0123456789"
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
EDGE = EdgePolicy(edge=True, tenant_header="x-tenant-id")


@pytest.fixture
def secrets() -> Iterator[None]:
    configure_tenant_keys(TenantKeys([NEW, OLD]))
    yield
    configure_tenant_keys(None)


def _sent_by_hoptrace(tenant: str = "acme", trace_id: int = TRACE_ID, **entries: str) -> dict[str, list[str]]:
    """The headers a hoptrace service sends for ``tenant`` in trace ``trace_id`` (with the current keys)."""
    span = NonRecordingSpan(SpanContext(trace_id, 0x00F067AA0BA902B7, is_remote=False))
    context = baggage.set_baggage("tenant.id", tenant, trace.set_span_in_context(span))
    for key, value in entries.items():
        context = baggage.set_baggage(key, value, context)
    carrier: dict[str, str] = {}
    inject(carrier, context)
    return {name: [value] for name, value in carrier.items()}


def _tenant(context: Context) -> object:
    return baggage.get_baggage("tenant.id", context)


def test_keys_sign_with_the_first_and_verify_with_all() -> None:
    rotating, previous = TenantKeys([NEW, OLD]), TenantKeys([OLD])
    assert rotating.verify("acme", TRACE_ID, previous.sign("acme", TRACE_ID))
    assert rotating.sign("acme", TRACE_ID) == TenantKeys([NEW]).sign("acme", TRACE_ID)
    assert not previous.verify("acme", TRACE_ID, rotating.sign("acme", TRACE_ID))
    assert not rotating.verify("acme", TRACE_ID + 1, rotating.sign("acme", TRACE_ID))
    assert not rotating.verify("evil", TRACE_ID, rotating.sign("acme", TRACE_ID))


@pytest.mark.parametrize("secrets", [[], ["short"], [NEW, "short"]])
def test_missing_or_short_secrets_are_refused(secrets: list[str]) -> None:
    with pytest.raises(ValueError, match="secret"):
        TenantKeys(secrets)


def test_signed_tenant_crosses_an_edge_with_the_rest_of_its_baggage(secrets: None) -> None:
    headers = _sent_by_hoptrace(role="batch")
    assert ";hoptrace.sig=" in headers["baggage"][0]
    context = inbound_context({**headers, "x-tenant-id": ["other"]}, EDGE)
    assert baggage.get_all(context) == {"tenant.id": "acme", "role": "batch"}


def test_signed_tenant_crosses_a_message_hop(secrets: None) -> None:
    assert _tenant(extract(_sent_by_hoptrace())) == "acme"


@pytest.mark.parametrize(
    "forged",
    [
        "tenant.id=evil",
        "tenant.id=evil;hoptrace.sig=AAAAAAAAAAAAAAAAAAAAAA",
        "tenant.id=evil;hoptrace.sig",
    ],
)
def test_forged_tenant_is_dropped_and_counted_on_every_hop(secrets: None, forged: str) -> None:
    headers = {"traceparent": _sent_by_hoptrace()["traceparent"], "baggage": [forged + ",role=admin"]}
    before = untrusted_tenants.count
    assert _tenant(extract(headers)) is None
    assert baggage.get_all(inbound_context(headers, EDGE)) == {}
    assert baggage.get_all(inbound_context({**headers, "x-tenant-id": ["acme"]}, EDGE)) == {
        "tenant.id": "acme"
    }
    assert untrusted_tenants.count > before


def test_a_signature_from_another_trace_vouches_for_nothing(secrets: None) -> None:
    headers = _sent_by_hoptrace(trace_id=TRACE_ID + 1)
    headers["traceparent"] = _sent_by_hoptrace()["traceparent"]
    assert _tenant(extract(headers)) is None


def test_a_tenant_signed_with_another_secret_is_dropped(secrets: None) -> None:
    configure_tenant_keys(TenantKeys(["someone-elses-secret"]))
    headers = _sent_by_hoptrace()
    configure_tenant_keys(TenantKeys([NEW]))
    assert _tenant(extract(headers)) is None


def test_a_tenant_changed_in_flight_is_not_sent_with_the_old_signature(secrets: None) -> None:
    received = extract(_sent_by_hoptrace())
    carrier: dict[str, str] = {}
    inject(carrier, baggage.set_baggage("tenant.id", "globex", received))
    assert _tenant(extract({name: [value] for name, value in carrier.items()})) == "globex"


def test_without_secrets_the_edge_drops_baggage_before_parsing_it() -> None:
    malformed_before, untrusted_before = malformed_baggage.count, untrusted_baggage.count
    headers = {"baggage": ["tenant.id=evil," + "x" * 10_000], "x-tenant-id": ["acme"]}
    assert baggage.get_all(inbound_context(headers, EDGE)) == {"tenant.id": "acme"}
    assert malformed_baggage.count == malformed_before, "the edge parsed baggage it was going to drop"
    assert untrusted_baggage.count == untrusted_before + 1


def test_without_secrets_internal_services_keep_their_callers_tenant() -> None:
    headers = _sent_by_hoptrace()
    assert ";hoptrace.sig" not in headers["baggage"][0]
    assert _tenant(inbound_context(headers, EdgePolicy(edge=False))) == "acme"
    assert _tenant(extract(headers)) == "acme"
