"""Tests for balance_manager.core.changes (significance thresholds, exact differences)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.changes import ChangeDetector, difference, is_significant
from balance_manager.exceptions import ConfigError, FloatAmountError

amounts = st.decimals(
    min_value=Decimal("-1e15"),
    max_value=Decimal("1e15"),
    allow_nan=False,
    allow_infinity=False,
    places=10,
)
thresholds = st.decimals(
    min_value=Decimal(0), max_value=Decimal("1e6"), allow_nan=False, allow_infinity=False, places=4
)


def test_small_relative_change_is_not_significant() -> None:
    """0.05 % of the old balance is below the default 0.1 % threshold."""
    assert not is_significant(
        Decimal(1000), Decimal("1000.5"), absolute=Decimal(0), percent=Decimal("0.1")
    )


def test_change_at_exactly_the_percent_threshold_is_significant() -> None:
    """The relative test is inclusive: exactly 0.1 % counts."""
    assert is_significant(Decimal(1000), Decimal(1001), absolute=Decimal(0), percent=Decimal("0.1"))


def test_absolute_threshold_must_also_pass() -> None:
    """A large relative change below the absolute threshold is not significant."""
    assert not is_significant(
        Decimal("0.01"), Decimal("0.02"), absolute=Decimal(1), percent=Decimal(0)
    )
    assert is_significant(Decimal("0.01"), Decimal("1.01"), absolute=Decimal(1), percent=Decimal(0))


def test_no_change_is_never_significant_even_with_zero_thresholds() -> None:
    """An unchanged balance is not a change, whatever the thresholds."""
    assert not is_significant(Decimal(5), Decimal("5.000"), absolute=Decimal(0), percent=Decimal(0))
    assert not is_significant(None, Decimal(0), absolute=Decimal(0), percent=Decimal(0))


def test_any_move_away_from_zero_or_none_counts_relatively() -> None:
    """From zero or from no value, only the absolute threshold applies."""
    assert is_significant(Decimal(0), Decimal("1e-8"), absolute=Decimal(0), percent=Decimal(50))
    assert is_significant(None, Decimal("1e-8"), absolute=Decimal(0), percent=Decimal(50))
    assert not is_significant(None, Decimal("1e-8"), absolute=Decimal(1), percent=Decimal(50))


def test_difference_is_exact_beyond_the_default_precision() -> None:
    """1e20 - 1e-20 keeps all 41 digits instead of rounding to 28."""
    result = difference(Decimal("1e20"), Decimal("1e-20"))
    assert result == Decimal("99999999999999999999.99999999999999999999")
    assert difference(Decimal(3), None) == Decimal(3)


@given(old=amounts, new=amounts, absolute=thresholds, percent=thresholds)
def test_significance_matches_the_definition(
    old: Decimal, new: Decimal, absolute: Decimal, percent: Decimal
) -> None:
    """is_significant agrees with the definition computed with exact fractions."""
    delta = abs(Fraction(new) - Fraction(old))
    expected = delta > 0 and delta >= Fraction(absolute)
    if expected and old != 0:
        expected = delta / abs(Fraction(old)) * 100 >= Fraction(percent)
    assert is_significant(old, new, absolute=absolute, percent=percent) is expected


@given(old=amounts, new=amounts, percent=thresholds)
def test_significance_is_symmetric_in_sign(old: Decimal, new: Decimal, percent: Decimal) -> None:
    """Negating both balances does not change whether the change is significant."""
    assert is_significant(old, new, absolute=Decimal(0), percent=percent) is is_significant(
        -old, -new, absolute=Decimal(0), percent=percent
    )


@given(old=amounts, new=amounts, low=thresholds, high=thresholds)
def test_raising_a_threshold_never_makes_a_change_significant(
    old: Decimal, new: Decimal, low: Decimal, high: Decimal
) -> None:
    """Significance is monotone: stricter thresholds flag a subset of changes."""
    low, high = min(low, high), max(low, high)
    if is_significant(old, new, absolute=high, percent=high):
        assert is_significant(old, new, absolute=low, percent=low)


def test_detector_from_config_uses_the_config_thresholds() -> None:
    """ChangeDetector.from_config reads change_threshold_absolute and _percent."""
    config = BalanceManagerConfig(
        history_db_path=None,
        change_threshold_absolute=Decimal(10),
        change_threshold_percent=Decimal(5),
    )
    detector = ChangeDetector.from_config(config)
    assert (detector.absolute, detector.percent) == (Decimal(10), Decimal(5))
    assert not detector(Decimal(100), Decimal(109))  # below both thresholds
    assert detector.is_significant(Decimal(100), Decimal(110))


def test_detector_refuses_floats_and_negative_thresholds() -> None:
    """Thresholds must be exact and non-negative."""
    with pytest.raises(FloatAmountError):
        ChangeDetector(0.1, 1)  # type: ignore[arg-type]  # the float is the point of the test
    with pytest.raises(ConfigError, match="change_threshold_percent"):
        ChangeDetector(0, "-1")


@given(
    old=st.decimals(
        min_value=Decimal("-1e15"),
        max_value=Decimal("1e15"),
        places=10,
        allow_nan=False,
        allow_infinity=False,
    ),
    new=st.decimals(
        min_value=Decimal("-1e15"),
        max_value=Decimal("1e15"),
        places=10,
        allow_nan=False,
        allow_infinity=False,
    ),
    percent=st.decimals(
        min_value=Decimal("0"),
        max_value=Decimal("500"),
        places=4,
        allow_nan=False,
        allow_infinity=False,
    ),
)
def test_magnitude_shortcut_agrees_with_exact_arithmetic(
    old: Decimal, new: Decimal, percent: Decimal
) -> None:
    """The order-of-magnitude shortcut decides exactly as the full exact comparison."""
    from balance_manager.core.changes import EXACT_CONTEXT

    delta = abs(EXACT_CONTEXT.subtract(new, old))
    expected = bool(delta) and (
        not old
        or EXACT_CONTEXT.multiply(delta, Decimal(100)) >= EXACT_CONTEXT.multiply(percent, abs(old))
    )
    assert is_significant(old, new, absolute=Decimal(0), percent=percent) is expected
