"""SeriesKeyCache: raw span fields to a series, bounded, one slot per combination."""

from __future__ import annotations

from hoptrace.processors._red_keys import SeriesKeyCache


def test_remembered_fields_are_found_by_get_and_by_indexing_the_levels() -> None:
    cache: SeriesKeyCache[str] = SeriesKeyCache(limit=10)
    cache.remember("api", "GET /orders", "acme", 1, 0, "series")

    assert cache.get("api", "GET /orders", "acme", 1, 0) == "series"
    assert cache.names_of("api")["GET /orders"]["acme"][1][0] == "series"
    assert cache.get("api", "GET /orders", "acme", 1, 2) is None  # another status
    assert cache.get("api", "GET /orders", None, 1, 0) is None  # no tenant
    assert cache.get("worker", "GET /orders", "acme", 1, 0) is None  # another service


def test_kind_or_status_values_out_of_range_and_unhashable_fields_stay_uncached() -> None:
    cache: SeriesKeyCache[str] = SeriesKeyCache(limit=10)
    cache.remember("api", "op", None, 4, 2, "last slots")
    for kind, status in ((5, 0), (0, 3), (-1, 0), (0, -1), (True, 0), ("1", 0)):
        cache.remember("api", "op", None, kind, status, "series")
        assert cache.get("api", "op", None, kind, status) is None
    assert cache.get("api", "op", None, 4, 2) == "last slots"
    cache.remember("api", "op", ["acme"], 0, 0, "series")
    assert cache.get("api", "op", ["acme"], 0, 0) is None
    assert list(cache.names_of("api")) == ["op"]


def test_it_starts_again_empty_past_its_limit_and_levels_taken_before_still_answer() -> None:
    cache: SeriesKeyCache[int] = SeriesKeyCache(limit=3)
    for number in range(3):
        cache.remember("api", f"op{number}", None, 0, 0, number)
    taken = cache.names_of("api")
    cache.remember("api", "op3", None, 0, 0, 3)

    assert [cache.get("api", f"op{number}", None, 0, 0) for number in range(4)] == [None, None, None, 3]
    assert taken["op0"][None][0][0] == 0
    assert "op3" not in taken
