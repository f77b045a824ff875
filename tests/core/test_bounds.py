"""Tests of balance_manager.core.bounds: one validator per kind of number, with sane ranges."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from balance_manager.core.bounds import (
    DAY,
    HOUR,
    MAX_SECONDS,
    MIN_SECONDS,
    YEAR,
    Bound,
    amount,
    count,
    describe_seconds,
    hours,
    seconds,
)
from balance_manager.exceptions import ConfigError


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (0.5, 0.5), (Decimal("2.5"), 2.5), (MIN_SECONDS, MIN_SECONDS), (YEAR, YEAR)],
)
def test_seconds_accepts_numbers_in_range_as_floats(value: object, expected: float) -> None:
    """int, float and Decimal within [1 ms, 1 year] come back as floats."""
    result = seconds("timeout", value)
    assert result == expected
    assert type(result) is float


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (10**400, "between"),
        (-(10**400), "between"),
        (Decimal("sNaN"), "finite"),
        (Decimal("NaN"), "finite"),
        (Decimal("Infinity"), "finite"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        (0, "between"),
        (1e-9, "between"),
        (math.nextafter(MAX_SECONDS, math.inf), "between"),
        (Decimal("1e999999"), "between"),
        (True, "number of seconds"),
        ("5", "number of seconds"),
        (None, "number of seconds"),
    ],
)
def test_seconds_refuses_by_name(value: object, reason: str) -> None:
    """Overflowing ints, any NaN, infinities, out-of-range and non-numbers: ConfigError by name."""
    with pytest.raises(ConfigError, match=reason) as info:
        seconds("timeout", value)
    assert info.value.option == "timeout"


def test_seconds_message_gives_the_range_in_words() -> None:
    """The error shows the range as durations in words."""
    with pytest.raises(ConfigError) as info:
        seconds("flush", 1e-9, minimum=0.01, maximum=HOUR)
    assert "must be a number of seconds between 10 ms and 1 h" in str(info.value)


def test_hours_uses_hours_in_the_message() -> None:
    """hours() checks a number of hours and says so."""
    assert hours("window", 2, minimum=1, maximum=24) == 2.0
    with pytest.raises(ConfigError, match="must be a number of hours between 1 h and 1 day"):
        hours("window", 25, minimum=1, maximum=24)


@given(st.one_of(st.integers(), st.floats(), st.decimals(), st.text(max_size=5), st.none()))
def test_seconds_never_raises_anything_but_config_error(value: object) -> None:
    """Whatever the value, seconds() returns a float in range or raises ConfigError."""
    refused: ConfigError | None = None
    try:
        result = seconds("x", value)
    except ConfigError as exc:
        refused = exc
    if refused is None:
        assert MIN_SECONDS <= result <= MAX_SECONDS
    else:
        assert refused.option == "x"


def test_count_checks_type_and_range() -> None:
    """count() takes ints in range; bools, floats and out-of-range ints are refused."""
    assert count("n", 5, minimum=0, maximum=10) == 5
    for bad in (True, 5.0, "5", -1, 11, 10**5000):
        with pytest.raises(ConfigError) as info:
            count("n", bad, minimum=0, maximum=10)
        assert info.value.option == "n"


def test_amount_is_exact_and_bounded() -> None:
    """amount() gives an exact Decimal (a float by its repr) within range and 28 places."""
    assert amount("a", 0.1, minimum=Decimal(0), maximum=Decimal(1)) == Decimal("0.1")
    assert amount("a", "1e-28", minimum=Decimal(0), maximum=Decimal(1)) == Decimal("1e-28")
    for bad, reason in [
        ("-1", "between"),
        ("2", "between"),
        ("1e-29", "28 decimal places"),
        (Decimal("sNaN"), "finite"),
        ("abc", "not a decimal number"),
        (True, "bool"),
    ]:
        with pytest.raises(ConfigError, match=reason) as info:
            amount("a", bad, minimum=Decimal(0), maximum=Decimal(1))
        assert info.value.option == "a"


@pytest.mark.parametrize(
    ("bound", "text"),
    [
        (Bound("seconds", 0.01, DAY), "10 ms – 1 day"),
        (Bound("seconds", 0.1, YEAR), "100 ms – 1 year"),
        (Bound("hours", 0.01, 10 * YEAR / HOUR), "36 s – 10 years"),
        (Bound("count", 1, 1_000_000), "1 – 1,000,000"),
        (Bound("amount", 0, 10**18), "0 – 1e18"),
        (Bound("amount", 0, 100, "%"), "0 – 100 %"),
    ],
)
def test_bound_describes_its_range_for_people(bound: Bound, text: str) -> None:
    """describe() writes durations in their largest whole unit and big powers of ten short."""
    assert bound.describe() == text


def test_bound_check_dispatches_on_its_kind() -> None:
    """A Bound checks with the validator of its kind and the option's name."""
    assert Bound("seconds", 1, 10).check("t", 2) == 2.0
    assert Bound("count", 1, 10).check("n", 2) == 2
    assert Bound("amount", 0, 10).check("a", "2.5") == Decimal("2.5")
    with pytest.raises(ConfigError) as info:
        Bound("hours", 1, 10).check("h", 11)
    assert info.value.option == "h"


def test_describe_seconds_falls_back_to_milliseconds() -> None:
    """A duration that is no whole number of a larger unit is written in ms."""
    assert describe_seconds(1.5) == "1,500 ms"
    assert describe_seconds(2 * DAY) == "2 days"
