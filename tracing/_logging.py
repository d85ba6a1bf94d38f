"""Log correlation: stdlib log records carry the current trace, span and tenant; an opt-in JSON formatter.

The record factory adds ``trace_id``, ``span_id``, ``trace_flags`` and ``tenant`` to every
``logging.LogRecord`` (empty strings outside a span or tenant), so ``%(trace_id)s`` works in any format.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import wrapt
from opentelemetry import baggage, trace

from hoptrace.processors import TENANT_KEY
from hoptrace.tracing._settings import Settings

# A string: re compiles (and caches) it when a log record first has extra fields, not at start-up.
_SECRET_KEY = (
    r"(?i)passw(or)?d|passphrase|secret|token|authori[sz]ation|api[_-]?key|cookie|credential|private[_-]?key|"
    r"session[_-]?id"
)
REDACTED = "[REDACTED]"
CORRELATION_FIELDS = frozenset({"trace_id", "span_id", "trace_flags", "tenant"})
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "trace_id",
    "span_id",
    "trace_flags",
    "tenant",
    "taskName",
}


def install_log_correlation(settings: Settings) -> None:
    """Wrap the current log record factory (once) and, with ``log_format="json"``, install the formatter."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "_hoptrace", False):
        logging.setLogRecordFactory(_correlating_factory(factory))
        wrapt.wrap_function_wrapper(logging.Logger, "makeRecord", _make_record_letting_extra_win)
    if settings.log_format == "json":
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(logging.StreamHandler())
        for handler in root.handlers:
            handler.setFormatter(JsonFormatter())


def _correlating_factory(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
            record.trace_flags = format(span_context.trace_flags, "02x")
        else:
            record.trace_id = record.span_id = record.trace_flags = ""
        tenant = baggage.get_baggage(TENANT_KEY)
        record.tenant = tenant if isinstance(tenant, str) else ""
        return record

    make_record._hoptrace = True  # type: ignore[attr-defined]
    return make_record


def _make_record_letting_extra_win(
    wrapped: Callable[..., logging.LogRecord], instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> logging.LogRecord:
    # Logger.makeRecord raises KeyError when ``extra`` names an attribute the record already has; the
    # factory above adds four, so an application logging ``extra={"tenant": ...}`` would crash. Its
    # values are set after the record is made instead: the application's value wins.
    arguments = list(args)
    extra = kwargs.get("extra") if "extra" in kwargs else (arguments[8] if len(arguments) > 8 else None)
    if not isinstance(extra, dict) or not CORRELATION_FIELDS & extra.keys():
        return wrapped(*args, **kwargs)
    rest = {key: value for key, value in extra.items() if key not in CORRELATION_FIELDS}
    if "extra" in kwargs:
        kwargs["extra"] = rest
    else:
        arguments[8] = rest
    record = wrapped(*arguments, **kwargs)
    for key in CORRELATION_FIELDS & extra.keys():
        setattr(record, key, extra[key])
    return record


class JsonFormatter(logging.Formatter):
    """Formats each record as one JSON object per line.

    Top-level keys: ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``trace_id``,
    ``span_id``, ``trace_flags``, ``tenant``, then ``exception`` when there is one, and the record's
    ``extra`` fields. Values under secret-looking keys (password, token, authorization, api_key, cookie,
    secret, ...) are replaced by ``[REDACTED]``, at any depth of dicts and lists. Thread-safe.
    """

    def format(self, record: logging.LogRecord) -> str:
        span_context = trace.get_current_span().get_span_context()
        document: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": getattr(record, "trace_id", None) or _hex(span_context.trace_id, 32),
            "span_id": getattr(record, "span_id", None) or _hex(span_context.span_id, 16),
            "trace_flags": getattr(record, "trace_flags", None) or _hex(span_context.trace_flags, 2),
            "tenant": getattr(record, "tenant", None) or baggage.get_baggage(TENANT_KEY) or "",
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in document:
                document[key] = value
        return json.dumps(redact(document), default=str, ensure_ascii=False)


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x") if value else ""


def redact(value: Any) -> Any:
    """Return ``value`` with every value under a secret-looking key replaced by ``[REDACTED]``."""
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and re.search(_SECRET_KEY, key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value
