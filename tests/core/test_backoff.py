"""Tests of balance_manager.core.backoff: seeded sequences and bounds."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest
from hypothesis import given, strategies as st

from balance_manager.core.backoff import backoff
from balance_manager.exceptions import ConfigError


def take(delays: object, n: int) -> list[float]:
    return list(itertools.islice(delays, n))  # type: ignore[call-overload]  # any iterator


def test_backoff_sequence_with_a_seeded_rng() -> None:
    """With a seeded Random the delays are reproducible: equal jitter of 1, 2, 4, 8, 8... s."""
    delays = take(backoff(initial=1.0, maximum=8.0, rng=random.Random(1)), 6)
    assert [round(d, 4) for d in delays] == [0.5672, 1.8474, 3.5275, 5.0203, 5.9817, 5.798]
    draws = random.Random(1)
    expected = [d / 2 + d / 2 * draws.random() for d in (1.0, 2.0, 4.0, 8.0, 8.0, 8.0)]
    assert delays == pytest.approx(expected)


def test_backoff_draws_between_half_and_whole_nominal_delay() -> None:
    """Each delay lies in [d/2, d] for the nominal d = min(maximum, initial * factor**n)."""
    delays = take(backoff(initial=0.5, maximum=10.0, factor=3.0, rng=random.Random(7)), 8)
    nominal = [0.5, 1.5, 4.5, 10.0, 10.0, 10.0, 10.0, 10.0]
    for delay, d in zip(delays, nominal, strict=True):
        assert d / 2 <= delay <= d


def test_backoff_is_deterministic_per_seed_and_differs_across_seeds() -> None:
    """Two generators with the same seed agree; a different seed gives a different sequence."""
    first = take(backoff(rng=random.Random(42)), 10)
    again = take(backoff(rng=random.Random(42)), 10)
    other = take(backoff(rng=random.Random(43)), 10)
    assert first == again
    assert first != other


def test_backoff_runs_forever_without_overflow() -> None:
    """Thousands of steps stay finite and capped (the nominal delay stops growing at the cap)."""
    delays = take(backoff(initial=1.0, maximum=30.0, factor=10.0, rng=random.Random(0)), 5000)
    assert all(math.isfinite(d) and 15.0 <= d <= 30.0 for d in delays[2:])


def test_factor_one_gives_constant_nominal_delay() -> None:
    """factor=1 keeps the nominal delay at initial."""
    delays = take(backoff(initial=4.0, maximum=4.0, factor=1.0, rng=random.Random(3)), 20)
    assert all(2.0 <= d <= 4.0 for d in delays)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"initial": 0.0}, "initial"),
        ({"initial": -1.0}, "initial"),
        ({"initial": math.nan}, "initial"),
        ({"maximum": math.inf}, "maximum"),
        ({"initial": 5.0, "maximum": 1.0}, "maximum"),
        ({"factor": 0.5}, "factor"),
        ({"factor": math.nan}, "factor"),
    ],
)
def test_backoff_refuses_bad_arguments(kwargs: dict[str, float], option: str) -> None:
    """Out-of-range arguments raise ConfigError naming the argument on the first next()."""
    delays = backoff(rng=random.Random(0), **kwargs)
    with pytest.raises(ConfigError) as info:
        next(delays)
    assert info.value.option == option


@given(
    initial=st.floats(min_value=0.001, max_value=100.0),
    spread=st.floats(min_value=1.0, max_value=100.0),
    factor=st.floats(min_value=1.0, max_value=10.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_bounds(initial: float, spread: float, factor: float, seed: int) -> None:
    """Every delay is positive, at most maximum, and at least half of min(initial, maximum)."""
    maximum = initial * spread
    for delay in take(
        backoff(initial=initial, maximum=maximum, factor=factor, rng=random.Random(seed)), 40
    ):
        assert initial / 2 <= delay <= maximum


# -- Kraken reconnects -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"initial": 10**400, "maximum": 10**401}, "initial"),
        ({"maximum": 1e300}, "maximum"),
        ({"initial": 1e-9}, "initial"),
    ],
    ids=["int-1e400", "1e300", "1ns"],
)
def test_backoff_refuses_absurd_durations_by_name(kwargs: dict[str, Any], option: str) -> None:
    """A delay beyond a year (10**400 included) or under 1 ms is a ConfigError, not an overflow."""
    with pytest.raises(ConfigError) as info:
        next(backoff(rng=random.Random(0), **kwargs))
    assert info.value.option == option


@pytest.mark.parametrize("factor", [10**400, 1e300, "2", math.inf])
def test_backoff_refuses_an_absurd_factor_by_name(factor: object) -> None:
    """A growth factor that would overflow (or is not a number) is a ConfigError."""
    with pytest.raises(ConfigError) as info:
        next(backoff(rng=random.Random(0), factor=factor))  # type: ignore[arg-type]  # on purpose
    assert info.value.option == "factor"
