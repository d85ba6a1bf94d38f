"""The attribute names and values autocomplete lists, each with the sequence number of the last trace
that had it, so that names and values of evicted traces drop out.

Up to :data:`MAX_VALUES_PER_TAG` values are kept per name; a name with more is *overflowed*: the trace
index then stops keeping its postings for learning (see ``TraceIndex``). Not thread safe: the trace
index uses it under its lock.
"""

from __future__ import annotations

from collections.abc import Iterable

from hoptrace.harness.backend._attribute_facts import AttributeFact

MAX_VALUES_PER_TAG = 1_000

Tag = tuple[str, str]
"""``(scope, key)``: ``("span", "http.route")``."""


class TagCatalog:
    """See the module docstring."""

    def __init__(self) -> None:
        self._names: dict[Tag, int] = {}
        self._values: dict[Tag, dict[tuple[str, str], int]] = {}
        self.overflowed: set[Tag] = set()

    def age(self, facts: Iterable[tuple[Iterable[AttributeFact], int]]) -> bool:
        """Record that each group of facts was seen at its sequence number (groups in increasing order;
        a name or value keeps the highest number it was given); returns whether a name overflowed."""
        names, values_by_tag, overflowed = self._names, self._values, self.overflowed
        known = len(overflowed)
        latest: dict[AttributeFact, int] = {}
        for group, seq in facts:  # traces of a batch share most facts: each is recorded once
            latest.update(dict.fromkeys(group, seq))
        for fact, seq in latest.items():
            tag = fact.tag
            if tag[0] != "intrinsic" and names.get(tag, -1) < seq:  # intrinsics: values, not names
                names[tag] = seq
            if not fact.typed:
                continue
            values = values_by_tag.get(tag)
            if values is None:
                values = values_by_tag[tag] = {}
            for one in fact.typed:
                if one in values:
                    if values[one] < seq:
                        values[one] = seq
                elif len(values) < MAX_VALUES_PER_TAG:
                    values[one] = seq
                else:
                    overflowed.add(tag)
        return len(overflowed) != known

    def forget_older_than(self, oldest: int) -> None:
        """Drop the names and values last seen before ``oldest`` (and what overflowed: the values left
        may fit again)."""
        self._names = {tag: seq for tag, seq in self._names.items() if seq >= oldest}
        for tag, values in list(self._values.items()):
            kept = {typed: seq for typed, seq in values.items() if seq >= oldest}
            if kept:
                self._values[tag] = kept
            else:
                del self._values[tag]
        self.overflowed.clear()

    def names(self, oldest: int) -> dict[str, list[str]]:
        """Names per scope seen at ``oldest`` or later: always ``resource`` and ``span``, and ``event``,
        ``link`` and ``instrumentation`` when there are any."""
        found: dict[str, list[str]] = {"resource": [], "span": []}
        for (scope, key), seq in self._names.items():
            if seq >= oldest:
                found.setdefault(scope, []).append(key)
        return {scope: sorted(keys) for scope, keys in found.items()}

    def has_value(self, tag: Tag, typed: tuple[str, str], oldest: int) -> bool:
        """Whether ``tag`` had the ``(type, value)`` pair ``typed`` at ``oldest`` or later."""
        return self._values.get(tag, {}).get(typed, -1) >= oldest

    def values(self, scopes: Iterable[str], key: str, oldest: int) -> list[tuple[str, str]]:
        """Distinct ``(type, value)`` pairs of ``key`` in ``scopes`` seen at ``oldest`` or later."""
        found: set[tuple[str, str]] = set()
        for scope in scopes:
            values = self._values.get((scope, key), {})
            found.update(typed for typed, seq in values.items() if seq >= oldest)
        return sorted(found)
