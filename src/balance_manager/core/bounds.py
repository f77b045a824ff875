"""Sane ranges for numeric settings, and one validator per kind of number.

Every duration, count and threshold that balance-manager takes from a user
(the configuration, the simulator's options, the command line, the circuit
breaker and the backoff policies) is checked by one of the validators below,
so a bad value is refused the same way everywhere: a
:class:`~balance_manager.exceptions.ConfigError` naming the option and the
value, never an ``OverflowError`` (``10**400`` seconds), a ``ValueError``
(``Decimal("sNaN")``) or a setting that is accepted and then misbehaves (a
history flush every nanosecond, 10**12 decimals).

* :func:`seconds` (and :func:`hours`): a finite number of seconds (``int``,
  ``float`` or ``Decimal``) within a range, returned as a ``float``. By
  default 1 ms to a year (:data:`MIN_SECONDS`, :data:`MAX_SECONDS`).
* :func:`count`: an ``int`` (not a ``bool``) within a range.
* :func:`amount`: an exact, finite ``Decimal`` within a range, with at most
  :data:`MAX_DECIMALS` significant decimal places.

:class:`Bound` names one range of one kind; the configuration keeps a table of
them, one per option (``balance_manager.config.OPTION_BOUNDS``), which the
README's configuration table shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from balance_manager.core.amounts import significant_places, to_amount
from balance_manager.exceptions import BalanceManagerError, ConfigError

__all__ = [
    "DAY",
    "HOUR",
    "MAX_DECIMALS",
    "MAX_SECONDS",
    "MINUTE",
    "MIN_SECONDS",
    "YEAR",
    "Bound",
    "Kind",
    "amount",
    "count",
    "describe_seconds",
    "hours",
    "seconds",
]

MINUTE: Final = 60.0
HOUR: Final = 3600.0
DAY: Final = 86400.0
YEAR: Final = 365 * DAY

#: The shortest duration any setting may have: 1 ms. Shorter ones are either
#: meaningless (a timeout) or a busy loop (an interval).
MIN_SECONDS: Final = 0.001
#: The longest duration any setting may have: a year.
MAX_SECONDS: Final = YEAR
#: The most decimal places an amount may have: Python's default decimal
#: context keeps 28 significant digits, and no exchange keeps more decimals.
MAX_DECIMALS: Final = 28

#: What a :class:`Bound` checks.
Kind = Literal["seconds", "hours", "count", "amount"]

_UNITS = ((YEAR, "year"), (DAY, "day"), (HOUR, "h"), (MINUTE, "min"), (1.0, "s"), (0.001, "ms"))


def seconds(
    name: str,
    value: object,
    *,
    minimum: float = MIN_SECONDS,
    maximum: float = MAX_SECONDS,
    unit: str = "seconds",
) -> float:
    """``value`` as a ``float`` number of ``unit`` in ``[minimum, maximum]``.

    Accepts ``int``, ``float`` and ``Decimal`` (not ``bool``); compares before
    converting, so ``10**400`` and ``Decimal("sNaN")`` are refused rather
    than raising ``OverflowError`` or ``ValueError``.

    Raises:
        ConfigError: ``value`` is not such a number; ``option`` is ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ConfigError(name, value, f"must be a number of {unit}")
    if isinstance(value, Decimal) and not value.is_finite():  # is_finite() never signals
        raise ConfigError(name, value, f"must be a finite number of {unit}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(name, value, f"must be a finite number of {unit}")
    if isinstance(value, Decimal):
        # Bounds as written (Decimal("0.01"), not the binary float's expansion).
        inside = Decimal(repr(minimum)) <= value <= Decimal(repr(maximum))
    else:
        inside = minimum <= value <= maximum  # int vs float compares exactly, any size
    if not inside:
        scale = HOUR if unit == "hours" else 1.0
        raise ConfigError(
            name,
            value,
            f"must be a number of {unit} between {describe_seconds(minimum * scale)} "
            f"and {describe_seconds(maximum * scale)}",
        )
    return float(value)


def hours(name: str, value: object, *, minimum: float, maximum: float) -> float:
    """``value`` as a ``float`` number of hours in ``[minimum, maximum]`` (see :func:`seconds`).

    Raises:
        ConfigError: ``value`` is not such a number; ``option`` is ``name``.
    """
    return seconds(name, value, minimum=minimum, maximum=maximum, unit="hours")


def count(name: str, value: object, *, minimum: int, maximum: int) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (a ``bool`` is refused).

    Raises:
        ConfigError: ``value`` is not such an int; ``option`` is ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, value, "must be an integer")
    if not minimum <= value <= maximum:
        raise ConfigError(
            name, value, f"must be between {_number_text(minimum)} and {_number_text(maximum)}"
        )
    return int(value)


def amount(name: str, value: object, *, minimum: Decimal, maximum: Decimal) -> Decimal:
    """``value`` as an exact ``Decimal`` in ``[minimum, maximum]``.

    Takes what :func:`~balance_manager.core.amounts.to_amount` takes, and a
    ``float`` by its shortest repr (``0.1`` is ``Decimal("0.1")``): settings
    are typed by people, not read off the wire. At most :data:`MAX_DECIMALS`
    significant decimal places (trailing zeros do not count).

    Raises:
        ConfigError: ``value`` is not such an amount; ``option`` is ``name``.
    """
    raw = repr(value) if isinstance(value, float) else value
    try:
        exact = to_amount(raw, name=name)
    except BalanceManagerError as exc:
        raise ConfigError(name, value, getattr(exc, "reason", str(exc))) from None
    if not minimum <= exact <= maximum:
        raise ConfigError(
            name, value, f"must be between {_number_text(minimum)} and {_number_text(maximum)}"
        )
    if significant_places(exact) > MAX_DECIMALS:
        raise ConfigError(name, value, f"must have at most {MAX_DECIMALS} decimal places")
    return exact


@dataclass(frozen=True, slots=True)
class Bound:
    """An inclusive range of one kind of number, and how to check and show it.

    Attributes:
        kind: ``seconds``, ``hours``, ``count`` or ``amount`` (see the module docs).
        minimum: the smallest value allowed.
        maximum: the largest value allowed.
        unit: shown after the range of counts and amounts (``%``...), if any.
    """

    kind: Kind
    minimum: float | int | Decimal
    maximum: float | int | Decimal
    unit: str = ""

    def check(self, name: str, value: object) -> float | int | Decimal:
        """``value`` converted to the kind's type, or :class:`ConfigError` naming ``name``."""
        if self.kind == "seconds":
            return seconds(name, value, minimum=float(self.minimum), maximum=float(self.maximum))
        if self.kind == "hours":
            return hours(name, value, minimum=float(self.minimum), maximum=float(self.maximum))
        if self.kind == "count":
            return count(name, value, minimum=int(self.minimum), maximum=int(self.maximum))
        return amount(name, value, minimum=Decimal(self.minimum), maximum=Decimal(self.maximum))

    def describe(self) -> str:
        """The range for people: ``10 ms – 1 day``, ``1 – 1,000,000``, ``0 – 100 %``."""
        if self.kind in ("seconds", "hours"):
            scale = HOUR if self.kind == "hours" else 1.0
            low = describe_seconds(float(self.minimum) * scale)
            high = describe_seconds(float(self.maximum) * scale)
        else:
            low, high = _number_text(self.minimum), _number_text(self.maximum)
        return f"{low} – {high}{f' {self.unit}' if self.unit else ''}"


def describe_seconds(value: float) -> str:
    """A duration in its largest whole unit: ``0.01`` → ``10 ms``, ``86400`` → ``1 day``."""
    for size, name in _UNITS:
        units = value / size
        if units >= 1 and math.isclose(units, round(units), rel_tol=1e-9):
            whole = round(units)
            plural = "s" if whole != 1 and name in ("year", "day") else ""
            return f"{whole:,} {name}{plural}"
    return f"{_number_text(value)} s"


def _number_text(value: float | int | Decimal) -> str:
    """``1000000`` → ``1,000,000``; ``10**18`` → ``1e18``; ``0.01`` → ``0.01``."""
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if exact != exact.to_integral_value():
        return f"{exact.normalize():f}"
    normal = exact.normalize()
    if abs(exact) >= 10**9 and len(normal.as_tuple().digits) == 1:
        return f"{normal.as_tuple().digits[0]}e{normal.adjusted()}"
    return f"{int(exact):,}"
