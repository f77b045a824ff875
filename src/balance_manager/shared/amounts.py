"""Exact amounts as text for Redis: one canonical decimal spelling (sans-I/O).

Redis's Lua numbers are doubles: ``tonumber("9007199254740993") + 1`` loses the
3. So amounts never travel to Redis as numbers. Every amount is written in one
canonical decimal spelling (:func:`encode_amount`), and the scripts do their
sums and comparisons digit by digit on that text (``shared/lua.py``), exactly,
whatever the size of the number.

The canonical spelling, which the scripts also check:

* plain digits, never an exponent (``1E+3`` is ``1000``, ``1e-08`` is ``0.00000001``);
* no leading zeros in the integer part (``0`` alone for zero), no trailing
  zeros in the fraction, no dot without a fraction;
* a ``-`` for negatives only, never ``-0``.

One value has exactly one spelling, so ``encode_amount(a) == encode_amount(b)``
if and only if ``a == b``.
"""

from __future__ import annotations

import re
from decimal import Decimal

from balance_manager.core.amounts import to_amount
from balance_manager.exceptions import InvalidAmountError

__all__ = [
    "AMOUNT_PATTERN",
    "MAX_AMOUNT_DIGITS",
    "decode_amount",
    "encode_amount",
    "is_canonical",
]

#: What a canonical amount looks like (the scripts check the same shape).
AMOUNT_PATTERN = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?")

#: The most digits an amount may have in Redis (integer and fraction digits
#: together): far beyond any balance, small enough that no script works on
#: a megabyte of digits.
MAX_AMOUNT_DIGITS = 80


def encode_amount(value: object, *, name: str = "amount") -> str:
    """The canonical spelling of an exact amount (``str``, ``int`` or ``Decimal``; never a float).

    Raises:
        InvalidAmountError: ``value`` is not a finite exact amount, or has more
            than :data:`MAX_AMOUNT_DIGITS` digits written out.
        FloatAmountError: ``value`` is a float.
    """
    amount = to_amount(value, name=name)
    sign, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int):  # pragma: no cover - to_amount refuses NaN and inf
        raise InvalidAmountError(name, value, "must be finite")
    text = "".join(map(str, digits)).lstrip("0")
    if not text:
        return "0"
    if exponent >= 0:
        integer, fraction = text + "0" * exponent, ""
    else:
        cut = len(text) + exponent
        if cut > 0:
            integer, fraction = text[:cut], text[cut:]
        else:
            integer, fraction = "", "0" * -cut + text
        fraction = fraction.rstrip("0")
    integer = integer or "0"
    if len(integer) + len(fraction) > MAX_AMOUNT_DIGITS:
        raise InvalidAmountError(
            name, value, f"has more than {MAX_AMOUNT_DIGITS} digits written out"
        )
    body = f"{integer}.{fraction}" if fraction else integer
    return f"-{body}" if sign and body != "0" else body


def is_canonical(text: object) -> bool:
    """Whether ``text`` is an amount in the canonical spelling (never ``-0``)."""
    return (
        isinstance(text, str)
        and len(text) <= MAX_AMOUNT_DIGITS + 2
        and AMOUNT_PATTERN.fullmatch(text) is not None
        and text != "-0"
    )


def decode_amount(text: object, *, name: str = "amount") -> Decimal:
    """The exact ``Decimal`` of a canonical amount read back from Redis.

    Raises:
        InvalidAmountError: ``text`` is not a canonical amount.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    if not is_canonical(text):
        raise InvalidAmountError(name, text, "is not a canonical decimal amount")
    return Decimal(str(text))
