"""Carrying the trace context and the tenant across a hop: inject, extract, and the edge rule.

Every extraction goes through :func:`inbound_context`, so a malformed ``traceparent``, ``tracestate`` or
``baggage`` starts a fresh trace (the W3C propagators ignore what they cannot parse, and drop baggage over
8 KiB / 180 entries), and an invalid tenant is dropped and counted before anything can propagate it.

The edge rule (see ``HOPTRACE_EDGE``): a service is the trusted edge when it says so, by default when it
reads the tenant from a request header. At the edge, inbound ``baggage`` is dropped, without being parsed,
unless ``HOPTRACE_TRUST_INBOUND_BAGGAGE`` is true, and the tenant header (when present and valid) becomes
the ``tenant.id`` baggage entry. Internal services keep the baggage their hoptrace caller sent.

The signed tenant (see ``HOPTRACE_TENANT_SECRET`` and :mod:`hoptrace.tracing._tenant_signature`): with a
secret, a tenant entry is kept only when its signature verifies, on every hop (HTTP and messages); an edge
keeps the baggage of a request whose tenant hoptrace signed (it comes from a hoptrace service), and drops
any other, so one environment serves every service. Without a valid signed tenant, the tenant header
applies as above.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, MutableMapping
from typing import NamedTuple

from opentelemetry import baggage, propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter

from hoptrace.processors import TENANT_KEY, validate_tenant
from hoptrace.tracing._counters import untrusted_baggage, untrusted_tenants
from hoptrace.tracing._tenant_signature import SIGNATURE_PROPERTY, has_signed_tenant, tenant_keys
from hoptrace.tracing._w3c.baggage import BAGGAGE, entry_properties
from hoptrace.tracing._w3c.selection import w3c_fields


class EdgePolicy(NamedTuple):
    """How inbound HTTP requests are treated; see the module docstring. Immutable (a named tuple: cheaper
    to build at start-up than a frozen dataclass)."""

    edge: bool = False
    trust_inbound_baggage: bool = False
    tenant_header: str | None = None
    """Lower-case header name, or ``None``."""


class MappingGetter(Getter[Mapping[str, object]]):
    """Reads a header mapping whose keys may be any case and whose values may be str, bytes or lists."""

    def get(self, carrier: Mapping[str, object], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            for name, candidate in carrier.items():
                if isinstance(name, str) and len(name) == len(key) and name.lower() == key:
                    value = candidate
                    break
            else:
                return None
        if isinstance(value, str):  # the usual case: one str value
            return [value]
        values = value if isinstance(value, list | tuple) else [value]
        return [text for text in map(_text, values) if text is not None] or None

    def keys(self, carrier: Mapping[str, object]) -> list[str]:
        return [name for name in carrier if isinstance(name, str)]


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    return None


class HeaderListsGetter(Getter[Mapping[str, list[str]]]):
    """Reads what :func:`header_lists` made: lower-case names mapping to lists of str values, as they are
    (no copy, no case-insensitive search: a server hop reads a few headers of every request)."""

    def get(self, carrier: Mapping[str, list[str]], key: str) -> list[str] | None:
        return carrier.get(key)

    def keys(self, carrier: Mapping[str, list[str]]) -> list[str]:
        return list(carrier)


class TraceOnlyGetter(HeaderListsGetter):
    """A :class:`HeaderListsGetter` hiding ``baggage``: untrusted baggage is dropped before it is parsed."""

    def get(self, carrier: Mapping[str, list[str]], key: str) -> list[str] | None:
        return None if key == BAGGAGE else carrier.get(key)


mapping_getter = MappingGetter()
header_lists_getter = HeaderListsGetter()
trace_only_getter = TraceOnlyGetter()


def inject(carrier: MutableMapping[str, str], context: Context | None = None) -> None:
    """Write ``traceparent``/``tracestate``/``baggage`` of ``context`` (default: current) into ``carrier``.

    Uses the globally configured propagators (``OTEL_PROPAGATORS``). Never raises for a plain mapping.
    """
    propagate.inject(carrier, context=context)


def extract(carrier: Mapping[str, object], context: Context | None = None) -> Context:
    """Return a context holding the trace parent and baggage found in ``carrier`` (an internal hop).

    Keys are matched case-insensitively; str and bytes values are accepted. Malformed values are ignored,
    and an invalid ``tenant.id`` is dropped and counted. No edge rule applies: use this for carriers that
    come from other hoptrace services. Never raises.
    """
    extracted = propagate.extract(carrier, context=context, getter=mapping_getter)
    if tenant_keys() is not None:
        extracted, _ = _verify_signed_tenant(extracted)
    return sanitize_tenant(extracted)


def inbound_context(
    headers: Mapping[str, list[str]], policy: EdgePolicy, context: Context | None = None
) -> Context:
    """Extract the context of an inbound HTTP request, applying the edge rule and, when secrets are set,
    the signed-tenant rule (module docstring). ``headers`` maps lower-case names to their values, as
    :func:`header_lists` makes them. Never raises."""
    signing = tenant_keys() is not None
    drops_untrusted = policy.edge and not policy.trust_inbound_baggage
    raw_baggage = headers.get(BAGGAGE)
    signed = False
    if drops_untrusted and raw_baggage and not (signing and _mentions_signature(raw_baggage)):
        untrusted_baggage.record()
        extracted = propagate.extract(headers, context=context, getter=trace_only_getter)
    else:
        extracted = propagate.extract(headers, context=context, getter=header_lists_getter)
        if signing:
            extracted, signed = _verify_signed_tenant(extracted)
            if drops_untrusted and not signed and baggage.get_all(extracted):
                untrusted_baggage.record()
                extracted = baggage.clear(extracted)
    if policy.edge and policy.tenant_header is not None and not signed:
        values = headers.get(policy.tenant_header)
        if values:
            tenant = validate_tenant(values[0])
            if tenant is not None:
                extracted = baggage.set_baggage(TENANT_KEY, tenant, extracted)
    return sanitize_tenant(extracted)


def _mentions_signature(values: list[str]) -> bool:
    return any(SIGNATURE_PROPERTY in value for value in values)


def _verify_signed_tenant(context: Context) -> tuple[Context, bool]:
    """Drop (and count) the tenant entry of ``context`` unless hoptrace signed it; says whether it did."""
    if baggage.get_baggage(TENANT_KEY, context) is None:
        return context, False
    if has_signed_tenant(context, entry_properties(TENANT_KEY, context)):
        return context, True
    untrusted_tenants.record()
    return baggage.remove_baggage(TENANT_KEY, context), False


def sanitize_tenant(context: Context) -> Context:
    """Drop an invalid ``tenant.id`` baggage entry (counted by
    :func:`hoptrace.processors.validate_tenant`)."""
    value = baggage.get_baggage(TENANT_KEY, context)
    if value is not None and validate_tenant(value) is None:
        return baggage.remove_baggage(TENANT_KEY, context)
    return context


def header_lists(
    raw_headers: Iterable[tuple[bytes, bytes]], only: Container[bytes] | None = None
) -> dict[str, list[str]]:
    """Group ASGI-style ``(name, value)`` byte pairs into lower-case names mapping to their values; with
    ``only`` (lower-case names), just those headers."""
    grouped: dict[str, list[str]] = {}
    for name, value in raw_headers:
        name = name.lower()
        if only is None or name in only:
            grouped.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    return grouped


def inbound_header_names(policy: EdgePolicy) -> frozenset[bytes] | None:
    """The lower-case names of every header :func:`inbound_context` may read under ``policy`` with the
    propagators installed now, or ``None`` when one of them may read any header (it is not one of
    hoptrace's W3C propagators, which read only their ``fields``)."""
    fields = w3c_fields(propagate.get_global_textmap())
    if fields is None:
        return None
    names = {*fields, BAGGAGE, *((policy.tenant_header,) if policy.tenant_header else ())}
    return frozenset(name.lower().encode("latin-1") for name in names)
