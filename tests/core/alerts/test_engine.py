"""Tests of balance_manager.core.alerts.engine: fire once, cool down, resolve when cleared."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from balance_manager.core.alerts.engine import AlertEngine
from balance_manager.core.alerts.model import Alert, AlertContext, Condition
from balance_manager.core.validation.rules import Severity
from balance_manager.exceptions import ConfigError

NOW = 1_700_000_000.0


class Switch:
    """A rule whose conditions the test sets: one per asset in ``on``."""

    def __init__(self, name: str = "switch") -> None:
        self.name = name
        self.severity = Severity.WARNING
        self.enabled = True
        self.on: set[str | None] = set()
        self.broken = False

    def __call__(self, ctx: AlertContext) -> Iterable[Condition]:
        if self.broken:
            raise RuntimeError("rule bug")
        return [
            Condition(self.name, self.severity, asset, f"{asset} is on")
            for asset in sorted(self.on, key=str)
        ]


def test_fires_once_then_resolves() -> None:
    """A lasting condition fires once; when it clears the alert resolves with its time."""
    rule = Switch()
    engine = AlertEngine([rule], cooldown=60)
    rule.on = {"USD"}
    first = engine.evaluate(AlertContext(NOW))
    assert [a.key for a in first.fired] == [("switch", "USD")]
    assert first.fired[0].fired_at == NOW
    assert first.fired[0].active
    assert not engine.evaluate(AlertContext(NOW + 1))  # still on: nothing new
    assert engine.is_active("switch", "USD")
    rule.on = set()
    done = engine.evaluate(AlertContext(NOW + 2))
    (resolved,) = done.resolved
    assert resolved.resolved_at == NOW + 2
    assert not resolved.active
    assert resolved.fired_at == NOW
    assert engine.active() == []
    assert engine.recent() == [resolved]


def test_details_a_custom_rule_cannot_encode_become_their_repr() -> None:
    """A rule's own object in ``details`` must not make the alert unencodable (it stopped the
    delivery of the other alerts and made the dashboard's status a 500); Decimals stay exact."""
    import msgspec

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    class Odd:
        name = "odd"
        severity = Severity.WARNING
        enabled = True

        def __call__(self, ctx: AlertContext) -> Iterable[Condition]:
            return [Condition("odd", Severity.WARNING, None, "odd", {"x": Opaque(), "d": D})]

    D = Decimal("0.1000000000000000000000000001")
    (alert,) = AlertEngine([Odd()]).evaluate(AlertContext(NOW)).fired
    body = msgspec.json.decode(msgspec.json.encode(alert.as_json()))
    assert body["details"] == {"x": "<opaque>", "d": str(D)}


def test_a_flapping_condition_is_held_back_by_the_cooldown() -> None:
    """Back within the cool-down: not fired; still there when it ends: fired then."""
    rule = Switch()
    engine = AlertEngine([rule], cooldown=60)
    rule.on = {None}
    engine.evaluate(AlertContext(NOW))
    rule.on = set()
    engine.evaluate(AlertContext(NOW + 10))  # resolved at +10
    rule.on = {None}
    assert not engine.evaluate(AlertContext(NOW + 20))
    assert not engine.evaluate(AlertContext(NOW + 69))
    (again,) = engine.evaluate(AlertContext(NOW + 70)).fired
    assert again.fired_at == NOW + 70
    assert engine.get_statistics()["suppressed"] == 1


def test_a_rule_of_events_is_not_held_back_by_the_cooldown() -> None:
    """An anomaly, resolved, then a second anomaly within the cool-down: reported (it was
    counted as suppressed flapping and never told)."""
    from balance_manager.core.alerts.rules import BalanceAnomaly

    rule = Switch("events")
    rule.each_event = True  # type: ignore[attr-defined]  # as BalanceAnomaly declares it
    engine = AlertEngine([rule], cooldown=300)
    rule.on = {"USD"}
    assert engine.evaluate(AlertContext(NOW)).fired
    rule.on = set()
    assert engine.evaluate(AlertContext(NOW + 10)).resolved
    rule.on = {"USD"}
    assert engine.evaluate(AlertContext(NOW + 60)).fired
    assert BalanceAnomaly.each_event is True


def test_the_cooldown_is_timed_on_the_steady_clock_when_given() -> None:
    """The wall clock stepped back an hour after a resolution: the cool-down still ends 60
    steady seconds later (timed on the wall clock, it lasted an hour more)."""
    rule = Switch()
    engine = AlertEngine([rule], cooldown=60)
    rule.on = {"USD"}
    engine.evaluate(AlertContext(NOW, steady=10.0))
    rule.on = set()
    engine.evaluate(AlertContext(NOW + 1, steady=11.0))
    rule.on = {"USD"}
    assert not engine.evaluate(AlertContext(NOW - 3600 + 30, steady=41.0)).fired  # cooling
    assert engine.evaluate(AlertContext(NOW - 3600 + 62, steady=73.0)).fired


def test_each_asset_is_its_own_condition() -> None:
    """Two assets of one rule fire and resolve independently."""
    rule = Switch()
    engine = AlertEngine([rule], cooldown=0)
    rule.on = {"BTC", "USD"}
    assert len(engine.evaluate(AlertContext(NOW)).fired) == 2
    rule.on = {"BTC"}
    update = engine.evaluate(AlertContext(NOW + 1))
    assert [a.asset for a in update.resolved] == ["USD"]
    assert update.fired == ()
    assert [a.asset for a in engine.active()] == ["BTC"]


def test_a_failing_rule_keeps_its_alerts_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rule that raises neither fires nor resolves; the other rules still run."""
    broken, other = Switch("broken"), Switch("other")
    engine = AlertEngine([broken, other], cooldown=0)
    broken.on = {"BTC"}
    engine.evaluate(AlertContext(NOW))
    broken.broken = True
    other.on = {"USD"}
    with caplog.at_level(logging.DEBUG, logger="balance_manager.core.alerts.engine"):
        update = engine.evaluate(AlertContext(NOW + 1))
        engine.evaluate(AlertContext(NOW + 2))
    assert update.resolved == ()
    assert [a.rule for a in update.fired] == ["other"]
    assert engine.is_active("broken", "BTC")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "broken" in errors[0].getMessage()
    assert engine.get_statistics()["rule_errors"] == 2


def test_disabling_or_removing_a_rule_resolves_its_alerts() -> None:
    """A rule that no longer runs reports nothing, so its conditions clear."""
    rule = Switch()
    engine = AlertEngine([rule], cooldown=0)
    rule.on = {"BTC"}
    engine.evaluate(AlertContext(NOW))
    engine.rule("switch").enabled = False
    assert len(engine.evaluate(AlertContext(NOW + 1)).resolved) == 1
    engine.rule("switch").enabled = True
    engine.evaluate(AlertContext(NOW + 2))
    assert engine.remove_rule("switch")
    assert not engine.remove_rule("switch")
    assert len(engine.evaluate(AlertContext(NOW + 3)).resolved) == 1


def test_rule_names_are_unique_and_known() -> None:
    """A duplicate name or an unknown one is a ConfigError naming it."""
    engine = AlertEngine([Switch()])
    with pytest.raises(ConfigError, match="already"):
        engine.add_rule(Switch())
    with pytest.raises(ConfigError, match="known: switch"):
        engine.rule("nope")
    with pytest.raises(ConfigError, match="cooldown"):
        AlertEngine(cooldown=-1)


# -- the state machine, against a model of the specification ------------------------------------

ASSETS = ("BTC", "USD", None)
steps = st.lists(
    st.tuples(
        st.frozensets(st.sampled_from(ASSETS)),  # the conditions present at this evaluation
        st.sampled_from([0.0, 1.0, 5.0, 29.0, 30.0, 31.0, 100.0]),  # time since the last one
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(steps, st.sampled_from([0.0, 30.0]))
def test_every_sequence_follows_the_state_machine(
    sequence: list[tuple[frozenset[str | None], float]], cooldown: float
) -> None:
    """Fired and resolved alternate per key; fire once, never within the cool-down, and
    resolve exactly when the condition is gone; the active set always matches the model."""
    rule = Switch()
    engine = AlertEngine([rule], cooldown=cooldown)
    now = NOW
    active: dict[str | None, Alert] = {}
    resolved_at: dict[str | None, float] = {}
    for present, wait in sequence:
        now += wait
        rule.on = set(present)
        update = engine.evaluate(AlertContext(now))
        fired = {a.asset: a for a in update.fired}
        resolved = {a.asset: a for a in update.resolved}
        for asset in ASSETS:
            if asset in active:
                assert asset not in fired, "fired twice"
                if asset in present:
                    assert asset not in resolved
                else:
                    assert resolved[asset].resolved_at == now
                    assert resolved[asset].fired_at == active[asset].fired_at
                    del active[asset]
                    resolved_at[asset] = now
            else:
                assert asset not in resolved
                cooling = asset in resolved_at and now - resolved_at[asset] < cooldown
                should_fire = asset in present and not cooling
                assert (asset in fired) == should_fire
                if should_fire:
                    assert fired[asset].fired_at == now
                    active[asset] = fired[asset]
        assert {a.asset for a in engine.active()} == set(active)
    stats = engine.get_statistics()
    assert stats["fired"] - stats["resolved"] == len(active)
