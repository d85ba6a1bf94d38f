"""hoptrace's ``tracecontext`` propagator against the rules and examples of W3C Trace Context Level 1 and 2.

The vectors are written here from the specification's text (https://www.w3.org/TR/trace-context-2/);
no test suite is vendored.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from hoptrace.tracing import TracingMiddleware
from hoptrace.tracing._propagation import mapping_getter
from hoptrace.tracing._w3c.tracecontext import TraceContextPropagator
from tests.tracing.conftest import FinishedSpans

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
PARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"
propagator = TraceContextPropagator()


def _extract(headers: dict[str, list[str]]) -> trace.SpanContext:
    return trace.get_current_span(propagator.extract(headers, Context(), mapping_getter)).get_span_context()


def _hop(headers: dict[str, list[str]]) -> dict[str, str]:
    """What a service sends on after receiving ``headers`` (the extracted context injected again)."""
    context = propagator.extract(headers, Context(), mapping_getter)
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context)
    return carrier


@pytest.mark.parametrize(
    ("traceparent", "sent_flags"),
    [
        (PARENT, "01"),
        (f"00-{TRACE_ID}-{SPAN_ID}-00", "00"),
        (f" \t{PARENT}\t ", "01"),  # optional whitespace around the value
        (f"cc-{TRACE_ID}-{SPAN_ID}-01", "01"),  # a higher version is parsed by its first 55 characters
        (f"cc-{TRACE_ID}-{SPAN_ID}-01-what-the-future-will-be-like", "01"),
        (f"00-{TRACE_ID}-{SPAN_ID}-03", "03"),  # Level 2: random-trace-id flag
        (f"00-{TRACE_ID}-{SPAN_ID}-09", "01"),  # unknown flags are not sent on
    ],
)
def test_valid_traceparent_is_continued(traceparent: str, sent_flags: str) -> None:
    sent = _hop({"traceparent": [traceparent]})
    assert sent["traceparent"] == f"00-{TRACE_ID}-{SPAN_ID}-{sent_flags}"


@pytest.mark.parametrize(
    "traceparents",
    [
        [f"ff-{TRACE_ID}-{SPAN_ID}-01"],  # version ff is invalid
        [f"00-{TRACE_ID}-{SPAN_ID}-01-extra"],  # version 00 is exactly 55 characters
        [f"cc-{TRACE_ID}-{SPAN_ID}-01.what-the-future-will-be-like"],  # future: "-" after the flags
        [f"00-{TRACE_ID.upper()}-{SPAN_ID}-01"],  # lower-case hex only
        [f"00-{TRACE_ID}-{SPAN_ID.upper()}-01"],
        [f"00-{TRACE_ID}-{SPAN_ID}-0A"],
        [f"00-{'0' * 32}-{SPAN_ID}-01"],  # all-zero trace id
        [f"00-{TRACE_ID}-{'0' * 16}-01"],  # all-zero parent id
        [f"0-{TRACE_ID}-{SPAN_ID}-01"],
        [f"00-{TRACE_ID}-{SPAN_ID}-1"],
        [f"00_{TRACE_ID}_{SPAN_ID}_01"],
        [f"00-{TRACE_ID[:-1]}g-{SPAN_ID}-01"],
        [f"00-{TRACE_ID}0-{SPAN_ID}-01"],
        [""],
        [PARENT, f"00-{TRACE_ID}-{SPAN_ID}-01"],  # two traceparent headers: start a new trace
        [f"{PARENT},00-{'1' * 32}-{SPAN_ID}-01"],  # the same, folded into one field
    ],
)
def test_invalid_traceparent_starts_a_new_trace(traceparents: list[str]) -> None:
    assert not _extract({"traceparent": traceparents, "tracestate": ["foo=1"]}).is_valid
    assert _hop({"traceparent": traceparents, "tracestate": ["foo=1"]}) == {}


KEY_256 = "a" * 256


@pytest.mark.parametrize(
    ("tracestate", "sent"),
    [
        (["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"], "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        (["rojo=00f067aa0ba902b7 , \tcongo=t61rcWkgMzE"], "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        (["bar=1", "foo=1"], "bar=1,foo=1"),  # several header fields combine in order
        (["foo=1,,bar=2"], "foo=1,bar=2"),  # empty list-members are allowed
        (["foo=1, ,\tbar=2"], "foo=1,bar=2"),
        (["foo=1,foo=1"], "foo=1"),  # a repeated key keeps one member, not nothing
        (["foo=1,foo=2"], "foo=1"),
        (["foo@=1,bar=2"], "foo@=1,bar=2"),  # Level 2: "@" in any position
        (["@foo=1"], None),  # ... but a key starts with a letter or a digit
        (["1foo@bar=1"], "1foo@bar=1"),
        ([f"{'t' * 242}@vendor=1"], f"{'t' * 242}@vendor=1"),  # 242 characters before "@"
        ([f"{KEY_256}=1"], f"{KEY_256}=1"),  # keys up to 256 characters
        ([f"{KEY_256}a=1"], None),
        ([f"foo={'v' * 256}"], f"foo={'v' * 256}"),  # values up to 256 characters
        ([f"foo={'v' * 257}"], None),
        (["foo= bar"], "foo= bar"),  # a value may start with a space
        (["Foo=1"], None),  # upper case is not a key
        (["foo=bar=baz"], None),  # "=" is not part of a value: the whole list is invalid
        (["foo="], None),
        (["foo=1,bar"], None),
        (["foo=1,b\tar=2"], None),
        ([",".join(f"k{index}=v" for index in range(32))], ",".join(f"k{index}=v" for index in range(32))),
        ([",".join(f"k{index}=v" for index in range(33))], None),  # more than 32 list-members
        ([""], None),  # empty header: nothing to send
    ],
)
def test_tracestate_rules(tracestate: list[str], sent: str | None) -> None:
    carrier = _hop({"traceparent": [PARENT], "tracestate": tracestate})
    assert carrier["traceparent"] == PARENT, "an invalid tracestate never invalidates the traceparent"
    assert carrier.get("tracestate") == sent


def test_extracted_context_is_remote_with_ids_and_flags() -> None:
    span_context = _extract({"traceparent": [PARENT]})
    assert span_context.is_remote
    assert (span_context.trace_id, span_context.span_id) == (int(TRACE_ID, 16), int(SPAN_ID, 16))
    assert span_context.trace_flags.sampled


def test_nothing_is_injected_without_a_valid_span() -> None:
    carrier: dict[str, str] = {}
    propagator.inject(carrier, Context())
    assert carrier == {}
    assert propagator.fields == {"traceparent", "tracestate"}


async def test_a_server_receiving_two_traceparent_headers_starts_a_new_trace(spans: FinishedSpans) -> None:
    # Called as a server calls it (not through httpx, whose instrumentation would set its own traceparent).
    app = Starlette(routes=[Route("/orders/{order_id}", lambda request: PlainTextResponse("ok"))])
    other = f"00-{'1' * 32}-{SPAN_ID}-01"
    headers = [(b"traceparent", PARENT.encode()), (b"traceparent", other.encode()), (b"tracestate", b"a=1")]
    scope = {"type": "http", "method": "GET", "path": "/orders/1", "headers": headers, "query_string": b""}
    sent: list[Mapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await TracingMiddleware(app)(scope, receive, send)
    assert sent[0]["status"] == 200
    server = spans.named("GET /orders/{order_id}")
    assert server.parent is None
    assert format(server.context.trace_id, "032x") not in (TRACE_ID, "1" * 32)
    assert not server.context.trace_state
