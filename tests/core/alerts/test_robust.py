"""Tests of balance_manager.core.alerts.robust: median, MAD and the robust score, exact."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from balance_manager.core.alerts.robust import MAD_TO_SIGMA, mad, median, robust_score

D = Decimal
amounts = st.decimals(min_value=-(10**6), max_value=10**6, places=8, allow_nan=False)


def test_median_of_odd_and_even_counts() -> None:
    """The middle value, or the mean of the two middle values, exactly."""
    assert median([D(3), D(1), D(2)]) == D(2)
    assert median([D("0.1"), D("0.2"), D("0.4"), D("0.3")]) == D("0.25")
    with pytest.raises(ValueError, match="no values"):
        median([])


def test_mad_is_not_dragged_by_an_outlier() -> None:
    """One huge value moves the MAD hardly at all (the point of using it)."""
    usual = [D(v) for v in ("-2", "-1", "0", "1", "2", "-1", "1")]
    assert mad(usual) == D(1)
    assert mad([*usual, D(1_000_000)]) == D("1.5")  # the standard deviation: about 330,000


def test_score_of_an_outlier_and_an_ordinary_value() -> None:
    """The score is the distance from the median over 1.4826 * MAD."""
    sample = [D(v) for v in ("-2", "-1", "0", "1", "2", "-1", "1")]
    far = robust_score(D(100), sample)
    assert far is not None
    assert far.method == "mad"
    assert far.median == D(0)
    assert far.score == D(100) / MAD_TO_SIGMA
    near = robust_score(D(1), sample)
    assert near is not None
    assert near.score < 1


def test_zero_mad_falls_back_to_the_mean_absolute_deviation() -> None:
    """Mostly equal changes: the spread comes from the mean absolute deviation instead."""
    sample = [D(5)] * 8 + [D(6), D(4)]
    scored = robust_score(D(50), sample)
    assert scored is not None
    assert scored.method == "mean_absolute_deviation"
    assert scored.scale == D("1.2533") * D("0.2")


def test_no_spread_scores_nothing() -> None:
    """Identical changes, or none: no spread to judge by, no score."""
    assert robust_score(D(7), [D(5)] * 10) is None
    assert robust_score(D(7), []) is None


@given(st.lists(amounts, min_size=1, max_size=40), amounts, amounts)
def test_score_does_not_depend_on_shift(
    sample: list[Decimal], value: Decimal, shift: Decimal
) -> None:
    """Shifting every value by the same amount leaves the score unchanged (exact arithmetic)."""
    before = robust_score(value, sample)
    after = robust_score(value + shift, [each + shift for each in sample])
    if before is None:
        assert after is None
    else:
        assert after is not None
        assert after.score == before.score
        assert after.median == before.median + shift
