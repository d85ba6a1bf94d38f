"""Tempo's time parameters: ``start``/``end`` (unix seconds, fractional seconds, nanoseconds or
RFC 3339), ``since`` and ``step`` (seconds or a Go duration such as ``15s`` or ``1m30s``), with Tempo's
defaults (the last hour; about 240 steps)."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime

_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w|y)")
_UNIT_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
    "y": 31_536_000_000_000_000,
}
DEFAULT_SINCE_NANOS = 3_600_000_000_000


class BadTimeParameter(ValueError):
    """A time parameter does not parse; the message says which and why (a 400 answer's body)."""


def parse_duration_nanos(text: str, name: str) -> int:
    """``15s``, ``1m30s``, ``250ms`` (Go and Prometheus units, ``d w y`` too), or plain seconds."""
    try:
        return round(float(text) * 1e9)
    except ValueError:
        pass
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise BadTimeParameter(
            f"invalid {name} {text!r}: expected seconds or a duration such as 15s or 1m30s"
        )
    return round(sum(float(number) * _UNIT_NANOS[unit] for number, unit in parts))


def parse_timestamp_nanos(text: str, name: str) -> int:
    """Unix seconds (up to 10 digits), fractional seconds, unix nanoseconds, or RFC 3339."""
    if "." in text:
        try:
            return round(float(text) * 1e9)
        except ValueError:
            pass
    if text.isdigit():
        return int(text) * 1_000_000_000 if len(text) <= 10 else int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadTimeParameter(
            f"invalid {name} {text!r}: expected unix seconds, unix nanoseconds or an RFC 3339 time"
        ) from None
    return round(moment.timestamp() * 1e9)


def bounds_nanos(start: str | None, end: str | None, since: str | None) -> tuple[int, int]:
    """``(start, end)`` in unix nanoseconds: ``end`` defaults to now, ``start`` to ``since`` (1 h by
    default) before the earlier of ``end`` and now. Raises :class:`BadTimeParameter`."""
    now = time.time_ns()
    end_ns = parse_timestamp_nanos(end, "end") if end else now
    span = parse_duration_nanos(since, "since") if since else DEFAULT_SINCE_NANOS
    start_ns = parse_timestamp_nanos(start, "start") if start else min(end_ns, now) - span
    if end_ns <= start_ns:
        raise BadTimeParameter(f"end ({end_ns} ns) must be after start ({start_ns} ns)")
    return start_ns, end_ns


def default_step_nanos(start_ns: int, end_ns: int) -> int:
    """About 240 points over the range: whole seconds, or 50 ms multiples below a one-minute range."""
    baseline = (end_ns - start_ns) // 240
    grain = 50_000_000 if end_ns - start_ns < 60_000_000_000 else 1_000_000_000
    return max(grain, baseline // grain * grain)


def aligned(start_ns: int, end_ns: int, step_ns: int) -> tuple[int, int]:
    """The range widened to whole steps (start down, end up), so refreshes give the same intervals."""
    start = start_ns - start_ns % step_ns
    end = start + math.ceil((end_ns - start) / step_ns) * step_ns
    return start, end
