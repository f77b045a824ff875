"""Change detection: is a new balance far enough from the old one to matter?

A balance change is *significant* (it fires ``balance_change`` and is worth a
log line) when it is both large in absolute terms and large relative to the
old balance. Both thresholds come from the configuration
(``change_threshold_absolute`` and ``change_threshold_percent``).

Everything here is exact: differences and comparisons run in
:data:`EXACT_CONTEXT`, wide enough that no realistic pair of amounts is ever
rounded, and the relative test is done by cross-multiplication, so no division
(and no rounding) is involved.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from balance_manager.core.amounts import EXACT_CONTEXT, ZERO, to_amount
from balance_manager.exceptions import ConfigError

if TYPE_CHECKING:
    from balance_manager.config import BalanceManagerConfig

__all__ = [
    "EXACT_CONTEXT",
    "ChangeDetector",
    "difference",
    "is_significant",
]

_HUNDRED = Decimal(100)
_subtract = EXACT_CONTEXT.subtract
_multiply = EXACT_CONTEXT.multiply


def difference(new: Decimal, old: Decimal | None) -> Decimal:
    """``new - old``, computed exactly (``old=None`` counts as zero).

    Args:
        new: the new amount.
        old: the previous amount, or ``None`` when there was none.

    Returns:
        The exact difference; ``new`` itself when ``old`` is ``None``.
    """
    if old is None:
        return new
    return EXACT_CONTEXT.subtract(new, old)


def is_significant(
    old: Decimal | None, new: Decimal, *, absolute: Decimal, percent: Decimal
) -> bool:
    """Whether the change from ``old`` to ``new`` passes both thresholds.

    A change is significant when all of these hold, with ``delta = new - old``
    (``old=None`` counts as zero):

    * ``|delta| > 0`` (no change is never significant, even with zero thresholds);
    * ``|delta| >= absolute``;
    * ``old`` is ``None`` or zero (any move away from nothing counts), or
      ``|delta| / |old| * 100 >= percent``.

    Args:
        old: the previous balance, ``None`` for a first value.
        new: the new balance.
        absolute: minimum ``|delta|`` (same unit as the balance).
        percent: minimum ``|delta|`` relative to ``|old|``, in percent.

    Returns:
        ``True`` when the change is significant.
    """
    return _significant(old, new, absolute, percent)


def _significant(old: Decimal | None, new: Decimal, absolute: Decimal, percent: Decimal) -> bool:
    # One flat function: it runs on every streamed update.
    delta = new.copy_abs() if old is None else _subtract(new, old).copy_abs()
    if not delta or delta < absolute:
        return False
    if old is None or not old:
        return True
    if not percent:
        return True
    # Orders of magnitude settle most cases without multiplying: with
    # k = adjusted(delta) - adjusted(old), delta/old lies in (10**(k-1), 10**(k+1));
    # the threshold percent/100 lies in [10**m, 10**(m+1)) with m = adjusted - 2.
    k = delta.adjusted() - old.adjusted()
    m = percent.adjusted() - 2
    if k + 1 <= m:
        return False
    if k - 1 >= m + 1:
        return True
    # |delta| / |old| * 100 >= percent  <=>  |delta| * 100 >= percent * |old|
    # (|old| > 0): multiplying instead of dividing keeps the test exact.
    return _multiply(delta, _HUNDRED) >= _multiply(percent, old.copy_abs())


class ChangeDetector:
    """:func:`is_significant` with its two thresholds bound.

    Args:
        absolute: minimum ``|delta|``; a ``Decimal``, ``int`` or ``str`` (not ``float``).
        percent: minimum ``|delta|`` in percent of ``|old|``.

    Raises:
        FloatAmountError: a threshold is a ``float``.
        ConfigError: a threshold is negative.
    """

    __slots__ = ("absolute", "percent")

    def __init__(self, absolute: Decimal | int | str = ZERO, percent: Decimal | int | str = ZERO):
        absolute_amount = to_amount(absolute, name="change_threshold_absolute")
        percent_amount = to_amount(percent, name="change_threshold_percent")
        if absolute_amount < 0:
            raise ConfigError("change_threshold_absolute", absolute, "must not be negative")
        if percent_amount < 0:
            raise ConfigError("change_threshold_percent", percent, "must not be negative")
        self.absolute: Decimal = absolute_amount
        """Minimum ``|delta|`` for a significant change."""
        self.percent: Decimal = percent_amount
        """Minimum ``|delta|`` relative to ``|old|``, in percent."""

    @classmethod
    def from_config(cls, config: BalanceManagerConfig) -> ChangeDetector:
        """A detector with ``change_threshold_absolute`` and ``change_threshold_percent``."""
        return cls(config.change_threshold_absolute, config.change_threshold_percent)

    def is_significant(self, old: Decimal | None, new: Decimal) -> bool:
        """Whether ``old`` → ``new`` passes both thresholds (see :func:`is_significant`)."""
        return _significant(old, new, self.absolute, self.percent)

    __call__ = is_significant

    def __repr__(self) -> str:
        return f"ChangeDetector(absolute={self.absolute!r}, percent={self.percent!r})"
