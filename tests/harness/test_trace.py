"""Trace structure, assertions and the failure picture, over hand-built spans."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from hoptrace.harness._errors import InvalidExpression, TraceAssertionError
from hoptrace.harness._model import StatusCode
from hoptrace.harness.assertions._trace import Trace
from tests.harness.spans import make_span, order_trace

CHAIN = "api:SERVER > api:PRODUCER > worker:CONSUMER > worker:CLIENT > inventory:SERVER"
ENTRY = "00000000000000aa"


def test_complete_trace_passes_every_structural_assertion() -> None:
    trace = Trace(order_trace(), entry_span_id=ENTRY)
    trace.assert_single_root().assert_no_orphans().assert_propagation()
    trace.assert_chain(CHAIN).assert_chain("api:SERVER > api:CLIENT > inventory:SERVER")
    trace.assert_attribute("tenant.id", "acme")
    trace.assert_span_count("inventory:SERVER", exactly=2).assert_span_count(
        "*:CLIENT", at_least=2, at_most=2
    )
    trace.assert_service_edges(
        {("user", "api"), ("api", "inventory"), ("api", "worker"), ("worker", "inventory")}, exact=True
    )


def test_internal_spans_are_transparent_to_a_chain_hop() -> None:
    server = make_span("api", "server", "POST /orders")
    middle = make_span("api", "internal", "validate", server)
    client = make_span("api", "client", "GET", middle)
    trace = Trace([server, middle, client])
    trace.assert_chain("api:SERVER > api:CLIENT")
    trace.assert_parent_child("api:SERVER", "api:INTERNAL").assert_descendant("api:SERVER", "api:CLIENT")


def test_chain_failure_names_the_broken_hop_and_draws_the_tree() -> None:
    trace = Trace(order_trace(break_queue_hop=True), entry_span_id=ENTRY)
    with pytest.raises(TraceAssertionError) as info:
        trace.assert_chain(CHAIN)
    text = str(info.value)
    assert "broken hop: api:PRODUCER > worker:CONSUMER" in text
    assert 'missing: worker:CONSUMER below api:PRODUCER "publish orders"' in text
    lines = text.splitlines()
    publish_line = next(line for line in lines if "api PRODUCER publish orders" in line)
    assert publish_line.lstrip().startswith("✗")
    assert any(line.lstrip().startswith("✓") and "POST /orders" in line for line in lines)
    assert any("tenant=acme" in line and "ms" in line for line in lines)


def test_propagation_failure_names_the_caller_nobody_continued() -> None:
    trace = Trace(order_trace(break_queue_hop=True), entry_span_id=ENTRY)
    with pytest.raises(TraceAssertionError, match=r'broken hop after api:PRODUCER "publish orders"'):
        trace.assert_propagation()
    trace.assert_propagation(external="api:PRODUCER")


def test_orphans_and_extra_roots_are_reported() -> None:
    spans = order_trace()
    orphan = make_span("worker", "consumer", "process orders", "ffffffffffffffff")
    trace = Trace([*spans, orphan], entry_span_id=ENTRY)
    assert trace.orphans == [orphan]
    with pytest.raises(TraceAssertionError, match="parent ffffffffffffffff") as info:
        trace.assert_no_orphans()
    assert "ORPHAN" in str(info.value)
    with pytest.raises(TraceAssertionError, match="2 root spans"):
        Trace([*spans, make_span("api", "server", "GET /health")], entry_span_id=ENTRY).assert_single_root()


def test_attribute_failure_lists_each_span_without_the_value() -> None:
    spans = [*order_trace(), make_span("worker", "internal", "cleanup", tenant=None)]
    with pytest.raises(TraceAssertionError) as info:
        Trace(spans).assert_attribute("tenant.id", "acme")
    assert 'worker:INTERNAL "cleanup"' in str(info.value)
    assert "has tenant.id=None" in str(info.value)


def test_relations_counts_edges_and_links_fail_with_reasons() -> None:
    trace = Trace(order_trace(), entry_span_id=ENTRY)
    trace.assert_siblings("api:CLIENT", "api:PRODUCER")
    with pytest.raises(TraceAssertionError, match="none in that relation"):
        trace.assert_parent_child("worker:CONSUMER", "api:CLIENT")
    with pytest.raises(TraceAssertionError, match="found 2"):
        trace.assert_span_count("inventory:SERVER", exactly=1)
    with pytest.raises(TraceAssertionError, match="missing: edge worker -> billing"):
        trace.assert_service_edges({("worker", "billing")})
    producer = trace.find("api:PRODUCER")
    consumer = make_span("worker", "consumer", "process", trace_id="1" * 32)
    linked = Trace([consumer.__class__(**{**_fields(consumer), "links": (_link(producer),)})])
    linked.assert_linked("worker:CONSUMER", producer.trace_id, producer.span_id)
    with pytest.raises(TraceAssertionError, match="their links"):
        Trace([consumer]).assert_linked("worker:CONSUMER", producer.trace_id)


def test_predicates_select_and_bad_selectors_say_where() -> None:
    trace = Trace(order_trace())
    errors = trace.select(lambda span: span.status == StatusCode.ERROR)
    assert errors == []
    with pytest.raises(InvalidExpression, match="column 5"):
        trace.select("api SERVER")
    with pytest.raises(InvalidExpression, match="expected one hop"):
        trace.select("api:SERVER > api:CLIENT")


def test_empty_trace_renders_and_fails_cleanly() -> None:
    trace = Trace([])
    assert "(no spans)" in trace.render()
    with pytest.raises(TraceAssertionError, match="no span matches the first hop"):
        trace.assert_chain("api:SERVER > api:CLIENT")


def _fields(span: object) -> dict[str, object]:
    return {name: getattr(span, name) for name in span.__slots__}  # type: ignore[attr-defined]


def _link(span: object) -> object:
    from hoptrace.harness._model import SpanLink

    return SpanLink(span.trace_id, span.span_id)  # type: ignore[attr-defined]


def test_traceql_spanset_filters_select_locally() -> None:
    trace = Trace(order_trace(), entry_span_id=ENTRY)
    servers = trace.select('{ kind = server && resource.service.name = "inventory" }')
    assert [s.name for s in servers] == ["GET /stock/{item}", "POST /reserve/{item}"]
    trace.assert_span_count('{ span.tenant.id = "acme" }', exactly=len(trace))
    trace.assert_parent_child("{ kind = producer }", "{ kind = consumer }")
    with pytest.raises(InvalidExpression):
        trace.select("{ kind = }")


def test_readme_reference_table_gives_every_assertion_its_full_signature() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    listed = set(re.findall(r"^\| `(assert_\w+\([^`]*\))` \|", readme, flags=re.MULTILINE))
    actual = set()
    for name in (n for n in dir(Trace) if n.startswith("assert_")):
        params: list[str] = []
        for parameter in list(inspect.signature(getattr(Trace, name)).parameters.values())[1:]:
            if parameter.kind == parameter.KEYWORD_ONLY and "*" not in params:
                params.append("*")
            default = parameter.default
            shown = (
                "" if default is parameter.empty else "=ANY" if type(default) is object else f"={default!r}"
            )
            params.append(parameter.name + shown)
        actual.add(f"{name}({', '.join(params)})")
    assert listed == actual
