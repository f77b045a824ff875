"""Exactness marks: amounts read through a float say so, at no cost to exact values."""

from __future__ import annotations

import sys
from decimal import Decimal

from balance_manager.core.models import Balance, InexactBalance, Source
from balance_manager.core.reconcile import (
    StreamView,
    apply_stream_snapshot,
    from_amounts,
    reconcile_rest,
)
from balance_manager.core.sources import (
    AssetAmounts,
    InexactAmounts,
    RestSnapshot,
    StreamSnapshot,
)

D = Decimal


def test_exact_by_default_and_inexact_by_type() -> None:
    """A Balance is exact; an InexactBalance is not, says so in str(), and replace() keeps it."""
    exact = Balance("BTC", D("1.5"), received_at=1.0)
    inexact = InexactBalance("BTC", D("1.5"), received_at=1.0)
    assert exact.exact
    assert not inexact.exact
    assert "inexact" not in str(exact)
    assert str(inexact).endswith("(free 1.5, held 0, inexact) via rest")
    assert repr(inexact).startswith("InexactBalance(")
    assert inexact.replace(hold_trade=D("0.5")).exact is False
    assert inexact.free == exact.free
    assert inexact.to_dict() == exact.to_dict()


def test_the_mark_costs_no_memory_per_value() -> None:
    """The flag is a class attribute: exact and inexact values are the same size."""
    exact = Balance("BTC", D("1.5"), received_at=1.0)
    inexact = InexactBalance("BTC", D("1.5"), received_at=1.0)
    assert "exact" not in Balance.__struct_fields__
    assert sys.getsizeof(exact) == sys.getsizeof(inexact)


def test_from_amounts_keeps_the_mark() -> None:
    """Inexact amounts make an InexactBalance; exact ones a plain Balance."""
    assert type(from_amounts(AssetAmounts("BTC", D(1)), None, Source.REST, 1.0)) is Balance
    made = from_amounts(InexactAmounts("BTC", D(1)), None, Source.WEBSOCKET, 1.0)
    assert type(made) is InexactBalance


def test_stream_snapshot_of_floats_is_marked() -> None:
    """A stream snapshot of inexact amounts holds inexact values."""
    snapshot = StreamSnapshot({"BTC": InexactAmounts("BTC", D("1.2435"))}, received_at=2.0)
    outcome = apply_stream_snapshot({}, snapshot)
    assert [type(c.new) for c in outcome.changes] == [InexactBalance]


def test_exact_rest_reading_of_the_same_amounts_clears_the_mark() -> None:
    """REST reading the same amounts exactly replaces the inexact value (no amount changed)."""
    held = {"BTC": InexactBalance("BTC", D("1.2435"), source=Source.WEBSOCKET, received_at=1.0)}
    snapshot = RestSnapshot({"BTC": AssetAmounts("BTC", D("1.2435000000"), hold_trade=D(0))}, 2.0)
    outcome = reconcile_rest(held, held, snapshot, StreamView(live=True))
    assert len(outcome.changes) == 1
    change = outcome.changes[0]
    assert change.new.exact
    assert not change.amounts_changed
    assert not outcome.disagreements
    assert not outcome.resync_balances


def test_exact_rest_reading_of_exact_value_only_confirms() -> None:
    """Exactness unchanged and same amounts: only a confirmation, as before."""
    held = {"BTC": Balance("BTC", D("1.2435"), source=Source.WEBSOCKET, received_at=1.0)}
    snapshot = RestSnapshot({"BTC": AssetAmounts("BTC", D("1.2435"), hold_trade=D(0))}, 2.0)
    outcome = reconcile_rest(held, held, snapshot, StreamView(live=True))
    assert [c.new.received_at for c in outcome.changes] == [2.0]
    assert outcome.changes[0].new.source is Source.WEBSOCKET
