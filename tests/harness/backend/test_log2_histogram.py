"""Power-of-two buckets and the quantiles read from them, checked against values computed by hand from
the rules in ``_log2_histogram``'s docstring."""

from __future__ import annotations

import math

import pytest

from hoptrace.harness.backend._log2_histogram import log2_bucket, log2_quantile
from hoptrace.harness.traceql import MISSING, Duration


@pytest.mark.parametrize(
    ("value", "bucket"),
    [
        (2, 2.0),
        (5, 8.0),
        (8, 8.0),
        (9, 16.0),
        (2**53 + 1, 2.0**54),  # by bits: float log2 would call this 2**53
        (2.5, 4.0),
        (Duration(300_000_000), 2**29 / 1e9),  # 300 ms: 2**28 < 3e8 <= 2**29 ns, reported in seconds
        (Duration(1), None),
        (1, None),
        (1.5, None),
        (-4, None),
        (True, None),
        ("8", None),
        (MISSING, None),
        (math.nan, None),
        (math.inf, None),
    ],
)
def test_values_count_in_the_smallest_power_of_two_at_or_above_them(
    value: object, bucket: float | None
) -> None:
    assert log2_bucket(value) == bucket  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("quantile", "counts", "expected"),
    [
        # rank ceil(.5 * 4) = 2 falls inside bucket 4 (2 of its 4 values); no lower bucket, so from 4 / 2:
        # 2 ** (1 + (2 - 1) * 2/4)
        (0.5, {4.0: 4}, 2**1.5),
        # rank 2: bucket 2 holds 1, so 1 of bucket 16's 3 values; from the lower bucket that holds values
        # (2, not 8): 2 ** (1 + (4 - 1) * 1/3) = 4
        (0.5, {2.0: 1, 16.0: 3}, 4.0),
        (0.75, {2.0: 1, 16.0: 3}, 8.0),  # rank 3: 2 ** (1 + 3 * 2/3)
        (0.0, {2.0: 1, 16.0: 3}, 2.0),  # rank at least 1; bucket 2 ends there: its bound
        (1.0, {2.0: 1, 16.0: 3}, 16.0),
        (0.25, {2.0: 1, 16.0: 3}, 2.0),
        (0.9, {2**27 / 1e9: 9, 2**29 / 1e9: 1}, 2**27 / 1e9),  # rank 9 ends the first bucket
        (0.5, {}, 0.0),
        (0.5, {8.0: 0}, 0.0),
    ],
)
def test_quantiles_interpolate_exponentially_inside_a_bucket(
    quantile: float, counts: dict[float, int], expected: float
) -> None:
    assert log2_quantile(quantile, counts) == pytest.approx(expected)
