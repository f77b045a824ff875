"""Tests of balance_manager.core.amounts: exact amounts at the public edge."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, strategies as st

from balance_manager.core.amounts import (
    ZERO,
    decimal_places,
    display_amount,
    round_to,
    to_amount,
)
from balance_manager.exceptions import (
    BalanceManagerError,
    FloatAmountError,
    InvalidAmountError,
)


@pytest.mark.parametrize("value", [0.1, 1.0, -2.5, 0.0])
def test_float_is_refused_as_inexact(value: float) -> None:
    """A float raises FloatAmountError whose message says floats are inexact and names the field."""
    with pytest.raises(FloatAmountError) as info:
        to_amount(value, name="hold_trade")
    message = str(info.value)
    assert "inexact" in message
    assert "hold_trade" in message
    assert info.value.field == "hold_trade"
    assert info.value.value == value


def test_float_error_is_both_type_and_value_error() -> None:
    """FloatAmountError can be caught as TypeError, ValueError and InvalidAmountError."""
    with pytest.raises(TypeError):
        to_amount(0.5, name="x")
    with pytest.raises(ValueError, match="inexact"):
        to_amount(0.5, name="x")
    with pytest.raises(InvalidAmountError):
        to_amount(0.5, name="x")


def test_float_error_suggests_the_exact_spelling() -> None:
    """The float message suggests the Decimal string the user most likely meant."""
    with pytest.raises(FloatAmountError, match=r"Decimal\('0\.1'\)"):
        to_amount(0.1, name="balance")


@pytest.mark.parametrize("value", [True, False])
def test_bool_is_refused(value: bool) -> None:
    """A bool is not an amount, though it is an int."""
    with pytest.raises(InvalidAmountError, match="bool") as info:
        to_amount(value, name="balance")
    assert not isinstance(info.value, FloatAmountError)
    assert "balance" in str(info.value)


@pytest.mark.parametrize(
    "value", ["NaN", "nan", "sNaN", "Infinity", "-inf", Decimal("NaN"), Decimal("-Infinity")]
)
def test_nan_and_infinities_are_refused(value: object) -> None:
    """NaN and infinities, as text or Decimal, raise InvalidAmountError: amounts must be finite."""
    with pytest.raises(InvalidAmountError, match="finite") as info:
        to_amount(value, name="credit")
    assert info.value.field == "credit"


@pytest.mark.parametrize("value", ["", "abc", "1,5", "0x10", "1.2.3", " "])
def test_unparsable_text_is_refused(value: str) -> None:
    """Text that is not a decimal number raises InvalidAmountError naming the field."""
    with pytest.raises(InvalidAmountError, match="not a decimal number") as info:
        to_amount(value, name="amount")
    assert "amount=" in str(info.value)


@pytest.mark.parametrize("value", [None, [1], b"1", object(), complex(1, 0)])
def test_other_types_are_refused_with_the_type_name(value: object) -> None:
    """Other types raise InvalidAmountError saying what was expected and what was given."""
    with pytest.raises(InvalidAmountError, match=type(value).__name__):
        to_amount(value, name="balance")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.1", Decimal("0.1")),
        ("  12.50  ", Decimal("12.50")),
        ("1e-8", Decimal("0.00000001")),
        ("-3", Decimal(-3)),
        (7, Decimal(7)),
        (0, ZERO),
        (10**40, Decimal(10**40)),
        (Decimal("0.0000000030"), Decimal("0.0000000030")),
    ],
)
def test_str_int_and_decimal_are_accepted_exactly(value: object, expected: Decimal) -> None:
    """str, int and Decimal convert to the exact Decimal, digits kept."""
    result = to_amount(value, name="balance")
    assert type(result) is Decimal
    assert result == expected
    assert str(result) == str(expected)


def test_decimal_input_is_returned_as_is() -> None:
    """A Decimal is returned unchanged (same object), so trailing zeros survive."""
    value = Decimal("21.9050")
    assert to_amount(value, name="balance") is value


def test_decimal_subclass_becomes_a_plain_decimal() -> None:
    """A Decimal subclass is converted to a plain Decimal with the same value."""

    class MyDecimal(Decimal):
        pass

    result = to_amount(MyDecimal("1.25"), name="balance")
    assert type(result) is Decimal
    assert result == Decimal("1.25")


def test_thirty_significant_digits_are_kept_exactly() -> None:
    """A 30-significant-digit string converts without rounding (beyond the default 28 digits)."""
    text = "123456789012345.678901234567890"
    result = to_amount(text, name="balance")
    assert str(result) == text
    assert len(result.as_tuple().digits) == 30


def test_errors_belong_to_the_one_tree() -> None:
    """Every error of to_amount is a BalanceManagerError."""
    for bad in (0.1, True, "x", None, "NaN"):
        with pytest.raises(BalanceManagerError):
            to_amount(bad, name="x")


def test_zero_is_a_shared_decimal_zero() -> None:
    """ZERO is Decimal 0."""
    assert ZERO == 0
    assert type(ZERO) is Decimal


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_finite_decimals_round_trip_through_text(value: Decimal) -> None:
    """Any finite Decimal, written as text, converts back with the same value and digits."""
    result = to_amount(str(value), name="balance")
    assert result == value
    assert result.as_tuple() == value.as_tuple()


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_every_float_is_refused(value: float) -> None:
    """No float is ever accepted, whatever its value."""
    with pytest.raises(FloatAmountError):
        to_amount(value, name="balance")


# -- decimal_places -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "places"),
    [
        ("1.50", 2),
        ("0.0000000030", 10),
        ("7328.19", 2),
        ("500", 0),
        ("1E+2", 0),
        ("1e-8", 8),
        ("-0.00", 2),
    ],
)
def test_decimal_places_counts_digits_after_the_point_as_written(text: str, places: int) -> None:
    """decimal_places() counts the written fractional digits; integers and E+ forms give 0."""
    assert decimal_places(Decimal(text)) == places


@pytest.mark.parametrize("text", ["NaN", "Infinity", "sNaN"])
def test_decimal_places_refuses_non_finite(text: str) -> None:
    """decimal_places() of NaN or infinity raises InvalidAmountError."""
    with pytest.raises(InvalidAmountError, match="finite"):
        decimal_places(Decimal(text))


def test_decimal_places_follows_decimal_arithmetic() -> None:
    """The places of a sum or product are those Decimal arithmetic gives (0.1 + 0.2 has 1)."""
    assert decimal_places(Decimal("0.1") + Decimal("0.2")) == 1
    assert decimal_places(Decimal("1.5") * Decimal("0.25")) == 3


# -- display_amount: the one way amounts are shown to people -----------------------------


@pytest.mark.parametrize(
    ("text", "decimals", "shown"),
    [
        ("0E-10", None, "0"),  # REST's 0.0000000000, as Decimal writes it
        ("-0.00", None, "0"),
        ("1.2435000000", None, "1.2435"),
        ("25435.2100", None, "25435.21"),
        ("25435.21", None, "25435.21"),
        ("1E+2", None, "100"),
        ("1E-8", None, "0.00000001"),
        ("-12.50", None, "-12.5"),
        ("123456789012345678901234567890.5", None, "123456789012345678901234567890.5"),
        ("25435.2100", 2, "25435.21"),
        ("25535.21", 2, "25535.21"),
        ("1500", 2, "1500.00"),
        ("1.2435000000", 5, "1.24350"),
        ("0E-10", 5, "0.00000"),
        ("0.000012345", 5, "0.000012345"),  # never rounded away: every digit shown
        ("25423.1355", 2, "25423.1355"),
        ("7", 0, "7"),
    ],
)
def test_display_amount_is_plain_at_the_asset_precision(
    text: str, decimals: int | None, shown: str
) -> None:
    """No exponent, no noise zeros, at least the display decimals, and never a hidden digit."""
    assert display_amount(Decimal(text), decimals) == shown


def test_display_amount_shows_one_value_one_way_whatever_its_source() -> None:
    """The same amount from REST (4 decimals) and WebSocket (as written) shows the same."""
    assert display_amount(Decimal("25435.2100"), 2) == display_amount(Decimal("25435.21"), 2)
    assert display_amount(Decimal("1.2435000000")) == display_amount(Decimal("1.2435"))


@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.one_of(st.none(), st.integers(min_value=0, max_value=12)),
)
def test_display_amount_is_exact_and_never_exponential(
    value: Decimal, decimals: int | None
) -> None:
    """What is shown reads back as the same value, and is never in exponent notation."""
    shown = display_amount(value, decimals)
    assert "E" not in shown.upper()
    assert Decimal(shown) == value
    if decimals:
        assert len(shown.partition(".")[2]) >= decimals


# -- round_to: the one way amounts are rounded to n decimals -----------------------------


@pytest.mark.parametrize(
    ("text", "decimals", "rounding", "rounded"),
    [
        ("21.905", 2, ROUND_HALF_EVEN, "21.90"),
        ("21.905", 2, ROUND_HALF_UP, "21.91"),
        ("0.34575", 4, ROUND_HALF_UP, "0.3458"),  # the simulator's cost and fee rounding
        ("0.34574", 4, ROUND_HALF_UP, "0.3457"),
        ("0.00012341", 4, ROUND_CEILING, "0.0002"),
        ("0.99999", 2, ROUND_DOWN, "0.99"),
        ("3E-9", 10, ROUND_HALF_EVEN, "3.0E-9"),
    ],
)
def test_round_to_rounds_to_n_places(text: str, decimals: int, rounding: str, rounded: str) -> None:
    """round_to gives exactly ``decimals`` places with the rounding asked for."""
    result = round_to(Decimal(text), decimals, rounding)
    assert result == Decimal(rounded)
    assert decimal_places(result) == decimals


def test_round_to_does_not_fail_on_a_value_wider_than_the_default_context() -> None:
    """30 integer digits at 10 places is beyond 28-digit precision; it still rounds exactly."""
    value = Decimal("123456789012345678901234567890.123456789012")
    assert round_to(value, 10) == Decimal("123456789012345678901234567890.1234567890")


def test_round_to_refuses_a_negative_number_of_places() -> None:
    """Negative decimals are an error naming the argument."""
    with pytest.raises(InvalidAmountError, match="decimals"):
        round_to(Decimal(1), -1)
