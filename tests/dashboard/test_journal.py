"""The event journal: numbered events, bounded replay, resets when replay is impossible."""

from __future__ import annotations

import pytest

from balance_manager.dashboard.journal import EventJournal
from balance_manager.exceptions import ConfigError


def filled(count: int, capacity: int = 10) -> EventJournal:
    journal = EventJournal(capacity, run="r1")
    for n in range(count):
        journal.append("balance", {"n": n + 1})
    return journal


def test_ids_carry_the_run_and_count_up() -> None:
    """Each event's id is <run>.<number>, numbers from 1; last_id follows."""
    journal = EventJournal(run="abc")
    assert journal.last_id == "abc.0"
    first = journal.append("balance", {})
    second = journal.append("source", {})
    assert (first.id, second.id) == ("abc.1", "abc.2")
    assert journal.last_id == "abc.2"
    assert journal.last_number == 2


def test_after_replays_exactly_what_was_missed_in_order() -> None:
    """A page that saw event 3 of 6 is sent 4, 5 and 6, in order, and no reset."""
    replay = filled(6).after("r1.3")
    assert not replay.reset
    assert [e.number for e in replay.events] == [4, 5, 6]
    assert filled(6).after("r1.6").events == ()


@pytest.mark.parametrize(
    ("event_id", "reason"),
    [
        (None, "no state yet"),
        ("", "no state yet"),
        ("other.3", "restarted"),
        ("r1.99", "restarted"),  # from the future: not one of ours
        ("r1.x", "restarted"),
        ("garbage", "restarted"),
    ],
)
def test_ids_that_cannot_be_resumed_ask_for_a_reload(event_id: str | None, reason: str) -> None:
    """No id, another run's id, a future or malformed id: a reset, never a silent gap."""
    replay = filled(3).after(event_id)
    assert replay.reset
    assert replay.events == ()
    assert reason in replay.reason


def test_an_id_older_than_the_buffer_asks_for_a_reload_saying_how_many_were_lost() -> None:
    """With 10 kept of 25, a page that saw event 5 cannot be replayed: reset, 10 missed."""
    journal = filled(25, capacity=10)
    assert len(journal) == 10
    replay = journal.after("r1.5")
    assert replay.reset
    assert "10 events were missed" in replay.reason
    # The oldest kept is 16: a page that saw 15 is replayed whole.
    assert [e.number for e in journal.after("r1.15").events] == list(range(16, 26))


def test_recent_gives_the_newest_oldest_first() -> None:
    """recent(3) is the last three events, oldest first; recent(0) is empty."""
    journal = filled(5)
    assert [e.number for e in journal.recent(3)] == [3, 4, 5]
    assert [e.number for e in journal.recent(50)] == [1, 2, 3, 4, 5]
    assert journal.recent(0) == []


def test_listeners_hear_every_append() -> None:
    """on_append listeners are called once per event (the server wakes its streams so)."""
    journal = EventJournal(run="r")
    calls: list[int] = []
    journal.on_append(lambda: calls.append(journal.last_number))
    journal.append("balance", {})
    journal.append("balance", {})
    assert calls == [1, 2]


def test_a_random_run_differs_between_journals() -> None:
    """Two dashboards (a restart) never share a run, so old ids are never taken for new ones."""
    assert EventJournal().run != EventJournal().run


@pytest.mark.parametrize(
    ("option", "kwargs"), [("capacity", {"capacity": 0}), ("run", {"run": "a.b"})]
)
def test_bad_options_are_refused_by_name(option: str, kwargs: dict[str, object]) -> None:
    """A capacity below 1 or a run id with a dot is a ConfigError naming it."""
    with pytest.raises(ConfigError) as info:
        EventJournal(**kwargs)  # type: ignore[arg-type]  # bad on purpose
    assert info.value.option == option
