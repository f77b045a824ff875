"""Robust statistics for the anomaly rule: median, median absolute deviation, a robust score.

A balance change is "far outside the asset's recent behaviour" when its
distance from the median of recent changes is many times their typical
spread. The spread is the **median absolute deviation** (MAD): the median of
``|change - median|``. Unlike the standard deviation it is not dragged up by
the very outliers it is meant to find (one withdrawal of 100x the usual size
moves a standard deviation a lot, the MAD hardly at all).

The score is ``|x - median| / (1.4826 * MAD)``: for normally distributed
changes ``1.4826 * MAD`` estimates the standard deviation, so the score reads
like a z-score (this is the "modified z-score" of Iglewicz and Hoaglin, who
suggest 3.5 as an outlier mark; balances move in bursts, so the alert's
default is higher). When more than half of the recent changes are equal the
MAD is 0; the spread is then ``1.2533 * mean absolute deviation`` (the same
scaling for the mean deviation), and when that is 0 too (every recent change
identical) there is no spread to judge by and nothing is scored.

Everything is exact ``Decimal`` arithmetic; the score is a ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["MAD_TO_SIGMA", "MEAN_AD_TO_SIGMA", "RobustScore", "mad", "median", "robust_score"]

#: ``1 / Φ⁻¹(3/4)``: MAD times this estimates the standard deviation of normal data.
MAD_TO_SIGMA = Decimal("1.4826")
#: ``√(π/2)``: the mean absolute deviation times this estimates it.
MEAN_AD_TO_SIGMA = Decimal("1.2533")

_TWO = Decimal(2)


def median(values: Sequence[Decimal]) -> Decimal:
    """The median of ``values`` (the mean of the two middle ones for an even count).

    Raises:
        ValueError: ``values`` is empty.
    """
    if not values:
        raise ValueError("the median of no values is undefined")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / _TWO


def mad(values: Sequence[Decimal], center: Decimal | None = None) -> Decimal:
    """The median absolute deviation of ``values`` around ``center`` (default: their median).

    Raises:
        ValueError: ``values`` is empty.
    """
    if center is None:
        center = median(values)
    return median([abs(value - center) for value in values])


@dataclass(frozen=True, slots=True)
class RobustScore:
    """How far one value lies from a sample, in robust standard deviations.

    Attributes:
        score: ``|value - median| / scale``.
        median: the sample's median.
        scale: the spread used: ``1.4826 * MAD``, or ``1.2533 * mean absolute
            deviation`` when the MAD is 0.
        method: ``"mad"`` or ``"mean_absolute_deviation"``: which spread was used.
    """

    score: Decimal
    median: Decimal
    scale: Decimal
    method: str


def robust_score(value: Decimal, sample: Sequence[Decimal]) -> RobustScore | None:
    """Score ``value`` against ``sample`` (see the module docs); ``None`` when ``sample``
    has no spread at all (empty, or every value equal)."""
    if not sample:
        return None
    center = median(sample)
    deviations = [abs(each - center) for each in sample]
    spread = median(deviations)
    if spread:
        scale, method = MAD_TO_SIGMA * spread, "mad"
    else:
        mean = sum(deviations, Decimal(0)) / len(deviations)
        if not mean:
            return None
        scale, method = MEAN_AD_TO_SIGMA * mean, "mean_absolute_deviation"
    return RobustScore(abs(value - center) / scale, center, scale, method)
