"""Which reading wins: the rules that keep the served balances true (sans-I/O).

The manager holds one value per asset. Readings arrive from two sources that
share no clock: the stream (snapshots, ledger updates, hold changes) and REST
(a whole-account snapshot, read some time after its request left). These
functions decide, for each reading, what the held values become, which events
that makes, and what must happen next (a stream resync, a REST check). They
take values and return values: no I/O, no clock, no callbacks. The manager
applies an :class:`Outcome` in one step, so nobody ever sees half of it.

The rules:

1. **The newer reading wins, per asset.** A REST snapshot is as new as the
   moment its request left. A held value that has not changed since then is
   older than the snapshot, whatever its source: REST replaces it. A held
   value that changed after the request left (the stream spoke meanwhile) is
   newer: REST leaves it alone. "Changed since" is decided by identity of the
   held value object, not by clocks, so it is exact.
2. **REST is the whole account.** An asset it does not list holds nothing: a
   held value older than the snapshot goes to zero.
3. **A stream that disagrees with a newer REST reading has lost something.**
   When the stream claims to be live and REST replaces one of its values with
   different amounts, the stream must resynchronise: its balances for a
   different balance, its holds (the open orders they come from) for a
   different hold. The disagreement is reported (``source_inconsistency``).
   REST adding a held asset nobody holds while the stream is live means the
   same: the stream never gave it, its balances resynchronise.
4. **A REST reading that agrees confirms.** The held value becomes as young as
   the reading (no event: nothing changed).
5. **Snapshots from the stream replace what they list.** Assets a complete
   stream snapshot omits while still held are checked over REST rather than
   guessed to be zero; a partial one (the assets one message changed) leaves
   the others alone.
6. **Holds follow the stream when it follows them.** A stream hold change
   applies to assets whose hold it knows; assets with an order whose hold
   cannot be derived keep REST's hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from balance_manager.core.amounts import ZERO
from balance_manager.core.models import Balance, InexactBalance, Source
from balance_manager.core.sources import (
    AssetAmounts,
    RestSnapshot,
    StreamHolds,
    StreamSnapshot,
)

__all__ = [
    "Change",
    "Outcome",
    "StreamView",
    "apply_holds",
    "apply_stream_snapshot",
    "from_amounts",
    "reconcile_rest",
    "same_amounts",
]


class Change(msgspec.Struct, frozen=True):
    """One asset's new held value (one per asset a reading changes: built in C).

    Attributes:
        new: the value to hold.
        old: the value it replaces (``None``: the asset was not held).
        kind: ``snapshot``, ``update``, ``refresh`` or ``hold``.
        ledger_id: the exchange's ledger entry id, for a ledger update.
    """

    new: Balance
    old: Balance | None
    kind: str
    ledger_id: str | None = None

    @property
    def amounts_changed(self) -> bool:
        """Whether any amount differs (``False``: a confirmation only)."""
        return self.old is None or not same_amounts(self.old, self.new)


@dataclass(frozen=True, slots=True)
class StreamView:
    """What the stream claims right now.

    Attributes:
        live: subscribed and heard from recently: it claims every held value it
            delivered is current.
        holds_live: its holds follow the exchange's open orders in real time.
    """

    live: bool
    holds_live: bool = False


@dataclass(slots=True)
class Outcome:
    """What a reading does: new values, disagreements, and what to do next.

    Attributes:
        changes: new held values, in order (confirmations included).
        disagreements: ``(held, rest's view)`` pairs where REST replaced a value
            a live stream claimed current.
        hold_mismatches: how many of those differed in the hold.
        resync_balances: the stream must resynchronise balances.
        resync_holds: the stream must resynchronise holds.
        check_over_rest: held assets a stream snapshot omitted: ask REST.
    """

    changes: list[Change] = field(default_factory=list)
    disagreements: list[tuple[Balance, Balance]] = field(default_factory=list)
    hold_mismatches: int = 0
    resync_balances: bool = False
    resync_holds: bool = False
    check_over_rest: list[str] = field(default_factory=list)


def same_amounts(old: Balance, new: Balance) -> bool:
    """Whether two values of an asset hold the same amounts (identity first: cheap)."""
    return (
        old.balance == new.balance
        and (old.hold_trade is new.hold_trade or old.hold_trade == new.hold_trade)
        and (old.earn is new.earn or old.earn == new.earn)
        and (old.credit is new.credit or old.credit == new.credit)
        and (old.credit_used is new.credit_used or old.credit_used == new.credit_used)
    )


def from_amounts(
    amounts: AssetAmounts, old: Balance | None, source: Source, received_at: float
) -> Balance:
    """The held value a source's amounts make; an unknown hold keeps the old one.

    Amounts a source read through a float (``amounts.exact`` false) make an
    :class:`~balance_manager.core.models.InexactBalance`.
    """
    hold = amounts.hold_trade
    if hold is None:
        hold = old.hold_trade if old is not None else ZERO
    return (Balance if amounts.exact else InexactBalance)(
        asset=amounts.asset,
        balance=amounts.balance,
        hold_trade=hold,
        source=source,
        received_at=received_at,
        credit=amounts.credit,
        credit_used=amounts.credit_used,
        earn=amounts.earn,
    )


def _zero(held: Balance, received_at: float) -> Balance:
    return held.replace(
        balance=ZERO,
        earn=ZERO,
        hold_trade=ZERO,
        credit=ZERO,
        credit_used=ZERO,
        source=Source.REST,
        received_at=received_at,
        exchange_time=None,
    )


def _holds_anything(value: Balance) -> bool:
    return bool(value.balance or value.earn or value.hold_trade or value.credit_used)


def reconcile_rest(
    before: Mapping[str, Balance],
    held: Mapping[str, Balance],
    snapshot: RestSnapshot,
    stream: StreamView,
) -> Outcome:
    """Apply a REST snapshot (rules 1 to 4).

    Args:
        before: the held values when the request left.
        held: the held values now.
        snapshot: what REST answered.
        stream: what the stream claims now.
    """
    outcome = Outcome()
    # Current as of when the request left, not when the answer arrived.
    received = snapshot.current_at
    listed = snapshot.balances
    for asset, amounts in listed.items():
        current = held.get(asset)
        if current is not before.get(asset):
            continue  # changed after the request left: newer than this reading
        if current is None:
            added = from_amounts(amounts, None, Source.REST, received)
            outcome.changes.append(Change(added, None, "refresh"))
            if stream.live and _holds_anything(added):
                # A live stream claims the whole account, yet never gave this
                # asset: it lost an update (rule 3).
                outcome.resync_balances = True
            continue
        rest_view = from_amounts(amounts, current, Source.REST, received)
        _replace(outcome, current, rest_view, stream, hold_known=amounts.hold_trade is not None)
    for asset, current in held.items():
        if asset in listed or current is not before.get(asset):
            continue
        if not _holds_anything(current) and current.source is not Source.CACHE:
            continue
        _replace(outcome, current, _zero(current, received), stream, hold_known=True)
    return outcome


def _replace(
    outcome: Outcome, current: Balance, rest_view: Balance, stream: StreamView, *, hold_known: bool
) -> None:
    """REST's newer view replaces ``current``; a live stream that disagrees resyncs."""
    if same_amounts(current, rest_view):
        if current.exact is not rest_view.exact or current.source is Source.CACHE:
            # Same amounts, but now known exactly (or only through a float), or
            # confirmed after a restart: the newer reading's exactness and
            # source are the truth. Not a change of amounts.
            outcome.changes.append(Change(rest_view, current, "refresh"))
        elif rest_view.received_at > current.received_at:
            outcome.changes.append(
                Change(current.replace(received_at=rest_view.received_at), current, "refresh")
            )
        return
    outcome.changes.append(Change(rest_view, current, "refresh"))
    if not stream.live or current.source is not Source.WEBSOCKET:
        return  # nothing live claimed the old value: REST simply moved on
    outcome.disagreements.append((current, rest_view))
    if (
        current.balance != rest_view.balance
        or current.earn != rest_view.earn
        or current.credit != rest_view.credit
        or current.credit_used != rest_view.credit_used
    ):
        outcome.resync_balances = True
    if hold_known and current.hold_trade != rest_view.hold_trade:
        outcome.hold_mismatches += 1
        if stream.holds_live:
            outcome.resync_holds = True


def apply_stream_snapshot(held: Mapping[str, Balance], snapshot: StreamSnapshot) -> Outcome:
    """Apply a stream snapshot (rule 5); a partial one touches only the assets it lists."""
    outcome = Outcome()
    received = snapshot.received_at
    for asset, amounts in snapshot.balances.items():
        old = held.get(asset)
        new = from_amounts(amounts, old, Source.WEBSOCKET, received)
        outcome.changes.append(Change(new, old, "snapshot"))
    if snapshot.complete:
        outcome.check_over_rest = [
            asset
            for asset, value in held.items()
            if asset not in snapshot.balances and (value.balance or value.earn)
        ]
    return outcome


def apply_holds(held: Mapping[str, Balance], event: StreamHolds) -> Outcome:
    """Apply the stream's holds (rule 6): every asset whose hold it knows and that differs."""
    outcome = Outcome()
    targets = set(event.changed)
    targets.update(asset for asset, value in held.items() if value.hold_trade)
    for asset in sorted(targets):
        if asset in event.uncertain:
            continue
        old = held.get(asset)
        if old is None:
            continue
        hold: Decimal = event.holds.get(asset, ZERO)
        if hold != old.hold_trade:
            new = old.replace(
                hold_trade=hold, received_at=event.received_at, source=Source.WEBSOCKET
            )
            outcome.changes.append(Change(new, old, "hold"))
    return outcome
