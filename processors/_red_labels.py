"""How a finished span becomes the label values of Tempo's spanmetrics series.

Label names and values follow Tempo's metrics-generator so that Grafana's dashboards and alert rules
work unchanged: ``service``, ``span_name``, ``span_kind`` (``SPAN_KIND_SERVER``, ...), ``status_code``
(``STATUS_CODE_UNSET|OK|ERROR``) and hoptrace's ``tenant``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from opentelemetry.trace import SpanKind, StatusCode

LABEL_NAMES = ("service", "span_name", "span_kind", "status_code", "tenant")
"""The label names of every regular series, in this order."""

OVERFLOW_LABELS: Mapping[str, str] = {"otel_metric_overflow": "true"}
"""The labels of the one series that takes the measurements past the cardinality limit."""

UNKNOWN_SERVICE = "unknown_service"
"""The ``service`` label of spans whose resource has no usable ``service.name`` (the SDK's own default)."""

SPAN_KIND_LABELS: Mapping[int, str] = {kind.value: f"SPAN_KIND_{kind.name}" for kind in SpanKind}
"""``SpanKind`` values to Tempo's label values (keyed by value: hashing an Enum runs Python code)."""
STATUS_CODE_LABELS: Mapping[int, str] = {code.value: f"STATUS_CODE_{code.name}" for code in StatusCode}

MAX_SPAN_NAME_LENGTH = 128
"""Longer span names are cut here: a label value is not a place for payloads."""

ID_PLACEHOLDER = "{id}"

# Patterns are compiled on first use, not at import: every traced service imports this module at start-up.


@functools.cache
def _id_segment() -> re.Pattern[str]:
    return re.compile(
        r"""
    \d+                                     # 123
    | [0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}   # a UUID
    | (?=[^/]*\d)[0-9a-fA-F]{8,}            # long hex with a digit: object ids, hashes
    | (?=[^/]*\d)(?=[^/]*[A-Za-z])[A-Za-z0-9_\-.~%=+]{16,}   # long opaque tokens mixing digits and letters
    """,
        re.VERBOSE,
    )


def bounded_span_name(name: str) -> str:
    """Return ``name`` fit for a label value: no query string, no id-like path segments, bounded length.

    The bootstrap names server spans by their route template (``GET /orders/{order_id}``), which passes
    through unchanged. A raw URL (``GET /orders/12345?token=x``) becomes ``GET /orders/{id}``: numbers,
    UUIDs, long hex strings and long opaque tokens in path segments are replaced by ``{id}``. Pure function.
    """
    if "/" not in name and "?" not in name and len(name) <= MAX_SPAN_NAME_LENGTH:
        return name
    cut = name.split("?", 1)[0].split("#", 1)[0]
    id_segment = _id_segment().fullmatch
    segments = [ID_PLACEHOLDER if id_segment(part) else part for part in cut.split("/")]
    return "/".join(segments)[:MAX_SPAN_NAME_LENGTH]


# A UUID is one part even though it contains dashes; otherwise parts are runs between separators.
@functools.cache
def _name_part() -> re.Pattern[str]:
    return re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}|[^./:_\-\s]+")


def fold_id_parts(name: str) -> str:
    """Return ``name`` with its id-like parts replaced by ``{id}``, by the rules of :func:`bounded_span_name`.

    For names that are not URL paths, such as queue or exchange names: the parts between ``.``, ``/``,
    ``:``, ``_``, ``-`` and whitespace are judged one by one (a UUID counts as one part), so
    ``rpc_29567f5c31`` becomes ``rpc_{id}`` and ``replies-<uuid>`` becomes ``replies-{id}``, while
    ``orders.created`` stays as it is. The result is at most 128 characters. Pure function.
    """
    folded = _name_part().sub(_fold_part, name)
    return folded[:MAX_SPAN_NAME_LENGTH]


def _fold_part(match: re.Match[str]) -> str:
    part = match.group()
    return ID_PLACEHOLDER if _id_segment().fullmatch(part) else part


def service_of(resource_attributes: Mapping[str, object]) -> str:
    """Return the resource's ``service.name`` if it is a non-empty string, else ``unknown_service``."""
    service = resource_attributes.get("service.name")
    if isinstance(service, str) and service:
        return service[:MAX_SPAN_NAME_LENGTH]
    return UNKNOWN_SERVICE


def is_server_error(attributes: Mapping[str, object]) -> bool:
    """Whether a server span's HTTP status is 5xx (stable or legacy semconv attribute), per semconv."""
    status = attributes.get("http.response.status_code")
    if status is None:
        status = attributes.get("http.status_code")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    return isinstance(status, int) and not isinstance(status, bool) and 500 <= status <= 599
