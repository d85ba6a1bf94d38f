"""TraceQL metrics results: time series with typed labels, and what happens to them after the first
stage (filters, ``topk``/``bottomk``, arithmetic between queries).

A series' samples map an interval index to a value; its labels are ``(name, value)`` pairs with the
values TraceQL produced (strings, numbers, booleans, enums, or ``None`` for a missing ``by()`` value).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hoptrace.harness.backend._go_duration import go_duration
from hoptrace.harness.traceql import MISSING, Duration, Field, Intrinsic, Value

Label = tuple[str, Any]
Labels = tuple[Label, ...]


@dataclass(slots=True)
class Exemplar:
    trace_id: str
    span_id: str
    value: float
    timestamp_ms: int
    labels: Labels = ()


@dataclass(slots=True)
class Series:
    labels: Labels
    samples: dict[int, float] = field(default_factory=dict)
    exemplars: list[Exemplar] = field(default_factory=list)


SeriesSet = dict[Labels, Series]


def label_name(field: Field) -> str:
    """A field as Tempo names it in series labels: ``resource.service.name``, ``span.x``, ``.x``, ``name``."""
    if isinstance(field, Intrinsic):
        return field.name
    return f"{'parent.' if field.parent else ''}{field.scope}.{field.name}"


def label_value(value: Value) -> Any:
    """A TraceQL value as a series label's value (``None`` when missing; a duration as Go prints it,
    ``"1.5ms"``, as Tempo labels it)."""
    if value is MISSING or value is None:
        return None
    if isinstance(value, Duration):
        return go_duration(int(value.nanos))
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, tuple):
        return ",".join(str(label_value(member)) for member in value)
    return value


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": lambda a, b: a / b if b else math.nan,  # Tempo's documentation: division by zero returns NaN
}


def apply_stage(series: SeriesSet, stage: tuple[str, float]) -> SeriesSet:
    """One second stage: ``("topk", k)``, ``("bottomk", k)`` or a filter such as ``(">", 10.0)``.

    A filter drops the samples that fail it (as PromQL does); ``topk`` keeps, at each timestamp, the
    samples of the ``k`` largest series there. Series left without samples are dropped.
    """
    name, argument = stage
    if name in _COMPARISONS:
        test = _COMPARISONS[name]
        for one in series.values():
            one.samples = {i: v for i, v in one.samples.items() if test(v, argument)}
    else:
        keep: dict[Labels, set[int]] = {labels: set() for labels in series}
        intervals = {i for one in series.values() for i in one.samples}
        for interval in intervals:
            present = [
                (one.samples[interval], labels) for labels, one in series.items() if interval in one.samples
            ]
            present.sort(key=lambda pair: pair[0], reverse=name == "topk")
            for _, labels in present[: int(argument)]:
                keep[labels].add(interval)
        for labels, one in series.items():
            one.samples = {i: v for i, v in one.samples.items() if i in keep[labels]}
    return {labels: one for labels, one in series.items() if one.samples}


def combine(op: str, left: SeriesSet | float, right: SeriesSet | float) -> SeriesSet | float:
    """``left op right`` between series sets and numbers, as Tempo's documentation states it: series
    match by identical labels, and a side without ``by()`` (one series labelled only ``__name__``) is
    applied to every series of the other side, whose labels the result keeps. A sample missing on either
    side (no span in that interval) gives no sample; a division by zero gives NaN."""
    apply = _ARITHMETIC[op]
    if isinstance(left, float) and isinstance(right, float):
        return apply(left, right)
    if isinstance(left, float) or isinstance(right, float):
        number = left if isinstance(left, float) else right
        series = right if isinstance(left, float) else left
        assert isinstance(series, dict) and isinstance(number, float)
        result: SeriesSet = {}
        for labels, one in series.items():
            samples = {
                i: apply(number, v) if isinstance(left, float) else apply(v, number)
                for i, v in one.samples.items()
            }
            result[labels] = Series(labels, samples, one.exemplars)
        return result
    assert isinstance(left, dict) and isinstance(right, dict)
    result = {}
    broadcast_right, broadcast_left = _single_unlabeled(right), _single_unlabeled(left)
    if broadcast_right is None and broadcast_left is not None:  # the unlabeled total goes to every series
        for labels, one in right.items():
            samples = {
                i: apply(v, one.samples[i]) for i, v in broadcast_left.samples.items() if i in one.samples
            }
            result[labels] = Series(labels, samples, one.exemplars)
        return result
    for labels, one in left.items():
        other = broadcast_right if broadcast_right is not None else right.get(labels)
        if other is None:
            continue
        samples = {i: apply(v, other.samples[i]) for i, v in one.samples.items() if i in other.samples}
        result[labels] = Series(labels, samples, one.exemplars)
    return result


def _single_unlabeled(series: SeriesSet) -> Series | None:
    """The one series of a query without ``by()`` (labelled only with its function's ``__name__``)."""
    if len(series) != 1:
        return None
    (one,) = series.values()
    return one if all(name == "__name__" for name, _ in one.labels) else None
