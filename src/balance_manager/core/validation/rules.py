"""Validation rules: small callables that look at one balance and report issues.

A rule is any object with a ``name``, a default ``severity``, an ``enabled``
flag and ``__call__(balance, ctx) -> Iterable[Issue]`` (the :class:`Rule`
protocol). It returns an empty iterable when all is well and never raises for
bad data: a rule *reports* what is odd, the :class:`~balance_manager.core.models.Balance`
model already *refuses* what is impossible (NaN, negative hold).

The seven built-in rules are those of the original specification, under its names
(``balance_manager.config.RULE_NAMES``):

=======================  ========  ==================================================
name                     severity  fires when
=======================  ========  ==================================================
negative_balance         error     ``balance < 0``
negative_free_balance    warning   ``free < 0``
hold_exceeds_balance     error     ``hold_trade > balance + credit - credit_used + tolerance``
source_inconsistency     warning   another source's value differs beyond tolerance
unrealistic_balance      warning   ``balance > threshold`` (per-asset overrides)
stale_data               warning   ``now - confirmed_at > max_age``
precision_overflow       error     more significant decimals than the asset's ledger has
=======================  ========  ==================================================

Rules are built for the hot path (the manager validates every streamed update):
the all-good case compares a few ``Decimal`` values and returns the shared empty
tuple; messages and details are only built once an issue exists.

Write your own with :func:`rule`::

    @rule("dust", Severity.INFO)
    def dust(balance: Balance, ctx: RuleContext) -> str | None:
        if ZERO < balance.balance < Decimal("0.0001"):
            return f"{balance.asset} holds dust: {balance.balance}"
        return None
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, TypeAlias

import msgspec

from balance_manager.core.amounts import (
    ZERO,
    AmountLike,
    significant_places,
    to_amount,
)
from balance_manager.core.bounds import MAX_DECIMALS, count
from balance_manager.core.models import Balance

__all__ = [
    "DEFAULT_RULE_OPTIONS",
    "EMPTY_CONTEXT",
    "FunctionRule",
    "HoldExceedsBalance",
    "Issue",
    "NegativeBalance",
    "NegativeFreeBalance",
    "PrecisionOverflow",
    "Rule",
    "RuleContext",
    "RuleOptions",
    "RuleResult",
    "Severity",
    "SourceInconsistency",
    "StaleData",
    "UnrealisticBalance",
    "default_rules",
    "rule",
    "significant_places",
]

#: Returned by every rule that finds nothing: one shared object, no allocation.
_NOTHING: tuple[Issue, ...] = ()
_HUNDRED = Decimal(100)
#: ``10 ** -decimals`` by ``decimals``, built on first use.
_QUANTA: dict[int, Decimal] = {}


class Severity(enum.StrEnum):
    """How bad an issue is. Only ``ERROR`` makes a validation result invalid."""

    ERROR = "error"
    """The value must not be trusted (e.g. a negative balance)."""
    WARNING = "warning"
    """The value is usable but odd; worth a look (e.g. stale, unusually large)."""
    INFO = "info"
    """For the record only."""


class Issue(msgspec.Struct, frozen=True):
    """One finding of one rule about one asset.

    Attributes:
        rule: name of the rule that found it, e.g. ``"negative_balance"``.
        severity: how bad it is.
        asset: the asset concerned.
        message: a human-readable sentence naming the asset, the values and
            the threshold involved.
        details: the numbers involved, by name (amounts stay ``Decimal``).
    """

    rule: str
    severity: Severity
    asset: str
    message: str
    details: Mapping[str, object] = msgspec.field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.severity.value.upper()} {self.rule} {self.asset}: {self.message}"


class RuleContext(msgspec.Struct, frozen=True, gc=False):
    """What a rule may need besides the balance itself.

    Build one per call only when something varies; the all-default
    :data:`EMPTY_CONTEXT` is shared.

    Attributes:
        now: current wall-clock time (Unix seconds); ``None`` skips time-based rules.
        confirmed_at: when a live source last confirmed this value (Unix
            seconds); ``None`` means ``balance.received_at``.
        decimals: the asset's ledger decimals (Kraken ``Assets.decimals`` or the
            WebSocket ``instrument`` ``precision``; docs/kraken.md, 'Assets');
            ``None`` if unknown.
        reference: the same asset as seen by another source (e.g. REST while
            ``balance`` came from the WebSocket), for cross-source checks.
    """

    now: float | None = None
    confirmed_at: float | None = None
    decimals: int | None = None
    reference: Balance | None = None


#: The context with nothing known; shared because it is immutable.
EMPTY_CONTEXT = RuleContext()


class Rule(Protocol):
    """A validation rule: any object with these attributes, called per balance.

    Attributes:
        name: unique name, used in issues, statistics and to enable/disable it.
        severity: the severity of the issues it reports.
        enabled: whether a validator runs it (calling it directly always runs it).
    """

    name: str
    severity: Severity
    enabled: bool

    def __call__(self, balance: Balance, ctx: RuleContext) -> Iterable[Issue]:
        """Return the issues found in ``balance`` (empty when all is well)."""
        ...


#: What a function wrapped by :func:`rule` may return: issues, one issue, a
#: message (one issue with the rule's severity), or ``None`` (nothing found).
RuleResult: TypeAlias = Iterable[Issue] | Issue | str | None


def _fmt(value: Decimal) -> str:
    """An amount as plain digits (``1E+12`` reads ``1000000000000``)."""
    return f"{value:f}"


# -- the seven built-in rules ---------------------------------------------------------


class NegativeBalance:
    """``negative_balance``: the balance itself is below zero.

    An exchange balance cannot be negative on a spot account; a negative value
    means bad data (or an unsupported margin/credit product) and must not be
    traded on.

    Args:
        severity: severity of the issue (default ERROR).
        enabled: whether validators run it.
    """

    __slots__ = ("enabled", "name", "severity")

    def __init__(self, *, severity: Severity = Severity.ERROR, enabled: bool = True) -> None:
        self.name = "negative_balance"
        self.severity = severity
        self.enabled = enabled

    def __call__(self, balance: Balance, ctx: RuleContext) -> Iterable[Issue]:
        """Report ``balance.balance < 0``."""
        if balance.balance >= ZERO:
            return _NOTHING
        return (
            Issue(
                self.name,
                self.severity,
                balance.asset,
                f"{balance.asset} balance is negative: {_fmt(balance.balance)}",
                {"balance": balance.balance},
            ),
        )

    def __repr__(self) -> str:
        return f"NegativeBalance(severity={self.severity.value!r}, enabled={self.enabled})"


class NegativeFreeBalance:
    """``negative_free_balance``: more is held than is available.

    ``free = balance + credit - credit_used - hold_trade`` (docs/kraken.md, 'BalanceEx').
    A negative ``free`` can be legitimate, so this is a warning: open orders may
    draw on Kraken Rewards ``.F`` funds or a credit line, and Kraken reports the
    hold on the base asset key, whose own balance is then smaller than the hold
    (infinity-grid issues #80 and #81); a fill may also move the balance
    a moment before the matching hold is released. It is the warning-level view
    of the condition :class:`HoldExceedsBalance` reports as an error.

    Args:
        severity: severity of the issue (default WARNING).
        enabled: whether validators run it.
    """

    __slots__ = ("enabled", "name", "severity")

    def __init__(self, *, severity: Severity = Severity.WARNING, enabled: bool = True) -> None:
        self.name = "negative_free_balance"
        self.severity = severity
        self.enabled = enabled

    def __call__(self, balance: Balance, ctx: RuleContext) -> Iterable[Issue]:
        """Report ``balance.free < 0``."""
        # Compare instead of computing ``free``: no new Decimal in the common case.
        if not (balance.credit or balance.credit_used):
            if balance.hold_trade <= balance.balance:
                return _NOTHING
        elif balance.free >= ZERO:
            return _NOTHING
        free = balance.free
        credit = (
            f", credit {_fmt(balance.credit)}, credit_used {_fmt(balance.credit_used)}"
            if balance.credit or balance.credit_used
            else ""
        )
        return (
            Issue(
                self.name,
                self.severity,
                balance.asset,
                f"{balance.asset} free balance is negative: {_fmt(free)} "
                f"(balance {_fmt(balance.balance)}, hold_trade {_fmt(balance.hold_trade)}"
                f"{credit}); this can be legitimate when open orders draw on "
                "Kraken Rewards (.F) funds or a credit line",
                {
                    "free": free,
                    "balance": balance.balance,
                    "hold_trade": balance.hold_trade,
                    "credit": balance.credit,
                    "credit_used": balance.credit_used,
                },
            ),
        )

    def __repr__(self) -> str:
        return f"NegativeFreeBalance(severity={self.severity.value!r}, enabled={self.enabled})"


class HoldExceedsBalance:
    """``hold_exceeds_balance``: open orders hold more than the account can cover.

    Fires when ``hold_trade > balance + credit - credit_used + tolerance``. With
    the default tolerance of 0 it fires together with
    :class:`NegativeFreeBalance`; a tolerance lets small overshoots (orders
    drawing on ``.F`` funds, a fill racing its hold release) stay warnings.
    A balance with no hold is left to :class:`NegativeBalance`.

    Args:
        tolerance: overshoot allowed before this fires (an amount, >= 0).
        severity: severity of the issue (default ERROR).
        enabled: whether validators run it.

    Raises:
        InvalidAmountError: ``tolerance`` is not an exact amount (floats are refused).
    """

    __slots__ = ("enabled", "name", "severity", "tolerance")

    def __init__(
        self,
        *,
        tolerance: AmountLike = ZERO,
        severity: Severity = Severity.ERROR,
        enabled: bool = True,
    ) -> None:
        self.name = "hold_exceeds_balance"
        self.tolerance = _non_negative(tolerance, "tolerance")
        self.severity = severity
        self.enabled = enabled

    def __call__(self, balance: Balance, ctx: RuleContext) -> Iterable[Issue]:
        """Report a hold larger than what the balance and credit can cover."""
        hold = balance.hold_trade
        if not hold:
            return _NOTHING
        cover = balance.balance
        if balance.credit or balance.credit_used:
            cover = cover + balance.credit - balance.credit_used
        if self.tolerance:
            cover = cover + self.tolerance
        if hold <= cover:
            return _NOTHING
        available = cover - self.tolerance
        credit = (
            f" + credit {_fmt(balance.credit)} - credit_used {_fmt(balance.credit_used)}"
            if balance.credit or balance.credit_used
            else ""
        )
        beyond = f" by more than the tolerance {_fmt(self.tolerance)}" if self.tolerance else ""
        return (
            Issue(
                self.name,
                self.severity,
                balance.asset,
                f"{balance.asset} hold_trade {_fmt(hold)} exceeds balance "
                f"{_fmt(balance.balance)}{credit}{beyond}",
                {
                    "hold_trade": hold,
                    "balance": balance.balance,
                    "available": available,
                    "excess": hold - available,
                    "tolerance": self.tolerance,
                },
            ),
        )

    def __repr__(self) -> str:
        return (
            f"HoldExceedsBalance(tolerance={self.tolerance!r}, "
            f"severity={self.severity.value!r}, enabled={self.enabled})"
        )


class SourceInconsistency:
    """``source_inconsistency``: two sources disagree about the same asset.

    Runs only when ``ctx.reference`` holds another source's view (e.g. the
    REST ``BalanceEx`` value while ``balance`` came from the WebSocket, or the
    hold tracked from ``executions`` against ``BalanceEx.hold_trade``). For each
    compared field it fires when ``|a - b| > max(tolerance_absolute,
    tolerance_percent / 100 * max(|a|, |b|))``; one issue per differing field.

    Args:
        tolerance_absolute: absolute difference allowed (an amount, >= 0).
        tolerance_percent: relative difference allowed, in percent of the
            larger absolute value (``Decimal("0.5")`` = 0.5 %).
        fields: the amount fields compared (default ``balance`` and ``hold_trade``).
        severity: severity of the issues (default WARNING).
        enabled: whether validators run it.

    Raises:
        InvalidAmountError: a tolerance is not an exact amount (floats are refused).
        ValueError: a field is not an amount field of :class:`Balance`.
    """

    __slots__ = ("enabled", "fields", "name", "severity", "tolerance_absolute", "tolerance_percent")

    _ALLOWED_FIELDS = frozenset(
        {"balance", "hold_trade", "free", "total", "credit", "credit_used", "earn"}
    )

    def __init__(
        self,
        *,
        tolerance_absolute: AmountLike = ZERO,
        tolerance_percent: AmountLike = ZERO,
        fields: Iterable[str] = ("balance", "hold_trade"),
        severity: Severity = Severity.WARNING,
        enabled: bool = True,
    ) -> None:
        self.name = "source_inconsistency"
        self.tolerance_absolute = _non_negative(tolerance_absolute, "tolerance_absolute")
        self.tolerance_percent = _non_negative(tolerance_percent, "tolerance_percent")
        self.fields = tuple(fields)
        unknown = [f for f in self.fields if f not in self._ALLOWED_FIELDS]
        if unknown:
            raise ValueError(
                f"fields={unknown!r}: not amount fields of Balance; "
                f"choose from {', '.join(sorted(self._ALLOWED_FIELDS))}"
            )
        self.severity = severity
        self.enabled = enabled

    def tolerance_for(self, a: Decimal, b: Decimal) -> Decimal:
        """The difference allowed between ``a`` and ``b``."""
        if not self.tolerance_percent:
            return self.tolerance_absolute
        relative = max(abs(a), abs(b)) * self.tolerance_percent / _HUNDRED
        return max(self.tolerance_absolute, relative)

    def __call__(self, balance: Balance, ctx: RuleContext) -> Iterable[Issue]:
        """Report each field where ``balance`` and ``ctx.reference`` differ too much."""
        other = ctx.reference
        if other is None:
            return _NOTHING
        found: list[Issue] | None = None
        for field in self.fields:
            mine: Decimal = getattr(balance, field)
            theirs: Decimal = getattr(other, field)
            if mine == theirs:
                continue
            difference = abs(mine - theirs)
            tolerance = self.tolerance_for(mine, theirs)
            if difference <= tolerance:
                continue
            if found is None:
                found = []
            found.append(
                Issue(
                    self.name,
                    self.severity,
                    balance.asset,
                    f"{balance.asset} {field} differs between sources: "
                    f"{balance.source.value} says {_fmt(mine)}, "
                    f"{other.source.value} says {_fmt(theirs)} "
                    f"(difference {_fmt(difference)} > tolerance {_fmt(tolerance)})",
                    {
                        "field": field,
                        "value": mine,
                        "source": balance.source.value,
                        "reference_value": theirs,
                        "reference_source": other.source.value,
                        "difference": difference,
                        "tolerance": tolerance,
                    },
                )
            )
        return _NOTHING if found is None else found

    def __repr__(self) -> str:
        return (
            f"SourceInconsistency(tolerance_absolute={self.tolerance_absolute!r}, "
            f"tolerance_percent={self.tolerance_percent!r}, fields={self.fields!r}, "
            f"severity={self.severity.value!r}, enabled={self.enabled})"
        )


class UnrealisticBalance:
    """``unrealistic_balance``: a balance larger than anyone plausibly holds.

    Catches unit and parsing mistakes (a value in satoshis read as BTC, a
    misplaced decimal point). Fires when ``balance > threshold``; the
    threshold may be set per asset.

    Args:
        threshold: default threshold (an amount, >= 0; default ``1e12``).
        per_asset: thresholds by asset name, overriding ``threshold``.
        severity: severity of the issue (default WARNING).
        enabled: whether validators run it.

    Raises:
        InvalidAmountError: a threshold is not an exact amount (floats are refused).
    """

    __slots__ = ("enabled", "name", "per_asset", "severity", "threshold")

    def __init__(
        self,
        *,
        threshold: AmountLike = Decimal("1e12"),
        per_asset: Mapping[str, AmountLike] | None = None,
        severity: Severity = Severity.WARNING,
        enabled: bool = True,
    ) -> None:
        self.name = "unrealistic_balance"
        self.threshold = _non_negative(threshold, "threshold")
        self.per_asset: dict[str, Decimal] = {
            asset: _non_negative(value, f"per_asset[{asset!r}]")
            for asset, value in (per_asset or {}).items()
        }
        self.severity = severity
        self.enabled = enabled

    def threshold_for(self, asset: str) -> Decimal:
        """The threshold that applies to ``asset``."""
        return self.per_asset.get(asset, self.threshold) if self.per_asset else self.threshold

    def __call__(self, balance: Balance, ctx: RuleContext) -> Iterable[Issue]:
        """Report ``balance.balance > threshold``."""
        threshold = self.per_asset.get(balance.asset, self.threshold)
        if balance.balance <= threshold:
            return _NOTHING
        return (
            Issue(
                self.name,
                self.severity,
                balance.asset,
                f"{balance.asset} balance {_fmt(balance.balance)} is above the realistic "
                f"threshold {_fmt(threshold)}",
                {"balance": balance.balance, "threshold": threshold},
            ),
        )

    def __repr__(self) -> str:
        return (
            f"UnrealisticBalance(threshold={self.threshold!r}, per_asset={self.per_asset!r}, "
            f"severity={self.severity.value!r}, enabled={self.enabled})"
        )


class StaleData:
    """``stale_data``: no live source has confirmed the value for too long.

    Fires when ``now - confirmed_at > max_age`` where ``confirmed_at`` is
    ``ctx.confirmed_at`` or else ``balance.received_at``. Skipped when
    ``ctx.now`` is ``None`` (sans-I/O: this rule never reads the clock). A
    balance built without a receive time (``received_at=0``) counts as never
    confirmed, hence stale.

    Args:
        max_age: seconds a value stays fresh (default 120, > 0).
        severity: severity of the issue (default WARNING).
        enabled: whether validators run it.

    Raises:
        ValueError: ``max_age`` is not a positive number.
    """

    __slots__ = ("enabled", "max_age", "name", "severity")

    def __init__(
        self, *, max_age: float = 120.0, severity: Severity = Severity.WARNING, enabled: bool = True
    ) -> None:
        if isinstance(max_age, bool) or not isinstance(max_age, int | float) or not max_age > 0:
            raise ValueError(f"max_age={max_age!r}: must be a positive number of seconds")
        self.name = "stale_data"
        self.max_age = float(max_age)
        self.severity = severity
        self.enabled = enabled

    def __call__(self, balance: Balance, ctx: RuleContext) -> Iterable[Issue]:
        """Report a value last confirmed more than ``max_age`` seconds before ``ctx.now``."""
        now = ctx.now
        if now is None:
            return _NOTHING
        confirmed = ctx.confirmed_at
        if confirmed is None:
            confirmed = balance.received_at
        age = now - confirmed
        if age <= self.max_age:
            return _NOTHING
        return (
            Issue(
                self.name,
                self.severity,
                balance.asset,
                f"{balance.asset} value is stale: last confirmed {age:.1f} s ago "
                f"(max_age {self.max_age:g} s, source {balance.source.value})",
                {"age": age, "max_age": self.max_age, "confirmed_at": confirmed, "now": now},
            ),
        )

    def __repr__(self) -> str:
        return (
            f"StaleData(max_age={self.max_age!r}, severity={self.severity.value!r}, "
            f"enabled={self.enabled})"
        )


class PrecisionOverflow:
    """``precision_overflow``: an amount finer than the asset's ledger can record.

    Kraken keeps each asset to fixed ledger decimals (``Assets.decimals``, or the
    WebSocket ``instrument`` channel's ``precision``: BTC 10, USD 4; docs/kraken.md,
    'The instrument channel'). More significant decimals than that means a computation leaked
    precision (or a float crept in). Trailing zeros do not count: REST writes
    fixed decimals and ``Decimal("0.12340000000")`` is a fine USD amount.

    Uses ``ctx.decimals`` when known, else ``default_decimals``; with neither the
    rule is skipped.

    Args:
        default_decimals: decimals assumed for assets with unknown decimals
            (``None`` skips them).
        fields: the amount fields checked (default ``balance`` and ``hold_trade``).
        severity: severity of the issues (default ERROR).
        enabled: whether validators run it.

    Raises:
        ConfigError: ``default_decimals`` is not an int from 0 to 28 (a ValueError).
        ValueError: a field is not an amount field.
    """

    __slots__ = ("_values", "default_decimals", "enabled", "fields", "name", "severity")

    _ALLOWED_FIELDS = frozenset({"balance", "hold_trade", "credit", "credit_used", "earn"})

    def __init__(
        self,
        *,
        default_decimals: int | None = None,
        fields: Iterable[str] = ("balance", "hold_trade"),
        severity: Severity = Severity.ERROR,
        enabled: bool = True,
    ) -> None:
        if default_decimals is not None:
            default_decimals = count(
                "default_decimals", default_decimals, minimum=0, maximum=MAX_DECIMALS
            )
        self.name = "precision_overflow"
        self.default_decimals = default_decimals
        self.fields = tuple(fields)
        unknown = [f for f in self.fields if f not in self._ALLOWED_FIELDS]
        if unknown or not self.fields:
            raise ValueError(
                f"fields={unknown or list(self.fields)!r}: need stored amount fields of "
                f"Balance; choose from {', '.join(sorted(self._ALLOWED_FIELDS))}"
            )
        self._values = _field_reader(self.fields)
        self.severity = severity
        self.enabled = enabled

    def __call__(self, balance: Balance, ctx: RuleContext) -> Iterable[Issue]:
        """Report each field with more significant decimal places than allowed."""
        decimals = ctx.decimals
        if decimals is None:
            decimals = self.default_decimals
            if decimals is None:
                return _NOTHING
        quantum = _QUANTA.get(decimals)
        if quantum is None and 0 <= decimals <= MAX_DECIMALS:
            quantum = _QUANTA[decimals] = Decimal(1).scaleb(-decimals)
        values = self._values(balance)
        # Decimals beyond any ledger (an exchange saying 10**12) have no quantum
        # (scaleb would fail): the exact path below decides alone.
        if quantum is not None:
            for value in values:
                # Fast check: zero, or a multiple of 10**-decimals, fits. ``%`` is
                # exact when it succeeds; when the active decimal context cannot
                # hold the quotient it raises (or gives NaN) and the exact path
                # below decides. (It could wrongly give 0 only if the remainder
                # underflowed the context's Emin: an amount with about a million
                # digits under the default context.)
                if value:
                    try:
                        if not value % quantum:
                            continue
                    except ArithmeticError:
                        pass
                    break
            else:
                return _NOTHING
        found: list[Issue] | None = None
        # Same length by construction (and zip(strict=True) is slower).
        for field, value in zip(self.fields, values):  # noqa: B905
            places = significant_places(value)
            if places <= decimals:
                continue
            if found is None:
                found = []
            found.append(
                Issue(
                    self.name,
                    self.severity,
                    balance.asset,
                    f"{balance.asset} {field} {value} has {places} decimal places, "
                    f"more than the asset's {decimals}",
                    {"field": field, "value": value, "places": places, "decimals": decimals},
                )
            )
        return _NOTHING if found is None else found

    def __repr__(self) -> str:
        return (
            f"PrecisionOverflow(default_decimals={self.default_decimals!r}, "
            f"fields={self.fields!r}, severity={self.severity.value!r}, enabled={self.enabled})"
        )


def _field_reader(fields: tuple[str, ...]) -> Callable[[Balance], tuple[Decimal, ...]]:
    """A function returning ``fields`` of a balance as a tuple.

    One ``attrgetter`` call fetches every field in C, cheaper than a
    ``getattr()`` per field on the hot path.
    """
    if len(fields) == 1:
        name = fields[0]
        return lambda balance: (getattr(balance, name),)
    getter: Callable[[Balance], tuple[Decimal, ...]] = operator.attrgetter(*fields)
    return getter


def _non_negative(value: AmountLike, name: str) -> Decimal:
    """``to_amount(value)`` that also refuses negative thresholds."""
    amount = to_amount(value, name=name)
    if amount < ZERO:
        raise ValueError(f"{name}={value!r}: must be >= 0")
    return amount


# -- user rules from plain functions ----------------------------------------------------


class FunctionRule:
    """A :class:`Rule` made from a plain function (see :func:`rule`).

    The function takes ``(balance, ctx)`` and returns a :data:`RuleResult`:
    issues, one :class:`Issue`, a message string (one issue with this rule's
    name and severity), or ``None`` for nothing found.

    Args:
        name: the rule's name.
        severity: severity of the issues made from messages.
        function: the check.
        enabled: whether validators run it.
    """

    __slots__ = ("__wrapped__", "enabled", "function", "name", "severity")

    def __init__(
        self,
        name: str,
        severity: Severity,
        function: Callable[[Balance, RuleContext], RuleResult],
        *,
        enabled: bool = True,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError(f"name={name!r}: a rule needs a non-empty str name")
        self.name = name
        self.severity = Severity(severity)
        self.function = function
        self.enabled = enabled
        self.__wrapped__ = function

    def __call__(self, balance: Balance, ctx: RuleContext) -> Iterable[Issue]:
        """Run the function and turn what it returns into issues."""
        result = self.function(balance, ctx)
        if result is None:
            return _NOTHING
        if isinstance(result, str):
            return (Issue(self.name, self.severity, balance.asset, result),)
        if isinstance(result, Issue):
            return (result,)
        return result

    def __repr__(self) -> str:
        return (
            f"FunctionRule({self.name!r}, severity={self.severity.value!r}, "
            f"function={getattr(self.function, '__qualname__', self.function)!r}, "
            f"enabled={self.enabled})"
        )


def rule(
    name: str, severity: Severity | str = Severity.WARNING, *, enabled: bool = True
) -> Callable[[Callable[[Balance, RuleContext], RuleResult]], FunctionRule]:
    """Decorator turning ``fn(balance, ctx) -> RuleResult`` into a :class:`Rule`.

    Args:
        name: the rule's name (unique within a validator).
        severity: severity of the issues it reports (``Severity`` or its value).
        enabled: whether validators run it.

    Example::

        @rule("dust", Severity.INFO)
        def dust(balance, ctx):
            if ZERO < balance.balance < Decimal("0.0001"):
                return f"{balance.asset} holds dust: {balance.balance}"
            return None
    """
    level = Severity(severity)

    def wrap(function: Callable[[Balance, RuleContext], RuleResult]) -> FunctionRule:
        return FunctionRule(name, level, function, enabled=enabled)

    return wrap


# -- the default set -------------------------------------------------------------------


class RuleOptions(Protocol):
    """The options of the built-in rules (a ``BalanceManagerConfig`` has them)."""

    @property
    def source_tolerance_absolute(self) -> Decimal: ...
    @property
    def source_tolerance_percent(self) -> Decimal: ...
    @property
    def unrealistic_balance_threshold(self) -> Decimal: ...
    @property
    def stale_after(self) -> float: ...
    @property
    def default_decimals(self) -> int: ...
    @property
    def disabled_rules(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class _Defaults:
    source_tolerance_absolute: Decimal = ZERO
    source_tolerance_percent: Decimal = ZERO
    unrealistic_balance_threshold: Decimal = Decimal("1e12")
    stale_after: float = 120.0
    default_decimals: int = 18
    disabled_rules: tuple[str, ...] = ()


#: The rules' default options: the one place the configuration's defaults come from.
DEFAULT_RULE_OPTIONS: RuleOptions = _Defaults()


def default_rules(config: RuleOptions | None = None) -> list[Rule]:
    """The seven built-in rules, configured from ``config`` (default options if ``None``).

    Uses ``unrealistic_balance_threshold``, ``stale_after``,
    ``source_tolerance_absolute``, ``source_tolerance_percent`` and
    ``default_decimals``; rules named in ``disabled_rules`` come back with
    ``enabled=False`` (still listed, so they can be enabled later). The names,
    in order, are ``balance_manager.config.RULE_NAMES``.
    """
    if config is None:
        config = DEFAULT_RULE_OPTIONS
    rules: list[Rule] = [
        NegativeBalance(),
        NegativeFreeBalance(),
        HoldExceedsBalance(),
        SourceInconsistency(
            tolerance_absolute=config.source_tolerance_absolute,
            tolerance_percent=config.source_tolerance_percent,
        ),
        UnrealisticBalance(threshold=config.unrealistic_balance_threshold),
        StaleData(max_age=config.stale_after),
        PrecisionOverflow(default_decimals=config.default_decimals),
    ]
    disabled = frozenset(config.disabled_rules)
    for each in rules:
        each.enabled = each.name not in disabled
    return rules
