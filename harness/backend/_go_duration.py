"""Durations as Go's ``time.Duration.String()`` writes them, which is how Tempo (written in Go) puts a
duration value in its answers: a search result's span attribute, a series label."""

from __future__ import annotations


def go_duration(nanos: int) -> str:
    """``nanos`` as Go's ``time.Duration.String()`` writes it: ``0s``, ``999ns``, ``1.5µs``, ``2ms``,
    ``1.5s``, ``1m0s``, ``1h2m3.004s`` (largest unit below a second, else hours, minutes and seconds)."""
    sign, magnitude = ("-" if nanos < 0 else ""), abs(nanos)
    if magnitude == 0:
        return "0s"
    if magnitude < 1_000_000_000:
        for scale, unit in ((1_000_000, "ms"), (1_000, "µs"), (1, "ns")):
            if magnitude >= scale:
                return sign + _decimal(magnitude, scale) + unit
    minutes, nanos_in_minute = divmod(magnitude, 60_000_000_000)
    hours, minutes = divmod(minutes, 60)
    text = _decimal(nanos_in_minute, 1_000_000_000) + "s"
    if minutes or hours:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _decimal(value: int, scale: int) -> str:
    """``value / scale`` in decimal, without trailing zeros in the fraction."""
    whole, fraction = divmod(value, scale)
    digits = len(str(scale)) - 1
    decimals = str(fraction).rjust(digits, "0").rstrip("0") if digits else ""
    return f"{whole}.{decimals}" if decimals else str(whole)
