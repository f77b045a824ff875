"""Reconciliation rules (core/reconcile.py) on plain values: no I/O, no clock."""

from __future__ import annotations

from decimal import Decimal

from balance_manager.core.models import Balance, Source
from balance_manager.core.reconcile import StreamView, apply_stream_snapshot, reconcile_rest
from balance_manager.core.sources import AssetAmounts, RestSnapshot, StreamSnapshot

D = Decimal


def held_values() -> dict[str, Balance]:
    return {
        "BTC": Balance("BTC", D("1.5"), source=Source.WEBSOCKET, received_at=1.0),
        "ETH": Balance("ETH", D("10"), source=Source.WEBSOCKET, received_at=1.0),
    }


def test_a_partial_stream_snapshot_touches_only_what_it_lists() -> None:
    """A partial snapshot (the assets one message changed) leaves the others alone.

    Neither replaced (a REST read in flight still applies to them) nor asked
    about over REST (they were not omitted: they did not change).
    """
    held = held_values()
    event = StreamSnapshot({"ETH": AssetAmounts("ETH", D("11"))}, received_at=2.0, complete=False)
    outcome = apply_stream_snapshot(held, event)
    assert [change.new.asset for change in outcome.changes] == ["ETH"]
    assert outcome.check_over_rest == []


def test_a_complete_stream_snapshot_still_asks_rest_about_what_it_omits() -> None:
    """A complete snapshot that omits a held asset: REST is asked, nothing guessed."""
    held = held_values()
    event = StreamSnapshot({"ETH": AssetAmounts("ETH", D("11"))}, received_at=2.0)
    outcome = apply_stream_snapshot(held, event)
    assert outcome.check_over_rest == ["BTC"]


def test_rest_adding_a_held_asset_a_live_stream_never_gave_resyncs() -> None:
    """REST lists funds of an asset nobody holds while the stream is live: the stream lost it.

    Before, REST added it quietly and the stream, never told, kept lacking it.
    """
    held = held_values()
    snapshot = RestSnapshot(
        {
            "BTC": AssetAmounts("BTC", D("1.5"), hold_trade=D(0)),
            "ETH": AssetAmounts("ETH", D("10"), hold_trade=D(0)),
            "SOL": AssetAmounts("SOL", D("7"), hold_trade=D(0)),
        },
        received_at=2.0,
    )
    outcome = reconcile_rest(held, held, snapshot, StreamView(live=True))
    assert [c.new.asset for c in outcome.changes if c.amounts_changed] == ["SOL"]
    assert outcome.resync_balances
    # Not live, or an empty asset: nothing to resync.
    assert not reconcile_rest(held, held, snapshot, StreamView(live=False)).resync_balances
    listed = dict(snapshot.balances)
    listed["SOL"] = AssetAmounts("SOL", D(0), hold_trade=D(0))
    empty = RestSnapshot(listed, received_at=2.0)
    assert not reconcile_rest(held, held, empty, StreamView(live=True)).resync_balances
