"""Exact amounts at the public edge, and the one way they are rounded and shown.

Every amount that enters balance-manager goes through :func:`to_amount`, which
accepts ``Decimal``, ``int`` and ``str`` and refuses ``float`` (inexact),
``bool`` (an ``int`` by accident), NaN and infinities, naming the argument in
the error so the caller knows which one was wrong.

Two helpers serve the whole package:

* :func:`round_to` rounds to ``n`` decimals (the exchange's ledger or price
  decimals), in a context wide enough that a large amount never fails;
* :func:`display_amount` writes an amount for people: plain digits (never
  ``0E-10`` or ``1E-8``), no noise zeros, at least the asset's display
  decimals when known, and never a digit hidden by rounding. Every table, log
  line and ``repr`` uses it; JSON output keeps the exact strings instead.
"""

from __future__ import annotations

from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from typing import TypeAlias

from balance_manager.exceptions import FloatAmountError, InvalidAmountError

__all__ = [
    "EXACT_CONTEXT",
    "ZERO",
    "AmountLike",
    "decimal_places",
    "display_amount",
    "round_to",
    "significant_places",
    "to_amount",
]

#: What the public API accepts as an amount.
AmountLike: TypeAlias = Decimal | int | str

#: The shared zero; most holds are zero, so sharing one object saves memory.
ZERO = Decimal(0)

#: Arithmetic context for sums, differences and products of amounts.
#:
#: The default context keeps 28 significant digits, so ``Decimal("1e20") -
#: Decimal("1e-20")`` would be rounded. 400 digits make the result exact for any
#: amounts of up to 28 significant digits whose exponents are within ~370 of
#: each other: every balance an exchange can report. The bound (rather than
#: ``MAX_PREC``) keeps a hostile ``1e999999999`` from allocating gigabytes.
#: Beyond 400 digits a result is rounded rather than raised: such an amount is
#: absurd, and the ``unrealistic_balance`` and ``precision_overflow`` rules
#: report it, while an exception here would stop a stream.
EXACT_CONTEXT = Context(
    prec=400,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


def to_amount(value: object, *, name: str) -> Decimal:
    """Convert ``value`` to a finite ``Decimal`` or raise an error naming ``name``.

    Args:
        value: a ``Decimal``, ``int`` or ``str`` (such as ``"0.1"`` or ``"1e-8"``).
        name: the argument's name, used in the error message.

    Raises:
        FloatAmountError: ``value`` is a ``float`` (inexact by nature).
        InvalidAmountError: ``value`` is of another type, unparsable, NaN or infinite.
    """
    if type(value) is Decimal:
        result = value
    elif isinstance(value, bool):
        raise InvalidAmountError(name, value, "a bool is not an amount")
    elif isinstance(value, float):
        raise FloatAmountError(name, value)
    elif isinstance(value, Decimal | int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidAmountError(name, value, "not a decimal number") from None
    else:
        raise InvalidAmountError(
            name, value, f"expected Decimal, int or str, got {type(value).__name__}"
        )
    if not result.is_finite():
        raise InvalidAmountError(name, value, "amounts must be finite (no NaN or infinity)")
    return result


def decimal_places(value: Decimal) -> int:
    """Number of digits after the decimal point as written (``Decimal("1.50")`` → 2).

    Integers and exponent forms with a positive exponent give 0.
    """
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):  # 'n', 'N' or 'F': not finite
        raise InvalidAmountError("value", value, "amounts must be finite (no NaN or infinity)")
    return -exponent if exponent < 0 else 0


def significant_places(value: Decimal) -> int:
    """Decimal places of ``value`` once trailing zeros are dropped.

    ``Decimal("1.50")`` → 1, ``Decimal("0.12340000000")`` → 4, ``Decimal("100")``
    → 0, ``Decimal("1.0E-7")`` → 7. Exact for any number of digits (unlike
    ``Decimal.normalize()``, which rounds to the context precision).
    """
    if not value:
        return 0
    # str() is the fast path (about 4x cheaper than as_tuple()); plain notation
    # is what str() gives for every amount with an adjusted exponent >= -6.
    text = str(value)
    if "E" not in text and "e" not in text:  # 'e' if the context sets capitals=0
        point = text.find(".")
        if point < 0:
            return 0
        return len(text.rstrip("0")) - point - 1
    places = decimal_places(value)
    if not places:
        return 0
    trailing = 0
    for digit in reversed(value.as_tuple().digits):
        if digit:
            break
        trailing += 1
    return max(0, places - trailing)


def round_to(value: Decimal, decimals: int, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """``value`` rounded to exactly ``decimals`` places (``ROUND_HALF_EVEN`` by default).

    >>> round_to(Decimal("21.905"), 2)
    Decimal('21.90')

    The precision is widened to the value's own digits, so rounding a
    30-digit balance never raises ``InvalidOperation`` as ``Decimal.quantize``
    does in the default 28-digit context.

    Raises:
        InvalidAmountError: ``decimals`` is negative or ``value`` is not finite.
    """
    if decimals < 0:
        raise InvalidAmountError("decimals", decimals, "must be >= 0")
    if not value.is_finite():
        raise InvalidAmountError("value", value, "amounts must be finite (no NaN or infinity)")
    context = Context(prec=max(28, value.adjusted() + decimals + 2), rounding=rounding)
    return value.quantize(Decimal(1).scaleb(-decimals), context=context)


def display_amount(value: Decimal, decimals: int | None = None) -> str:
    """``value`` written for people: plain, exact, at the asset's display precision.

    Args:
        value: the amount.
        decimals: the asset's display decimals (Kraken's ``display_decimals``),
            if known: at least that many places are shown, so one asset's
            amounts line up and read alike whatever source they came from.
            Digits beyond them are shown when they are not zero: a view never
            rounds a balance away.

    Without ``decimals``, trailing zeros are dropped. Never an exponent, never
    ``-0``:

    >>> display_amount(Decimal("0E-10")), display_amount(Decimal("1.2435000000"), 5)
    ('0', '1.24350')
    >>> display_amount(Decimal("25435.2100"), 2), display_amount(Decimal("1E-8"))
    ('25435.21', '0.00000001')
    """
    if not value.is_finite():
        return str(value)
    text = f"{value:f}"  # every digit as stored, plain notation
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    if decimals is not None and len(fraction) < decimals:
        fraction = fraction.ljust(decimals, "0")
    if whole in ("-0", "0") and not fraction.strip("0"):
        whole = "0"  # zero has no sign
    return f"{whole}.{fraction}" if fraction else whole
