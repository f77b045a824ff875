"""Tests for balance_manager.core.validation.validator: BalanceValidator and ValidationResult."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from balance_manager.config import RULE_NAMES, BalanceManagerConfig
from balance_manager.core.models import Balance, Source
from balance_manager.core.validation.rules import (
    Issue,
    Rule,
    RuleContext,
    Severity,
    SourceInconsistency,
    UnrealisticBalance,
    rule,
)
from balance_manager.core.validation.validator import (
    INCONSISTENT_FREE,
    INVALID_BALANCE,
    RULE_FAILED,
    BalanceValidator,
    ValidationResult,
)
from balance_manager.exceptions import BalanceStateError, ConfigError, FloatAmountError

DECIMALS = {"BTC": 10, "USD": 4, "USDT": 8}


def make_validator() -> BalanceValidator:
    """The default rules, with Kraken's ledger decimals for three assets."""
    return BalanceValidator(decimals=DECIMALS.get)


def rules_of(result: ValidationResult) -> list[str]:
    """The rule names of a result's issues, in order."""
    return [issue.rule for issue in result.issues]


# -- the seed's calls -------------------------------------------------------------------


def test_seed_single_balance_call_is_valid_for_a_healthy_balance() -> None:
    """validate_single_balance("USDT", balance, hold_trade) of a healthy balance is valid."""
    validation = make_validator().validate_single_balance(
        "USDT", Decimal("1500.25"), Decimal("200")
    )
    assert validation.is_valid
    assert validation.issues == ()
    assert validation.checked == 1


def test_seed_single_balance_call_reports_a_bad_balance() -> None:
    """A hold above the balance makes the result invalid, with readable messages."""
    validation = make_validator().validate_single_balance("USDT", "100", "150")
    assert not validation.is_valid
    assert rules_of(validation) == ["negative_free_balance", "hold_exceeds_balance"]
    assert all("USDT" in issue.message for issue in validation.issues)


@pytest.mark.parametrize("argument", ["balance", "hold_trade", "free", "credit", "credit_used"])
def test_single_balance_refuses_floats_naming_the_argument(argument: str) -> None:
    """A float amount raises FloatAmountError naming the argument that was a float."""
    kwargs: dict[str, object] = {"balance": "10", "hold_trade": "1", argument: 0.1}
    with pytest.raises(FloatAmountError) as caught:
        make_validator().validate_single_balance("USD", **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == argument
    assert argument in str(caught.value)


def test_single_balance_reports_an_impossible_balance_instead_of_raising() -> None:
    """A negative hold cannot form a Balance: it is an invalid_balance ERROR issue."""
    result = make_validator().validate_single_balance("USD", "10", "-1")
    (issue,) = result.issues
    assert issue.rule == INVALID_BALANCE
    assert issue.severity is Severity.ERROR
    assert "hold_trade=-1" in issue.message
    assert not result


def test_single_balance_checks_a_given_free_amount() -> None:
    """A free amount that is not balance - hold_trade is an inconsistent_free ERROR."""
    validator = make_validator()
    assert validator.validate_single_balance("USD", "10", "4", free="6.0000").is_valid
    result = validator.validate_single_balance("USD", "10", "4", free="7")
    (issue,) = result.issues
    assert issue.rule == INCONSISTENT_FREE
    assert issue.message == "USD free 7 does not match balance 10 - hold_trade 4 = 6"
    assert issue.details["expected_free"] == Decimal(6)


def test_single_balance_free_includes_credit() -> None:
    """With a credit line, the expected free is balance + credit - credit_used - hold."""
    validator = make_validator()
    result = validator.validate_single_balance(
        "USD", "10", "4", free="11", credit="7", credit_used="2"
    )
    assert result.issues == ()


def test_single_balance_is_fresh_unless_confirmed_at_says_otherwise() -> None:
    """Numbers given with now count as confirmed now; an old confirmed_at makes them stale."""
    validator = make_validator()
    assert validator.validate_single_balance("USD", "1", now=5000.0).issues == ()
    stale = validator.validate_single_balance("USD", "1", now=5000.0, confirmed_at=4000.0)
    assert rules_of(stale) == ["stale_data"]
    assert stale.is_valid  # a warning does not invalidate


def test_single_balance_with_a_reference_checks_sources() -> None:
    """A reference balance from another source enables source_inconsistency."""
    reference = Balance("BTC", Decimal("1.0"), source=Source.WEBSOCKET)
    result = make_validator().validate_single_balance(
        "BTC", "1.5", source="rest", reference=reference
    )
    (issue,) = result.issues
    assert issue.rule == "source_inconsistency"
    assert "rest says 1.5" in issue.message
    assert "websocket says 1" in issue.message


# -- validate_balance and contexts ------------------------------------------------------


def test_validate_balance_of_a_healthy_balance_is_valid() -> None:
    """A healthy balance gives a valid result with no issue and checked == 1."""
    result = make_validator().validate_balance(Balance("BTC", Decimal("0.5")))
    assert result.is_valid
    assert bool(result)
    assert (result.issues, result.checked) == ((), 1)


def test_validate_balance_uses_per_asset_decimals() -> None:
    """BTC allows 10 decimals and USD 4: the same value fits one and not the other."""
    validator = make_validator()
    value = Decimal("0.12345")
    assert validator.validate_balance(Balance("BTC", value)).is_valid
    result = validator.validate_balance(Balance("USD", value))
    assert rules_of(result) == ["precision_overflow"]
    assert result.issues[0].details["decimals"] == 4


def test_validate_balance_trailing_zeros_are_not_overflow() -> None:
    """USD 0.12340000000 (REST-style padding) is within 4 decimals."""
    result = make_validator().validate_balance(Balance("USD", Decimal("0.12340000000")))
    assert result.is_valid


def test_validate_balance_fills_decimals_into_a_given_context() -> None:
    """A context without decimals gets the asset's decimals from the lookup."""
    ctx = RuleContext(now=100.0, confirmed_at=100.0)
    result = make_validator().validate_balance(Balance("USD", Decimal("1.00001")), ctx)
    assert rules_of(result) == ["precision_overflow"]


def test_context_decimals_win_over_the_lookup() -> None:
    """Decimals given in the context are used as they are."""
    ctx = RuleContext(decimals=8)
    assert make_validator().validate_balance(Balance("USD", Decimal("1.00001")), ctx).is_valid


def test_unknown_asset_uses_validator_default_decimals() -> None:
    """An asset the lookup does not know uses default_decimals when given."""
    validator = BalanceValidator(decimals=DECIMALS.get, default_decimals=2)
    assert rules_of(validator.validate_balance(Balance("XYZ", Decimal("1.001")))) == [
        "precision_overflow"
    ]
    assert validator.validate_balance(Balance("BTC", Decimal("1.001"))).is_valid


def test_lookup_errors_count_as_unknown_decimals() -> None:
    """A lookup raising KeyError (e.g. dict.__getitem__) means the decimals are unknown."""
    validator = BalanceValidator(decimals=DECIMALS.__getitem__, default_decimals=1)
    result = validator.validate_balance(Balance("XYZ", Decimal("1.01")))
    assert result.issues[0].details["decimals"] == 1


def test_default_rules_assume_config_default_decimals() -> None:
    """Without a lookup, precision_overflow assumes the config's default of 18 decimals."""
    validator = BalanceValidator()
    assert validator.validate_balance(Balance("XYZ", Decimal("1e-18"))).is_valid
    assert not validator.validate_balance(Balance("XYZ", Decimal("1e-19"))).is_valid


# -- rule management --------------------------------------------------------------------


def test_rules_are_listed_in_order() -> None:
    """The default validator lists the seven rules in RULE_NAMES order."""
    validator = make_validator()
    assert validator.rules == RULE_NAMES
    assert validator.enabled_rules == RULE_NAMES


def test_disabled_rules_do_not_run_and_can_be_enabled_again() -> None:
    """disable() stops a rule, enable() restarts it; the rule stays registered."""
    validator = make_validator()
    negative = Balance("BTC", Decimal(-1))
    validator.disable("negative_balance")
    assert "negative_balance" not in rules_of(validator.validate_balance(negative))
    assert "negative_balance" in validator.rules
    assert "negative_balance" not in validator.enabled_rules
    validator.enable("negative_balance")
    assert "negative_balance" in rules_of(validator.validate_balance(negative))


def test_rule_enabled_flag_is_read_at_run_time() -> None:
    """Flipping a rule's enabled attribute directly takes effect at once."""
    validator = make_validator()
    validator.get_rule("negative_balance").enabled = False
    assert validator.validate_balance(Balance("BTC", Decimal(-1))).is_valid


@pytest.mark.parametrize("method", ["enable", "disable", "get_rule"])
def test_unknown_rule_name_is_a_config_error(method: str) -> None:
    """Naming a rule that does not exist raises ConfigError listing the known rules."""
    validator = make_validator()
    with pytest.raises(ConfigError, match="negative_balance") as caught:
        getattr(validator, method)("no_such_rule")
    assert caught.value.value == "no_such_rule"


def test_remove_rule_reports_whether_it_removed() -> None:
    """remove_rule() returns True once, then False."""
    validator = make_validator()
    assert validator.remove_rule("stale_data") is True
    assert validator.remove_rule("stale_data") is False
    assert "stale_data" not in validator.rules


def test_custom_rule_runs_after_the_built_in_ones() -> None:
    """add_rule() appends a user rule; its issues follow the built-in rules' issues."""

    @rule("dust", Severity.INFO)
    def dust(balance: Balance, ctx: RuleContext) -> str | None:
        if 0 < balance.balance < Decimal("0.0001"):
            return f"{balance.asset} holds dust"
        return None

    validator = make_validator()
    validator.add_rule(dust)
    assert validator.rules[-1] == "dust"
    result = validator.validate_balance(Balance("BTC", Decimal("0.00001"), Decimal("0.001")))
    assert rules_of(result) == ["negative_free_balance", "hold_exceeds_balance", "dust"]
    assert [i.message for i in result.infos] == ["BTC holds dust"]


def test_add_rule_refuses_duplicates_and_non_rules() -> None:
    """A second rule with the same name, or an object without the protocol, is refused."""
    validator = make_validator()
    with pytest.raises(ConfigError, match="already registered"):
        validator.add_rule(UnrealisticBalance())

    class NoSeverity:
        name = "x"
        enabled = True

        def __call__(self, balance: Balance, ctx: RuleContext) -> Iterable[Issue]:
            return ()

    with pytest.raises(ConfigError, match="severity"):
        validator.add_rule(NoSeverity())  # type: ignore[arg-type]


def test_empty_validator_accepts_everything() -> None:
    """A validator with no rules finds nothing."""
    assert BalanceValidator([]).validate_balance(Balance("BTC", Decimal(-5))).is_valid


# -- broken rules -------------------------------------------------------------------------


def test_raising_rule_becomes_an_error_issue_and_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rule that raises gives a rule_failed ERROR naming it; later rules still report."""

    @rule("broken")
    def broken(balance: Balance, ctx: RuleContext) -> None:
        raise ZeroDivisionError("oops")

    validator = BalanceValidator([broken, *make_validator_rules()])
    with caplog.at_level(logging.DEBUG, logger="balance_manager.core.validation.validator"):
        first = validator.validate_balance(Balance("BTC", Decimal(-1)))
        validator.validate_balance(Balance("BTC", Decimal(1)))
    assert rules_of(first)[:2] == [RULE_FAILED, "negative_balance"]
    failure = first.issues[0]
    assert failure.severity is Severity.ERROR
    assert "'broken'" in failure.message
    assert "ZeroDivisionError: oops" in failure.message
    assert failure.details["failed_rule"] == "broken"
    # Logged with a traceback once at WARNING, then quietly at DEBUG.
    levels = [r.levelno for r in caplog.records if "broken" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG]
    assert caplog.records[0].exc_info is not None


def make_validator_rules() -> list[Rule]:
    """The default validator's rule objects."""
    validator = make_validator()
    return [validator.get_rule(name) for name in validator.rules]


def test_rule_yielding_a_non_issue_is_a_failed_rule() -> None:
    """A rule must yield Issue objects; anything else counts as the rule failing."""

    @rule("sloppy")
    def sloppy(balance: Balance, ctx: RuleContext) -> Iterable[Issue]:
        return ["not an issue"]  # type: ignore[list-item]

    result = BalanceValidator([sloppy]).validate_balance(Balance("BTC", Decimal(1)))
    (issue,) = result.issues
    assert issue.rule == RULE_FAILED
    assert "not an Issue" in issue.message


# -- many balances --------------------------------------------------------------------------


def test_validate_balances_checks_each_and_counts_them() -> None:
    """validate_balances() merges every balance's issues and counts the balances."""
    balances = [
        Balance("BTC", Decimal("1")),
        Balance("USD", Decimal("-5")),
        Balance("USDT", Decimal("3"), Decimal("4")),
    ]
    result = make_validator().validate_balances(balances)
    assert result.checked == 3
    assert [(i.asset, i.rule) for i in result.issues] == [
        ("USD", "negative_balance"),
        ("USD", "negative_free_balance"),
        ("USDT", "negative_free_balance"),
        ("USDT", "hold_exceeds_balance"),
    ]
    assert not result.is_valid


def test_validate_balances_accepts_a_mapping() -> None:
    """A mapping of asset to balance (get_all_balances' shape) is validated by value."""
    result = make_validator().validate_balances({"BTC": Balance("BTC", Decimal(1))})
    assert (result.checked, result.issues) == (1, ())


def test_validate_balances_uses_now_confirmed_at_and_references() -> None:
    """Per-asset confirmation times and references reach the rules."""
    balances = [
        Balance("BTC", Decimal(1), received_at=0.0),
        Balance("USD", Decimal(2), received_at=0.0),
    ]
    result = make_validator().validate_balances(
        balances,
        now=1000.0,
        confirmed_at={"BTC": 990.0, "USD": 100.0},
        references={"BTC": Balance("BTC", Decimal(3))},
    )
    assert [(i.asset, i.rule) for i in result.issues] == [
        ("BTC", "source_inconsistency"),
        ("USD", "stale_data"),
    ]


@given(st.lists(st.decimals(min_value=-10, max_value=10, places=4), max_size=20))
def test_validate_balances_equals_merging_single_results(values: list[Decimal]) -> None:
    """Validating many at once gives the same issues as merging one-by-one results."""
    validator = make_validator()
    balances = [Balance("USD", value) for value in values]
    together = validator.validate_balances(balances)
    one_by_one = ValidationResult.ok()
    for balance in balances:
        one_by_one = one_by_one.merge(validator.validate_balance(balance))
    assert together == one_by_one


# -- compare_sources ------------------------------------------------------------------------


def test_compare_sources_with_absolute_tolerance() -> None:
    """WebSocket and REST values within the absolute tolerance agree; beyond, a warning."""
    ws = Balance("BTC", Decimal("1.00000005"), source=Source.WEBSOCKET)
    rest = Balance("BTC", Decimal("1.0"), source=Source.REST)
    validator = make_validator()
    assert validator.compare_sources(ws, rest, tolerance_abs="0.0000001").issues == ()
    result = validator.compare_sources(ws, rest, tolerance_abs="0.00000001")
    (issue,) = result.issues
    assert issue.severity is Severity.WARNING
    assert "websocket says 1.00000005" in issue.message
    assert "rest says 1.0" in issue.message
    assert result.is_valid


def test_compare_sources_with_relative_tolerance() -> None:
    """A 0.5 % tolerance allows 1000 vs 1005 but not 1000 vs 1006."""
    validator = make_validator()
    a = Balance("USD", Decimal(1000), source=Source.WEBSOCKET)
    assert validator.compare_sources(a, Balance("USD", Decimal(1005)), tolerance_percent="0.5")
    result = validator.compare_sources(a, Balance("USD", Decimal(1006)), tolerance_percent="0.5")
    assert result.issues[0].details["tolerance"] == Decimal("5.030")


def test_compare_sources_compares_holds() -> None:
    """A hold tracked from executions is checked against BalanceEx.hold_trade."""
    tracked = Balance("USD", Decimal(100), Decimal(40), source=Source.WEBSOCKET)
    rest = Balance("USD", Decimal(100), Decimal(30))
    (issue,) = make_validator().compare_sources(tracked, rest).issues
    assert issue.details["field"] == "hold_trade"


def test_compare_sources_uses_the_configured_rule_even_when_disabled() -> None:
    """compare_sources() uses the validator's tolerances and runs though the rule is off."""
    config = BalanceManagerConfig(
        source_tolerance_absolute=Decimal(1),
        disabled_rules=("source_inconsistency",),
        history_db_path=None,
    )
    validator = BalanceValidator.from_config(config)
    a, b = Balance("USD", Decimal(10)), Balance("USD", Decimal(11))
    assert validator.compare_sources(a, b).issues == ()
    assert len(validator.compare_sources(a, Balance("USD", Decimal("11.5"))).issues) == 1


def test_compare_sources_without_the_rule_uses_zero_tolerance() -> None:
    """A validator without source_inconsistency still compares, exactly by default."""
    validator = BalanceValidator([])
    result = validator.compare_sources(Balance("USD", Decimal(1)), Balance("USD", Decimal(2)))
    assert rules_of(result) == ["source_inconsistency"]


def test_compare_sources_refuses_different_assets_and_floats() -> None:
    """Two different assets, or a float tolerance, are refused."""
    validator = make_validator()
    with pytest.raises(BalanceStateError, match="same asset"):
        validator.compare_sources(Balance("BTC", Decimal(1)), Balance("ETH", Decimal(1)))
    with pytest.raises(FloatAmountError, match="tolerance_absolute"):
        validator.compare_sources(
            Balance("BTC", Decimal(1)),
            Balance("BTC", Decimal(1)),
            tolerance_abs=0.1,  # type: ignore[arg-type]
        )


def test_source_inconsistency_rule_of_validator_is_tunable() -> None:
    """get_rule() returns the live rule object, whose thresholds can be read."""
    check = make_validator().get_rule("source_inconsistency")
    assert isinstance(check, SourceInconsistency)
    assert check.tolerance_absolute == 0


# -- configuration ---------------------------------------------------------------------------


def test_from_config_applies_thresholds_and_disabled_rules() -> None:
    """from_config() builds the rules from the config's thresholds and disabled_rules."""
    config = BalanceManagerConfig(
        unrealistic_balance_threshold=Decimal(1000),
        stale_after=10.0,
        disabled_rules=("negative_balance",),
        history_db_path=None,
    )
    validator = BalanceValidator.from_config(config, decimals=DECIMALS.get)
    huge = validator.validate_balance(Balance("USD", Decimal(1001)))
    assert rules_of(huge) == ["unrealistic_balance"]
    assert validator.validate_balance(Balance("USD", Decimal(-1))).is_valid
    stale = validator.validate_balance(
        Balance("USD", Decimal(1), received_at=0.0), RuleContext(now=10.5)
    )
    assert rules_of(stale) == ["stale_data"]


@pytest.mark.parametrize("decimals", [-1, 29, 10**12, True], ids=["-1", "29", "1e12", "bool"])
def test_default_decimals_outside_0_to_28_is_refused(decimals: int) -> None:
    """default_decimals must be an int from 0 to 28 (10**12 made every check fail later)."""
    with pytest.raises(ConfigError, match="default_decimals"):
        BalanceValidator(default_decimals=decimals)


# -- ValidationResult -------------------------------------------------------------------------


def issue(severity: Severity, asset: str = "BTC", name: str = "r") -> Issue:
    """An issue of the given severity."""
    return Issue(name, severity, asset, f"{asset} {severity.value}")


def test_result_ok_is_valid_and_truthy() -> None:
    """ValidationResult.ok(checked=n) is valid, truthy and has no issues."""
    result = ValidationResult.ok(checked=3)
    assert result.is_valid
    assert bool(result)
    assert (result.issues, result.checked) == ((), 3)


def test_only_errors_invalidate_a_result() -> None:
    """Warnings and infos keep a result valid; one error makes it invalid."""
    assert ValidationResult((issue(Severity.WARNING), issue(Severity.INFO)), 1).is_valid
    assert not ValidationResult((issue(Severity.INFO), issue(Severity.ERROR)), 1)


def test_result_filters_by_severity() -> None:
    """errors, warnings and infos hold the issues of that severity, in order."""
    e, w, i = issue(Severity.ERROR), issue(Severity.WARNING), issue(Severity.INFO)
    result = ValidationResult((w, e, i, e), 2)
    assert result.errors == (e, e)
    assert result.warnings == (w,)
    assert result.infos == (i,)


def test_result_merge_and_by_asset() -> None:
    """merge() concatenates issues and adds counts; by_asset() groups by asset."""
    a = ValidationResult((issue(Severity.ERROR, "BTC"),), 1)
    b = ValidationResult((issue(Severity.WARNING, "USD"), issue(Severity.INFO, "BTC")), 2)
    merged = a.merge(b)
    assert merged.checked == 3
    assert merged.issues == a.issues + b.issues
    grouped = merged.by_asset()
    assert list(grouped) == ["BTC", "USD"]
    assert [i.severity for i in grouped["BTC"]] == [Severity.ERROR, Severity.INFO]


def test_report_lists_issues_errors_first_then_a_summary() -> None:
    """report() has one aligned line per issue (errors first) and a summary line."""
    result = ValidationResult(
        (
            Issue("stale_data", Severity.WARNING, "USD", "USD is stale"),
            Issue("negative_balance", Severity.ERROR, "BTC", "BTC balance is negative: -1"),
        ),
        2,
    )
    assert result.report().splitlines() == [
        "ERROR    negative_balance  BTC  BTC balance is negative: -1",
        "WARNING  stale_data        USD  USD is stale",
        "2 issues (1 error, 1 warning, 0 info) in 2 balances checked: INVALID",
    ]


def test_report_of_a_clean_result_is_its_summary() -> None:
    """A result without issues reports a single VALID line."""
    assert ValidationResult.ok(checked=1).report() == "no issues in 1 balance checked: VALID"


# -- statistics ---------------------------------------------------------------------------


def test_statistics_count_validations_failures_and_issues_per_rule() -> None:
    """get_statistics() counts results, invalid results, balances and issues per rule."""
    validator = make_validator()
    validator.validate_balance(Balance("BTC", Decimal(1)))
    validator.validate_balance(Balance("BTC", Decimal(-1)))
    validator.validate_balances(
        [Balance("USD", Decimal(1)), Balance("USD", Decimal(2), Decimal(3))]
    )
    assert validator.get_statistics() == {
        "validations": 3,
        "failures": 2,
        "balances_checked": 4,
        "issues": 4,
        "issues_by_rule": {
            "negative_balance": 1,
            "negative_free_balance": 2,
            "hold_exceeds_balance": 1,
        },
    }
    validator.reset_statistics()
    assert validator.get_statistics()["validations"] == 0


def test_repr_marks_disabled_rules() -> None:
    """The validator's repr lists rules and marks disabled ones."""
    validator = BalanceValidator([UnrealisticBalance(enabled=False)])
    assert repr(validator) == "BalanceValidator(rules=[unrealistic_balance (disabled)])"


# -- the all-good shortcut ------------------------------------------------------------

_amounts = st.decimals(
    min_value=Decimal("-1e13"), max_value=Decimal("1e13"), places=12, allow_nan=False
) | st.sampled_from([Decimal("0"), Decimal("0E-10"), Decimal("1.50000000000000"), Decimal("1e12")])


@given(
    balance=_amounts,
    hold=_amounts.filter(lambda d: d >= 0),
    asset=st.sampled_from(["BTC", "USD", "DOGE", "NEWCOIN"]),
)
def test_shortcut_never_hides_an_issue(balance: Decimal, hold: Decimal, asset: str) -> None:
    """Whenever the all-good shortcut says so, running every rule finds nothing."""
    from balance_manager.kraken.protocol.assets import AssetNames

    validator = BalanceValidator.from_config(
        BalanceManagerConfig(history_db_path=None), decimals=AssetNames().decimals
    )
    value = Balance(asset, balance, hold)
    if validator._all_good(value):
        assert validator._run(value, validator._context(asset)) is None


def test_shortcut_is_off_with_a_custom_rule() -> None:
    """A user rule always runs: the shortcut only restates the built-in rules."""
    validator = BalanceValidator()
    validator.add_rule(rule("always", Severity.WARNING)(lambda b, ctx: "custom finding"))
    result = validator.validate_balance(Balance("BTC", Decimal(1)))
    assert [issue.rule for issue in result.issues] == ["always"]
