"""Trend and volatility of a balance series: pure maths, no I/O.

Definitions (also in ``docs/history.md``):

* **Trend line**: the ordinary least-squares fit ``balance ≈ a + b·t`` over the
  points recorded in the window (one point per recorded balance change).
* **trend_strength**: the fit's coefficient of determination R² in ``[0, 1]``:
  1 when the points lie on a straight line, near 0 when time explains none of
  the movement. It is 0 for a constant series (nothing to explain) and when
  all points share one timestamp (no slope can be fitted).
* **trend_direction**: ``"stable"`` when the change the fitted line predicts
  across the window's time span is at most ``stable_threshold_percent`` of the
  mean ``|balance|``; otherwise ``"increasing"`` or ``"decreasing"`` by the
  sign of the slope.
* **volatility**: the sample standard deviation of the successive changes
  ``b[i] - b[i-1]``, divided by the mean ``|balance|`` of the window, as a
  fraction (0.01 = 1 %): how large a recorded change typically is next to the
  balance's usual level. It is per recorded change, not per unit of time; it
  needs at least two changes and a window that is not all zeros. (Dividing
  each step by its own starting balance instead, as returns are measured,
  explodes whenever a balance comes close to zero: a step from a dust amount
  of 1e-8 to 92 is +9.2e11 %. A balance is not a price; its level over the
  window is the meaningful base. For a balance that stays near its mean the
  two measures agree.)

Statistics (strength, slope, volatility, percentages) are ``float``; amounts
(``change``, ``start_balance``, ``end_balance``) stay exact ``Decimal``.

Numerics: timestamps and balances are centred on their means before the sums
of squares are formed, so neither ``1.7e9`` timestamps nor ``1e12`` balances
cancel away the signal. Balances outside float's comfortable range (beyond
1e300 or below 1e-300) are scaled by a power of ten first; R², direction and
volatility do not depend on that scale.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise
from operator import mul
from typing import Literal, TypeAlias

import msgspec

from balance_manager.core.changes import difference
from balance_manager.exceptions import ConfigError

__all__ = [
    "DEFAULT_STABLE_THRESHOLD_PERCENT",
    "Direction",
    "TrendAnalysis",
    "analyze_float_series",
    "analyze_trend",
    "float_volatility",
    "volatility",
]

#: A trend direction.
Direction: TypeAlias = Literal["increasing", "decreasing", "stable"]

#: Default ``stable_threshold_percent``: a fitted move of at most 0.1 % of the
#: mean balance over the window is "stable" (same as the default
#: ``change_threshold_percent`` for a single change).
DEFAULT_STABLE_THRESHOLD_PERCENT = 0.1

_SECONDS_PER_HOUR = 3600.0
_FLOAT_TOO_BIG = 1e300
_FLOAT_TOO_SMALL = 1e-300


class TrendAnalysis(msgspec.Struct, frozen=True, gc=False):
    """The trend of one asset's balance over a window.

    Attributes:
        asset: the asset.
        trend_direction: ``"increasing"``, ``"decreasing"`` or ``"stable"``.
        trend_strength: R² of the least-squares line, in ``[0, 1]``.
        slope_per_hour: slope of that line, in balance units per hour (float).
        volatility: standard deviation of the successive changes over the
            window's mean ``|balance|``, as a fraction; ``None`` with fewer
            than two changes or an all-zero window.
        change: ``end_balance - start_balance``, exact.
        change_percent: ``change`` in percent of ``|start_balance|``; ``None``
            when the start balance is zero.
        points: number of recorded balances in the window.
        start_time: timestamp of the first point (Unix seconds).
        end_time: timestamp of the last point.
        start_balance: balance of the first point.
        end_balance: balance of the last point.
        analysis_hours: the window length asked for.
    """

    asset: str
    trend_direction: Direction
    trend_strength: float
    slope_per_hour: float
    volatility: float | None
    change: Decimal
    change_percent: float | None
    points: int
    start_time: float
    end_time: float
    start_balance: Decimal
    end_balance: Decimal
    analysis_hours: float


def analyze_trend(
    asset: str,
    timestamps: Sequence[float],
    balances: Sequence[Decimal],
    *,
    analysis_hours: float,
    now: float,
    stable_threshold_percent: float = DEFAULT_STABLE_THRESHOLD_PERCENT,
) -> TrendAnalysis | None:
    """Trend of ``balances`` over the ``analysis_hours`` before ``now``.

    Args:
        asset: the asset (copied into the result).
        timestamps: Unix seconds of each balance, in non-decreasing order (as
            :meth:`~balance_manager.core.timeline.AssetTimeline.series` gives them).
        balances: the balances, one per timestamp.
        analysis_hours: window length; points with ``timestamp >= now -
            analysis_hours * 3600`` are used.
        now: the current time (Unix seconds).
        stable_threshold_percent: largest fitted move, in percent of the mean
            ``|balance|``, still called ``"stable"``.

    Returns:
        The analysis, or ``None`` when the window holds fewer than 2 points
        (one point has no trend; two already define a line).

    Raises:
        ConfigError: ``analysis_hours`` is not positive, ``stable_threshold_percent``
            is negative, or the two sequences differ in length.
    """
    _check_arguments(analysis_hours, stable_threshold_percent, timestamps, balances)
    first = bisect_left(timestamps, now - analysis_hours * _SECONDS_PER_HOUR)
    window = balances[first:]
    if len(window) < 2:
        return None
    ys, exponent = _as_floats(window)
    return _analyze(
        asset,
        list(timestamps[first:]),
        ys,
        exponent,
        start_balance=window[0],
        end_balance=window[-1],
        analysis_hours=analysis_hours,
        stable_threshold_percent=stable_threshold_percent,
    )


def analyze_float_series(
    asset: str,
    timestamps: Sequence[float],
    values: Sequence[float],
    *,
    start_balance: Decimal,
    end_balance: Decimal,
    analysis_hours: float,
    stable_threshold_percent: float = DEFAULT_STABLE_THRESHOLD_PERCENT,
) -> TrendAnalysis | None:
    """:func:`analyze_trend` on a window already cut and already converted to floats.

    The fast path for :class:`~balance_manager.core.timeline.AssetTimeline`,
    whose int64 amount column converts to floats far faster than ``Decimal``
    objects do. The exact ``change`` comes from ``start_balance`` and
    ``end_balance``, which must be the first and last balances of the window.

    Args:
        asset: the asset.
        timestamps: Unix seconds of each value, non-decreasing, all in the window.
        values: the balances as finite floats, within ±1e300.
        start_balance: exact balance of the first point.
        end_balance: exact balance of the last point.
        analysis_hours: the window length (copied into the result).
        stable_threshold_percent: see :func:`analyze_trend`.

    Returns:
        The analysis, or ``None`` with fewer than 2 points.

    Raises:
        ConfigError: as :func:`analyze_trend`.
    """
    _check_arguments(analysis_hours, stable_threshold_percent, timestamps, values)
    if len(values) < 2:
        return None
    return _analyze(
        asset,
        list(timestamps),
        values,
        0,
        start_balance=start_balance,
        end_balance=end_balance,
        analysis_hours=analysis_hours,
        stable_threshold_percent=stable_threshold_percent,
    )


def _check_arguments(
    analysis_hours: float,
    stable_threshold_percent: float,
    timestamps: Sequence[float],
    values: Sequence[object],
) -> None:
    if not analysis_hours > 0:
        raise ConfigError("analysis_hours", analysis_hours, "must be a positive number of hours")
    if not stable_threshold_percent >= 0:
        raise ConfigError(
            "stable_threshold_percent", stable_threshold_percent, "must not be negative"
        )
    if len(timestamps) != len(values):
        raise ConfigError(
            "balances", len(values), f"must have one balance per timestamp ({len(timestamps)})"
        )


def _analyze(
    asset: str,
    xs: list[float],
    ys: Sequence[float],
    exponent: int,
    *,
    start_balance: Decimal,
    end_balance: Decimal,
    analysis_hours: float,
    stable_threshold_percent: float,
) -> TrendAnalysis:
    """The regression, direction and volatility of a window of at least 2 points."""
    count = len(xs)
    mean_x = math.fsum(xs) / count
    mean_y = math.fsum(ys) / count
    dx = [x - mean_x for x in xs]
    dy = [y - mean_y for y in ys]
    sxx = sum(map(mul, dx, dx))
    syy = sum(map(mul, dy, dy))
    sxy = sum(map(mul, dx, dy))

    slope = sxy / sxx if sxx > 0 else 0.0  # (scaled) balance units per second
    strength = 0.0
    if sxx > 0 and syy > 0:
        # (sxy/sxx)*(sxy/syy) rather than sxy²/(sxx·syy): no overflow of the product.
        strength = min(1.0, max(0.0, (sxy / sxx) * (sxy / syy)))
    fitted_move = abs(slope) * (xs[-1] - xs[0])
    mean_abs = math.fsum(map(abs, ys)) / count
    direction: Direction = "stable"
    if syy > 0 and fitted_move > stable_threshold_percent / 100.0 * mean_abs:
        direction = "increasing" if slope > 0 else "decreasing"

    change = difference(end_balance, start_balance)
    return TrendAnalysis(
        asset=asset,
        trend_direction=direction,
        trend_strength=strength,
        slope_per_hour=_unscale(slope * _SECONDS_PER_HOUR, exponent),
        volatility=float_volatility(ys),
        change=change,
        change_percent=_percent(change, start_balance),
        points=count,
        start_time=xs[0],
        end_time=xs[-1],
        start_balance=start_balance,
        end_balance=end_balance,
        analysis_hours=float(analysis_hours),
    )


def volatility(balances: Sequence[Decimal]) -> float | None:
    """How large the successive changes of ``balances`` are, next to their usual level.

    The sample standard deviation of the changes ``b[i] - b[i-1]``, divided by
    the mean ``|b|`` of the series, as a fraction (0.01 = 1 %). Unlike a
    standard deviation of relative steps ``(b[i] - b[i-1]) / |b[i-1]|``, it
    stays meaningful when a balance comes close to zero (see the module docs);
    it never exceeds ``2n / sqrt(n - 2)`` for ``n`` balances.

    Returns:
        The volatility, or ``None`` with fewer than two changes (three
        balances) or when every balance is zero.
    """
    if len(balances) < 3:
        return None
    ys, _ = _as_floats(balances)
    return float_volatility(ys)


def float_volatility(ys: Sequence[float]) -> float | None:
    """:func:`volatility` of balances already converted to floats (within ±1e300)."""
    count = len(ys) - 1
    if count < 2:
        return None
    level = math.fsum(map(abs, ys)) / len(ys)
    if not level:
        return None
    steps = [y - p for p, y in pairwise(ys)]
    mean = math.fsum(steps) / count
    # Relative to the level before squaring: no overflow for balances near 1e300.
    deviations = [(step - mean) / level for step in steps]
    return math.sqrt(sum(map(mul, deviations, deviations)) / (count - 1))


def _as_floats(balances: Sequence[Decimal]) -> tuple[list[float], int]:
    """Balances as floats, and the power of ten they were divided by to fit."""
    ys = [float(b) for b in balances]
    top = max(map(abs, ys))
    if _FLOAT_TOO_SMALL <= top <= _FLOAT_TOO_BIG or not any(balances):
        return ys, 0
    exponent = max(b.adjusted() for b in balances if b)
    return [float(b.scaleb(-exponent)) for b in balances], exponent


def _percent(change: Decimal, start: Decimal) -> float | None:
    """``change`` in percent of ``|start|`` (``None`` for a zero start)."""
    if not start:
        return None
    try:
        return float(change / abs(start)) * 100.0
    except ArithmeticError:  # a ratio beyond Decimal's exponent range
        return math.copysign(math.inf, change)


def _unscale(value: float, exponent: int) -> float:
    """``value * 10**exponent``, saturating to ±inf or 0 instead of raising."""
    if not exponent or not value:
        return value
    try:
        return value * 10.0**exponent
    except OverflowError:
        return math.copysign(math.inf, value) if exponent > 0 else 0.0
