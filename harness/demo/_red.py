"""The demo's RED summary: scrape each service's ``/metrics`` and tabulate rate, errors and duration.

It reads the span-derived series ``traces_spanmetrics_calls_total`` and ``traces_spanmetrics_latency``
(Tempo's schema) with prometheus_client's parser. A service whose endpoint does not answer is named, not
fatal: RED metrics are a summary, the traces are what the demo asserts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import httpx
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, str, str, str]
"""(service, span kind, span name, tenant)."""


def scrape(url: str) -> dict[Key, list[float]]:
    """``{key: [calls, errors, latency_sum_seconds, latency_count]}`` from one ``/metrics`` endpoint.

    Raises ``httpx.HTTPError`` when the endpoint does not answer."""
    text = httpx.get(url, timeout=3.0, headers={"Accept": "text/plain"}).raise_for_status().text
    rows: dict[Key, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if "span_kind" not in labels:
                continue
            key = (
                labels.get("service", ""),
                labels["span_kind"].removeprefix("SPAN_KIND_"),
                labels.get("span_name", ""),
                labels.get("tenant", ""),
            )
            if sample.name == "traces_spanmetrics_calls_total":
                rows[key][0] += sample.value
                if labels.get("status_code") == "STATUS_CODE_ERROR":
                    rows[key][1] += sample.value
            elif sample.name == "traces_spanmetrics_latency_sum":
                rows[key][2] += sample.value
            elif sample.name == "traces_spanmetrics_latency_count":
                rows[key][3] += sample.value
    return dict(rows)


def red_summary(endpoints: Iterable[tuple[str, str]]) -> str:
    """A table of every (service, kind, span, tenant) series across ``(service name, metrics url)`` pairs."""
    rows: dict[Key, list[float]] = {}
    silent: list[str] = []
    for name, url in endpoints:
        try:
            rows.update(scrape(url))
        except httpx.HTTPError as exc:
            silent.append(f"{name} ({url}: {type(exc).__name__})")
    lines = []
    if rows:
        header = ("service", "kind", "span", "tenant", "calls", "errors", "avg ms")
        table = [header] + [
            (*key, f"{calls:.0f}", f"{errors:.0f}", f"{1000 * total / count:.1f}" if count else "-")
            for key, (calls, errors, total, count) in sorted(rows.items())
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table
        ]
    if silent:
        lines.append("no RED metrics from: " + ", ".join(silent))
    return "\n".join(lines) or "no RED metrics"
