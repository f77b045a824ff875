"""Tests for balance_manager.core.trends (least-squares trend, strength, volatility)."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import pytest
from hypothesis import assume, given, strategies as st

from balance_manager.core.trends import (
    DEFAULT_STABLE_THRESHOLD_PERCENT,
    TrendAnalysis,
    analyze_float_series,
    analyze_trend,
    float_volatility,
    volatility,
)
from balance_manager.exceptions import ConfigError

T0 = 1_700_000_000.0
NOW = T0 + 10 * 3600


def minutes(count: int) -> list[float]:
    """``count`` timestamps one minute apart, starting at T0."""
    return [T0 + 60.0 * i for i in range(count)]


def analyse(balances: list[Decimal], *, hours: float = 24, **kwargs: object) -> TrendAnalysis:
    """Analyse ``balances`` recorded one minute apart and insist on a result."""
    result = analyze_trend(
        "USDT",
        minutes(len(balances)),
        balances,
        analysis_hours=hours,
        now=NOW,
        **kwargs,  # type: ignore[arg-type]  # only stable_threshold_percent is passed
    )
    assert result is not None
    return result


# -- known series -----------------------------------------------------------------------


def test_linear_increase_has_strength_one_and_the_right_slope() -> None:
    """A balance growing 1 USDT a minute is increasing, R² = 1, slope 60 per hour."""
    trend = analyse([Decimal(1000 + i) for i in range(120)])
    assert trend.trend_direction == "increasing"
    assert trend.trend_strength == pytest.approx(1.0, abs=1e-12)
    assert trend.slope_per_hour == pytest.approx(60.0, rel=1e-9)
    assert trend.change == Decimal(119)
    assert trend.change_percent == pytest.approx(11.9)
    assert (trend.points, trend.start_balance, trend.end_balance) == (
        120,
        Decimal(1000),
        Decimal(1119),
    )
    assert (trend.start_time, trend.end_time) == (T0, T0 + 119 * 60)


def test_linear_decrease_is_decreasing_with_negative_slope() -> None:
    """A balance falling 0.5 a minute is decreasing with slope -30 per hour."""
    trend = analyse([Decimal(1000) - Decimal("0.5") * i for i in range(60)])
    assert trend.trend_direction == "decreasing"
    assert trend.trend_strength == pytest.approx(1.0, abs=1e-12)
    assert trend.slope_per_hour == pytest.approx(-30.0, rel=1e-9)


def test_constant_series_is_stable_with_zero_strength_and_volatility() -> None:
    """Nothing moves: stable, strength 0 (nothing to explain), volatility 0."""
    trend = analyse([Decimal("42.5")] * 30)
    assert trend.trend_direction == "stable"
    assert trend.trend_strength == 0.0
    assert trend.slope_per_hour == 0.0
    assert trend.volatility == 0.0
    assert trend.change == 0


def test_noisy_uptrend_is_increasing_with_partial_strength() -> None:
    """Noise around a clear rise gives an increasing trend with 0 < R² < 1."""
    rng = random.Random(7)
    balances = [Decimal(1000 + i) + Decimal(rng.randint(-2000, 2000)) / 100 for i in range(200)]
    trend = analyse(balances)
    assert trend.trend_direction == "increasing"
    assert 0.5 < trend.trend_strength < 1.0
    assert trend.slope_per_hour == pytest.approx(60.0, rel=0.1)


def test_small_oscillation_is_stable() -> None:
    """Back-and-forth moves with no drift stay under the stable threshold."""
    trend = analyse([Decimal(100) + (i % 2) for i in range(100)])
    assert trend.trend_direction == "stable"
    assert trend.trend_strength < 0.01


def test_threshold_decides_between_stable_and_moving() -> None:
    """A 0.5 % rise is stable under a 1 % threshold and increasing under 0.1 %."""
    balances = [Decimal(1000) + Decimal("0.05") * i for i in range(101)]
    assert analyse(balances, stable_threshold_percent=1.0).trend_direction == "stable"
    assert analyse(balances, stable_threshold_percent=0.1).trend_direction == "increasing"


def test_huge_and_tiny_balances_keep_full_strength() -> None:
    """Centring keeps 1e12 and 1e-8 scale series exact enough for R² = 1.

    The 1e12 series moves by 5e-6 % only, so the threshold is 0 to see its direction.
    """
    big = analyse(
        [Decimal("1e12") + Decimal(1000) * i for i in range(50)], stable_threshold_percent=0.0
    )
    tiny = analyse([Decimal("1e-8") * (1 + i) for i in range(50)])
    for trend in (big, tiny):
        assert trend.trend_direction == "increasing"
        assert trend.trend_strength == pytest.approx(1.0, abs=1e-9)
    assert big.slope_per_hour == pytest.approx(60_000.0, rel=1e-6)


def test_balances_beyond_float_range_are_scaled_not_lost() -> None:
    """Values above 1e308 still give a trend; only the slope saturates."""
    trend = analyse([Decimal(f"{i + 1}e400") for i in range(10)])
    assert trend.trend_direction == "increasing"
    assert trend.trend_strength == pytest.approx(1.0, abs=1e-9)
    assert trend.slope_per_hour == math.inf
    assert trend.change == Decimal("9e400")


def test_window_excludes_old_points_and_needs_two() -> None:
    """Only points within analysis_hours count; fewer than 2 give None."""
    stamps = [NOW - 3 * 3600, NOW - 1800, NOW - 60]
    balances = [Decimal(1), Decimal(5), Decimal(6)]
    trend = analyze_trend("BTC", stamps, balances, analysis_hours=1, now=NOW)
    assert trend is not None
    assert (trend.points, trend.start_balance) == (2, Decimal(5))
    assert analyze_trend("BTC", stamps, balances, analysis_hours=0.4, now=NOW) is None
    assert analyze_trend("BTC", [], [], analysis_hours=1, now=NOW) is None


def test_points_at_one_instant_are_stable_with_zero_strength() -> None:
    """With no spread in time no slope can be fitted: stable, strength 0."""
    trend = analyze_trend(
        "BTC", [NOW] * 3, [Decimal(1), Decimal(2), Decimal(3)], analysis_hours=1, now=NOW
    )
    assert trend is not None
    assert (trend.trend_direction, trend.trend_strength) == ("stable", 0.0)
    assert trend.change == 2


def test_change_percent_is_none_from_zero() -> None:
    """A change from a zero start has no percentage."""
    assert analyse([Decimal(0), Decimal(5)]).change_percent is None


def test_bad_arguments_are_refused() -> None:
    """Non-positive windows, negative thresholds and ragged inputs raise ConfigError."""
    with pytest.raises(ConfigError, match="analysis_hours"):
        analyze_trend("BTC", [T0], [Decimal(1)], analysis_hours=0, now=NOW)
    with pytest.raises(ConfigError, match="stable_threshold_percent"):
        analyse([Decimal(1), Decimal(2)], stable_threshold_percent=-1.0)
    with pytest.raises(ConfigError, match="balances"):
        analyze_trend("BTC", [T0, T0 + 1], [Decimal(1)], analysis_hours=1, now=NOW)


def test_float_path_equals_decimal_path() -> None:
    """analyze_float_series gives the same analysis as analyze_trend on the same window."""
    balances = [Decimal(1000) + Decimal(i * i) / 7 for i in range(50)]
    stamps = minutes(50)
    exact = analyze_trend("ETH", stamps, balances, analysis_hours=24, now=NOW)
    fast = analyze_float_series(
        "ETH",
        stamps,
        [float(b) for b in balances],
        start_balance=balances[0],
        end_balance=balances[-1],
        analysis_hours=24,
    )
    assert fast == exact


# -- volatility -------------------------------------------------------------------------


def test_volatility_is_the_std_of_the_changes_relative_to_the_mean_balance() -> None:
    """100 → 110 → 99: changes +10 and -11 (sample std 14.85) over a mean balance of 103."""
    expected = math.sqrt((10.5**2 + 10.5**2) / 1) / 103
    assert volatility([Decimal(100), Decimal(110), Decimal(99)]) == pytest.approx(expected)


def test_volatility_after_a_step_from_almost_nothing_is_a_sane_figure() -> None:
    """1e-8 → 92.2 → 92.3 → 92.1 (history mixing a dust value and real ones): not 10^10 %."""
    balances = [Decimal("0.00000001"), Decimal("92.2"), Decimal("92.3"), Decimal("92.1")]
    changes = [92.19999999, 0.1, -0.2]
    mean_change = sum(changes) / 3
    std = math.sqrt(sum((c - mean_change) ** 2 for c in changes) / 2)
    result = volatility(balances)
    assert result == pytest.approx(std / (sum(float(b) for b in balances) / 4))
    assert result is not None
    assert result < 1.0  # under 100 % per change, where the relative steps gave 9.2e11 %


def test_volatility_needs_two_changes_and_a_balance() -> None:
    """Fewer than two changes, or a window of zeros, have no volatility."""
    assert volatility([Decimal(1), Decimal(2)]) is None
    assert volatility([Decimal(0), Decimal(0), Decimal(0)]) is None
    assert float_volatility([0.0, 1.0, 2.0, 3.0]) == pytest.approx(0.0)  # steady steps
    assert volatility([Decimal(0), Decimal(5), Decimal(0)]) == pytest.approx(
        math.sqrt(50) / (5 / 3)
    )


@given(
    st.lists(st.decimals(min_value=-(10**12), max_value=10**12, places=8), min_size=3, max_size=60)
)
def test_volatility_is_bounded_by_the_window_length(balances: list[Decimal]) -> None:
    """However close to zero a balance comes, volatility stays below 2n/sqrt(n-2)."""
    result = volatility(balances)
    if result is None:
        assert not any(balances)
        return
    count = len(balances)
    assert 0.0 <= result <= 2 * count / math.sqrt(count - 2) * (1 + 1e-9)


# -- properties -------------------------------------------------------------------------

series = st.integers(min_value=2, max_value=40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(min_value=1, max_value=3600), min_size=n, max_size=n),
        st.lists(
            st.decimals(
                min_value=Decimal(1),
                max_value=Decimal(10**6),
                places=4,
                allow_nan=False,
                allow_infinity=False,
            ),
            min_size=n,
            max_size=n,
        ),
    )
)


def stamps_from_gaps(gaps: list[int]) -> list[float]:
    """Strictly increasing timestamps from positive gaps."""
    out, now = [], T0
    for gap in gaps:
        now += gap
        out.append(now)
    return out


def relative_move_percent(trend: TrendAnalysis, balances: list[Decimal]) -> float:
    """The fitted move over the span in percent of the mean |balance|."""
    mean_abs = sum(abs(float(b)) for b in balances) / len(balances)
    span = trend.end_time - trend.start_time
    return abs(trend.slope_per_hour) * span / 3600 / mean_abs * 100


def far_from_threshold(trend: TrendAnalysis, balances: list[Decimal]) -> bool:
    """Whether float rounding cannot move the trend across the stable threshold."""
    move = relative_move_percent(trend, balances)
    return abs(move - DEFAULT_STABLE_THRESHOLD_PERCENT) > 1e-6 * max(1.0, move)


@given(data=series)
def test_strength_is_within_zero_and_one(data: tuple[list[int], list[Decimal]]) -> None:
    """R² is always in [0, 1]."""
    gaps, balances = data
    trend = analyze_trend("X", stamps_from_gaps(gaps), balances, analysis_hours=1e6, now=T0 + 10**6)
    assert trend is not None
    assert 0.0 <= trend.trend_strength <= 1.0
    assert trend.points == len(balances)


@given(data=series, exponent=st.integers(min_value=-12, max_value=12))
def test_scaling_balances_keeps_direction_and_strength(
    data: tuple[list[int], list[Decimal]], exponent: int
) -> None:
    """Multiplying every balance by a power of ten changes neither direction nor strength."""
    gaps, balances = data
    stamps = stamps_from_gaps(gaps)
    scaled = [b.scaleb(exponent) for b in balances]
    base = analyze_trend("X", stamps, balances, analysis_hours=1e6, now=T0 + 10**6)
    other = analyze_trend("X", stamps, scaled, analysis_hours=1e6, now=T0 + 10**6)
    assert base is not None
    assert other is not None
    assume(far_from_threshold(base, balances))
    assert other.trend_direction == base.trend_direction
    assert other.trend_strength == pytest.approx(base.trend_strength, abs=1e-9)


@given(data=series)
def test_playing_the_series_backwards_flips_the_direction(
    data: tuple[list[int], list[Decimal]],
) -> None:
    """Reversed in time, an increasing trend decreases (and vice versa), equally strong."""
    gaps, balances = data
    stamps = stamps_from_gaps(gaps)
    mirrored = [stamps[0] + stamps[-1] - t for t in reversed(stamps)]
    forward = analyze_trend("X", stamps, balances, analysis_hours=1e6, now=T0 + 10**6)
    backward = analyze_trend("X", mirrored, balances[::-1], analysis_hours=1e6, now=T0 + 10**6)
    assert forward is not None
    assert backward is not None
    assume(far_from_threshold(forward, balances))
    flipped = {"increasing": "decreasing", "decreasing": "increasing", "stable": "stable"}
    assert backward.trend_direction == flipped[forward.trend_direction]
    assert backward.trend_strength == pytest.approx(forward.trend_strength, abs=1e-9)
    assert backward.change == -forward.change
