"""What alert rules look at and what they report: the context, conditions and alerts.

* :class:`AlertContext`: everything a rule may need, gathered at one moment
  ``now`` (sans-I/O: the time comes in, nothing is read here).
* :class:`Condition`: what a rule finds wrong right now (one per asset, or
  one for the whole account).
* :class:`Alert`: a condition as the engine reports it: when it fired, and
  when it resolved.
* :class:`AlertRule`: the protocol every rule follows (``name``, ``severity``,
  ``enabled``, ``__call__(ctx)``), as validation rules do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from balance_manager.core.models import Balance
from balance_manager.core.validation.rules import Severity

__all__ = ["Alert", "AlertContext", "AlertKey", "AlertRule", "Condition", "Severity", "json_safe"]

#: What identifies one condition over time: the rule's name and the asset (or ``None``).
AlertKey = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class AlertContext:
    """What the alert rules see at one moment.

    Attributes:
        now: wall-clock time of the evaluation (Unix seconds).
        balances: the held balances by asset.
        confirmed_at: asset → the last moment a live source confirmed its value
            (wall clock); an asset missing here counts from its ``received_at``.
        stream_down_since: when the stream stopped serving (wall clock), or
            ``None`` while it serves (or when there is no stream at all).
        validation_failures: times of recent validation failures, oldest first.
        changes: asset → its recent balance changes as ``(time, delta)``,
            oldest first; the last one is the newest change.
        portfolio: recent portfolio values as ``(time, value)``, oldest first
            (empty until portfolio valuation is available).
        prices_confirmed_at: pair → the last moment its price was confirmed
            (empty until prices are available).
        steady: a monotonic reading of the same moment, if the caller has one: the
            engine times cool-downs on it, so a step of the wall clock neither
            stretches nor cuts one (``None``: ``now`` is used).
    """

    now: float
    balances: Mapping[str, Balance] = field(default_factory=dict)
    confirmed_at: Mapping[str, float] = field(default_factory=dict)
    stream_down_since: float | None = None
    validation_failures: Sequence[float] = ()
    changes: Mapping[str, Sequence[tuple[float, Decimal]]] = field(default_factory=dict)
    portfolio: Sequence[tuple[float, Decimal]] = ()
    prices_confirmed_at: Mapping[str, float] = field(default_factory=dict)
    steady: float | None = None


class Condition(msgspec.Struct, frozen=True):
    """Something a rule finds wrong right now.

    Attributes:
        rule: the rule's name.
        severity: how bad it is.
        asset: the asset (or pair) concerned, ``None`` for the whole account.
        message: a sentence naming the values and the bound involved.
        details: the numbers involved, by name (amounts stay ``Decimal``).
    """

    rule: str
    severity: Severity
    asset: str | None
    message: str
    details: Mapping[str, Any] = msgspec.field(default_factory=dict)

    @property
    def key(self) -> AlertKey:
        """``(rule, asset)``: the same key across evaluations is the same condition."""
        return (self.rule, self.asset)


class Alert(msgspec.Struct, frozen=True):
    """A condition the engine fired, and its resolution.

    ``msgspec.json.encode(alert)`` (what the webhook sends) writes amounts as
    exact decimal strings and the severity as its value.

    Attributes:
        rule: the rule that fired it (``low_balance``, ``stream_down``...).
        severity: how bad it is (``error``, ``warning``, ``info``).
        asset: the asset (or pair) concerned, ``None`` for the whole account.
        message: what was found, as the rule said when it fired.
        fired_at: when it fired (Unix seconds).
        resolved_at: when the condition cleared, ``None`` while it holds.
        details: the numbers involved when it fired.
    """

    rule: str
    severity: Severity
    asset: str | None
    message: str
    fired_at: float
    resolved_at: float | None = None
    details: Mapping[str, Any] = msgspec.field(default_factory=dict)

    @property
    def key(self) -> AlertKey:
        """``(rule, asset)``."""
        return (self.rule, self.asset)

    @property
    def active(self) -> bool:
        """Whether the condition still holds (not resolved yet)."""
        return self.resolved_at is None

    def resolve(self, now: float) -> Alert:
        """This alert, resolved at ``now``."""
        return msgspec.structs.replace(self, resolved_at=now)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict: amounts as exact decimal strings, never floats."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        out["active"] = self.active
        return out

    def __str__(self) -> str:
        where = f" {self.asset}" if self.asset else ""
        state = "active" if self.active else "resolved"
        return f"{self.severity.value.upper()} {self.rule}{where} ({state}): {self.message}"


def json_safe(details: Mapping[str, Any]) -> Mapping[str, Any]:
    """``details`` as JSON-ready data: a rule's own objects (a custom rule may put anything
    there) become their ``repr``, so one alert can never stop the delivery of others or make
    a status unreadable. Decimals stay exact (as strings, as :meth:`Alert.as_json` gives)."""
    try:
        msgspec.json.encode(details)
    except (TypeError, ValueError, OverflowError):
        safe: Any = msgspec.to_builtins(details, enc_hook=repr, str_keys=True)
        return dict(safe)
    return details


class AlertRule(Protocol):
    """An alert rule: any object with these attributes, called with a context.

    Attributes:
        name: unique name, used in alerts, statistics and to disable it.
        severity: the severity of the conditions it reports.
        enabled: whether the engine runs it.
    """

    name: str
    severity: Severity
    enabled: bool

    def __call__(self, ctx: AlertContext) -> Iterable[Condition]:
        """The conditions that hold at ``ctx.now`` (empty when all is well)."""
        ...
