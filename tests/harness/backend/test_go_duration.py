"""Durations written as Go's time.Duration.String() writes them (Tempo's spelling of a duration value)."""

from __future__ import annotations

import pytest

from hoptrace.harness.backend._go_duration import go_duration


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "0s"),
        (999, "999ns"),
        (1_500, "1.5µs"),
        (2_000_000, "2ms"),
        (1_500_000_000, "1.5s"),
        (60_000_000_000, "1m0s"),
        (3_723_004_000_000, "1h2m3.004s"),
        (-1_500_000, "-1.5ms"),
    ],
)
def test_durations_are_written_as_go_prints_them(nanos: int, text: str) -> None:
    assert go_duration(nanos) == text
