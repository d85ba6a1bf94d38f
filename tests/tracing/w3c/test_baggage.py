"""hoptrace's ``baggage`` propagator against the rules and examples of the W3C Baggage specification.

The vectors are written here from the specification's text (https://www.w3.org/TR/baggage/); no test
suite is vendored. A "hop" extracts what a service received and injects it again, as a service does.
"""

from __future__ import annotations

import pytest
from opentelemetry import baggage
from opentelemetry.context import Context

from hoptrace.tracing._counters import malformed_baggage
from hoptrace.tracing._propagation import mapping_getter
from hoptrace.tracing._w3c.baggage import BaggagePropagator, entry_properties

propagator = BaggagePropagator()


def _received(*headers: str) -> Context:
    return propagator.extract({"baggage": list(headers)}, Context(), mapping_getter)


def _hop(*headers: str) -> str | None:
    carrier: dict[str, str] = {}
    propagator.inject(carrier, _received(*headers))
    return carrier.get("baggage")


@pytest.mark.parametrize(
    ("header", "entries"),
    [
        ("key1=value1,key2=value2", {"key1": "value1", "key2": "value2"}),
        ("key1 = value1, key2 = value2", {"key1": "value1", "key2": "value2"}),  # OWS is not data
        ("\tkey1=value1\t,\tkey2=value2\t", {"key1": "value1", "key2": "value2"}),
        ("key1=value1%2Cvalue2", {"key1": "value1,value2"}),  # percent-decoded
        ("key1=%20%09abc", {"key1": " \tabc"}),  # decoded whitespace is data
        ("key1=a+b%20c", {"key1": "a+b c"}),  # "+" is not a space
        ("key1=val=ue", {"key1": "val=ue"}),  # "=" may appear in a value
        ("key1=%E2%82%AC", {"key1": "\u20ac"}),  # UTF-8
        ("key1=%FFx", {"key1": "\ufffdx"}),  # invalid UTF-8 becomes U+FFFD
        ("key1=", {"key1": ""}),
        ("key1=value1;property1;property2, key2 = value2", {"key1": "value1", "key2": "value2"}),
        ("key1=value1,invalid,key2=value2", {"key1": "value1", "key2": "value2"}),  # the bad member only
        ('key1=value1,key2=va"lue2', {"key1": "value1"}),
        ("ke y=value1,key2=value2", {"key2": "value2"}),
        ("key1=value1;bad property,key2=value2", {"key2": "value2"}),
    ],
)
def test_entries_of_a_baggage_header(header: str, entries: dict[str, str]) -> None:
    assert baggage.get_all(_received(header)) == entries


@pytest.mark.parametrize(
    ("header", "sent"),
    [
        ("key1=value1,key2=value2", "key1=value1,key2=value2"),
        ("key1 = value1 ; property1 ; property2, key2=value2", "key1=value1;property1;property2,key2=value2"),
        ("key3=value3; propertyKey=propertyValue", "key3=value3;propertyKey=propertyValue"),
        ("key3=value3;propertyKey = property=Value", "key3=value3;propertyKey=property=Value"),
        ("key1=value1%2Cvalue2", "key1=value1%2Cvalue2"),
        ("key1=%20%09abc", "key1=%20%09abc"),
        ("key1=a%20b", "key1=a%20b"),  # never "+"
        ("key1=a+b", "key1=a+b"),
        ("key1=%25", "key1=%25"),  # "%" itself is always encoded
        ("key1=%E2%82%AC", "key1=%E2%82%AC"),
        ("key1=value1", "key1=value1"),
    ],
)
def test_a_hop_sends_on_what_it_received(header: str, sent: str) -> None:
    assert _hop(header) == sent


def test_properties_belong_to_the_value_they_arrived_with() -> None:
    context = _received("key1=value1;property1")
    assert entry_properties("key1", context) == ("property1",)
    changed = baggage.set_baggage("key1", "other", context)
    assert entry_properties("key1", changed) == ()
    carrier: dict[str, str] = {}
    propagator.inject(carrier, changed)
    assert carrier == {"baggage": "key1=other"}


def test_several_header_fields_are_one_list() -> None:
    assert baggage.get_all(_received("key1=value1", "key2=value2")) == {"key1": "value1", "key2": "value2"}


def test_a_single_entry_of_8192_bytes_survives() -> None:
    header = "k=" + "v" * 8190
    assert len(header) == 8192
    assert _hop(header) == header


def test_a_header_over_8192_bytes_is_dropped_whole_and_counted() -> None:
    before = malformed_baggage.count
    assert baggage.get_all(_received("k=" + "v" * 8191)) == {}
    assert malformed_baggage.count == before + 1


def test_the_8192_byte_limit_counts_bytes_not_characters() -> None:
    before = malformed_baggage.count
    assert baggage.get_all(_received("k=" + "\u20ac" * 2731)) == {}  # 2733 characters, 8195 bytes
    assert malformed_baggage.count == before + 1  # dropped whole: not parsed member by member


def test_a_malformed_member_is_counted_every_time_it_arrives() -> None:
    before = malformed_baggage.count
    for _ in range(3):
        assert baggage.get_all(_received("good=1,bad key=2")) == {"good": "1"}
        propagator.inject({}, baggage.set_baggage("bad key", "x", Context()))
    assert malformed_baggage.count == before + 6


def test_at_most_180_list_members_are_kept() -> None:
    header = ",".join(f"k{index}=v" for index in range(181))
    entries = baggage.get_all(_received(header))
    assert len(entries) == 180 and "k179" in entries and "k180" not in entries


def test_inject_encodes_what_is_not_a_baggage_octet() -> None:
    carrier: dict[str, str] = {}
    context = baggage.set_baggage("user", 'a b,c;d"e\\f\u20ac%', Context())
    context = baggage.set_baggage("bad key", "x", context)
    propagator.inject(carrier, context)
    assert carrier == {"baggage": "user=a%20b%2Cc%3Bd%22e%5Cf%E2%82%AC%25"}
    assert baggage.get_all(_received(carrier["baggage"])) == {"user": 'a b,c;d"e\\f\u20ac%'}


def test_inject_keeps_the_header_within_8192_bytes_by_whole_members() -> None:
    context = baggage.set_baggage("big", "v" * 8000, Context())
    context = baggage.set_baggage("more", "v" * 500, context)
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context)
    assert carrier["baggage"] == "big=" + "v" * 8000


def test_a_header_sent_again_is_the_same_and_a_dropped_entry_is_counted_every_time() -> None:
    """Sent headers are remembered by the entries, their value types and the received properties."""
    received = _received("tenant.id=acme;origin=edge,k=v")
    for _ in range(2):
        assert _hop("tenant.id=acme;origin=edge,k=v") == "tenant.id=acme;origin=edge,k=v"
        carrier: dict[str, str] = {}
        propagator.inject(carrier, received)
        assert carrier == {"baggage": "tenant.id=acme;origin=edge,k=v"}
    changed = baggage.set_baggage("tenant.id", "other", received)  # the properties belong to the old value
    carrier = {}
    propagator.inject(carrier, changed)
    assert carrier == {"baggage": "tenant.id=other,k=v"}
    for value, text in ((1, "1"), (True, "True"), (1, "1")):
        carrier = {}
        propagator.inject(carrier, baggage.set_baggage("n", value, Context()))
        assert carrier == {"baggage": f"n={text}"}
    bad = baggage.set_baggage("bad key", "x", baggage.set_baggage("ok", "y", Context()))
    before = malformed_baggage.count
    for _ in range(2):
        carrier = {}
        propagator.inject(carrier, bad)
        assert carrier == {"baggage": "ok=y"}
    assert malformed_baggage.count == before + 2
