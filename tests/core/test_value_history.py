"""Tests for balance_manager.core.value_history (value over time, flows apart from market)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from balance_manager.core.value_history import Flow, ValueHistory, ValuePoint
from balance_manager.exceptions import ConfigError


def point(at: float, total: str, *, complete: bool = True) -> ValuePoint:
    return ValuePoint(at=at, total=Decimal(total), complete=complete)


def test_deposit_is_a_flow_not_a_market_move() -> None:
    """1000 → 1600 with a 500 deposit is +100 from the market, +500 from flows."""
    history = ValueHistory("USD")
    history.record(point(0, "1000"))
    history.add_flow(
        Flow(at=5, asset="USD", amount=Decimal(500), kind="deposit", value=Decimal(500))
    )
    history.record(point(10, "1600"))
    change = history.change_over(60, now=10)
    assert change is not None
    assert (change.change, change.flows, change.market) == (
        Decimal(600),
        Decimal(500),
        Decimal(100),
    )
    assert change.flow_count == 1
    assert change.market_pct == Decimal("10.0000")
    assert change.change_pct == Decimal("60.0000")
    assert change.complete


def test_window_starts_at_the_value_then() -> None:
    """Over the last 10 s, the start is the last point at or before now - 10."""
    history = ValueHistory("USD")
    for at, total in [(0, "100"), (50, "90"), (95, "80"), (100, "70")]:
        history.record(point(at, total))
    change = history.change_over(10, now=100)
    assert change is not None
    assert change.start.total == Decimal(90)
    assert change.change == Decimal(-20)
    assert change.market_pct == Decimal("-22.2222")


def test_withdrawal_before_the_window_is_not_counted() -> None:
    """A flow before the window's start point is in neither side."""
    history = ValueHistory("USD")
    history.record(point(0, "100"))
    history.add_flow(
        Flow(at=1, asset="USD", amount=Decimal(-50), kind="withdrawal", value=Decimal(-50))
    )
    history.record(point(2, "50"))
    history.record(point(20, "55"))
    change = history.change_over(10, now=20)
    assert change is not None
    assert (change.flows, change.market, change.flow_count) == (Decimal(0), Decimal(5), 0)


def test_unvalued_flow_or_end_makes_the_change_incomplete() -> None:
    """A flow that could not be valued, or an end with unvalued assets, is flagged."""
    history = ValueHistory("USD")
    history.record(point(0, "100"))
    history.add_flow(Flow(at=1, asset="XYZ", amount=Decimal(1), kind="deposit", value=None))
    history.record(point(2, "100"))
    change = history.change_over(10, now=2)
    assert change is not None
    assert not change.complete
    other = ValueHistory("USD")
    other.record(point(0, "100"))
    other.record(point(1, "100", complete=False))
    change = other.change_over(10, now=1)
    assert change is not None
    assert not change.complete


def test_repeated_equal_values_keep_two_points() -> None:
    """A quiet market stores the first and the latest equal value only."""
    history = ValueHistory("USD")
    for at in range(10):
        history.record(point(at, "100"))
    assert [p.at for p in history.points()] == [0, 9]


def test_retention_keeps_the_start_of_the_window() -> None:
    """Old points go, but the last one before the horizon stays as a start."""
    history = ValueHistory("USD", retention=10)
    for at, total in [(0, "1"), (5, "2"), (30, "3"), (31, "4")]:
        history.record(point(at, total))
    assert [p.total for p in history.points()] == [Decimal(2), Decimal(3), Decimal(4)]


def test_bad_arguments_are_refused() -> None:
    """Windows and retention must be positive."""
    with pytest.raises(ConfigError, match="retention"):
        ValueHistory("USD", retention=0)
    history = ValueHistory("USD")
    assert history.change_over(5, now=0) is None
    with pytest.raises(ConfigError, match="window"):
        history.change_over(0, now=0)


def test_restored_points_keep_flows_apart_across_a_restart() -> None:
    """Points read back carry their cumulated flows; new flows add to them."""
    before = ValueHistory("USD")
    before.record(point(0, "1000"))
    before.add_flow(
        Flow(at=1, asset="USD", amount=Decimal(100), kind="deposit", value=Decimal(100))
    )
    before.record(point(2, "1100"))
    after = ValueHistory("USD")
    after.restore(before.points())
    after.add_flow(Flow(at=3, asset="USD", amount=Decimal(50), kind="deposit", value=Decimal(50)))
    after.record(point(4, "1170"))
    change = after.change_over(10, now=4)
    assert change is not None
    assert (change.flows, change.market, change.flow_count) == (Decimal(150), Decimal(20), 2)
    with pytest.raises(ConfigError, match="restore"):
        after.restore([])
