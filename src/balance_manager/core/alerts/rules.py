"""The built-in alert rules: small callables, each looking at an :class:`AlertContext`.

An alert rule is any object with ``name``, ``severity``, ``enabled`` and
``__call__(ctx) -> Iterable[Condition]`` (the
:class:`~balance_manager.core.alerts.model.AlertRule` protocol), like a
validation rule, but looking at the whole account over time rather than at
one balance. It returns the conditions that hold at ``ctx.now``; the engine
decides what fires and what resolves.

=======================  ========  =====================================================
name                     severity  condition
=======================  ========  =====================================================
low_balance              warning   an asset's free amount is below its threshold
portfolio_drop           warning   portfolio value down more than X % from its highest
                                   value within a window
stale_balance            warning   a balance not confirmed by a live source for too long
stale_price              warning   a price not confirmed for too long
validation_failures      error     N or more validation failures within a window
stream_down              error     the stream has not served for longer than a bound
balance_anomaly          warning   an asset's newest balance change lies far outside its
                                   recent changes (robust score, see ``robust.py``)
=======================  ========  =====================================================

``portfolio_drop`` and ``stale_price`` read ``ctx.portfolio`` and
``ctx.prices_confirmed_at``, which stay empty until portfolio valuation is
available: until then they never fire.

Write your own with :func:`alert_rule`::

    @alert_rule("dust_left", Severity.INFO)
    def dust_left(ctx: AlertContext) -> str | None:
        usd = ctx.balances.get("USD")
        return "USD is almost empty" if usd is not None and usd.free < 1 else None
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import ClassVar, Protocol, TypeAlias

from balance_manager.core.alerts.model import AlertContext, AlertRule, Condition
from balance_manager.core.alerts.robust import RobustScore, robust_score
from balance_manager.core.amounts import ZERO, AmountLike, display_amount, to_amount
from balance_manager.core.bounds import seconds
from balance_manager.core.validation.rules import Severity
from balance_manager.exceptions import ConfigError

__all__ = [
    "ALERT_RULE_NAMES",
    "DEFAULT_ALERT_OPTIONS",
    "AlertOptions",
    "AlertRuleResult",
    "BalanceAnomaly",
    "FunctionAlertRule",
    "LowBalance",
    "PortfolioDrop",
    "RepeatedValidationFailures",
    "StaleBalance",
    "StalePrice",
    "StreamDown",
    "alert_rule",
    "default_alert_rules",
]

#: The built-in rules' names, in the order :func:`default_alert_rules` returns them.
ALERT_RULE_NAMES = (
    "low_balance",
    "portfolio_drop",
    "stale_balance",
    "stale_price",
    "validation_failures",
    "stream_down",
    "balance_anomaly",
)

_NOTHING: tuple[Condition, ...] = ()
_HUNDRED = Decimal(100)


def _positive_amount(value: AmountLike, name: str) -> Decimal:
    amount = to_amount(value, name=name)
    if amount <= ZERO:
        raise ConfigError(name, value, "must be > 0")
    return amount


def _count(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(name, value, f"must be an int >= {minimum}")
    return value


def _age(seconds_: float) -> str:
    return f"{seconds_:.1f} s"


class _Rule:
    """What every built-in rule has: its name, its severity, whether the engine runs it."""

    __slots__ = ("enabled", "name", "severity")

    def __init__(self, name: str, severity: Severity, enabled: bool) -> None:
        self.name = name
        self.severity = severity
        self.enabled = enabled


class LowBalance(_Rule):
    """``low_balance``: the free amount of an asset is below its threshold.

    Fires per asset when ``free < threshold``; an asset not held at all counts
    as 0 free (running out entirely is the case that matters most).

    Args:
        thresholds: asset → the free amount below which it fires.
        severity: severity of the conditions (default WARNING).
        enabled: whether the engine runs it.

    Raises:
        InvalidAmountError: a threshold is not an exact amount (floats are refused).
    """

    __slots__ = ("thresholds",)

    def __init__(
        self,
        thresholds: Mapping[str, AmountLike],
        *,
        severity: Severity = Severity.WARNING,
        enabled: bool = True,
    ) -> None:
        super().__init__("low_balance", severity, enabled)
        self.thresholds = {
            asset: to_amount(value, name=f"thresholds[{asset!r}]")
            for asset, value in thresholds.items()
        }

    def __call__(self, ctx: AlertContext) -> Iterable[Condition]:
        """One condition per asset whose free amount is below its threshold."""
        found: list[Condition] = []
        for asset, threshold in self.thresholds.items():
            balance = ctx.balances.get(asset)
            free = balance.free if balance is not None else ZERO
            if free >= threshold:
                continue
            found.append(
                Condition(
                    self.name,
                    self.severity,
                    asset,
                    f"{asset} free {display_amount(free)} is below {display_amount(threshold)}",
                    {"free": free, "threshold": threshold},
                )
            )
        return found or _NOTHING

    def __repr__(self) -> str:
        return f"LowBalance(thresholds={self.thresholds!r}, severity={self.severity.value!r})"


class PortfolioDrop(_Rule):
    """``portfolio_drop``: the portfolio's value fell more than ``percent`` within ``window``.

    Compares the newest value of ``ctx.portfolio`` with the highest value seen
    within the ``window`` seconds before it (so a drop is caught whether it
    came at once or bit by bit); needs two values in the window. Until
    portfolio valuation is available ``ctx.portfolio`` is empty and this never
    fires.

    Args:
        percent: the drop that fires, percent of the window's highest value (> 0).
        window: seconds looked back (> 0).
        severity: severity of the condition (default WARNING).
        enabled: whether the engine runs it.
    """

    __slots__ = ("percent", "window")

    def __init__(
        self,
        *,
        percent: AmountLike = Decimal(5),
        window: float = 3600.0,
        severity: Severity = Severity.WARNING,
        enabled: bool = True,
    ) -> None:
        super().__init__("portfolio_drop", severity, enabled)
        self.percent = _positive_amount(percent, "percent")
        self.window = seconds("window", window)

    def __call__(self, ctx: AlertContext) -> Iterable[Condition]:
        """One condition when the newest value is down more than ``percent`` in the window."""
        samples = ctx.portfolio
        if len(samples) < 2:
            return _NOTHING
        newest_at, newest = samples[-1]
        start = newest_at - self.window
        window = [value for at, value in samples if at >= start]
        if len(window) < 2:
            return _NOTHING
        peak = max(window)
        if peak <= ZERO:
            return _NOTHING
        drop = (peak - newest) * _HUNDRED / peak
        if drop <= self.percent:
            return _NOTHING
        return (
            Condition(
                self.name,
                self.severity,
                None,
                f"portfolio value {display_amount(newest)} is down {drop:.2f} % from "
                f"{display_amount(peak)} within {self.window:g} s (bound {self.percent} %)",
                {"value": newest, "peak": peak, "drop_percent": drop, "percent": self.percent},
            ),
        )

    def __repr__(self) -> str:
        return f"PortfolioDrop(percent={self.percent!r}, window={self.window!r})"


class _MaxAgeRule(_Rule):
    """A rule about things not confirmed for ``max_age`` seconds (``rule_name`` names it)."""

    __slots__ = ("max_age",)
    rule_name: ClassVar[str]

    def __init__(
        self, *, max_age: float = 300.0, severity: Severity = Severity.WARNING, enabled: bool = True
    ) -> None:
        super().__init__(self.rule_name, severity, enabled)
        self.max_age = seconds("max_age", max_age)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_age={self.max_age!r})"


def _unconfirmed(
    rule: _MaxAgeRule,
    now: float,
    confirmed: Iterable[tuple[str, float]],
    what: str,
) -> Iterable[Condition]:
    """One condition per ``(key, confirmed at)`` older than the rule's ``max_age``; ``what``
    names the key (``"{} price not confirmed"``)."""
    found = [
        Condition(
            rule.name,
            rule.severity,
            key,
            f"{what.format(key)} for {_age(now - at)} (bound {rule.max_age:g} s)",
            {"age": now - at, "max_age": rule.max_age, "confirmed_at": at},
        )
        for key, at in confirmed
        if now - at > rule.max_age
    ]
    return found or _NOTHING


class StaleBalance(_MaxAgeRule):
    """``stale_balance``: no live source confirmed an asset's value for ``max_age`` seconds.

    The age is ``now - confirmed_at`` (``ctx.confirmed_at``, else the
    balance's ``received_at``). Empty balances (nothing held, nothing on hold)
    are skipped: a stale zero harms nobody.

    Args:
        max_age: seconds a value may go unconfirmed (> 0).
        severity: severity of the conditions (default WARNING).
        enabled: whether the engine runs it.
    """

    rule_name = "stale_balance"

    def __call__(self, ctx: AlertContext) -> Iterable[Condition]:
        """One condition per non-empty asset older than ``max_age``."""
        confirmed = (
            (asset, ctx.confirmed_at.get(asset, balance.received_at))
            for asset, balance in ctx.balances.items()
            if balance.balance or balance.hold_trade or balance.earn
        )
        return _unconfirmed(self, ctx.now, confirmed, "{} not confirmed by a live source")


class StalePrice(_MaxAgeRule):
    """``stale_price``: a price was not confirmed for ``max_age`` seconds.

    Reads ``ctx.prices_confirmed_at`` (pair → time), empty until prices are
    available.

    Args:
        max_age: seconds a price may go unconfirmed (> 0).
        severity: severity of the conditions (default WARNING).
        enabled: whether the engine runs it.
    """

    rule_name = "stale_price"

    def __call__(self, ctx: AlertContext) -> Iterable[Condition]:
        """One condition per pair whose price is older than ``max_age``."""
        return _unconfirmed(
            self, ctx.now, ctx.prices_confirmed_at.items(), "{} price not confirmed"
        )


class RepeatedValidationFailures(_Rule):
    """``validation_failures``: ``count`` or more validation failures within ``window`` seconds.

    Counts the times in ``ctx.validation_failures`` within ``(now - window, now]``.

    Args:
        count: failures that fire (>= 1).
        window: seconds looked back (> 0).
        severity: severity of the condition (default ERROR).
        enabled: whether the engine runs it.
    """

    __slots__ = ("count", "window")

    def __init__(
        self,
        *,
        count: int = 3,
        window: float = 300.0,
        severity: Severity = Severity.ERROR,
        enabled: bool = True,
    ) -> None:
        super().__init__("validation_failures", severity, enabled)
        self.count = _count(count, "count")
        self.window = seconds("window", window)

    def __call__(self, ctx: AlertContext) -> Iterable[Condition]:
        """One condition while the window holds ``count`` failures or more."""
        start = ctx.now - self.window
        recent = sum(1 for at in ctx.validation_failures if start < at <= ctx.now)
        if recent < self.count:
            return _NOTHING
        return (
            Condition(
                self.name,
                self.severity,
                None,
                f"{recent} validation failures within {self.window:g} s (bound {self.count})",
                {"failures": recent, "count": self.count, "window": self.window},
            ),
        )

    def __repr__(self) -> str:
        return f"RepeatedValidationFailures(count={self.count!r}, window={self.window!r})"


class StreamDown(_Rule):
    """``stream_down``: the stream has not served balances for longer than ``max_down``.

    Reads ``ctx.stream_down_since`` (``None``: the stream serves, or there is
    none). Balances are still served from REST meanwhile; this says the
    real-time source is gone.

    Args:
        max_down: seconds the stream may be down (> 0).
        severity: severity of the condition (default ERROR).
        enabled: whether the engine runs it.
    """

    __slots__ = ("max_down",)

    def __init__(
        self, *, max_down: float = 60.0, severity: Severity = Severity.ERROR, enabled: bool = True
    ) -> None:
        super().__init__("stream_down", severity, enabled)
        self.max_down = seconds("max_down", max_down)

    def __call__(self, ctx: AlertContext) -> Iterable[Condition]:
        """One condition while the stream has been down longer than ``max_down``."""
        since = ctx.stream_down_since
        if since is None:
            return _NOTHING
        down = ctx.now - since
        if down <= self.max_down:
            return _NOTHING
        return (
            Condition(
                self.name,
                self.severity,
                None,
                f"the stream has been down for {_age(down)} (bound {self.max_down:g} s)",
                {"down": down, "max_down": self.max_down, "since": since},
            ),
        )

    def __repr__(self) -> str:
        return f"StreamDown(max_down={self.max_down!r})"


class BalanceAnomaly(_Rule):
    """``balance_anomaly``: an asset's newest balance change is far outside its recent ones.

    For each asset with at least ``min_samples`` earlier changes in
    ``ctx.changes``, the newest change is scored against the ``lookback``
    changes before it with :func:`~balance_manager.core.alerts.robust.robust_score`:
    its distance from their median in robust standard deviations (MAD-based).
    It fires when the score exceeds ``threshold`` and the change is at most
    ``hold`` seconds old; it resolves once the change is older than ``hold``
    or a newer, ordinary change arrives. With fewer samples, or when the
    earlier changes are all equal, nothing is judged (no black box: the
    alert's details carry the change, the median, the spread and the score).

    Args:
        threshold: the robust score above which it fires (> 0, default 8).
        min_samples: earlier changes needed before judging (>= 3, default 20).
        lookback: most earlier changes used (>= ``min_samples``, default 100).
        hold: seconds an anomalous change stays alerted (> 0, default 300).
        severity: severity of the conditions (default WARNING).
        enabled: whether the engine runs it.
    """

    __slots__ = ("_scored", "hold", "lookback", "min_samples", "threshold")

    #: Each condition is one change, an event of its own: the engine's cool-down (meant for
    #: a lasting condition that flaps) does not hold a second anomaly back.
    each_event = True

    def __init__(
        self,
        *,
        threshold: AmountLike = Decimal(8),
        min_samples: int = 20,
        lookback: int = 100,
        hold: float = 300.0,
        severity: Severity = Severity.WARNING,
        enabled: bool = True,
    ) -> None:
        super().__init__("balance_anomaly", severity, enabled)
        self.threshold = _positive_amount(threshold, "threshold")
        self.min_samples = _count(min_samples, "min_samples", 3)
        self.lookback = _count(lookback, "lookback", self.min_samples)
        self.hold = seconds("hold", hold)
        # asset → (newest change's time, its score): a change is scored once, not at every
        # evaluation while it is recent (changes are only ever appended).
        self._scored: dict[str, tuple[tuple[float, Decimal], RobustScore | None, int]] = {}

    def __call__(self, ctx: AlertContext) -> Iterable[Condition]:
        """One condition per asset whose newest change scores above ``threshold``."""
        found: list[Condition] = []
        memo = self._scored
        if len(memo) > 2 * len(ctx.changes) + 64:  # assets no longer followed
            for gone in memo.keys() - ctx.changes.keys():
                del memo[gone]
        for asset, changes in ctx.changes.items():
            if len(changes) <= self.min_samples:
                continue
            at, delta = changes[-1]
            if ctx.now - at > self.hold:
                memo.pop(asset, None)
                continue
            known = memo.get(asset)
            if known is not None and known[0] == (at, delta):
                scored, samples = known[1], known[2]
            else:
                # islice, not a slice: a deque (what the monitor keeps) has no slicing.
                count = len(changes)
                window = islice(changes, max(0, count - 1 - self.lookback), count - 1)
                earlier = [change for _, change in window]
                scored, samples = robust_score(delta, earlier), len(earlier)
                memo[asset] = ((at, delta), scored, samples)
            if scored is None or scored.score <= self.threshold:
                continue
            found.append(
                Condition(
                    self.name,
                    self.severity,
                    asset,
                    f"{asset} changed by {display_amount(delta)}, {scored.score:.1f} robust "
                    f"deviations from its median change {display_amount(scored.median)} "
                    f"over the last {samples} changes (bound {self.threshold})",
                    {
                        "change": delta,
                        "median": scored.median,
                        "scale": scored.scale,
                        "score": scored.score,
                        "method": scored.method,
                        "samples": samples,
                        "threshold": self.threshold,
                        "changed_at": at,
                    },
                )
            )
        return found or _NOTHING

    def __repr__(self) -> str:
        return (
            f"BalanceAnomaly(threshold={self.threshold!r}, min_samples={self.min_samples!r}, "
            f"lookback={self.lookback!r}, hold={self.hold!r})"
        )


# -- user rules from plain functions --------------------------------------------------------

#: What a function wrapped by :func:`alert_rule` may return: conditions, one
#: condition, a message (one account-wide condition), or ``None`` (all is well).
AlertRuleResult: TypeAlias = Iterable[Condition] | Condition | str | None


class FunctionAlertRule:
    """An alert rule made from a function ``fn(ctx) -> AlertRuleResult`` (see :func:`alert_rule`).

    Args:
        name: the rule's name.
        severity: severity of the conditions made from messages.
        function: the check.
        enabled: whether the engine runs it.
    """

    __slots__ = ("__wrapped__", "enabled", "function", "name", "severity")

    def __init__(
        self,
        name: str,
        severity: Severity,
        function: Callable[[AlertContext], AlertRuleResult],
        *,
        enabled: bool = True,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError(f"name={name!r}: an alert rule needs a non-empty str name")
        self.name = name
        self.severity = Severity(severity)
        self.function = function
        self.enabled = enabled
        self.__wrapped__ = function

    def __call__(self, ctx: AlertContext) -> Iterable[Condition]:
        """Run the function and turn what it returns into conditions."""
        result = self.function(ctx)
        if result is None:
            return _NOTHING
        if isinstance(result, str):
            return (Condition(self.name, self.severity, None, result),)
        if isinstance(result, Condition):
            return (result,)
        return result

    def __repr__(self) -> str:
        return f"FunctionAlertRule({self.name!r}, severity={self.severity.value!r})"


def alert_rule(
    name: str, severity: Severity | str = Severity.WARNING, *, enabled: bool = True
) -> Callable[[Callable[[AlertContext], AlertRuleResult]], FunctionAlertRule]:
    """Decorator turning ``fn(ctx) -> AlertRuleResult`` into an alert rule.

    Args:
        name: the rule's name (unique within an engine).
        severity: severity of the conditions made from messages.
        enabled: whether the engine runs it.
    """
    level = Severity(severity)

    def wrap(function: Callable[[AlertContext], AlertRuleResult]) -> FunctionAlertRule:
        return FunctionAlertRule(name, level, function, enabled=enabled)

    return wrap


# -- the default set ----------------------------------------------------------------------------


class AlertOptions(Protocol):
    """The options of the built-in alert rules (a ``BalanceManagerConfig`` has them)."""

    @property
    def alert_low_balance(self) -> tuple[tuple[str, Decimal], ...]: ...
    @property
    def alert_portfolio_drop_percent(self) -> Decimal: ...
    @property
    def alert_portfolio_window(self) -> float: ...
    @property
    def alert_stale_after(self) -> float: ...
    @property
    def alert_validation_failures(self) -> int: ...
    @property
    def alert_validation_window(self) -> float: ...
    @property
    def alert_stream_down_after(self) -> float: ...
    @property
    def alert_anomaly_threshold(self) -> Decimal: ...
    @property
    def alert_anomaly_min_samples(self) -> int: ...
    @property
    def disabled_alerts(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class _Defaults:
    alert_low_balance: tuple[tuple[str, Decimal], ...] = ()
    alert_portfolio_drop_percent: Decimal = Decimal(5)
    alert_portfolio_window: float = 3600.0
    alert_stale_after: float = 300.0
    alert_validation_failures: int = 3
    alert_validation_window: float = 300.0
    alert_stream_down_after: float = 60.0
    alert_anomaly_threshold: Decimal = Decimal(8)
    alert_anomaly_min_samples: int = 20
    disabled_alerts: tuple[str, ...] = ()


#: The alert rules' default options: the one place the configuration's defaults come from.
DEFAULT_ALERT_OPTIONS: AlertOptions = _Defaults()


def default_alert_rules(
    options: AlertOptions | None = None,
    *,
    canonical: Callable[[str], str] | None = None,
) -> list[AlertRule]:
    """The seven built-in alert rules, configured from ``options`` (defaults if ``None``).

    Rules named in ``disabled_alerts`` come back with ``enabled=False``.
    ``canonical`` maps the asset names of ``alert_low_balance`` to canonical
    ones (``XBT`` → ``BTC``); the names are kept as given without it.
    """
    if options is None:
        options = DEFAULT_ALERT_OPTIONS
    name = canonical or (lambda asset: asset)
    rules: list[AlertRule] = [
        LowBalance({name(asset): value for asset, value in options.alert_low_balance}),
        PortfolioDrop(
            percent=options.alert_portfolio_drop_percent, window=options.alert_portfolio_window
        ),
        StaleBalance(max_age=options.alert_stale_after),
        StalePrice(max_age=options.alert_stale_after),
        RepeatedValidationFailures(
            count=options.alert_validation_failures, window=options.alert_validation_window
        ),
        StreamDown(max_down=options.alert_stream_down_after),
        BalanceAnomaly(
            threshold=options.alert_anomaly_threshold,
            min_samples=options.alert_anomaly_min_samples,
            lookback=max(100, options.alert_anomaly_min_samples),
        ),
    ]
    disabled = frozenset(options.disabled_alerts)
    for each in rules:
        each.enabled = each.name not in disabled
    return rules
