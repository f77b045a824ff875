"""Tests of kraken.protocol.limits: the modelled call counter and the reconnect pace."""

from __future__ import annotations

import itertools
import random
from typing import Any, get_args

import pytest
from hypothesis import given, settings, strategies as st

from balance_manager.config import BalanceManagerConfig, Tier
from balance_manager.exceptions import ConfigError
from balance_manager.kraken.protocol.limits import (
    COSTS,
    DISPUTED_COSTS,
    KRAKEN_SLOW_RECONNECT_FLOOR,
    TIERS,
    KrakenCallCounter,
    cost_of,
    kraken_reconnect_delays,
)


def test_tiers_match_the_documented_table() -> None:
    """starter 15 / 0.33 per s, intermediate 20 / 0.5, pro 20 / 1.0."""
    assert {
        name: (limits.max_counter, limits.decay_per_second) for name, limits in TIERS.items()
    } == {
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
    """Balance-type calls cost 1; disputed ledger calls are booked at 4, charged 2 by the sim."""
    assert {m: COSTS[m] for m in ("Balance", "BalanceEx", "GetWebSocketsToken")} == {
        "Balance": 1,
        "BalanceEx": 1,
        "GetWebSocketsToken": 1,
    }
    assert cost_of("BalanceEx") == 1
    assert cost_of("Ledgers") == 4
    assert cost_of("Ledgers", conservative=False) == 2
    assert cost_of("AddOrder") == cost_of("AddOrder", conservative=False) == 0
    assert cost_of("SomethingNew") == 1
    assert set(DISPUTED_COSTS) <= set(COSTS)
    assert all(DISPUTED_COSTS[m] >= COSTS[m] for m in DISPUTED_COSTS)


def test_the_configuration_and_the_simulator_know_the_same_tiers() -> None:
    """The tier names a config accepts are exactly Kraken's tiers (one table, checked)."""
    assert set(get_args(Tier)) == set(TIERS)


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


# -- the reconnect pace ---------------------------------------------------------------


def take(delays: object, n: int) -> list[float]:
    return list(itertools.islice(delays, n))  # type: ignore[call-overload]  # any iterator


def test_kraken_delays_with_a_seeded_rng() -> None:
    """Two quick retries (about 1 s, 2 s), then 5-10 s, 10-20 s, 15-30 s... as Kraken advises."""
    delays = take(kraken_reconnect_delays(random.Random(1)), 7)
    assert [round(d, 2) for d in delays] == [0.57, 1.85, 8.82, 12.55, 22.43, 21.74, 24.77]
    assert 0.5 <= delays[0] <= 1.0
    assert 1.0 <= delays[1] <= 2.0
    assert 5.0 <= delays[2] <= 10.0
    assert 10.0 <= delays[3] <= 20.0
    assert all(15.0 <= d <= 30.0 for d in delays[4:])


def test_kraken_quick_retries_count_is_configurable() -> None:
    """quick_retries=0 starts straight with the slow phase, never below 5 s."""
    delays = take(kraken_reconnect_delays(random.Random(5), quick_retries=0), 10)
    assert all(d >= KRAKEN_SLOW_RECONNECT_FLOOR for d in delays)


def test_kraken_floor_follows_a_small_maximum() -> None:
    """A maximum below 5 s (as tests configure) caps every delay, the floor included."""
    delays = take(kraken_reconnect_delays(random.Random(2), initial=0.1, maximum=0.5), 10)
    assert all(d <= 0.5 for d in delays)
    assert all(d == 0.5 for d in delays[2:])


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"quick_retries": -1}, "quick_retries"),
        ({"quick_retries": True}, "quick_retries"),
        ({"initial": 0.0}, "initial"),
        ({"maximum": -3.0}, "maximum"),
    ],
)
def test_kraken_delays_refuse_bad_arguments(kwargs: dict[str, Any], option: str) -> None:
    """Out-of-range arguments raise ConfigError naming the argument."""
    delays = kraken_reconnect_delays(random.Random(0), **kwargs)
    with pytest.raises(ConfigError) as info:
        next(delays)
    assert info.value.option == option


@given(
    initial=st.floats(min_value=0.01, max_value=5.0),
    maximum=st.floats(min_value=5.0, max_value=600.0),
    quick=st.integers(min_value=0, max_value=4),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_kraken_delays_bounds(initial: float, maximum: float, quick: int, seed: int) -> None:
    """Quick retries stay within initial * 2**i; later delays lie in [5 s, maximum]."""
    delays = take(
        kraken_reconnect_delays(
            random.Random(seed), initial=initial, maximum=maximum, quick_retries=quick
        ),
        quick + 30,
    )
    for i, delay in enumerate(delays[:quick]):
        assert 0 < delay <= min(maximum, initial * 2**i)
    for delay in delays[quick:]:
        assert KRAKEN_SLOW_RECONNECT_FLOOR <= delay <= maximum


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"initial": 10**400, "maximum": 10**401}, "initial"),
        ({"maximum": 1e300}, "maximum"),
        ({"initial": 1e-9}, "initial"),
    ],
    ids=["int-1e400", "1e300", "1ns"],
)
def test_kraken_delays_refuse_absurd_durations_by_name(kwargs: dict[str, Any], option: str) -> None:
    """A delay beyond a year (10**400 included) or under 1 ms is a ConfigError, not an overflow."""
    with pytest.raises(ConfigError) as info:
        next(kraken_reconnect_delays(random.Random(0), **kwargs))
    assert info.value.option == option
