"""The balance validator: runs the rules and reports what they found.

:class:`BalanceValidator` is an ordered list of :class:`~balance_manager.core.validation.rules.Rule`
objects (the seven built-ins by default) plus the asset decimals the
``precision_overflow`` rule needs. Every ``validate_*`` call returns a frozen
:class:`ValidationResult`; nothing here raises because data is odd: odd data
becomes an :class:`~balance_manager.core.validation.rules.Issue`. Only misuse raises
(a ``float`` amount, an unknown rule name).

Sans-I/O: the validator never reads the clock. Pass ``now`` (wall-clock Unix
seconds) to enable the ``stale_data`` rule.

The manager validates every streamed update, so :meth:`BalanceValidator.validate_balance`
is built for the all-good case: contexts are shared, rule methods are bound
once, and a healthy balance returns one shared result object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import TypedDict

import msgspec

from balance_manager.core.amounts import ZERO, AmountLike, to_amount
from balance_manager.core.bounds import MAX_DECIMALS, count
from balance_manager.core.models import Balance, Source
from balance_manager.core.validation.rules import (
    EMPTY_CONTEXT,
    HoldExceedsBalance,
    Issue,
    NegativeBalance,
    NegativeFreeBalance,
    PrecisionOverflow,
    Rule,
    RuleContext,
    RuleOptions,
    Severity,
    SourceInconsistency,
    StaleData,
    UnrealisticBalance,
    default_rules,
)
from balance_manager.exceptions import BalanceStateError, ConfigError

__all__ = [
    "INCONSISTENT_FREE",
    "INVALID_BALANCE",
    "RULE_FAILED",
    "BalanceValidator",
    "ValidationResult",
    "ValidatorStatistics",
]

logger = logging.getLogger(__name__)

#: Issue name: a rule raised instead of returning issues (ERROR).
RULE_FAILED = "rule_failed"
#: Issue name: ``validate_single_balance(free=...)`` disagrees with the derived
#: ``balance + credit - credit_used - hold_trade`` (ERROR).
INCONSISTENT_FREE = "inconsistent_free"
#: Issue name: the numbers given to ``validate_single_balance`` cannot form a
#: :class:`~balance_manager.core.models.Balance` (e.g. a negative hold) (ERROR).
INVALID_BALANCE = "invalid_balance"

_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class ValidationResult(msgspec.Struct, frozen=True):
    """What a validation found.

    Truthy when valid, so ``if validator.validate_balance(b): ...`` reads naturally.

    Attributes:
        issues: every issue found, in rule order per balance.
        checked: how many balances were checked.
    """

    issues: tuple[Issue, ...] = ()
    checked: int = 0

    @classmethod
    def ok(cls, checked: int = 0) -> ValidationResult:
        """A result with no issue for ``checked`` balances."""
        return cls((), checked)

    @property
    def is_valid(self) -> bool:
        """``True`` when no issue has severity ERROR (warnings do not invalidate)."""
        return all(issue.severity is not Severity.ERROR for issue in self.issues)

    @property
    def errors(self) -> tuple[Issue, ...]:
        """The ERROR issues."""
        return tuple(i for i in self.issues if i.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Issue, ...]:
        """The WARNING issues."""
        return tuple(i for i in self.issues if i.severity is Severity.WARNING)

    @property
    def infos(self) -> tuple[Issue, ...]:
        """The INFO issues."""
        return tuple(i for i in self.issues if i.severity is Severity.INFO)

    def merge(self, other: ValidationResult) -> ValidationResult:
        """One result with both results' issues and checked counts."""
        if not other.issues and not other.checked:
            return self
        return ValidationResult(self.issues + other.issues, self.checked + other.checked)

    def by_asset(self) -> dict[str, tuple[Issue, ...]]:
        """Issues grouped by asset (assets in order of first issue)."""
        grouped: dict[str, list[Issue]] = {}
        for issue in self.issues:
            grouped.setdefault(issue.asset, []).append(issue)
        return {asset: tuple(issues) for asset, issues in grouped.items()}

    def summary(self) -> str:
        """One line: issue counts, balances checked, VALID or INVALID."""
        verdict = "VALID" if self.is_valid else "INVALID"
        checked = _plural(self.checked, "balance")
        if not self.issues:
            return f"no issues in {checked} checked: {verdict}"
        errors, warnings = len(self.errors), len(self.warnings)
        infos = len(self.issues) - errors - warnings
        return (
            f"{_plural(len(self.issues), 'issue')} "
            f"({_plural(errors, 'error')}, {_plural(warnings, 'warning')}, "
            f"{infos} info) in {checked} checked: {verdict}"
        )

    def report(self) -> str:
        """A readable report: one aligned line per issue, errors first, then the summary.

        Example::

            ERROR    negative_balance       BTC   BTC balance is negative: -1
            WARNING  negative_free_balance  BTC   BTC free balance is negative: ...
            2 issues (1 error, 1 warning, 0 info) in 1 balance checked: INVALID
        """
        ordered = sorted(self.issues, key=lambda i: _SEVERITY_ORDER.get(i.severity, 3))
        level_width = max((len(i.severity.value) for i in ordered), default=0) + 2
        rule_width = max((len(i.rule) for i in ordered), default=0) + 2
        asset_width = max((len(i.asset) for i in ordered), default=0) + 2
        lines = [
            f"{i.severity.value.upper():<{level_width}}{i.rule:<{rule_width}}"
            f"{i.asset:<{asset_width}}{i.message}"
            for i in ordered
        ]
        lines.append(self.summary())
        return "\n".join(lines)

    def __bool__(self) -> bool:
        return self.is_valid


#: The result of one healthy balance: shared, it is immutable.
_OK_ONE = ValidationResult((), 1)

#: The seven built-in rule types: the all-good shortcut restates exactly these.
_BUILTIN_TYPES = frozenset(
    {
        NegativeBalance,
        NegativeFreeBalance,
        HoldExceedsBalance,
        SourceInconsistency,
        UnrealisticBalance,
        StaleData,
        PrecisionOverflow,
    }
)

#: ``Decimal(10) ** -decimals`` by decimals, for the precision shortcut.
_QUANTA: dict[int, Decimal] = {}


class ValidatorStatistics(TypedDict):
    """Counters returned by :meth:`BalanceValidator.get_statistics`."""

    validations: int
    """Results produced (one per ``validate_*`` / ``compare_sources`` call)."""
    failures: int
    """Results that were not valid (had an ERROR issue)."""
    balances_checked: int
    """Balances checked across all results."""
    issues: int
    """Issues found in total."""
    issues_by_rule: dict[str, int]
    """Issues found, by rule name (``rule_failed`` counts rules that raised)."""


class BalanceValidator:
    """Runs validation rules over balances.

    Args:
        rules: the rules, in the order they run; ``None`` means
            :func:`~balance_manager.core.validation.rules.default_rules` with default options.
        decimals: the ledger decimals of an asset, or ``None`` if unknown
            (e.g. ``AssetNames.decimals`` or ``{"BTC": 10, "USD": 4}.get``). It
            is called per validation, so make it cheap; ``LookupError`` counts as unknown.
        default_decimals: decimals used when ``decimals`` does not know the
            asset. With neither, the ``precision_overflow`` rule falls back to its
            own ``default_decimals`` (the config's ``default_decimals`` in
            :meth:`from_config`).

    Raises:
        ConfigError: two rules share a name, a rule lacks the protocol's
            attributes, or ``default_decimals`` is not an int from 0 to 28.
    """

    def __init__(
        self,
        rules: Iterable[Rule] | None = None,
        *,
        decimals: Callable[[str], int | None] | None = None,
        default_decimals: int | None = None,
    ) -> None:
        if default_decimals is not None:
            default_decimals = count(
                "default_decimals", default_decimals, minimum=0, maximum=MAX_DECIMALS
            )
        self._rules: list[Rule] = []
        # (rule, bound __call__) pairs: calling a bound method directly skips the
        # type-slot lookup of ``rule(...)``, which dominates cheap rules.
        self._plan: tuple[tuple[Rule, Callable[[Balance, RuleContext], Iterable[Issue]]], ...] = ()
        self._fast: tuple[UnrealisticBalance | None, PrecisionOverflow | None] | None = None
        self._decimals = decimals
        self._default_decimals = default_decimals
        self._default_context = (
            EMPTY_CONTEXT if default_decimals is None else RuleContext(decimals=default_decimals)
        )
        self._contexts: dict[int, RuleContext] = {}
        self._failed_rules: set[str] = set()
        self._validations = 0
        self._failures = 0
        self._checked = 0
        self._issues = 0
        self._issues_by_rule: dict[str, int] = {}
        for each in default_rules() if rules is None else rules:
            self.add_rule(each)

    @classmethod
    def from_config(
        cls,
        config: RuleOptions,
        *,
        decimals: Callable[[str], int | None] | None = None,
    ) -> BalanceValidator:
        """The seven built-in rules configured from ``config`` (see ``default_rules``)."""
        return cls(default_rules(config), decimals=decimals)

    # -- rule management -------------------------------------------------------------

    @property
    def rules(self) -> tuple[str, ...]:
        """Names of the rules, in the order they run (enabled or not)."""
        return tuple(r.name for r in self._rules)

    @property
    def enabled_rules(self) -> tuple[str, ...]:
        """Names of the enabled rules, in order."""
        return tuple(r.name for r in self._rules if r.enabled)

    def add_rule(self, rule: Rule) -> None:
        """Append ``rule``; it runs after the existing rules.

        Raises:
            ConfigError: a rule with the same name exists, or ``rule`` does not
                have a str ``name``, a ``Severity`` ``severity``, a bool
                ``enabled`` and ``__call__``.
        """
        name = getattr(rule, "name", None)
        if not isinstance(name, str) or not name:
            raise ConfigError("rule", rule, "a rule needs a non-empty str attribute 'name'")
        if not isinstance(getattr(rule, "severity", None), Severity):
            raise ConfigError(name, rule, "a rule needs a 'severity' attribute of type Severity")
        if not isinstance(getattr(rule, "enabled", None), bool):
            raise ConfigError(name, rule, "a rule needs a bool attribute 'enabled'")
        if not callable(rule):
            raise ConfigError(name, rule, "a rule must be callable as rule(balance, ctx)")
        if any(r.name == name for r in self._rules):
            raise ConfigError(
                "rule", name, "a rule with this name is already registered; remove_rule() it first"
            )
        self._rules.append(rule)
        self._rebuild()

    def remove_rule(self, name: str) -> bool:
        """Remove the rule called ``name``; ``False`` if there was none."""
        for index, each in enumerate(self._rules):
            if each.name == name:
                del self._rules[index]
                self._rebuild()
                return True
        return False

    def get_rule(self, name: str) -> Rule:
        """The rule called ``name`` (to read or tune its thresholds).

        Raises:
            ConfigError: no rule has that name.
        """
        for each in self._rules:
            if each.name == name:
                return each
        raise ConfigError(
            "rule",
            name,
            f"unknown validation rule; known rules: {', '.join(self.rules) or '(none)'}",
        )

    def enable(self, name: str) -> None:
        """Run the rule called ``name`` again.

        Raises:
            ConfigError: no rule has that name.
        """
        self.get_rule(name).enabled = True

    def disable(self, name: str) -> None:
        """Stop running the rule called ``name`` (it stays registered).

        Raises:
            ConfigError: no rule has that name.
        """
        self.get_rule(name).enabled = False

    def _rebuild(self) -> None:
        self._plan = tuple((r, r.__call__) for r in self._rules)
        # The all-good shortcut holds only for the built-in rules, whose
        # conditions it restates (see _all_good); any other rule runs in full.
        self._fast = None
        if all(type(r) in _BUILTIN_TYPES for r in self._rules):
            unrealistic = [r for r in self._rules if isinstance(r, UnrealisticBalance)]
            precision = [r for r in self._rules if isinstance(r, PrecisionOverflow)]
            if len(unrealistic) <= 1 and len(precision) <= 1:
                self._fast = (
                    unrealistic[0] if unrealistic else None,
                    precision[0] if precision else None,
                )

    def _all_good(self, balance: Balance) -> bool:
        """Whether no built-in rule can find an issue with ``balance`` (no ``now``, no reference).

        A conservative restatement of the seven rules for the common case, so
        a healthy streamed update costs a few comparisons instead of seven
        calls; ``False`` only means "run the rules".
        """
        fast = self._fast
        if fast is None:
            return False
        amount = balance.balance
        hold = balance.hold_trade
        # negative_balance, negative_free_balance, hold_exceeds_balance:
        if balance.credit or balance.credit_used or amount < ZERO or hold > amount:
            return False
        unrealistic, precision = fast
        if (
            unrealistic is not None
            and unrealistic.enabled
            and (unrealistic.per_asset or amount > unrealistic.threshold)
        ):
            return False
        # stale_data and source_inconsistency need ``now`` / a reference: skipped.
        if precision is not None and precision.enabled:
            decimals = self._lookup_decimals(balance.asset)
            if decimals is None:
                decimals = precision.default_decimals
            if decimals is not None:
                quantum = _QUANTA.get(decimals)
                if quantum is None:
                    quantum = _QUANTA.setdefault(decimals, Decimal(1).scaleb(-decimals))
                try:
                    if amount.quantize(quantum) != amount or (
                        hold and hold.quantize(quantum) != hold
                    ):
                        return False
                except ArithmeticError:  # more digits than the context holds
                    return False
        return True

    # -- validation ------------------------------------------------------------------

    def validate_balance(
        self, balance: Balance, ctx: RuleContext | None = None
    ) -> ValidationResult:
        """Run every enabled rule on ``balance``.

        Args:
            balance: the value to check.
            ctx: what the rules may need beyond the balance. ``None`` means
                nothing but the asset's decimals; when ``ctx.decimals`` is
                ``None`` the validator fills it from its ``decimals`` lookup.
        """
        if ctx is None:
            if self._all_good(balance):
                self._validations += 1
                self._checked += 1
                return _OK_ONE
            ctx = self._context(balance.asset)
        elif ctx.decimals is None and (
            self._decimals is not None or self._default_decimals is not None
        ):
            found = self._lookup_decimals(balance.asset)
            if found is not None:
                ctx = msgspec.structs.replace(ctx, decimals=found)
        issues = self._run(balance, ctx)
        self._validations += 1
        self._checked += 1
        if not issues:
            return _OK_ONE
        return self._record(ValidationResult(tuple(issues), 1))

    def validate_single_balance(
        self,
        asset: str,
        balance: AmountLike,
        hold_trade: AmountLike = 0,
        *,
        free: AmountLike | None = None,
        credit: AmountLike = 0,
        credit_used: AmountLike = 0,
        source: Source | str | None = None,
        now: float | None = None,
        confirmed_at: float | None = None,
        reference: Balance | None = None,
    ) -> ValidationResult:
        """Validate one asset given as plain numbers (the original specification's call).

        Args:
            asset: the asset name.
            balance: the total balance (``Decimal``, ``int`` or ``str``; never ``float``).
            hold_trade: the amount held by open orders.
            free: the free amount, if the caller has one: it must equal
                ``balance + credit - credit_used - hold_trade``, else an
                ``inconsistent_free`` ERROR issue is reported.
            credit: credit line total (Kraken ``BalanceEx.credit``).
            credit_used: credit used (Kraken ``BalanceEx.credit_used``).
            source: where the numbers came from (``Source`` or its value); REST if ``None``.
            now: wall-clock time, for ``stale_data``.
            confirmed_at: when a live source last confirmed the numbers; when
                ``None`` they count as confirmed at ``now`` (so never stale).
            reference: another source's view of the asset, for ``source_inconsistency``.

        Raises:
            FloatAmountError: an amount is a ``float``.
            InvalidAmountError: an amount is not a finite number.
            ValueError: ``source`` is not a known source.

        A negative ``hold_trade`` (or credit) cannot form a ``Balance``; it is
        reported as an ``invalid_balance`` ERROR issue, not raised.
        """
        amount = to_amount(balance, name="balance")
        hold = to_amount(hold_trade, name="hold_trade")
        given_free = None if free is None else to_amount(free, name="free")
        credit_total = to_amount(credit, name="credit")
        used = to_amount(credit_used, name="credit_used")
        origin = Source.REST if source is None else Source(source)
        if confirmed_at is not None:
            received = confirmed_at
        elif now is not None:
            received = now
        else:
            received = 0.0
        try:
            value = Balance(
                asset,
                amount,
                hold,
                origin,
                received_at=received,
                credit=credit_total,
                credit_used=used,
            )
        except BalanceStateError as exc:
            issue = Issue(
                INVALID_BALANCE,
                Severity.ERROR,
                str(asset),
                f"{asset} cannot be a balance: {exc.field}={exc.value}: {exc.reason}",
                {"field": exc.field, "value": exc.value},
            )
            self._validations += 1
            self._checked += 1
            return self._record(ValidationResult((issue,), 1))
        ctx = RuleContext(
            now=now,
            confirmed_at=confirmed_at,
            decimals=self._lookup_decimals(value.asset),
            reference=reference,
        )
        issues = self._run(value, ctx) or []
        if given_free is not None and given_free != value.free:
            issues.insert(0, _inconsistent_free(value, given_free))
        self._validations += 1
        self._checked += 1
        if not issues:
            return _OK_ONE
        return self._record(ValidationResult(tuple(issues), 1))

    def validate_balances(
        self,
        balances: Iterable[Balance] | Mapping[str, Balance],
        *,
        now: float | None = None,
        confirmed_at: Mapping[str, float] | None = None,
        references: Mapping[str, Balance] | None = None,
    ) -> ValidationResult:
        """Validate many balances into one result.

        Args:
            balances: the balances (or a mapping of asset → balance, e.g.
                the manager's ``get_all_balances()``).
            now: wall-clock time, for ``stale_data``.
            confirmed_at: per asset, when a live source last confirmed it.
            references: per asset, another source's view, for ``source_inconsistency``.
        """
        values = balances.values() if isinstance(balances, Mapping) else balances
        plain = now is None and not confirmed_at and not references
        issues: list[Issue] = []
        count = 0
        for balance in values:
            count += 1
            asset = balance.asset
            if plain:
                ctx = self._context(asset)
            else:
                ctx = RuleContext(
                    now=now,
                    confirmed_at=confirmed_at.get(asset) if confirmed_at else None,
                    decimals=self._lookup_decimals(asset),
                    reference=references.get(asset) if references else None,
                )
            found = self._run(balance, ctx)
            if found:
                issues.extend(found)
        self._validations += 1
        self._checked += count
        return self._record(ValidationResult(tuple(issues), count))

    def compare_sources(
        self,
        a: Balance,
        b: Balance,
        *,
        tolerance_abs: AmountLike | None = None,
        tolerance_percent: AmountLike | None = None,
    ) -> ValidationResult:
        """Cross-check two sources' views of one asset (e.g. WebSocket vs REST).

        Uses the tolerances, fields and severity of this validator's
        ``source_inconsistency`` rule (if it is a built-in one; it runs even when
        disabled, since it was asked for), overridden by the arguments. Issues
        are reported against ``a``.

        Args:
            a: one view (e.g. the streamed value).
            b: the other view (e.g. REST ``BalanceEx``).
            tolerance_abs: absolute difference allowed.
            tolerance_percent: difference allowed in percent of the larger value.

        Raises:
            BalanceStateError: ``a`` and ``b`` are not the same asset.
            FloatAmountError: a tolerance is a ``float``.
        """
        if a.asset != b.asset:
            raise BalanceStateError(
                a.asset, "asset", b.asset, "compare_sources needs two views of the same asset"
            )
        base = next((r for r in self._rules if isinstance(r, SourceInconsistency)), None)
        if base is not None and tolerance_abs is None and tolerance_percent is None:
            check = base
        else:
            check = SourceInconsistency(
                tolerance_absolute=(
                    tolerance_abs
                    if tolerance_abs is not None
                    else (base.tolerance_absolute if base is not None else ZERO)
                ),
                tolerance_percent=(
                    tolerance_percent
                    if tolerance_percent is not None
                    else (base.tolerance_percent if base is not None else ZERO)
                ),
                fields=base.fields if base is not None else ("balance", "hold_trade"),
                severity=base.severity if base is not None else Severity.WARNING,
            )
        issues = tuple(check(a, RuleContext(reference=b)))
        self._validations += 1
        self._checked += 1
        if not issues:
            return _OK_ONE
        return self._record(ValidationResult(issues, 1))

    # -- statistics ------------------------------------------------------------------

    def get_statistics(self) -> ValidatorStatistics:
        """Counters since creation (or the last :meth:`reset_statistics`)."""
        return {
            "validations": self._validations,
            "failures": self._failures,
            "balances_checked": self._checked,
            "issues": self._issues,
            "issues_by_rule": dict(self._issues_by_rule),
        }

    def reset_statistics(self) -> None:
        """Set every counter back to zero."""
        self._validations = self._failures = self._checked = self._issues = 0
        self._issues_by_rule = {}

    # -- internals -------------------------------------------------------------------

    def _lookup_decimals(self, asset: str) -> int | None:
        lookup = self._decimals
        if lookup is not None:
            try:
                found = lookup(asset)
            except LookupError:
                found = None
            if found is not None:
                return found
        return self._default_decimals

    def _context(self, asset: str) -> RuleContext:
        """The shared context holding only ``asset``'s decimals."""
        if self._decimals is None:
            return self._default_context
        decimals = self._lookup_decimals(asset)
        if decimals is None:
            return self._default_context
        ctx = self._contexts.get(decimals)
        if ctx is None:
            ctx = self._contexts[decimals] = RuleContext(decimals=decimals)
        return ctx

    def _run(self, balance: Balance, ctx: RuleContext) -> list[Issue] | None:
        """Issues from every enabled rule; ``None`` when there are none."""
        issues: list[Issue] | None = None
        for rule, call in self._plan:
            if not rule.enabled:
                continue
            try:
                found = call(balance, ctx)
                if found:  # built-in rules return an empty tuple when all is well
                    checked = [_as_issue(item, rule) for item in found]
                    if issues is None:
                        issues = checked
                    else:
                        issues.extend(checked)
            except Exception as exc:
                # A broken rule must not hide the other rules' findings nor stop
                # the stream: it becomes an ERROR issue. Logged with its
                # traceback once per rule, then at debug level to avoid a flood
                # (the manager validates every update).
                failure = self._rule_failed(rule, balance, exc)
                if issues is None:
                    issues = [failure]
                else:
                    issues.append(failure)
        return issues

    def _rule_failed(self, rule: Rule, balance: Balance, exc: Exception) -> Issue:
        name = getattr(rule, "name", repr(rule))
        asset = str(getattr(balance, "asset", "?"))
        first = name not in self._failed_rules
        self._failed_rules.add(name)
        logger.log(
            logging.WARNING if first else logging.DEBUG,
            "validation rule %r raised on %s: %s: %s",
            name,
            asset,
            type(exc).__name__,
            exc,
            exc_info=first,
        )
        return Issue(
            RULE_FAILED,
            Severity.ERROR,
            asset,
            f"rule {name!r} failed on {asset}: {type(exc).__name__}: {exc}",
            {"failed_rule": name, "error": type(exc).__name__},
        )

    def _record(self, result: ValidationResult) -> ValidationResult:
        """Count ``result``'s issues (the validation itself is counted by the caller)."""
        if result.issues:
            by_rule = self._issues_by_rule
            for issue in result.issues:
                by_rule[issue.rule] = by_rule.get(issue.rule, 0) + 1
            self._issues += len(result.issues)
            if not result.is_valid:
                self._failures += 1
        return result

    def __repr__(self) -> str:
        names = ", ".join(r.name if r.enabled else f"{r.name} (disabled)" for r in self._rules)
        return f"BalanceValidator(rules=[{names}])"


def _as_issue(item: object, rule: Rule) -> Issue:
    """``item`` if it is an Issue; a rule yielding anything else is broken."""
    if type(item) is Issue or isinstance(item, Issue):
        return item
    raise TypeError(f"rule {rule.name!r} returned {type(item).__name__} {item!r}, not an Issue")


def _inconsistent_free(value: Balance, given: Decimal) -> Issue:
    derived = value.free
    credit = (
        f" + credit {value.credit:f} - credit_used {value.credit_used:f}"
        if value.credit or value.credit_used
        else ""
    )
    return Issue(
        INCONSISTENT_FREE,
        Severity.ERROR,
        value.asset,
        f"{value.asset} free {given:f} does not match balance {value.balance:f}{credit} "
        f"- hold_trade {value.hold_trade:f} = {derived:f}",
        {
            "free": given,
            "expected_free": derived,
            "balance": value.balance,
            "hold_trade": value.hold_trade,
        },
    )
