"""The small interface between the manager and an exchange (venue-neutral, sans-I/O).

An exchange plugs in with two objects:

* a :class:`RestSource` that reads every balance on demand (a full snapshot,
  holds included), and
* a :class:`StreamSource` that pushes balance changes as they happen, as
  exchange-neutral :data:`StreamEvent` values, to a sink the manager gives it.

Everything here is exchange-neutral: canonical asset names, ``Decimal``
amounts, Unix-second timestamps. Kraken's implementation is
:class:`~balance_manager.kraken.rest_client.KrakenRestClient` and
:class:`~balance_manager.kraken.ws_client.KrakenWebSocketClient`.

The sink is a plain function: the manager applies an event without awaiting
anything (callbacks run elsewhere, see :mod:`balance_manager.service.dispatch`), so a
stream never waits on its consumer.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, Protocol, TypeAlias, runtime_checkable

import msgspec

from balance_manager.core.amounts import ZERO

__all__ = [
    "AssetAmounts",
    "AssetNaming",
    "InexactAmounts",
    "PlainNames",
    "RestSnapshot",
    "RestSource",
    "StreamEvent",
    "StreamHolds",
    "StreamLedgerUpdate",
    "StreamSink",
    "StreamSnapshot",
    "StreamSource",
    "StreamState",
    "StreamStatus",
]


class AssetAmounts(msgspec.Struct, frozen=True, gc=False):
    """One asset's amounts as a source reports them.

    Attributes:
        asset: canonical asset name.
        balance: tradable amount (see ``docs/kraken.md`` for Kraken's wallets).
        earn: amount held but not tradable (staked, bonded, earn wallets).
        hold_trade: amount held by open orders, or ``None`` when the source does
            not say (Kraken's ``balances`` channel carries no holds).
        credit: credit line total.
        credit_used: credit used.

    ``exact`` (a class attribute: no cost per value) is ``True``: the amounts
    are the exchange's own digits. See :class:`InexactAmounts`.
    """

    exact: ClassVar[bool] = True

    asset: str
    balance: Decimal
    earn: Decimal = ZERO
    hold_trade: Decimal | None = None
    credit: Decimal = ZERO
    credit_used: Decimal = ZERO


class InexactAmounts(AssetAmounts, frozen=True, gc=False):
    """Amounts a source could only read through a binary float (``exact`` is ``False``).

    The held value they make is a :class:`~balance_manager.core.models.InexactBalance`.
    """

    exact: ClassVar[bool] = False


class RestSnapshot(msgspec.Struct, frozen=True):
    """Every balance of the account, read at once over REST.

    Attributes:
        balances: canonical asset → amounts (holds included).
        received_at: local wall-clock time the response arrived.
        requested_at: local wall-clock time the request that read them left, if
            known. The exchange read the account at some moment between the two:
            the amounts are known current from ``requested_at`` on, not from
            ``received_at`` (a slow answer says nothing about what happened while
            it travelled). See :attr:`current_at`.
    """

    balances: Mapping[str, AssetAmounts]
    received_at: float
    requested_at: float | None = None

    @property
    def current_at(self) -> float:
        """The latest moment the amounts are known to have been current.

        ``requested_at`` when the source knows it, else ``received_at``.
        """
        requested = self.requested_at
        return self.received_at if requested is None else min(requested, self.received_at)


class StreamState(enum.Enum):
    """Where a stream stands."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RESYNCING = "resyncing"
    CLOSED = "closed"


class StreamSnapshot(msgspec.Struct, frozen=True):
    """A picture of the account pushed by the stream.

    A complete one (after each (re)subscribe) lists every asset; a partial one
    lists only the assets one message changed, and says nothing of the others.

    Attributes:
        balances: canonical asset → amounts; ``hold_trade`` is ``None`` when the
            stream does not know holds.
        received_at: local wall-clock receive time.
        sequence: the stream's sequence number of this snapshot, if any.
        complete: ``balances`` is the whole account (an asset it omits may
            have gone); ``False``: only the assets listed changed, the others
            are untouched.
    """

    balances: Mapping[str, AssetAmounts]
    received_at: float
    sequence: int | None = None
    complete: bool = True


class StreamLedgerUpdate(msgspec.Struct, frozen=True, gc=False):
    """One ledger entry: the post-event amounts of one asset.

    Attributes:
        asset: canonical asset name.
        balance: tradable amount after the event (the exchange's truth).
        earn: non-tradable amount after the event.
        amount: the event's change (negative for debits).
        fee: the event's fee.
        ledger_id: the exchange's ledger entry id.
        ref_id: the reference id (a trade id for trades).
        kind: the ledger entry type (``deposit``, ``trade``...).
        exchange_time: the exchange's timestamp (Unix seconds).
        received_at: local wall-clock receive time.
        continuity_ok: ``previous + amount - fee == balance`` held.
    """

    asset: str
    balance: Decimal
    earn: Decimal
    amount: Decimal
    fee: Decimal
    ledger_id: str
    ref_id: str
    kind: str
    exchange_time: float | None
    received_at: float
    continuity_ok: bool = True


class StreamHolds(msgspec.Struct, frozen=True):
    """Holds of open orders, per asset, as derived from the order stream.

    Attributes:
        holds: canonical asset → held amount, for every asset whose hold is
            known (absent assets hold nothing).
        received_at: local wall-clock receive time.
        changed: assets whose hold changed with this event.
        uncertain: assets with an open order whose hold cannot be derived
            (e.g. a market buy without a price): take their hold from REST.
        orders: client order ids of the open orders whose hold ``holds``
            includes (orders placed with one; for settling reservations).
        closed: client order ids of orders that closed (filled, canceled,
            expired) with this event.
    """

    holds: Mapping[str, Decimal]
    received_at: float
    changed: frozenset[str] = frozenset()
    uncertain: frozenset[str] = frozenset()
    orders: frozenset[str] = frozenset()
    closed: frozenset[str] = frozenset()


class StreamStatus(msgspec.Struct, frozen=True):
    """The stream's connection state changed.

    Attributes:
        state: the new state.
        reason: why (human readable; never contains a token).
        system: the exchange's system status (``online``, ``maintenance``...), if known.
        holds_live: whether holds are followed in real time on this connection.
        quiet_since: for a stream that was silent longer than it should have
            been (missed heartbeats), the monotonic time of the last message
            before the silence: updates after it may have been lost.
    """

    state: StreamState
    reason: str = ""
    system: str | None = None
    holds_live: bool = False
    quiet_since: float | None = None


StreamEvent: TypeAlias = StreamSnapshot | StreamLedgerUpdate | StreamHolds | StreamStatus
StreamSink: TypeAlias = Callable[[StreamEvent], None]


class AssetNaming(Protocol):
    """How a venue's asset names map to canonical ones, and their ledger decimals."""

    def canonical(self, name: str) -> str:
        """The canonical name of any spelling the venue uses."""
        ...

    def decimals(self, name: str) -> int | None:
        """Ledger decimals of an asset, if known."""
        ...

    def display_decimals(self, name: str) -> int | None:
        """Decimals people are shown for an asset, if known."""
        ...


class PlainNames:
    """Asset naming for a source that gives none: names are upper-cased, decimals unknown."""

    def canonical(self, name: str) -> str:
        """``name`` stripped and upper-cased."""
        return name.strip().upper()

    def decimals(self, name: str) -> int | None:
        """Always ``None``: nothing is known."""
        del name
        return None

    def display_decimals(self, name: str) -> int | None:
        """Always ``None``: nothing is known."""
        del name
        return None


@runtime_checkable
class RestSource(Protocol):
    """Reads the whole account on demand.

    Attributes:
        names: the venue's asset naming.
        exchange: what is on the other end: the venue's name (``"kraken"``) or
            ``"simulator"`` for a simulated exchange.
        account: a stable identifier of the account, safe to show and store
            (a fingerprint of the key, never the key): history is kept per account.
    """

    @property
    def names(self) -> AssetNaming: ...

    @property
    def exchange(self) -> str: ...

    @property
    def account(self) -> str: ...

    async def fetch_balances(self) -> RestSnapshot:
        """Every balance with holds (one rate-limited call)."""
        ...

    async def load_assets(self) -> None:
        """Learn asset names and decimals (updates :attr:`names`)."""
        ...

    def get_statistics(self) -> dict[str, Any]:
        """Counters such as ``rest_api_calls``."""
        ...

    def acquire(self) -> None:
        """One more user (a manager) relies on this source until it calls :meth:`release`."""
        ...

    async def release(self) -> None:
        """One user fewer; the last one out closes the source."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class StreamSource(Protocol):
    """Pushes balance changes to a sink as they happen.

    Attributes:
        quiet_after: seconds without any message after which the stream may
            have lost updates (its heartbeats stopped): the manager checks REST
            then, before the stream is declared dead.
    """

    quiet_after: float

    async def start(self, sink: StreamSink) -> None:
        """Start streaming in the background; events go to ``sink`` in order.

        ``sink`` is called synchronously and never blocks.
        """
        ...

    async def stop(self) -> None:
        """Stop streaming; no task or socket is left behind."""
        ...

    @property
    def connected(self) -> bool:
        """Whether the stream is subscribed and delivering."""
        ...

    @property
    def last_message_at(self) -> float | None:
        """Monotonic time of the last message received (any message), if any."""
        ...

    @property
    def failed(self) -> bool:
        """Whether streaming stopped for a reason other than :meth:`stop` (a bug)."""
        ...

    def request_resync(self, reason: str, *, balances: bool = True, holds: bool = False) -> None:
        """Ask for fresh snapshots (e.g. REST showed the stream lost an update).

        Args:
            reason: why, for the log.
            balances: resynchronise balances.
            holds: resynchronise holds (the open orders they come from).

        Until the snapshots arrive the stream reports ``RESYNCING``.
        """
        ...

    def get_statistics(self) -> dict[str, Any]:
        """Counters such as ``messages``, ``reconnects``."""
        ...
