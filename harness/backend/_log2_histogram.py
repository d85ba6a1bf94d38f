"""Power-of-two histograms: the buckets of ``histogram_over_time`` and how ``quantile_over_time`` reads
a quantile from them, with the numbers real Tempo reports.

Tempo does not keep the values it aggregates: it counts each one in a power-of-two bucket and computes
quantiles from the bucket counts. hoptrace does the same, so that a Grafana panel shows the same figure
against ``hoptrace backend`` as against Tempo (an exact quantile would differ from Tempo's by up to a
factor of two, which reads as a regression when someone compares the two).

- **Buckets.** A value ``v >= 2`` counts in the bucket labelled with the smallest power of two ``>= v``
  (``5`` in ``8``, ``8`` in ``8``). Durations are bucketed in nanoseconds and the label is reported in
  seconds (a 300 ms span counts in ``2**29`` ns, labelled ``0.536870912``). Values below 2 (and booleans,
  strings, missing values) count nowhere. Tempo leaves float attributes out of these two functions; here a
  float ``>= 2`` is bucketed as a number is, so that a float attribute gives a figure rather than nothing.
- **Quantile** ``q`` of one interval's buckets (:func:`log2_quantile`), with ``n`` values in all: the rank
  is ``r = max(1, ceil(q * n))``. Walking the buckets upwards, if the counts up to and including a bucket
  reach exactly ``r``, the answer is that bucket's label. Otherwise the rank falls inside bucket ``b``
  (label ``hi``) with ``k`` of its ``c`` values needed; the answer interpolates exponentially between the
  label of the next lower bucket that holds values (``lo``; ``hi / 2`` when there is none):
  ``2 ** (log2(lo) + (log2(hi) - log2(lo)) * k / c)``.
- An interval of the range with no value at all reports ``0``, as Tempo's series do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hoptrace.harness.traceql import Duration, Value


def log2_bucket(value: Value) -> float | None:
    """The bucket label of ``value`` (seconds for a duration); ``None`` if it counts in no bucket."""
    raw = value.nanos if isinstance(value, Duration) else value
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not raw >= 2 or math.isinf(raw):
        return None
    # Integers by their bits: float log2 rounds large values (2**53 + 1) into the wrong bucket.
    bucket = float(1 << (int(raw) - 1).bit_length()) if raw == int(raw) else 2.0 ** math.ceil(math.log2(raw))
    return bucket / 1e9 if isinstance(value, Duration) else bucket


def log2_quantile(quantile: float, counts: Mapping[float, int]) -> float:
    """Quantile ``quantile`` (0 to 1) of the values counted in ``counts`` (bucket label -> how many), as
    the module docstring describes; ``0.0`` when nothing was counted. Pure."""
    total = sum(counts.values())
    if total <= 0:
        return 0.0
    rank = max(1, math.ceil(quantile * total))
    below = 0
    lower: float | None = None
    for bucket in sorted(counts):
        count = counts[bucket]
        if count <= 0:
            continue
        if below + count >= rank:
            if below + count == rank:
                return bucket
            high = math.log2(bucket)
            low = math.log2(lower) if lower is not None else high - 1
            return float(2 ** (low + (high - low) * (rank - below) / count))
        below += count
        lower = bucket
    return lower if lower is not None else 0.0  # pragma: no cover - rank <= total always stops above
