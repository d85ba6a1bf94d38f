from __future__ import annotations

import pytest

from hoptrace.harness import ConditionTimeout, poll_until, polling


def test_poll_until_returns_the_first_truthy_value() -> None:
    answers = iter([None, [], {"ready": True}])
    assert poll_until(lambda: next(answers), timeout=10, what="ready", first=0.001) == {"ready": True}


def test_poll_until_names_what_it_waited_for_and_shows_the_state() -> None:
    with pytest.raises(ConditionTimeout, match=r"(?s)waiting for the answer\nstate: empty"):
        poll_until(lambda: None, timeout=0, what="the answer", on_timeout=lambda: "state: empty")


def test_poll_until_lets_a_probe_error_through_at_once() -> None:
    def probe() -> None:
        raise RuntimeError("the process died")

    with pytest.raises(RuntimeError, match="the process died"):
        poll_until(probe, timeout=60, what="never")


def test_polling_checks_once_more_at_the_deadline() -> None:
    assert len(list(polling(0))) == 1
    assert len(list(polling(0.01, first=0.001, ceiling=0.001))) >= 2
