"""The alert engine: conditions in, alerts fired once and resolved when they clear.

Each evaluation runs the enabled rules on one
:class:`~balance_manager.core.alerts.model.AlertContext` and compares the
conditions found with the alerts already active. A condition is identified by
its key ``(rule, asset)``; per key the engine is a small state machine:

============  ======================================  ===================================
state         condition present                       condition absent
============  ======================================  ===================================
quiet         fire (→ active), unless the key         stay quiet
              resolved less than ``cooldown`` s ago
              (→ cooling, nothing fired)
active        stay active (fired once, not again)     resolve (→ quiet, cool-down starts)
cooling       fire once ``cooldown`` s have passed    → quiet
              since the key resolved
============  ======================================  ===================================

So an alert fires once per condition, a condition that flaps (clears and
comes back within the cool-down) is not reported again until the cool-down is
over, and one that persists through its cool-down is reported then, not lost.
A rule that raises is logged (once) and counted; its active alerts stay as
they were (its condition is unknown, not cleared). Sans-I/O: ``now`` comes in
with the context.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

from balance_manager.core.alerts.model import (
    Alert,
    AlertContext,
    AlertKey,
    AlertRule,
    Condition,
    json_safe,
)
from balance_manager.core.bounds import seconds
from balance_manager.exceptions import ConfigError

__all__ = ["AlertEngine", "AlertEngineStatistics", "AlertUpdate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertUpdate:
    """What one evaluation changed.

    Attributes:
        fired: alerts that fired now (``resolved_at`` is ``None``).
        resolved: alerts that resolved now (``resolved_at`` is the evaluation's time).
    """

    fired: tuple[Alert, ...] = ()
    resolved: tuple[Alert, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.fired or self.resolved)


class AlertEngineStatistics(TypedDict):
    """What :meth:`AlertEngine.get_statistics` returns."""

    evaluations: int
    fired: int
    resolved: int
    suppressed: int
    rule_errors: int
    active: int


class AlertEngine:
    """Runs alert rules and keeps the state of every condition (see the module docs).

    Args:
        rules: the rules, run in order (names must be unique).
        cooldown: seconds after a key resolved during which it does not fire again.
        keep_resolved: how many resolved alerts :meth:`recent` keeps.

    Raises:
        ConfigError: a duplicate rule name, or a cool-down that is not a number
            of seconds (0 allowed: no cool-down).
    """

    def __init__(
        self, rules: Iterable[AlertRule] = (), *, cooldown: float = 300.0, keep_resolved: int = 100
    ) -> None:
        self.cooldown = 0.0 if cooldown == 0 else seconds("cooldown", cooldown)
        self._rules: list[AlertRule] = []
        for each in rules:
            self.add_rule(each)
        self._active: dict[AlertKey, Alert] = {}
        self._resolved_at: dict[AlertKey, float] = {}
        self._cooling: set[AlertKey] = set()
        self._recent: deque[Alert] = deque(maxlen=keep_resolved)
        self._failing: set[str] = set()
        self._evaluations = 0
        self._fired = 0
        self._resolved = 0
        self._suppressed = 0
        self._rule_errors = 0

    # -- rules -----------------------------------------------------------------------------

    @property
    def rules(self) -> tuple[AlertRule, ...]:
        """Every rule, in the order they run."""
        return tuple(self._rules)

    def add_rule(self, rule: AlertRule) -> None:
        """Run ``rule`` after the others.

        Raises:
            ConfigError: a rule of that name is already there.
        """
        if any(each.name == rule.name for each in self._rules):
            raise ConfigError("rule", rule.name, "an alert rule of that name is already added")
        self._rules.append(rule)

    def remove_rule(self, name: str) -> bool:
        """Remove the rule ``name`` (its active alerts resolve at the next evaluation)."""
        kept = [each for each in self._rules if each.name != name]
        removed = len(kept) != len(self._rules)
        self._rules = kept
        return removed

    def rule(self, name: str) -> AlertRule:
        """The rule called ``name``.

        Raises:
            ConfigError: no such rule (the message lists the known ones).
        """
        for each in self._rules:
            if each.name == name:
                return each
        known = ", ".join(each.name for each in self._rules)
        raise ConfigError("rule", name, f"unknown alert rule; known: {known}")

    # -- evaluation --------------------------------------------------------------------------

    def evaluate(self, ctx: AlertContext) -> AlertUpdate:
        """Run the enabled rules on ``ctx``; fire, keep and resolve alerts (see the module docs)."""
        self._evaluations += 1
        now = ctx.now
        steady = now if ctx.steady is None else ctx.steady  # what cool-downs are timed on
        seen: dict[AlertKey, Condition] = {}
        failed: set[str] = set()
        for each in self._rules:
            if not each.enabled:
                continue
            try:
                conditions = list(each(ctx))
            except Exception:
                self._rule_errors += 1
                failed.add(each.name)
                if each.name not in self._failing:
                    logger.exception(
                        "alert rule %s failed; its alerts are kept as they were", each.name
                    )
                else:
                    logger.debug("alert rule %s failed again", each.name, exc_info=True)
                self._failing.add(each.name)
                continue
            self._failing.discard(each.name)
            for condition in conditions:
                seen.setdefault(condition.key, condition)
        resolved: list[Alert] = []
        for key, alert in list(self._active.items()):
            if key in seen or key[0] in failed:
                continue
            done = alert.resolve(now)
            del self._active[key]
            self._resolved_at[key] = steady
            self._recent.append(done)
            resolved.append(done)
        self._resolved += len(resolved)
        self._cooling &= seen.keys()
        fired: list[Alert] = []
        # Rules whose every condition is a new event (an anomalous change) skip the
        # cool-down: a second anomaly is no flapping of the first.
        each_event = {r.name for r in self._rules if getattr(r, "each_event", False)}
        for key, condition in seen.items():
            if key in self._active:
                continue
            last = self._resolved_at.get(key)
            if last is not None and steady - last < self.cooldown and key[0] not in each_event:
                if key not in self._cooling:
                    self._cooling.add(key)
                    self._suppressed += 1
                continue
            self._cooling.discard(key)
            alert = Alert(
                condition.rule,
                condition.severity,
                condition.asset,
                condition.message,
                now,
                None,
                json_safe(condition.details),
            )
            self._active[key] = alert
            fired.append(alert)
        self._fired += len(fired)
        if len(self._resolved_at) > 4 * (len(self._active) + 256):
            self._forget_old(steady)
        return AlertUpdate(tuple(fired), tuple(resolved))

    def _forget_old(self, now: float) -> None:
        """Drop resolution times past their cool-down (they no longer matter)."""
        self._resolved_at = {
            key: at for key, at in self._resolved_at.items() if now - at < self.cooldown
        }

    # -- reading -------------------------------------------------------------------------------

    def active(self) -> list[Alert]:
        """The alerts firing now, oldest first."""
        return sorted(self._active.values(), key=lambda alert: alert.fired_at)

    def recent(self) -> list[Alert]:
        """The last resolved alerts (at most ``keep_resolved``), oldest first."""
        return list(self._recent)

    def is_active(self, rule: str, asset: str | None = None) -> bool:
        """Whether the condition ``(rule, asset)`` is firing now."""
        return (rule, asset) in self._active

    def get_statistics(self) -> AlertEngineStatistics:
        """Counts since creation."""
        return {
            "evaluations": self._evaluations,
            "fired": self._fired,
            "resolved": self._resolved,
            "suppressed": self._suppressed,
            "rule_errors": self._rule_errors,
            "active": len(self._active),
        }

    def __repr__(self) -> str:
        return (
            f"AlertEngine(rules={[each.name for each in self._rules]!r}, "
            f"cooldown={self.cooldown:g}, active={len(self._active)})"
        )
