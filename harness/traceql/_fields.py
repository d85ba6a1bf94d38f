"""TraceQL's field names (intrinsics in both spellings, keywords) and the static type of expressions,
which validation uses the way Tempo's ``impliedType`` does."""

from __future__ import annotations

from hoptrace.harness._model import SpanKind, StatusCode
from hoptrace.harness.traceql._ast import (
    Aggregate,
    Attribute,
    BinaryOperation,
    Duration,
    FieldExpression,
    Intrinsic,
    Nil,
    ScalarExpression,
    ScalarOperation,
    Static,
    StaticValue,
    UnaryOperation,
)

# Both spellings of each intrinsic map to one canonical name: Tempo's own (its ``Intrinsic.String()``), which
# is what series labels (``by(span:id)``) and search results' span attributes are keyed by.
INTRINSICS = {
    "name": "name",
    "span:name": "name",
    "status": "status",
    "span:status": "status",
    "kind": "kind",
    "span:kind": "kind",
    "duration": "duration",
    "span:duration": "duration",
    "statusMessage": "statusMessage",
    "span:statusMessage": "statusMessage",
    "span:id": "span:id",
    "span:parentID": "span:parentID",
    "span:childCount": "span:childCount",
    "rootName": "rootName",
    "trace:rootName": "rootName",
    "rootServiceName": "rootServiceName",
    "trace:rootService": "rootServiceName",
    "traceDuration": "traceDuration",
    "trace:duration": "traceDuration",
    "trace:id": "trace:id",
    "nestedSetLeft": "nestedSetLeft",
    "nestedSetRight": "nestedSetRight",
    "nestedSetParent": "nestedSetParent",
    "event:name": "event:name",
    "event:timeSinceStart": "event:timeSinceStart",
    "link:traceID": "link:traceID",
    "link:spanID": "link:spanID",
    "instrumentation:name": "instrumentation:name",
    "instrumentation:version": "instrumentation:version",
}
KEYWORDS: dict[str, StaticValue] = {
    "true": True,
    "false": False,
    "nil": Nil.NIL,
    "minInt": -(2**63),
    "maxInt": 2**63 - 1,
    **{status.value: status for status in StatusCode},
    **{kind.value: kind for kind in SpanKind},
}
_INTRINSIC_TYPES = {
    "status": "status",
    "kind": "kind",
    "duration": "duration",
    "traceDuration": "duration",
    "event:timeSinceStart": "duration",
    "span:childCount": "int",
    "nestedSetLeft": "int",
    "nestedSetRight": "int",
    "nestedSetParent": "int",
}
_ID_WIDTHS = {"trace:id": 32, "link:traceID": 32, "span:id": 16, "span:parentID": 16, "link:spanID": 16}
NUMERIC = frozenset({"int", "float", "duration"})
ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^"})
_BOOLEAN_OPS = frozenset({"&&", "||", "=", "!=", "<", "<=", ">", ">=", "=~", "!~"})
_VALID_OPS = {
    "bool": frozenset({"&&", "||", "=", "!="}),
    "int": ARITHMETIC | {"=", "!=", "<", "<=", ">", ">="},
    "string": frozenset({"=", "!=", "=~", "!~", "<", "<=", ">", ">="}),
    "nil": frozenset({"=", "!="}),
    "status": frozenset({"=", "!="}),
    "kind": frozenset({"=", "!="}),
}
_VALID_OPS["float"] = _VALID_OPS["duration"] = _VALID_OPS["int"]


def static_type(value: StaticValue) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, StatusCode):
        return "status"
    if isinstance(value, SpanKind):
        return "kind"
    if isinstance(value, Nil):
        return "nil"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, Duration):
        return "duration"
    return "string"


def implied_type(expression: FieldExpression | ScalarExpression) -> str:
    """``attribute`` (known only at run time), ``bool``, ``int``, ``float``, ``duration``, ``string``,
    ``status``, ``kind`` or ``nil``."""
    if isinstance(expression, Static):
        return static_type(expression.value)
    if isinstance(expression, Attribute):
        return "attribute"
    if isinstance(expression, Intrinsic):
        return _INTRINSIC_TYPES.get(expression.name, "string")
    if isinstance(expression, UnaryOperation):
        return implied_type(expression.operand) if expression.op == "-" else "bool"
    if isinstance(expression, Aggregate):
        if expression.expression is None:
            return "int"
        return implied_type(expression.expression)
    if isinstance(expression, BinaryOperation) and expression.op in _BOOLEAN_OPS:
        return "bool"
    assert isinstance(expression, BinaryOperation | ScalarOperation)
    left = implied_type(expression.left)
    return implied_type(expression.right) if left == "attribute" else left


def matching_operands(left: str, right: str) -> bool:
    """Whether two types may meet in one binary operation (Tempo's ``isMatchingOperand``)."""
    return (
        "attribute" in (left, right)
        or left == right
        or (left in NUMERIC and right in NUMERIC)
        or "nil" in (left, right)
    )


def operator_accepts(op: str, kind: str) -> bool:
    """Whether ``op`` applies to a value of type ``kind`` (Tempo's ``binaryTypeValid``)."""
    return kind == "attribute" or op in _VALID_OPS.get(kind, frozenset())


def references_span(expression: FieldExpression | None) -> bool:
    """Whether ``expression`` reads anything from the span (an attribute or intrinsic)."""
    if isinstance(expression, Attribute | Intrinsic):
        return True
    if isinstance(expression, UnaryOperation):
        return references_span(expression.operand)
    if isinstance(expression, BinaryOperation):
        return references_span(expression.left) or references_span(expression.right)
    return False


def id_literal(field: FieldExpression, literal: FieldExpression) -> FieldExpression:
    """``literal`` as the id it names when ``field`` is an id intrinsic (``trace:id``, ``span:id``,
    ``span:parentID``, ``link:traceID``, ``link:spanID``): Tempo compares ids as bytes, so ``"C0FFEE"``,
    ``"00c0ffee"`` and the full 32-character id are one id. The span's ids are lowercase and full width,
    so the literal is made so too; anything that is not a hex id is left as written (it matches nothing).
    """
    if not (isinstance(field, Intrinsic) and isinstance(literal, Static) and isinstance(literal.value, str)):
        return literal
    width = _ID_WIDTHS.get(field.name)
    digits = literal.value.lower().lstrip("0") or "0"
    if width is None or not literal.value or len(digits) > width or not all(c in _HEX for c in digits):
        return literal
    return Static(digits.rjust(width, "0"))


_HEX = frozenset("0123456789abcdef")
