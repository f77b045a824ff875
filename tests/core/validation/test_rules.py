"""Tests for balance_manager.core.validation.rules: the seven built-in rules and user rules."""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, strategies as st

from balance_manager.config import RULE_NAMES, BalanceManagerConfig
from balance_manager.core.models import Balance, Source
from balance_manager.core.validation.rules import (
    EMPTY_CONTEXT,
    FunctionRule,
    HoldExceedsBalance,
    Issue,
    NegativeBalance,
    NegativeFreeBalance,
    PrecisionOverflow,
    Rule,
    RuleContext,
    Severity,
    SourceInconsistency,
    StaleData,
    UnrealisticBalance,
    default_rules,
    rule,
    significant_places,
)
from balance_manager.exceptions import ConfigError, FloatAmountError

# Amounts with up to 12 decimal places, spanning negative to large values.
amounts = st.decimals(
    min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=12, allow_nan=False
)
non_negative = st.decimals(min_value=0, max_value=Decimal("1e9"), places=12, allow_nan=False)


def bal(
    asset: str = "BTC", balance: str | Decimal = "1", hold: str | Decimal = "0", **kw: Any
) -> Balance:
    """A Balance from strings, for brevity."""
    return Balance(asset, Decimal(balance), Decimal(hold), **kw)


def run(check: Rule, balance: Balance, ctx: RuleContext = EMPTY_CONTEXT) -> list[Issue]:
    """Call a rule and materialise what it returns."""
    return list(check(balance, ctx))


# -- Severity and Issue ----------------------------------------------------------------


def test_severity_values_are_the_documented_strings() -> None:
    """Severity members carry the values "error", "warning" and "info"."""
    assert [s.value for s in Severity] == ["error", "warning", "info"]
    assert Severity("warning") is Severity.WARNING


def test_issue_str_names_severity_rule_asset_and_message() -> None:
    """str(Issue) is a one-line summary with severity, rule, asset and message."""
    issue = Issue("negative_balance", Severity.ERROR, "BTC", "BTC balance is negative: -1")
    assert str(issue) == "ERROR negative_balance BTC: BTC balance is negative: -1"
    assert issue.details == {}


# -- negative_balance ---------------------------------------------------------------------


@given(amounts)
def test_negative_balance_fires_exactly_below_zero(value: Decimal) -> None:
    """negative_balance reports a balance iff it is below zero."""
    issues = run(NegativeBalance(), bal(balance=value))
    assert bool(issues) == (value < 0)


def test_negative_balance_boundary_and_message() -> None:
    """Zero is fine; -0.00000001 is an ERROR naming the asset and the value."""
    assert run(NegativeBalance(), bal(balance="0")) == []
    (issue,) = run(NegativeBalance(), bal("ETH", balance="-0.00000001"))
    assert issue.rule == "negative_balance"
    assert issue.severity is Severity.ERROR
    assert issue.asset == "ETH"
    assert "ETH" in issue.message
    assert "-0.00000001" in issue.message
    assert issue.details == {"balance": Decimal("-0.00000001")}


# -- negative_free_balance ------------------------------------------------------------------


@given(amounts, non_negative)
def test_negative_free_balance_fires_exactly_when_free_is_negative(
    value: Decimal, hold: Decimal
) -> None:
    """negative_free_balance reports iff balance - hold_trade < 0."""
    issues = run(NegativeFreeBalance(), bal(balance=value, hold=hold))
    assert bool(issues) == (value - hold < 0)


def test_negative_free_balance_is_a_warning_that_explains_legitimate_causes() -> None:
    """The issue is a WARNING giving free, balance and hold, and mentions .F funds and credit."""
    (issue,) = run(NegativeFreeBalance(), bal("USDT", balance="10", hold="12.5"))
    assert issue.severity is Severity.WARNING
    assert "-2.5" in issue.message
    assert "12.5" in issue.message
    assert ".F" in issue.message
    assert "credit" in issue.message
    assert issue.details["free"] == Decimal("-2.5")


def test_negative_free_balance_counts_the_credit_line() -> None:
    """With credit, free = balance + credit - credit_used - hold: a covered hold is fine."""
    covered = bal("USD", balance="10", hold="15", credit="10", credit_used="2")
    assert run(NegativeFreeBalance(), covered) == []
    short = bal("USD", balance="10", hold="19", credit="10", credit_used="2")
    (issue,) = run(NegativeFreeBalance(), short)
    assert issue.details["free"] == Decimal("-1")
    assert "credit_used 2" in issue.message


# -- hold_exceeds_balance -------------------------------------------------------------------


@given(amounts, non_negative, st.decimals(min_value=0, max_value=10, places=4))
def test_hold_exceeds_balance_fires_exactly_past_the_tolerance(
    value: Decimal, hold: Decimal, tolerance: Decimal
) -> None:
    """hold_exceeds_balance reports iff a hold exists and hold > balance + tolerance."""
    issues = run(HoldExceedsBalance(tolerance=tolerance), bal(balance=value, hold=hold))
    assert bool(issues) == (hold > 0 and hold > value + tolerance)


def test_hold_exceeds_balance_boundary_severity_and_message() -> None:
    """A hold equal to the balance is fine; one unit more is an ERROR naming both numbers."""
    assert run(HoldExceedsBalance(), bal(balance="2", hold="2")) == []
    (issue,) = run(HoldExceedsBalance(), bal(balance="2", hold="2.0001"))
    assert issue.severity is Severity.ERROR
    assert "hold_trade 2.0001 exceeds balance 2" in issue.message
    assert issue.details["excess"] == Decimal("0.0001")


def test_hold_exceeds_balance_tolerance_is_named_in_the_message() -> None:
    """With a tolerance, a small overshoot passes and a larger one names the tolerance."""
    check = HoldExceedsBalance(tolerance="0.5")
    assert run(check, bal(balance="2", hold="2.5")) == []
    (issue,) = run(check, bal(balance="2", hold="2.6"))
    assert "tolerance 0.5" in issue.message
    assert issue.details["excess"] == Decimal("0.6")


def test_hold_exceeds_balance_ignores_a_negative_balance_without_hold() -> None:
    """No hold, no hold issue: a negative balance alone is negative_balance's business."""
    assert run(HoldExceedsBalance(), bal(balance="-1", hold="0")) == []


def test_hold_exceeds_balance_uses_available_credit() -> None:
    """The hold may use balance + credit - credit_used."""
    balance = bal("USD", balance="10", hold="18", credit="10", credit_used="2")
    assert run(HoldExceedsBalance(), balance) == []
    (issue,) = run(HoldExceedsBalance(), balance.replace(hold_trade=Decimal("18.01")))
    assert "credit 10 - credit_used 2" in issue.message


def test_hold_exceeds_balance_refuses_a_float_tolerance() -> None:
    """A float tolerance is refused with an error naming the argument."""
    with pytest.raises(FloatAmountError, match="tolerance"):
        HoldExceedsBalance(tolerance=0.5)  # type: ignore[arg-type]


# -- source_inconsistency -------------------------------------------------------------------


def test_source_inconsistency_needs_a_reference() -> None:
    """Without ctx.reference the rule has nothing to compare and reports nothing."""
    assert run(SourceInconsistency(), bal(balance="1")) == []


def test_source_inconsistency_names_both_sources_and_values() -> None:
    """The issue says which source said what, the difference and the tolerance."""
    mine = bal(balance="1.5", source=Source.WEBSOCKET)
    theirs = bal(balance="1.4", source=Source.REST)
    (issue,) = run(SourceInconsistency(), mine, RuleContext(reference=theirs))
    assert issue.severity is Severity.WARNING
    assert "websocket says 1.5" in issue.message
    assert "rest says 1.4" in issue.message
    assert "difference 0.1" in issue.message
    assert issue.details["field"] == "balance"
    assert issue.details["reference_value"] == Decimal("1.4")


def test_source_inconsistency_absolute_tolerance_boundary() -> None:
    """A difference equal to the absolute tolerance passes; a larger one fires."""
    check = SourceInconsistency(tolerance_absolute="0.01")
    ref = RuleContext(reference=bal(balance="100"))
    assert run(check, bal(balance="100.01"), ref) == []
    (issue,) = run(check, bal(balance="100.0101"), ref)
    assert issue.details["tolerance"] == Decimal("0.01")


def test_source_inconsistency_relative_tolerance_uses_the_larger_value() -> None:
    """1 % of the larger of 100 and 101 is 1.01: 101 passes, 102 fires."""
    check = SourceInconsistency(tolerance_percent="1")
    ref = RuleContext(reference=bal(balance="100"))
    assert run(check, bal(balance="101"), ref) == []
    (issue,) = run(check, bal(balance="102"), ref)
    assert issue.details["tolerance"] == Decimal("1.02")


@given(
    amounts,
    amounts,
    st.decimals(min_value=0, max_value=5, places=3),
    st.decimals(min_value=0, max_value=5, places=3),
)
def test_source_inconsistency_property(
    a: Decimal, b: Decimal, tol_abs: Decimal, tol_pct: Decimal
) -> None:
    """The rule fires iff |a - b| > max(tol_abs, tol_pct % of max(|a|, |b|))."""
    check = SourceInconsistency(tolerance_absolute=tol_abs, tolerance_percent=tol_pct)
    issues = run(check, bal(balance=a), RuleContext(reference=bal(balance=b)))
    allowed = max(tol_abs, max(abs(a), abs(b)) * tol_pct / 100)
    assert bool(issues) == (abs(a - b) > allowed)


def test_source_inconsistency_reports_each_differing_field() -> None:
    """Balance and hold_trade are compared separately: one issue per differing field."""
    mine = bal(balance="5", hold="1")
    theirs = bal(balance="4", hold="2")
    issues = run(SourceInconsistency(), mine, RuleContext(reference=theirs))
    assert [i.details["field"] for i in issues] == ["balance", "hold_trade"]
    only_balance = SourceInconsistency(fields=("balance",))
    assert len(run(only_balance, mine, RuleContext(reference=theirs))) == 1


def test_source_inconsistency_refuses_unknown_fields() -> None:
    """Comparing a field Balance does not have is a construction error."""
    with pytest.raises(ValueError, match="asset"):
        SourceInconsistency(fields=("asset",))


# -- unrealistic_balance --------------------------------------------------------------------


def test_unrealistic_balance_default_threshold_boundary() -> None:
    """1e12 itself is fine; anything above is a WARNING naming the threshold."""
    assert run(UnrealisticBalance(), bal(balance="1000000000000")) == []
    (issue,) = run(UnrealisticBalance(), bal(balance="1000000000000.0001"))
    assert issue.severity is Severity.WARNING
    assert "threshold 1000000000000" in issue.message
    assert issue.details["threshold"] == Decimal("1e12")


def test_unrealistic_balance_per_asset_overrides() -> None:
    """A per-asset threshold replaces the default for that asset only."""
    check = UnrealisticBalance(threshold="1000", per_asset={"BTC": "100"})
    assert [i.asset for i in run(check, bal("BTC", balance="101"))] == ["BTC"]
    assert run(check, bal("USD", balance="101")) == []
    assert check.threshold_for("BTC") == Decimal(100)
    assert check.threshold_for("USD") == Decimal(1000)


# -- stale_data -----------------------------------------------------------------------------


def test_stale_data_is_skipped_without_now() -> None:
    """Sans-I/O: without ctx.now the rule cannot judge age and reports nothing."""
    assert run(StaleData(max_age=1), bal(received_at=0.0)) == []


def test_stale_data_boundary_uses_received_at() -> None:
    """Exactly max_age old is fresh; older is a WARNING with age and max_age."""
    balance = bal(received_at=1000.0, source=Source.CACHE)
    assert run(StaleData(max_age=120), balance, RuleContext(now=1120.0)) == []
    (issue,) = run(StaleData(max_age=120), balance, RuleContext(now=1120.5))
    assert issue.severity is Severity.WARNING
    assert "120.5 s ago" in issue.message
    assert "max_age 120 s" in issue.message
    assert "cache" in issue.message
    assert issue.details["age"] == pytest.approx(120.5)


def test_stale_data_prefers_confirmed_at() -> None:
    """ctx.confirmed_at (last live confirmation) overrides balance.received_at."""
    balance = bal(received_at=0.0)
    ctx = RuleContext(now=1000.0, confirmed_at=990.0)
    assert run(StaleData(max_age=60), balance, ctx) == []


def test_stale_data_refuses_non_positive_max_age() -> None:
    """max_age must be a positive number."""
    with pytest.raises(ValueError, match="max_age"):
        StaleData(max_age=0)


# -- precision_overflow ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asset", "decimals", "value", "fires"),
    [
        ("BTC", 10, "0.0000000001", False),
        ("BTC", 10, "0.00000000001", True),
        ("USD", 4, "12.3456", False),
        ("USD", 4, "12.34567", True),
        ("USD", 4, "0.12340000000", False),  # trailing zeros are not precision
        ("USD", 4, "1.50", False),
        ("USD", 4, "100", False),
        ("USD", 4, "1E+3", False),
        ("BTC", 10, "1E-11", True),
        ("BTC", 10, "1.0E-10", False),
        ("BTC", 10, "0E-20", False),  # zero, however written
    ],
)
def test_precision_overflow_with_per_asset_decimals(
    asset: str, decimals: int, value: str, fires: bool
) -> None:
    """Only significant decimals beyond the asset's ledger decimals fire."""
    ctx = RuleContext(decimals=decimals)
    issues = run(PrecisionOverflow(), bal(asset, balance=value), ctx)
    assert bool(issues) == fires


def test_precision_overflow_message_and_severity() -> None:
    """The ERROR names the asset, field, value, places and the asset's decimals."""
    ctx = RuleContext(decimals=4)
    (issue,) = run(PrecisionOverflow(), bal("USD", balance="1", hold="0.123456"), ctx)
    assert issue.severity is Severity.ERROR
    assert issue.message == "USD hold_trade 0.123456 has 6 decimal places, more than the asset's 4"
    assert issue.details == {
        "field": "hold_trade",
        "value": Decimal("0.123456"),
        "places": 6,
        "decimals": 4,
    }


def test_precision_overflow_skips_unknown_decimals_unless_defaulted() -> None:
    """Unknown decimals skip the rule; a default_decimals applies when ctx has none."""
    value = bal(balance="0.123456789")
    assert run(PrecisionOverflow(), value) == []
    assert len(run(PrecisionOverflow(default_decimals=8), value)) == 1
    assert run(PrecisionOverflow(default_decimals=8), value, RuleContext(decimals=9)) == []


@pytest.mark.parametrize("decimals", [10**12, 10**6, 29, 2**63])
def test_precision_overflow_judges_absurd_decimals_without_failing(decimals: int) -> None:
    """Decimals from an exchange beyond any ledger (10**12) still give a verdict, not an error."""
    ctx = RuleContext(decimals=decimals)
    assert run(PrecisionOverflow(), bal(balance="1.5", hold="0.25"), ctx) == []
    assert run(PrecisionOverflow(), bal(balance="1e-20"), ctx) == []


@pytest.mark.parametrize("decimals", [10**12, 29, -1, True, 8.0])
def test_precision_overflow_refuses_an_absurd_default_by_name(decimals: object) -> None:
    """default_decimals outside 0..28 is a ConfigError naming it (a ValueError, as before)."""
    with pytest.raises(ConfigError) as info:
        PrecisionOverflow(default_decimals=decimals)  # type: ignore[arg-type]  # on purpose
    assert info.value.option == "default_decimals"


def test_precision_overflow_is_exact_beyond_the_context_precision() -> None:
    """A value with more digits than the decimal context holds is still judged exactly."""
    long_ok = "123456789012345678901234567890.1234"
    long_bad = "123456789012345678901234567890.12345"
    ctx = RuleContext(decimals=4)
    assert run(PrecisionOverflow(), bal(balance=long_ok), ctx) == []
    assert len(run(PrecisionOverflow(), bal(balance=long_bad), ctx)) == 1


def test_precision_overflow_under_a_low_precision_context() -> None:
    """A user's getcontext().prec = 6 does not change the verdict."""
    with decimal.localcontext() as context:
        context.prec = 6
        context.capitals = 0  # str() then writes exponents with a lowercase 'e'
        ctx = RuleContext(decimals=10)
        assert run(PrecisionOverflow(), bal(balance="1.2345678901"), ctx) == []
        assert len(run(PrecisionOverflow(), bal(balance="1.23456789012"), ctx)) == 1
        assert len(run(PrecisionOverflow(), bal(balance="1E-11"), ctx)) == 1


@given(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=0, max_value=20),
    st.integers(min_value=0, max_value=8),
    st.integers(min_value=0, max_value=18),
)
def test_precision_overflow_property(
    coefficient: int, places: int, zeros: int, decimals: int
) -> None:
    """The rule fires iff the value's places, trailing zeros aside, exceed decimals."""
    digits = tuple(int(d) for d in str(abs(coefficient))) + (0,) * zeros
    padded = Decimal((int(coefficient < 0), digits, -places - zeros))
    # Reference: strip factors of ten from the integer coefficient.
    reduced, true_places = coefficient, places
    while true_places and reduced % 10 == 0:
        reduced //= 10
        true_places -= 1
    assert significant_places(padded) == true_places
    issues = run(PrecisionOverflow(), bal(balance=padded), RuleContext(decimals=decimals))
    assert bool(issues) == (true_places > decimals)


@pytest.mark.parametrize(
    ("text", "places"),
    [("1.50", 1), ("0.12340000000", 4), ("100", 0), ("1.0E-7", 7), ("1E+3", 0), ("-0.5", 1)],
)
def test_significant_places_drops_trailing_zeros(text: str, places: int) -> None:
    """significant_places counts decimals once trailing zeros are dropped."""
    assert significant_places(Decimal(text)) == places


# -- user rules ---------------------------------------------------------------------------


def test_rule_decorator_turns_a_message_into_an_issue() -> None:
    """A function returning a string yields one issue with the rule's name and severity."""

    @rule("dust", Severity.INFO)
    def dust(balance: Balance, ctx: RuleContext) -> str | None:
        if 0 < balance.balance < Decimal("0.0001"):
            return f"{balance.asset} holds dust: {balance.balance}"
        return None

    assert isinstance(dust, FunctionRule)
    assert (dust.name, dust.severity, dust.enabled) == ("dust", Severity.INFO, True)
    (issue,) = run(dust, bal(balance="0.00001"))
    assert (issue.rule, issue.severity, issue.message) == (
        "dust",
        Severity.INFO,
        "BTC holds dust: 0.00001",
    )
    assert run(dust, bal(balance="1")) == []


def test_rule_decorator_passes_issues_through() -> None:
    """A function may return one Issue or an iterable of them."""
    one = Issue("mine", Severity.ERROR, "BTC", "one")

    @rule("single", "error")
    def single(balance: Balance, ctx: RuleContext) -> Issue:
        return one

    @rule("many")
    def many(balance: Balance, ctx: RuleContext) -> Iterable[Issue]:
        yield one
        yield one

    assert run(single, bal()) == [one]
    assert run(many, bal()) == [one, one]
    assert single.severity is Severity.ERROR
    assert many.severity is Severity.WARNING


def test_a_plain_class_satisfies_the_rule_protocol() -> None:
    """Any object with name, severity, enabled and __call__ is a Rule."""

    class Always:
        name = "always"
        severity = Severity.INFO
        enabled = True

        def __call__(self, balance: Balance, ctx: RuleContext) -> Iterable[Issue]:
            return [Issue(self.name, self.severity, balance.asset, "always")]

    check: Rule = Always()
    assert run(check, bal())[0].message == "always"


def test_function_rule_refuses_an_empty_name() -> None:
    """A rule needs a name to be enabled, disabled and counted."""
    with pytest.raises(ValueError, match="name"):
        rule("")(lambda balance, ctx: None)


# -- default_rules --------------------------------------------------------------------------


def test_default_rules_are_the_seven_named_in_config() -> None:
    """default_rules() returns the seven rules, in RULE_NAMES order, all enabled."""
    rules = default_rules()
    assert tuple(r.name for r in rules) == RULE_NAMES
    assert all(r.enabled for r in rules)
    assert [r.severity for r in rules] == [
        Severity.ERROR,
        Severity.WARNING,
        Severity.ERROR,
        Severity.WARNING,
        Severity.WARNING,
        Severity.WARNING,
        Severity.ERROR,
    ]


def test_default_rules_apply_config_thresholds_and_disabled_rules() -> None:
    """Thresholds come from the config and disabled_rules are built with enabled=False."""
    config = BalanceManagerConfig(
        unrealistic_balance_threshold=Decimal(500),
        stale_after=30.0,
        source_tolerance_absolute=Decimal("0.1"),
        source_tolerance_percent=Decimal(2),
        default_decimals=6,
        disabled_rules=("stale_data", "negative_free_balance"),
        history_db_path=None,
    )
    rules = {r.name: r for r in default_rules(config)}
    unrealistic = rules["unrealistic_balance"]
    stale = rules["stale_data"]
    source = rules["source_inconsistency"]
    precision = rules["precision_overflow"]
    assert isinstance(unrealistic, UnrealisticBalance)
    assert unrealistic.threshold == 500
    assert isinstance(stale, StaleData)
    assert stale.max_age == 30.0
    assert isinstance(source, SourceInconsistency)
    assert (source.tolerance_absolute, source.tolerance_percent) == (Decimal("0.1"), Decimal(2))
    assert isinstance(precision, PrecisionOverflow)
    assert precision.default_decimals == 6
    assert {n for n, r in rules.items() if not r.enabled} == {
        "stale_data",
        "negative_free_balance",
    }


def test_rule_reprs_show_their_settings() -> None:
    """Each built-in rule's repr shows its thresholds and state."""
    assert repr(StaleData(max_age=5, enabled=False)) == (
        "StaleData(max_age=5.0, severity='warning', enabled=False)"
    )
    assert "tolerance=Decimal('0.5')" in repr(HoldExceedsBalance(tolerance="0.5"))
