"""The fault registry: triggers (after, times, at), filters, clearing and seeded plans."""

from __future__ import annotations

import pytest

from balance_manager.exceptions import ConfigError
from balance_manager.simulator.model.faults import REST_KINDS, WS_FRAME_KINDS, FaultKind, Faults
from balance_manager.testing import ManualClock


def make_faults(clock: ManualClock) -> Faults:
    """A registry on the manual clock."""
    return Faults(clock.monotonic)


def test_one_shot_fires_once(clock: ManualClock) -> None:
    """A default fault fires on the first opportunity and never again."""
    faults = make_faults(clock)
    fault = faults.rate_limit()
    assert faults.take(REST_KINDS) == [fault]
    assert faults.take(REST_KINDS) == []
    assert fault.exhausted
    assert faults.active() == []


def test_after_lets_opportunities_pass_first(clock: ManualClock) -> None:
    """after=2 fires on the third opportunity."""
    faults = make_faults(clock)
    faults.drop_websocket(after=2)
    fired = [bool(faults.take(WS_FRAME_KINDS)) for _ in range(4)]
    assert fired == [False, False, True, False]


def test_times_none_fires_until_cleared(clock: ManualClock) -> None:
    """times=None keeps firing until the fault is cleared."""
    faults = make_faults(clock)
    fault = faults.service_unavailable(times=None)
    assert all(faults.take(REST_KINDS) for _ in range(10))
    faults.clear(fault)
    assert faults.take(REST_KINDS) == []


def test_times_n_fires_n_times(clock: ManualClock) -> None:
    """times=3 fires exactly three times."""
    faults = make_faults(clock)
    faults.invalid_nonce(times=3)
    assert sum(bool(faults.take(REST_KINDS)) for _ in range(6)) == 3


def test_at_waits_for_the_clock(clock: ManualClock) -> None:
    """A fault scheduled at time T does not fire before the clock reaches T."""
    faults = make_faults(clock)
    faults.lockout(at=clock.monotonic() + 10)
    assert faults.take(REST_KINDS) == []
    clock.advance(10)
    assert len(faults.take(REST_KINDS)) == 1


def test_endpoint_and_channel_filters(clock: ManualClock) -> None:
    """A filtered fault only fires on its endpoint or channel."""
    faults = make_faults(clock)
    faults.rate_limit(endpoint="BalanceEx")
    faults.malformed_frame(channel="balances")
    assert faults.take(REST_KINDS, endpoint="Balance") == []
    assert faults.take(WS_FRAME_KINDS, channel="heartbeat") == []
    assert len(faults.take(REST_KINDS, endpoint="BalanceEx")) == 1
    assert len(faults.take(WS_FRAME_KINDS, channel="balances")) == 1


def test_kinds_only_see_their_own_opportunities(clock: ManualClock) -> None:
    """A REST fault is not consumed by WebSocket frames."""
    faults = make_faults(clock)
    faults.http_error()
    assert faults.take(WS_FRAME_KINDS) == []
    (fault,) = faults.take(REST_KINDS)
    assert fault.status == 520


def test_silence_lasts_its_duration(clock: ManualClock) -> None:
    """Once fired, a silence mutes for its seconds, then ends."""
    faults = make_faults(clock)
    faults.go_silent(seconds=5)
    assert not faults.silenced()
    faults.take(WS_FRAME_KINDS)
    assert faults.silenced()
    clock.advance(4.9)
    assert faults.silenced()
    clock.advance(0.2)
    assert not faults.silenced()


def test_silence_without_duration_lasts_until_cleared(clock: ManualClock) -> None:
    """A silence with no duration mutes until cleared."""
    faults = make_faults(clock)
    fault = faults.go_silent()
    faults.take(WS_FRAME_KINDS)
    clock.advance(3600)
    assert faults.silenced()
    assert faults.silence_ends() == float("inf")
    faults.clear(fault.id)
    assert not faults.silenced()


def test_history_records_each_firing(clock: ManualClock) -> None:
    """Every firing is recorded with its kind and where it hit."""
    faults = make_faults(clock)
    faults.rate_limit(times=2)
    faults.take(REST_KINDS, endpoint="Balance")
    faults.take(REST_KINDS, endpoint="BalanceEx")
    assert [(h.kind, h.where) for h in faults.history] == [
        (FaultKind.RATE_LIMIT, "Balance"),
        (FaultKind.RATE_LIMIT, "BalanceEx"),
    ]


def test_random_plans_are_deterministic_under_a_seed(clock: ManualClock) -> None:
    """The same seed gives the same plan; another seed gives another."""
    a = [(f.kind, f.after, f.seconds) for f in make_faults(clock).random_plan(42, 8)]
    b = [(f.kind, f.after, f.seconds) for f in make_faults(clock).random_plan(42, 8)]
    c = [(f.kind, f.after, f.seconds) for f in make_faults(clock).random_plan(43, 8)]
    assert a == b
    assert a != c


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("meteor", {}),
        ("ws_delay", {}),
        ("rate_limit", {"times": 0}),
        ("rate_limit", {"after": -1}),
        ("http_error", {"status": 99}),
    ],
)
def test_bad_injections_are_refused(clock: ManualClock, kind: str, options: dict[str, int]) -> None:
    """Unknown kinds, missing delays and impossible triggers raise ConfigError."""
    with pytest.raises(ConfigError):
        make_faults(clock).inject(kind, **options)  # type: ignore[arg-type]  # bad on purpose


def test_change_listeners_hear_injections_and_clears(clock: ManualClock) -> None:
    """on_change listeners are told about each injection and each clear."""
    faults = make_faults(clock)
    heard: list[int] = []
    faults.on_change(lambda fault: heard.append(fault.id))
    fault = faults.duplicate_frame()
    faults.clear()
    assert heard == [fault.id, fault.id]
