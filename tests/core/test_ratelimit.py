"""Tests of balance_manager.core.ratelimit: the modelled Kraken call counter (PROTOCOL.md §6)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.ratelimit import COSTS, TIERS, KrakenCallCounter, cost_of
from balance_manager.exceptions import ConfigError


def test_tiers_match_the_documented_table() -> None:
    """starter 15 / 0.33 per s, intermediate 20 / 0.5, pro 20 / 1.0."""
    assert dict(TIERS) == {
        "starter": (15.0, 0.33),
        "intermediate": (20.0, 0.5),
        "pro": (20.0, 1.0),
    }
    pro = KrakenCallCounter.for_tier("pro")
    assert (pro.max_counter, pro.decay_per_second) == (20.0, 1.0)


def test_unknown_tier_is_refused() -> None:
    """for_tier() with an unknown tier raises ConfigError naming kraken_tier."""
    with pytest.raises(ConfigError) as info:
        KrakenCallCounter.for_tier("gold")
    assert info.value.option == "kraken_tier"
    assert "starter" in str(info.value)


@pytest.mark.parametrize(
    ("tier", "margin"), [("starter", 1.0), ("intermediate", 1.0), ("pro", 2.0)]
)
def test_default_margin_is_two_seconds_of_decay_at_least_one(tier: str, margin: float) -> None:
    """The default margin is max(1, 2 * decay_per_second)."""
    assert KrakenCallCounter.for_tier(tier).margin == margin


def test_costs_table_books_the_safe_ledger_cost() -> None:
    """Balance-type calls cost 1; ledger and trade-history calls are booked at the safe 4."""
    assert dict(COSTS) == {
        "Balance": 1,
        "BalanceEx": 1,
        "GetWebSocketsToken": 1,
        "TradeBalance": 1,
        "Ledgers": 4,
        "QueryLedgers": 4,
        "TradesHistory": 4,
    }
    assert cost_of("BalanceEx") == 1
    assert cost_of("Ledgers") == 4
    assert cost_of("SomethingNew") == 1


def test_burst_fills_to_the_limit_then_spaces_calls() -> None:
    """A starter burst sends 14 calls at once, then one every 1/0.33 s."""
    counter = KrakenCallCounter.for_tier("starter")
    waits = [counter.reserve(0.0) for _ in range(17)]
    assert waits[:14] == [0.0] * 14
    step = 1 / 0.33
    assert waits[14:] == pytest.approx([step, 2 * step, 3 * step])
    assert counter.level(0.0) == pytest.approx(14.0)


def test_level_decays_continuously_and_never_below_zero() -> None:
    """level() drops by decay_per_second per second down to 0."""
    counter = KrakenCallCounter(20.0, 1.0)
    for _ in range(10):
        counter.reserve(100.0)
    assert counter.level(100.0) == 10.0
    assert counter.level(104.0) == pytest.approx(6.0)
    assert counter.level(200.0) == 0.0


def test_idle_counter_sends_at_once() -> None:
    """After enough idle time a call needs no wait."""
    counter = KrakenCallCounter.for_tier("intermediate")
    for _ in range(19):
        counter.reserve(0.0)
    assert counter.reserve(0.0) > 0
    assert counter.reserve(1000.0) == 0.0


def test_reservations_queue_first_come_first_served() -> None:
    """Concurrent reservations at the same instant get increasing waits, never the same slot."""
    counter = KrakenCallCounter(10.0, 0.5, margin=1.0)
    for _ in range(9):
        counter.reserve(0.0)
    waits = [counter.reserve(0.0) for _ in range(3)]
    assert waits == pytest.approx([2.0, 4.0, 6.0])
    # A later caller still queues behind the booked ones.
    assert counter.reserve(1.0) == pytest.approx(7.0)


def test_heavier_calls_wait_proportionally() -> None:
    """A cost-4 call on a full counter waits 4 / decay seconds."""
    counter = KrakenCallCounter(20.0, 1.0, margin=2.0)
    for _ in range(18):
        counter.reserve(0.0)
    assert counter.reserve(0.0, cost=cost_of("Ledgers")) == pytest.approx(4.0)


def test_penalize_assumes_a_full_counter() -> None:
    """After a rate-limit answer the counter is taken as full; the next call waits accordingly."""
    counter = KrakenCallCounter.for_tier("starter")
    retry_after = counter.penalize(50.0)
    assert retry_after == pytest.approx(2 / 0.33)
    assert counter.level(50.0) == 15.0
    assert counter.reserve(50.0) == pytest.approx(retry_after)
    assert counter.get_statistics()["penalties"] == 1


def test_penalize_after_future_bookings_counts_from_the_last_one() -> None:
    """A penalty while calls are booked ahead starts from the last booked time."""
    counter = KrakenCallCounter(10.0, 1.0, margin=1.0)
    for _ in range(10):
        counter.reserve(0.0)
    assert counter.penalize(0.0) == pytest.approx(1.0 + 2.0)


@pytest.mark.parametrize("cost", [0, -1, True, 1.5])
def test_bad_cost_is_refused(cost: object) -> None:
    """reserve() with a cost that is not a positive int raises ConfigError naming cost."""
    with pytest.raises(ConfigError) as info:
        KrakenCallCounter.for_tier("pro").reserve(0.0, cost=cost)  # type: ignore[arg-type]
    assert info.value.option == "cost"


def test_cost_larger_than_the_usable_room_is_refused() -> None:
    """A call that could never fit under max - margin is refused rather than waited for forever."""
    counter = KrakenCallCounter(5.0, 1.0, margin=2.0)
    with pytest.raises(ConfigError, match="room"):
        counter.reserve(0.0, cost=4)
    assert counter.get_statistics()["reserved_calls"] == 0


@pytest.mark.parametrize(
    ("args", "kwargs", "option"),
    [
        ((0.0, 1.0), {}, "max_counter"),
        ((15.0, 0.0), {}, "decay_per_second"),
        ((15.0, float("nan")), {}, "decay_per_second"),
        ((15.0, 1.0), {"margin": -1.0}, "margin"),
        ((15.0, 1.0), {"margin": 15.0}, "margin"),
    ],
)
def test_bad_settings_are_refused_by_name(
    args: tuple[float, float], kwargs: dict[str, float], option: str
) -> None:
    """Out-of-range settings raise ConfigError naming the setting."""
    with pytest.raises(ConfigError) as info:
        KrakenCallCounter(*args, **kwargs)
    assert info.value.option == option


def test_statistics_and_repr() -> None:
    """get_statistics() counts reserved, delayed and penalized calls; repr shows the settings."""
    counter = KrakenCallCounter(3.0, 1.0, margin=1.0)
    for _ in range(3):
        counter.reserve(0.0)
    assert counter.get_statistics() == {
        "max_counter": 3.0,
        "decay_per_second": 1.0,
        "margin": 1.0,
        "reserved_calls": 3,
        "delayed_calls": 1,
        "penalties": 0,
    }
    assert repr(counter) == "KrakenCallCounter(max_counter=3, decay_per_second=1, margin=1)"


def test_from_config_uses_the_tier() -> None:
    """from_config() builds the counter of config.kraken_tier."""
    config = BalanceManagerConfig(kraken_tier="intermediate", history_db_path=None)
    counter = KrakenCallCounter.from_config(config)
    assert (counter.max_counter, counter.decay_per_second) == (20.0, 0.5)


# -- property: honouring the waits never overfills the counter ------------------------------

CALLS = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=10.0), st.sampled_from([1, 1, 1, 2, 4])),
    min_size=1,
    max_size=80,
)


def simulate(sends: list[tuple[float, int]], decay: float) -> list[float]:
    """Kraken's counter, computed independently: the level right after each send."""
    levels = []
    level, last = 0.0, None
    for at, cost in sorted(sends, key=lambda send: send[0]):
        if last is not None:
            level = max(0.0, level - decay * (at - last))
        level += cost
        last = at
        levels.append(level)
    return levels


@given(calls=CALLS, tier=st.sampled_from(sorted(TIERS)))
@settings(deadline=None)
def test_honoured_reservations_never_exceed_the_maximum(
    calls: list[tuple[float, int]], tier: str
) -> None:
    """For any sequence of reserve() calls sent at the returned times, the counter stays <= max."""
    counter = KrakenCallCounter.for_tier(tier)
    now = 0.0
    sends: list[tuple[float, int]] = []
    for gap, cost in calls:
        now += gap
        wait = counter.reserve(now, cost)
        assert wait >= 0.0
        sends.append((now + wait, cost))
    send_times = [at for at, _ in sends]
    assert send_times == sorted(send_times)  # first come, first served
    levels = simulate(sends, counter.decay_per_second)
    assert max(levels) <= counter.max_counter - counter.margin + 1e-9
    assert max(levels) <= counter.max_counter


@given(calls=CALLS)
@settings(deadline=None)
def test_waits_are_as_short_as_possible(calls: list[tuple[float, int]]) -> None:
    """With no margin, a call that had to wait is sent exactly when it fills the counter to max."""
    counter = KrakenCallCounter(10.0, 0.5, margin=0.0)
    now = 0.0
    sends: list[tuple[float, int]] = []
    waited: list[bool] = []
    for gap, cost in calls:
        now += gap
        wait = counter.reserve(now, cost)
        sends.append((now + wait, cost))
        # Waiting for room (not merely queued at the previous call's time).
        waited.append(wait > 1e-9 and (len(sends) == 1 or sends[-1][0] > sends[-2][0] + 1e-9))
    levels = simulate(sends, 0.5)
    for level, had_to_wait in zip(levels, waited, strict=True):
        assert level <= 10.0 + 1e-9
        if had_to_wait:
            assert level == pytest.approx(10.0)
