"""W3C Baggage: the ``baggage`` header, with properties, percent-encoding, whitespace and the limits.

Rules implemented (https://www.w3.org/TR/baggage/):

- ``baggage`` header fields are combined with ``,``. A list-member is ``key OWS "=" OWS value`` followed by
  properties ``OWS ";" OWS key [OWS "=" OWS value]``. Keys are RFC 9110 tokens; values are
  ``baggage-octet`` strings, which may hold ``=``. Optional whitespace (space, tab) around keys, values,
  properties and list-members is not part of them.
- Values are percent-decoded as UTF-8 (an invalid sequence becomes U+FFFD); ``+`` stays ``+``. Keys and
  properties are kept as they are.
- Limits: a header over 8192 bytes is dropped whole, unparsed; at most 180 list-members are kept. A
  malformed list-member is dropped (never a part of one), the rest is kept.
- Properties survive the hop: they are kept in the context beside the baggage entry and sent again with it
  as long as the entry keeps the value it arrived with.
- Sent: every character outside ``baggage-octet``, and ``%``, is percent-encoded; entries whose key is not
  a token are left out; members are added while the header stays within 8192 bytes. The tenant entry
  carries hoptrace's signature property when ``HOPTRACE_TENANT_SECRET`` is set (see
  :mod:`hoptrace.tracing._tenant_signature`).

Problems are counted (``malformed_baggage``), never logged per request. Never raises.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from urllib.parse import quote, unquote

from opentelemetry import baggage
from opentelemetry.context import Context, create_key, get_current, get_value, set_value
from opentelemetry.propagators import textmap

from hoptrace.tracing._counters import malformed_baggage
from hoptrace.tracing._tenant_signature import outgoing_properties, tenant_keys
from hoptrace.tracing._w3c import compiled

BAGGAGE = "baggage"
MAX_BYTES = 8192
MAX_MEMBERS = 180
_OWS = " \t"
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # patterns compiled on first use (compiled)
_OCTETS = "!#$&'()*+-./0123456789:<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~"
"""``baggage-octet`` without ``%`` (which is always encoded): what ``quote`` may leave as it is."""
_VALUE = r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"
_PROPERTIES_KEY = create_key("hoptrace-baggage-properties")
_CACHED_HEADER_LENGTH = 512
"""Headers up to this length have their parse cached (a service's tenants repeat on every hop)."""
try:  # the API's storage key: one context copy for every entry instead of one per entry (set_baggage)
    from opentelemetry.baggage import _BAGGAGE_KEY
except ImportError:  # pragma: no cover - another API version: the public path
    _BAGGAGE_KEY = None  # type: ignore[assignment]
Member = tuple[str, str, tuple[str, ...]]
_SENT_HEADERS_LIMIT = 256
_sent_headers: dict[tuple[object, ...], str] = {}
"""Headers sent, by entries (with their value types) and received properties: a service sends the same
few tenants' baggage on every hop. Emptied when full."""


def entry_properties(key: str, context: Context | None = None) -> tuple[str, ...]:
    """The properties (``"name=value"`` or ``"name"``) the entry ``key`` arrived with, while it keeps the
    value it arrived with; else ``()``."""
    received = get_value(_PROPERTIES_KEY, context)
    if not isinstance(received, dict) or key not in received:
        return ()
    value, properties = received[key]
    return tuple(properties) if baggage.get_baggage(key, context) == value else ()


@functools.lru_cache(maxsize=256)
def parse_member(member: str) -> tuple[str, str, tuple[str, ...]] | None:
    """``(key, decoded value, normalised properties)`` of one list-member, or ``None`` when malformed.

    Cached: the same members (a service's tenants) arrive on every hop. Pure function."""
    first, *raw_properties = member.split(";")
    key, equals, value = first.partition("=")
    key, value = key.strip(_OWS), value.strip(_OWS)
    token, octets = compiled(_TOKEN), compiled(_VALUE)
    if not equals or not token.fullmatch(key) or not octets.fullmatch(value):
        return None
    properties = []
    for raw in raw_properties:
        name, equals, property_value = raw.partition("=")
        name, property_value = name.strip(_OWS), property_value.strip(_OWS)
        if not token.fullmatch(name) or (equals and not octets.fullmatch(property_value)):
            return None
        properties.append(f"{name}={property_value}" if equals else name)
    return key, unquote(value, errors="replace"), tuple(properties)


def parse_header(header: str) -> tuple[tuple[Member, ...], int]:
    """The well-formed list-members of ``header`` (at most :data:`MAX_MEMBERS`, as :func:`parse_member`
    gives them) and how many were dropped (malformed or over the limit). Pure function."""
    members: list[Member] = []
    dropped = 0
    for raw in header.split(","):
        if not raw.strip(_OWS):
            continue
        parsed = parse_member(raw)
        if parsed is None or len(members) >= MAX_MEMBERS:
            dropped += 1
            continue
        members.append(parsed)
    return tuple(members), dropped


_parse_short_header = functools.lru_cache(maxsize=256)(parse_header)


@functools.lru_cache(maxsize=256)
def _member(key: str, value: str) -> str | None:
    """``key=value`` with ``value`` percent-encoded, or ``None`` when ``key`` is not a token. Cached, as
    :func:`parse_member`. Pure function."""
    return f"{key}={quote(value, safe=_OCTETS)}" if compiled(_TOKEN).fullmatch(key) else None


class BaggagePropagator(textmap.TextMapPropagator):
    """``baggage`` for ``OTEL_PROPAGATORS``: W3C Baggage as the module docstring says. Stateless and
    thread-safe."""

    def extract(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        getter: textmap.Getter[textmap.CarrierT] = textmap.default_getter,
    ) -> Context:
        context = Context() if context is None else context
        values = getter.get(carrier, BAGGAGE)
        if not values:
            return context
        header = values[0] if len(values) == 1 else ",".join(values)
        # A character takes at most 4 bytes in UTF-8: shorter headers need no encoding to be measured.
        if len(header) > MAX_BYTES // 4 and len(header.encode("utf-8", "replace")) > MAX_BYTES:
            malformed_baggage.record()
            return context
        members, dropped = (
            _parse_short_header(header) if len(header) <= _CACHED_HEADER_LENGTH else parse_header(header)
        )
        for _ in range(dropped):
            malformed_baggage.record()
        if not members:
            return context
        entries = dict(baggage.get_all(context))
        properties: dict[str, tuple[str, tuple[str, ...]]] = {}
        for key, value, received_properties in members:
            entries[key] = value
            properties[key] = (value, received_properties)
        if _BAGGAGE_KEY is None:
            for name, entry in entries.items():
                context = baggage.set_baggage(name, entry, context)
            return set_value(_PROPERTIES_KEY, properties, context)
        fields = context.copy()  # what set_value does, once for both keys
        fields[_BAGGAGE_KEY] = entries
        fields[_PROPERTIES_KEY] = properties
        return Context(fields)

    def inject(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        setter: textmap.Setter[textmap.CarrierT] = textmap.default_setter,
    ) -> None:
        header = self._cached_header(context) if _BAGGAGE_KEY is not None and tenant_keys() is None else None
        if header is None:
            header = self.header(baggage.get_all(context), context)
        if header:
            setter.set(carrier, BAGGAGE, header)

    def _cached_header(self, context: Context | None) -> str | None:
        """The header of ``context``'s baggage, from the cache when the same entries (values of the same
        types) and received properties were sent before; ``None`` when it cannot tell (a value that cannot
        be hashed). Only without tenant secrets: a signature depends on the trace. Headers from which
        something was dropped are not cached, so every drop is counted."""
        current = context if context is not None else get_current()
        entries = current.get(_BAGGAGE_KEY)
        if not isinstance(entries, dict) or not entries:
            return ""
        received = current.get(_PROPERTIES_KEY)
        try:
            key = (
                tuple(entries.items()),
                tuple(map(type, entries.values())),
                tuple(received.items()) if isinstance(received, dict) else (),
            )
            header = _sent_headers.get(key)
        except TypeError:
            return None
        if header is None:
            header, complete = self._header(entries, current)
            if complete:
                if len(_sent_headers) >= _SENT_HEADERS_LIMIT:
                    _sent_headers.clear()
                _sent_headers[key] = header
        return header

    def header(self, entries: Mapping[str, object], context: Context | None = None) -> str:
        """The ``baggage`` header value for ``entries`` (properties taken from ``context``)."""
        return self._header(entries, context)[0]

    def _header(self, entries: Mapping[str, object], context: Context | None) -> tuple[str, bool]:
        """The header, and whether every entry made it into it (nothing dropped and counted)."""
        members: list[str] = []
        size = -1
        complete = True
        for key, value in entries.items():
            text = str(value)
            member = _member(key, text)
            if member is None:
                malformed_baggage.record()
                complete = False
                continue
            properties = outgoing_properties(key, text, entry_properties(key, context), context)
            if properties:
                member = ";".join((member, *properties))
            length = len(member.encode())
            if size + 1 + length > MAX_BYTES or len(members) >= MAX_MEMBERS:
                malformed_baggage.record()
                complete = False
                continue
            members.append(member)
            size += 1 + length
        return ",".join(members), complete

    @property
    def fields(self) -> set[str]:
        return {BAGGAGE}
