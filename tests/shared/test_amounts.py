"""Tests of shared/amounts.py: one exact, canonical spelling per amount."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from balance_manager.exceptions import FloatAmountError, InvalidAmountError
from balance_manager.shared.amounts import (
    MAX_AMOUNT_DIGITS,
    decode_amount,
    encode_amount,
    is_canonical,
)

decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: abs(d.adjusted()) < 30
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0"), "0"),
        (Decimal("-0"), "0"),
        (Decimal("0E-10"), "0"),
        (Decimal("1.2435000000"), "1.2435"),
        (Decimal("1E+3"), "1000"),
        (Decimal("1e-08"), "0.00000001"),
        (Decimal("-12.50"), "-12.5"),
        ("9007199254740993", "9007199254740993"),
        (7, "7"),
        (
            Decimal("123456789012345678901234567890.123456789"),
            "123456789012345678901234567890.123456789",
        ),
    ],
)
def test_encode_writes_the_canonical_spelling(value: object, text: str) -> None:
    """Each value has its one spelling: no exponent, no noise zeros, no -0."""
    assert encode_amount(value) == text
    assert is_canonical(text)


@given(decimals)
def test_round_trip_is_exact(value: Decimal) -> None:
    """decode(encode(x)) == x, and equal values share one spelling."""
    text = encode_amount(value)
    assert is_canonical(text)
    assert decode_amount(text) == value
    assert encode_amount(decode_amount(text)) == text


def test_floats_are_refused() -> None:
    """A float is refused rather than rounded into Redis."""
    with pytest.raises(FloatAmountError):
        encode_amount(0.1)


@pytest.mark.parametrize("bad", ["1e3", "01", "1.", ".5", "1.50", "-0", "+1", "", " 1", "NaN", 5])
def test_decode_refuses_what_is_not_canonical(bad: object) -> None:
    """Text that is not the canonical spelling is refused, naming it."""
    with pytest.raises(InvalidAmountError, match="canonical"):
        decode_amount(bad)


def test_too_many_digits_are_refused() -> None:
    """An amount of more digits than the scripts accept is refused at the edge."""
    with pytest.raises(InvalidAmountError, match="digits"):
        encode_amount(Decimal(10) ** MAX_AMOUNT_DIGITS)
    with pytest.raises(InvalidAmountError):
        encode_amount(Decimal("NaN"))
