"""Log correlation and the JSON formatter."""

from __future__ import annotations

import json
import logging

from hoptrace.tracing import JsonFormatter, span, tenant
from hoptrace.tracing._logging import _correlating_factory, redact


def _record(message: str, **extra: object) -> logging.LogRecord:
    factory = _correlating_factory(logging.LogRecord)
    record = factory("app", logging.INFO, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_records_carry_trace_span_and_tenant() -> None:
    with tenant("acme"), span("work") as current:
        record = _record("hello")
    context = current.get_span_context()
    assert record.trace_id == format(context.trace_id, "032x")  # type: ignore[attr-defined]
    assert record.span_id == format(context.span_id, "016x")  # type: ignore[attr-defined]
    assert record.tenant == "acme"  # type: ignore[attr-defined]


def test_records_outside_a_span_have_empty_ids() -> None:
    record = _record("hello")
    assert (record.trace_id, record.span_id, record.tenant) == ("", "", "")  # type: ignore[attr-defined]


def test_json_formatter_writes_correlation_fields_and_redacts_secrets() -> None:
    with tenant("acme"), span("work") as current:
        record = _record(
            "login", user="ann", password="hunter2", request={"headers": {"Authorization": "Bearer x"}}
        )
    document = json.loads(JsonFormatter().format(record))
    assert document["trace_id"] == format(current.get_span_context().trace_id, "032x")
    assert document["span_id"] == format(current.get_span_context().span_id, "016x")
    assert document["trace_flags"] == "01" or len(document["trace_flags"]) == 2
    assert document["tenant"] == "acme"
    assert document["message"] == "login"
    assert document["user"] == "ann"
    assert document["password"] == "[REDACTED]"
    assert document["request"]["headers"]["Authorization"] == "[REDACTED]"


def test_redact_matches_secret_looking_keys_only() -> None:
    value = {"api_key": 1, "API-KEY": 2, "access_token": 3, "passenger": 4, "items": [{"secret": 5}]}
    assert redact(value) == {
        "api_key": "[REDACTED]",
        "API-KEY": "[REDACTED]",
        "access_token": "[REDACTED]",
        "passenger": 4,
        "items": [{"secret": "[REDACTED]"}],
    }
