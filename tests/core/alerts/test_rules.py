"""Tests of balance_manager.core.alerts.rules: each built-in rule fires exactly past its bound."""

from __future__ import annotations

import dataclasses
from collections import deque
from decimal import Decimal
from typing import Any, cast

import pytest

from balance_manager.core.alerts.model import AlertContext, Condition
from balance_manager.core.alerts.rules import (
    ALERT_RULE_NAMES,
    DEFAULT_ALERT_OPTIONS,
    BalanceAnomaly,
    LowBalance,
    PortfolioDrop,
    RepeatedValidationFailures,
    StaleBalance,
    StalePrice,
    StreamDown,
    alert_rule,
    default_alert_rules,
)
from balance_manager.core.models import Balance
from balance_manager.core.validation.rules import Severity
from balance_manager.exceptions import ConfigError, FloatAmountError

D = Decimal
NOW = 1_700_000_000.0


def usd(free: str, held: str = "0", received_at: float = NOW) -> Balance:
    total = D(free) + D(held)
    return Balance("USD", total, D(held), received_at=received_at)


def test_low_balance_fires_strictly_below_the_threshold() -> None:
    """free == threshold is fine; one unit below fires, naming the amounts."""
    rule = LowBalance({"USD": "100"})
    assert list(rule(AlertContext(NOW, {"USD": usd("100")}))) == []
    (found,) = rule(AlertContext(NOW, {"USD": usd("99.9999", held="50")}))
    assert found.key == ("low_balance", "USD")
    assert found.details == {"free": D("99.9999"), "threshold": D(100)}
    assert "USD free 99.9999 is below 100" in found.message


def test_low_balance_counts_an_asset_not_held_as_empty() -> None:
    """Running out entirely (the asset gone from the account) fires too."""
    (found,) = LowBalance({"BTC": "0.01"})(AlertContext(NOW, {}))
    assert found.asset == "BTC"
    assert found.details["free"] == 0


def test_low_balance_refuses_float_thresholds() -> None:
    """Thresholds are exact amounts: a float is refused with the asset named."""
    with pytest.raises(FloatAmountError, match="USD"):
        LowBalance({"USD": 100.5})  # type: ignore[dict-item]


def test_portfolio_drop_from_the_window_peak() -> None:
    """Down 5 % from the window's highest value is fine, more fires; older peaks are ignored."""
    rule = PortfolioDrop(percent="5", window=3600)
    samples = [(NOW - 7200, D(2000)), (NOW - 1800, D(1000)), (NOW - 600, D(1020))]
    fine = AlertContext(NOW, portfolio=[*samples, (NOW, D(969))])  # 5 % of 1020 = 51
    assert list(rule(fine)) == []
    (found,) = rule(AlertContext(NOW, portfolio=[*samples, (NOW, D("968.99"))]))
    assert found.asset is None
    assert found.details["peak"] == D(1020)
    assert found.details["drop_percent"] > 5


def test_portfolio_drop_needs_two_values_in_the_window() -> None:
    """One value, or none, says nothing about a drop (valuation not available yet)."""
    rule = PortfolioDrop()
    assert list(rule(AlertContext(NOW))) == []
    assert list(rule(AlertContext(NOW, portfolio=[(NOW - 9000, D(100)), (NOW, D(1))]))) == []


def test_stale_balance_uses_confirmation_then_receive_time() -> None:
    """Age from confirmed_at when given, else received_at; empty balances are skipped."""
    rule = StaleBalance(max_age=60)
    old = usd("10", received_at=NOW - 61)
    assert [c.asset for c in rule(AlertContext(NOW, {"USD": old}))] == ["USD"]
    confirmed = AlertContext(NOW, {"USD": old}, confirmed_at={"USD": NOW - 60})
    assert list(rule(confirmed)) == []
    empty = Balance("ETH", D(0), received_at=NOW - 10_000)
    assert list(rule(AlertContext(NOW, {"ETH": empty}))) == []


def test_stale_price_per_pair() -> None:
    """A price older than the bound fires for its pair only."""
    ctx = AlertContext(NOW, prices_confirmed_at={"BTC/USD": NOW - 301, "ETH/USD": NOW - 5})
    assert [c.asset for c in StalePrice(max_age=300)(ctx)] == ["BTC/USD"]


def test_validation_failures_counted_within_the_window() -> None:
    """Three failures within the window fire; one leaving the window clears it."""
    rule = RepeatedValidationFailures(count=3, window=60)
    times = [NOW - 59, NOW - 30, NOW]
    (found,) = rule(AlertContext(NOW, validation_failures=times))
    assert found.severity is Severity.ERROR
    assert found.details["failures"] == 3
    assert list(rule(AlertContext(NOW + 1, validation_failures=times))) == []


def test_stream_down_only_past_the_bound() -> None:
    """Down exactly the bound is fine; longer fires; a serving stream never does."""
    rule = StreamDown(max_down=60)
    assert list(rule(AlertContext(NOW, stream_down_since=NOW - 60))) == []
    assert len(list(rule(AlertContext(NOW, stream_down_since=NOW - 61)))) == 1
    assert list(rule(AlertContext(NOW))) == []


def ordinary_changes(n: int, at: float = NOW - 1000) -> list[tuple[float, Decimal]]:
    """Buys and sells of a few units around zero."""
    pattern = [D("-3"), D("2"), D("-1"), D("4"), D("1"), D("-2"), D("3"), D("-4")]
    return [(at + i, pattern[i % len(pattern)]) for i in range(n)]


def test_anomaly_flags_a_change_far_outside_recent_ones() -> None:
    """A withdrawal 100 times the usual size fires, with the statistics in its details."""
    rule = BalanceAnomaly(threshold=8, min_samples=20)
    changes = [*ordinary_changes(30), (NOW - 5, D(-300))]
    (found,) = rule(AlertContext(NOW, changes={"BTC": changes}))
    assert found.asset == "BTC"
    assert found.details["method"] == "mad"
    assert found.details["samples"] == 30
    assert found.details["score"] > 8
    assert "BTC changed by -300" in found.message


def test_anomaly_scores_a_change_once_while_it_is_recent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluated again and again with nothing new, a change is scored once (at 10,000 assets
    every evaluation re-sorted every recent asset's history); a new change is scored."""
    from balance_manager.core.alerts import rules

    calls: list[Decimal] = []
    real = rules.robust_score

    def counting(value: Decimal, sample: Any) -> Any:
        calls.append(value)
        return real(value, sample)

    monkeypatch.setattr(rules, "robust_score", counting)
    rule = BalanceAnomaly(threshold=8, min_samples=20)
    changes = [*ordinary_changes(30), (NOW - 5, D(-300))]
    for later in range(5):
        assert len(list(rule(AlertContext(NOW + later, changes={"BTC": changes})))) == 1
    assert calls == [D(-300)]
    changes.append((NOW + 6, D(-600)))
    assert len(list(rule(AlertContext(NOW + 7, changes={"BTC": changes})))) == 1
    assert calls == [D(-300), D(-600)]


def test_anomaly_ignores_ordinary_changes_and_small_samples() -> None:
    """An ordinary change, or too few earlier changes, never fires."""
    rule = BalanceAnomaly(threshold=8, min_samples=20)
    assert (
        list(rule(AlertContext(NOW, changes={"BTC": [*ordinary_changes(30), (NOW, D(5))]}))) == []
    )
    few = [*ordinary_changes(19), (NOW, D(-300))]
    assert list(rule(AlertContext(NOW, changes={"BTC": few}))) == []


def test_anomaly_holds_for_a_while_then_clears() -> None:
    """The condition lasts ``hold`` seconds after the change, then clears by itself."""
    rule = BalanceAnomaly(threshold=8, min_samples=20, hold=300)
    changes = {"BTC": [*ordinary_changes(30), (NOW, D(-300))]}
    assert len(list(rule(AlertContext(NOW + 300, changes=changes)))) == 1
    assert list(rule(AlertContext(NOW + 301, changes=changes))) == []


def test_anomaly_looks_back_only_lookback_changes() -> None:
    """Old behaviour beyond ``lookback`` does not count: a new regime is judged by itself."""
    big = [(NOW - 2000 + i, D(1000) * (-1) ** i) for i in range(50)]
    rule = BalanceAnomaly(threshold=8, min_samples=20, lookback=30)
    changes = {
        "BTC": deque([*big, *ordinary_changes(30), (NOW, D(-300))])
    }  # as the monitor keeps them
    assert len(list(rule(AlertContext(NOW, changes=changes)))) == 1


def test_rule_arguments_are_checked() -> None:
    """Bad bounds are refused with a ConfigError naming the argument."""
    with pytest.raises(ConfigError, match="min_samples"):
        BalanceAnomaly(min_samples=2)
    with pytest.raises(ConfigError, match="lookback"):
        BalanceAnomaly(min_samples=20, lookback=10)
    with pytest.raises(ConfigError, match="percent"):
        PortfolioDrop(percent="0")
    with pytest.raises(ConfigError, match="max_down"):
        StreamDown(max_down=-1)


def test_function_rules_from_the_decorator() -> None:
    """A message becomes an account-wide condition; None means all is well."""

    @alert_rule("usd_gone", Severity.INFO)
    def usd_gone(ctx: AlertContext) -> str | None:
        return None if "USD" in ctx.balances else "no USD at all"

    (found,) = usd_gone(AlertContext(NOW))
    assert found == Condition("usd_gone", Severity.INFO, None, "no USD at all")
    assert list(usd_gone(AlertContext(NOW, {"USD": usd("1")}))) == []


def test_default_rules_follow_the_options() -> None:
    """All seven, in order, configured and with disabled ones switched off."""
    rules = default_alert_rules()
    assert tuple(r.name for r in rules) == ALERT_RULE_NAMES
    assert all(r.enabled for r in rules)
    assert DEFAULT_ALERT_OPTIONS.alert_stream_down_after == 60.0

    options = dataclasses.replace(
        cast(Any, DEFAULT_ALERT_OPTIONS),  # a dataclass behind the protocol
        alert_low_balance=(("XBT", D(1)),),
        disabled_alerts=("stale_price",),
    )
    rules = default_alert_rules(options, canonical=lambda name: "BTC" if name == "XBT" else name)
    low = rules[0]
    assert isinstance(low, LowBalance)
    assert low.thresholds == {"BTC": D(1)}
    assert [r.name for r in rules if not r.enabled] == ["stale_price"]
