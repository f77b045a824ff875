"""The Kraken WebSocket v2 balances session as a sans-I/O state machine.

:class:`KrakenSession` knows the protocol (docs/kraken.md, 'WebSocket v2' and
'Recovery after a disconnect') and nothing of sockets, tasks or clocks, like
websockets' ``Protocol``: the I/O layer (``kraken/ws_client.py``) tells it what
happened and sends what it asks::

    session.token_received(token)          # from REST GetWebSocketsToken
    session.connection_opened()            # the socket is up
    send(session.data_to_send())           # subscribe frames
    for frame in socket:
        for event in session.feed(frame, now=clock.time()):
            ...                            # BalancesSnapshot, StreamLedgerUpdate, HoldsChanged...
        send(session.data_to_send())       # resubscribes after a gap, pings
    session.connection_lost("reason")

States and transitions are one table (:data:`TRANSITIONS`); an input that is
not allowed in the current state raises :class:`InvalidTransition` (a bug in
the caller), while a bad or unexpected *message* never raises: it is counted
and reported as an event.

Rules (see docs/kraken.md, 'The session: states, sequences, resync, continuity'):

* **Sequence.** Each subscription (``balances``, ``executions``) has its own
  counter (docs/kraken.md, 'Sequence numbers'). The snapshot's ``sequence`` is
  the base, whatever it is (whether it restarts at 1 on a new connection is not
  documented, so no value is assumed); each update must be the previous + 1.
  A gap or an older sequence starts a resync: unsubscribe, subscribe again with
  a snapshot, ignore that channel's updates until the snapshot arrives. An exact duplicate (same
  sequence and same ledger ids as a message already applied) is dropped and
  counted instead: re-applying it would be wrong and resyncing is needless.
* **Continuity.** Every ledger entry carries the post-event ``balance``, which
  is taken as the truth. It is also checked: ``previous + amount - fee ==
  balance``. Whether ``balance`` is the wallet's or the asset's all-wallet total
  is not documented (docs/kraken.md, 'Balances updates'), so both are tried and
  the one that matches is applied; if neither matches the update is still
  applied (``continuity_ok=False``) and a resync is started.
* **Holds.** With ``subscribe_executions``, the ``executions`` channel feeds a
  :class:`~balance_manager.kraken.protocol.holds.OpenOrderBook` (``balances`` has
  no holds: docs/kraken.md, 'Balances snapshot') and :class:`HoldsChanged`
  reports what changed.
* **Tokens** are held as :class:`~balance_manager.credentials.Secret` and only
  revealed into the subscribe frames; no repr or event contains one. A token is
  used for one connection: :meth:`KrakenSession.connection_lost` forgets it, so
  each connection subscribes with a fresh one (docs/kraken.md, 'Token lifetime').
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

import msgspec

from balance_manager.core.amounts import EXACT_CONTEXT, ZERO
from balance_manager.core.sources import StreamLedgerUpdate
from balance_manager.credentials import Secret
from balance_manager.exceptions import BalanceManagerError, ExchangeError, ProtocolError
from balance_manager.kraken.protocol.assets import wallet_is_tradable
from balance_manager.kraken.protocol.errors import exception_for
from balance_manager.kraken.protocol.holds import DEFAULT_FEE_RATE, OpenOrderBook
from balance_manager.kraken.protocol.ws_messages import (
    AssetBalance,
    BalancesSnapshotMessage,
    BalancesUpdateMessage,
    ErrorMessage,
    ExecutionsMessage,
    HeartbeatMessage,
    LedgerEntry,
    MethodResponse,
    PongMessage,
    StatusMessage,
    WsMessage,
    decode_message,
    ping_request,
    subscribe_request,
    unsubscribe_request,
)

__all__ = [
    "BALANCES",
    "EXECUTIONS",
    "HEARTBEAT_EVENT",
    "LIVE_STATES",
    "SILENCES_WITHOUT_HEARTBEATS",
    "TRANSITIONS",
    "AssetWallets",
    "BalancesSnapshot",
    "ErrorReceived",
    "Heartbeat",
    "HoldsChanged",
    "InvalidTransition",
    "KrakenSession",
    "MessageRejected",
    "Pong",
    "ResyncStarted",
    "SessionCounters",
    "SessionEvent",
    "SessionState",
    "StatusChanged",
    "Subscribed",
    "SubscriptionFailed",
    "Trigger",
]

#: The balances channel.
BALANCES = "balances"
#: The executions channel (order events; source of live holds).
EXECUTIONS = "executions"

_add = EXACT_CONTEXT.add
_sub = EXACT_CONTEXT.subtract

WalletKey: TypeAlias = tuple[str, str]
"""``(wallet_type, wallet_id)``, e.g. ``("spot", "main")``."""


class SessionState(enum.Enum):
    """Where the session is."""

    CONNECTING = "connecting"
    """No socket yet (or not yet reported open)."""
    AUTHENTICATING = "authenticating"
    """Socket open, waiting for a WebSocket token."""
    SUBSCRIBING = "subscribing"
    """Subscribe frames sent, waiting for the balances snapshot."""
    STREAMING = "streaming"
    """Balances are live: snapshot received, every update in sequence."""
    RESYNCING = "resyncing"
    """A gap or a break was seen: resubscribed, waiting for new snapshot(s)."""
    CLOSED = "closed"
    """Connection lost or subscription refused; reconnect with a fresh token."""


class Trigger(enum.Enum):
    """What can move the session from one state to another."""

    OPENED = "opened"
    TOKEN = "token"  # noqa: S105 - the name of a trigger, not a credential
    BALANCES_SNAPSHOT = "balances_snapshot"
    RESYNC = "resync"
    RESYNC_DONE = "resync_done"
    SUBSCRIPTION_FAILED = "subscription_failed"
    LOST = "lost"


_S = SessionState
_T = Trigger

#: Every allowed transition: ``(state, trigger) → next state``. Missing = illegal.
TRANSITIONS: dict[tuple[SessionState, Trigger], SessionState] = {
    (_S.CONNECTING, _T.OPENED): _S.AUTHENTICATING,
    (_S.CLOSED, _T.OPENED): _S.AUTHENTICATING,  # the same session reconnects
    (_S.AUTHENTICATING, _T.TOKEN): _S.SUBSCRIBING,
    (_S.SUBSCRIBING, _T.BALANCES_SNAPSHOT): _S.STREAMING,
    # executions resync (or a manager request) while the balances snapshot is
    # still on its way: nothing more to wait for than already awaited.
    (_S.SUBSCRIBING, _T.RESYNC): _S.SUBSCRIBING,
    (_S.STREAMING, _T.RESYNC): _S.RESYNCING,
    (_S.RESYNCING, _T.RESYNC): _S.RESYNCING,
    (_S.RESYNCING, _T.RESYNC_DONE): _S.STREAMING,
    (_S.SUBSCRIBING, _T.SUBSCRIPTION_FAILED): _S.CLOSED,
    (_S.STREAMING, _T.SUBSCRIPTION_FAILED): _S.CLOSED,
    (_S.RESYNCING, _T.SUBSCRIPTION_FAILED): _S.CLOSED,
    (_S.CONNECTING, _T.LOST): _S.CLOSED,
    (_S.AUTHENTICATING, _T.LOST): _S.CLOSED,
    (_S.SUBSCRIBING, _T.LOST): _S.CLOSED,
    (_S.STREAMING, _T.LOST): _S.CLOSED,
    (_S.RESYNCING, _T.LOST): _S.CLOSED,
    (_S.CLOSED, _T.LOST): _S.CLOSED,  # idempotent: both reader and writer may report it
}

_CONNECTED = frozenset({_S.SUBSCRIBING, _S.STREAMING, _S.RESYNCING})
#: States in which at least the balances channel delivers updates.
LIVE_STATES = frozenset({_S.STREAMING, _S.RESYNCING})
#: Silences acted on without any heartbeat ever seen, after which the server is
#: taken not to send heartbeats (silences then prove nothing).
SILENCES_WITHOUT_HEARTBEATS = 3


class InvalidTransition(BalanceManagerError, RuntimeError):
    """An input that the session's current state does not allow (a caller bug)."""

    def __init__(self, state: SessionState, trigger: Trigger) -> None:
        self.state = state
        self.trigger = trigger
        super().__init__(f"{trigger.value!r} is not allowed in state {state.name}")


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------


class AssetWallets(msgspec.Struct, frozen=True):
    """One asset's wallets and the two views of it (see ``kraken.assets``).

    Attributes:
        asset: v2 asset name.
        wallets: ``(wallet_type, wallet_id)`` → balance.
        tradable: the sum of tradable wallets (spot, and earn/liquid).
        earn: the sum of the other wallets.
    """

    asset: str
    wallets: dict[WalletKey, Decimal]
    tradable: Decimal
    earn: Decimal

    @property
    def total(self) -> Decimal:
        """Everything held of this asset: ``tradable + earn``."""
        return self.tradable + self.earn


class StatusChanged(msgspec.Struct, frozen=True):
    """The engine's status (``online``, ``maintenance``, ``cancel_only``, ``post_only``)."""

    system: str
    connection_id: int | None


class Subscribed(msgspec.Struct, frozen=True):
    """A subscription was acknowledged."""

    channel: str


class SubscriptionFailed(msgspec.Struct, frozen=True):
    """A subscription was refused (bad or expired token, permissions...).

    For ``balances`` the session is CLOSED: reconnect with a fresh token. For
    ``executions`` streaming goes on without live holds.
    """

    channel: str
    error: str

    @property
    def exception(self) -> ExchangeError:
        """The error as an exception (``AuthenticationError`` for token problems...)."""
        return exception_for(self.error, method=f"subscribe {self.channel}")


class BalancesSnapshot(msgspec.Struct, frozen=True):
    """A full balances snapshot: replaces everything known."""

    balances: dict[str, AssetWallets]
    sequence: int


class HoldsChanged(msgspec.Struct, frozen=True):
    """Funds held by open orders changed (from ``executions``).

    Every ``executions`` snapshot produces one, even with nothing changed (empty
    ``holds``): from that snapshot on, :attr:`KrakenSession.holds_live` is true.

    Attributes:
        holds: the new hold of every asset that changed (0 when released).
        uncertain: assets with an open order whose hold cannot be known (a buy
            without a price); take their hold from REST.
        orders: client order ids of the open orders counted in the holds.
        closed: client order ids of the orders that closed with this message.
    """

    holds: dict[str, Decimal]
    uncertain: frozenset[str]
    orders: frozenset[str] = frozenset()
    closed: frozenset[str] = frozenset()


class ResyncStarted(msgspec.Struct, frozen=True):
    """The channel is being resubscribed for a fresh snapshot; its updates wait."""

    channel: str
    reason: str


class Pong(msgspec.Struct, frozen=True, gc=False):
    """The answer to :meth:`KrakenSession.ping`.

    ``sent_at`` and ``rtt`` (round-trip seconds) are ``None`` when the ``req_id``
    was not one of ours.
    """

    req_id: int | None
    sent_at: float | None
    rtt: float | None


class MessageRejected(msgspec.Struct, frozen=True):
    """A frame could not be used (malformed, wrong shape); counted, never raised."""

    error: ProtocolError


class Heartbeat(msgspec.Struct, frozen=True, gc=False):
    """The server's heartbeat (the connection is alive)."""


#: The one heartbeat event.
HEARTBEAT_EVENT = Heartbeat()


class ErrorReceived(msgspec.Struct, frozen=True):
    """A bare error frame from the server (e.g. ``Exceeded msg rate``)."""

    error: str


SessionEvent: TypeAlias = (
    StatusChanged
    | Subscribed
    | SubscriptionFailed
    | BalancesSnapshot
    | StreamLedgerUpdate
    | HoldsChanged
    | ResyncStarted
    | Pong
    | MessageRejected
    | Heartbeat
    | ErrorReceived
)


@dataclass(slots=True)
class SessionCounters:
    """What the session has seen, for the client's statistics.

    Attributes:
        messages: frames received (valid or not).
        updates: balances update messages applied.
        ledger_entries: ledger entries applied.
        duplicates: update messages dropped as exact duplicates.
        gaps: sequence gaps or out-of-order messages (each starts a resync).
        continuity_breaks: entries whose arithmetic did not match their balance.
        rejected: frames that could not be decoded or used.
        resyncs: resyncs started (gaps, breaks, requests).
        ignored: valid messages not applied (updates while waiting for a snapshot...).
    """

    messages: int = 0
    updates: int = 0
    ledger_entries: int = 0
    duplicates: int = 0
    gaps: int = 0
    continuity_breaks: int = 0
    rejected: int = 0
    resyncs: int = 0
    ignored: int = 0


# How many recent update messages per channel are remembered to recognise an
# exact duplicate. Duplicates come from a retransmission right after the
# original, so a short window is enough and bounds memory.
_DUPLICATE_WINDOW = 64
# Unanswered pings remembered for RTT; older ones are dropped.
_PING_WINDOW = 32


#: One key tuple per wallet kind, shared by every asset's wallets dict (each asset
#: would otherwise keep its own tuple and two decoded strings: ~160 bytes). Bounded:
#: beyond it (a server inventing wallet ids) keys are simply not shared.
_SPOT_MAIN: WalletKey = ("spot", "main")
_WALLET_KEYS: dict[WalletKey, WalletKey] = {_SPOT_MAIN: _SPOT_MAIN}
_WALLET_KEY_LIMIT = 256


def _wallet_key(wallet_type: str, wallet_id: str) -> WalletKey:
    """The shared ``(wallet_type, wallet_id)`` tuple."""
    key = (wallet_type, wallet_id)
    shared = _WALLET_KEYS.get(key)
    if shared is not None:
        return shared
    if len(_WALLET_KEYS) < _WALLET_KEY_LIMIT:
        _WALLET_KEYS[key] = key
    return key


def _empty_window() -> list[tuple[int, tuple[str, ...]] | None]:
    """A duplicate window with nothing remembered."""
    return [None] * _DUPLICATE_WINDOW


def _split(wallets: dict[WalletKey, Decimal]) -> tuple[Decimal, Decimal]:
    """``(tradable, earn)`` sums of an asset's wallets (a lone wallet's amount as it is)."""
    tradable: Decimal | None = None
    earn: Decimal | None = None
    for (wallet_type, wallet_id), amount in wallets.items():
        if wallet_is_tradable(wallet_type, wallet_id):
            tradable = amount if tradable is None else _add(tradable, amount)
        else:
            earn = amount if earn is None else _add(earn, amount)
    return ZERO if tradable is None else tradable, ZERO if earn is None else earn


def _wallets_view(asset: str, wallets: dict[WalletKey, Decimal]) -> AssetWallets:
    tradable, earn = _split(wallets)
    return AssetWallets(asset, dict(wallets), tradable, earn)


class KrakenSession:
    """One account's WebSocket v2 session (balances, optionally executions).

    Args:
        subscribe_executions: also subscribe to ``executions`` and derive holds.
        fee_rate: fee reserved on buy holds (see :mod:`balance_manager.kraken.protocol.holds`).
        asset_decimals: ledger decimals per v2 asset name, for rounding holds.
    """

    def __init__(
        self,
        *,
        subscribe_executions: bool = False,
        fee_rate: Decimal = DEFAULT_FEE_RATE,
        asset_decimals: Callable[[str], int | None] | None = None,
    ) -> None:
        self._state = SessionState.CONNECTING
        self._subscribe_executions = subscribe_executions
        self._token: Secret | None = None
        self._outgoing: list[bytes] = []
        self._req_id = 0
        self._pending: dict[int, tuple[str, str]] = {}  # req_id → (method, channel)
        self._pings: dict[int, float] = {}  # req_id → sent at
        self._awaiting: set[str] = set()  # channels waiting for a snapshot
        self._sequence: dict[str, int | None] = {}
        # Per channel, the ids of the last _DUPLICATE_WINDOW messages, in a ring indexed
        # by sequence (one store per message; nothing to evict).
        self._recent: dict[str, list[tuple[int, tuple[str, ...]] | None]] = {}
        self._wallets: dict[str, dict[WalletKey, Decimal]] = {}
        self._balance_scope = "total"  # docs wording; learned from matching updates
        self._executions_live = False
        self._book = OpenOrderBook(fee_rate=fee_rate, asset_decimals=asset_decimals)
        self._system: str | None = None
        self._heartbeats = 0  # heartbeats seen (any connection: the server sends them)
        self._silences_unproven = 0  # silences acted on before any heartbeat was seen
        self.counters = SessionCounters()
        """Counters since the session was made (across reconnects)."""

    # -- state -------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """The current state."""
        return self._state

    @property
    def system(self) -> str | None:
        """The last engine status seen (``online``...), if any."""
        return self._system

    @property
    def holds_live(self) -> bool:
        """Whether :meth:`holds` follows ``executions`` live right now."""
        return self._executions_live and EXECUTIONS not in self._awaiting

    @property
    def heartbeats_seen(self) -> bool:
        """Whether the server has sent a heartbeat (on any connection of this session)."""
        return self._heartbeats > 0

    @property
    def expects_heartbeats(self) -> bool:
        """Whether a silence longer than a heartbeat interval means frames may be lost.

        True from the start (Kraken documents a heartbeat about every second
        while no other data flows). Turned off only if, before any heartbeat
        was ever seen, :data:`SILENCES_WITHOUT_HEARTBEATS` silences ended with
        the answer to our own ping: the server was there, answering, and sent
        no heartbeat, so it does not send them.
        """
        return self._heartbeats > 0 or self._silences_unproven < SILENCES_WITHOUT_HEARTBEATS

    def silence_ended(self, seconds: float, *, by_pong: bool = False) -> list[SessionEvent]:
        """The server spoke again after ``seconds`` without any frame, longer than it should.

        Updates sent meanwhile may have been lost, and nothing later may show
        it: both channels are resynchronised (their snapshots replace what is
        known). Returns the events, empty when nothing is to be done (not
        live, or a server that sends no heartbeats).

        Args:
            seconds: how long nothing came.
            by_pong: the frame that ended the silence answered our ping.
        """
        if self._state not in LIVE_STATES or not self.expects_heartbeats:
            return []
        if not self._heartbeats and by_pong:
            self._silences_unproven += 1
        reason = f"no message for {seconds:.1f} s: updates may have been lost"
        events = self._start_resync(BALANCES, reason)
        if self._executions_live:
            events += self._start_resync(EXECUTIONS, reason)
        return events

    def sequence(self, channel: str = BALANCES) -> int | None:
        """The last sequence applied on ``channel`` (``None`` before its snapshot)."""
        return self._sequence.get(channel)

    def wallets(self) -> dict[str, AssetWallets]:
        """Every asset's wallets as last known (kept across reconnects)."""
        return {asset: _wallets_view(asset, w) for asset, w in self._wallets.items()}

    def holds(self) -> dict[str, Decimal]:
        """Funds held by open orders per asset, from ``executions``."""
        return self._book.holds()

    @property
    def order_book(self) -> OpenOrderBook:
        """The open orders behind :meth:`holds`."""
        return self._book

    def _fire(self, trigger: Trigger) -> None:
        key = (self._state, trigger)
        target = TRANSITIONS.get(key)
        if target is None:
            raise InvalidTransition(self._state, trigger)
        self._state = target

    def __repr__(self) -> str:
        sequences = {c: s for c, s in self._sequence.items() if s is not None}
        return f"KrakenSession(state={self._state.name}, sequences={sequences}, {self.counters})"

    # -- outputs -----------------------------------------------------------------

    @property
    def has_data_to_send(self) -> bool:
        """Whether :meth:`data_to_send` has frames (a read loop checks it per frame)."""
        return bool(self._outgoing)

    def data_to_send(self) -> list[bytes]:
        """Frames to send, in order (clears the queue)."""
        frames, self._outgoing = self._outgoing, []
        return frames

    def _next_req_id(self) -> int:
        self._req_id += 1
        return self._req_id

    def _queue_subscribe(self, channel: str) -> None:
        req_id = self._next_req_id()
        self._pending[req_id] = ("subscribe", channel)
        if channel == EXECUTIONS:
            # Open orders only: they are what holds are made of; past trades are not.
            frame = subscribe_request(
                channel,
                token=self._token,
                snapshot=None,
                req_id=req_id,
                params={"snap_orders": True, "snap_trades": False},
            )
        else:
            frame = subscribe_request(channel, token=self._token, snapshot=True, req_id=req_id)
        self._outgoing.append(frame)
        self._awaiting.add(channel)
        self._sequence[channel] = None
        self._recent[channel] = _empty_window()

    def _queue_unsubscribe(self, channel: str) -> None:
        req_id = self._next_req_id()
        self._pending[req_id] = ("unsubscribe", channel)
        self._outgoing.append(unsubscribe_request(channel, token=self._token, req_id=req_id))

    # -- inputs from the I/O layer -------------------------------------------------

    def connection_opened(self) -> None:
        """The socket is open. Subscribes at once if a token is already known."""
        self._fire(Trigger.OPENED)
        if self._token is not None:
            self._subscribe_all()

    def token_received(self, token: str | Secret) -> None:
        """A WebSocket token (from REST ``GetWebSocketsToken``) for this connection.

        May come before or after :meth:`connection_opened`; later tokens replace
        the earlier one for resubscribes.
        """
        self._token = token if isinstance(token, Secret) else Secret(token)
        if self._state is SessionState.AUTHENTICATING:
            self._subscribe_all()

    def _subscribe_all(self) -> None:
        self._fire(Trigger.TOKEN)
        self._queue_subscribe(BALANCES)
        if self._subscribe_executions:
            self._queue_subscribe(EXECUTIONS)

    def connection_lost(self, reason: str = "") -> None:
        """The socket closed. Forgets the token and per-connection state.

        Balances and open orders are kept as last known (readers may still want
        them, marked stale by the manager); the next connection's snapshots
        replace them.
        """
        del reason  # the I/O layer logs it; the state change is the same
        self._fire(Trigger.LOST)
        self._token = None
        self._outgoing.clear()
        self._pending.clear()
        self._pings.clear()
        self._awaiting.clear()
        self._sequence.clear()
        self._recent.clear()
        self._executions_live = False

    def request_resync(self, reason: str, channel: str = BALANCES) -> list[SessionEvent]:
        """Ask for a fresh snapshot of ``channel`` (e.g. REST disagrees with the stream).

        Without a live subscription there is nothing to resync (the next
        subscription starts with a snapshot anyway) and nothing happens.
        """
        if channel not in (BALANCES, EXECUTIONS):
            raise ValueError(f"channel must be {BALANCES!r} or {EXECUTIONS!r}, got {channel!r}")
        if self._state not in _CONNECTED:
            return []
        if channel == EXECUTIONS and not self._executions_live:
            return []  # not subscribed (or refused): nothing to resync
        return self._start_resync(channel, reason)

    def ping(self, now: float) -> None:
        """Queue an application ping; its :class:`Pong` carries the round trip."""
        req_id = self._next_req_id()
        self._pings[req_id] = now
        if len(self._pings) > _PING_WINDOW:
            del self._pings[next(iter(self._pings))]
        self._outgoing.append(ping_request(req_id))

    def feed(self, frame: bytes | str, now: float) -> list[SessionEvent]:
        """Decode one frame and :meth:`receive` it (or :meth:`receive_invalid` it)."""
        try:
            message = decode_message(frame)
        except ProtocolError as error:
            return self.receive_invalid(error)
        return self.receive(message, now)

    def receive_invalid(self, error: ProtocolError) -> list[SessionEvent]:
        """A frame that failed to decode: counted and reported, never raised.

        A lost balances update shows up as a sequence gap on the next one, which
        starts a resync; nothing else needs doing here.
        """
        self.counters.messages += 1
        self.counters.rejected += 1
        return [MessageRejected(error)]

    def receive(self, message: WsMessage, now: float) -> list[SessionEvent]:
        """Apply one decoded message; returns what happened, in order. Never raises
        for anything the server sends.
        """
        self.counters.messages += 1
        if isinstance(message, BalancesUpdateMessage):
            return self._on_update(message, now)
        if isinstance(message, HeartbeatMessage):
            self._heartbeats += 1
            return [HEARTBEAT_EVENT]
        if isinstance(message, ExecutionsMessage):
            return self._on_executions(message)
        if isinstance(message, BalancesSnapshotMessage):
            return self._on_snapshot(message)
        if isinstance(message, MethodResponse):
            return self._on_response(message)
        if isinstance(message, PongMessage):
            sent_at = self._pings.pop(message.req_id, None) if message.req_id is not None else None
            rtt = None if sent_at is None else max(0.0, now - sent_at)
            return [Pong(message.req_id, sent_at, rtt)]
        if isinstance(message, StatusMessage):
            events: list[SessionEvent] = []
            for info in message.data:
                self._system = info.system
                events.append(StatusChanged(info.system, info.connection_id))
            return events
        if isinstance(message, ErrorMessage):
            return [ErrorReceived(message.error)]
        # instrument, unknown channels: not ours to use.
        self.counters.ignored += 1
        return []

    # -- method responses ----------------------------------------------------------

    def _on_response(self, message: MethodResponse) -> list[SessionEvent]:
        pending = self._pending.pop(message.req_id, None) if message.req_id is not None else None
        channel = pending[1] if pending else (message.result.channel if message.result else None)
        if message.method != "subscribe":
            # unsubscribe acks (resyncs) and other methods need no action; a
            # failed unsubscribe is followed by our subscribe anyway.
            return []
        if message.success:
            if channel == EXECUTIONS:
                self._executions_live = True
            return [Subscribed(channel or "")]
        error = message.error or "subscription refused"
        if channel == EXECUTIONS:
            # Balances still stream; holds are no longer live (the manager falls
            # back to REST hold_trade).
            self._awaiting.discard(EXECUTIONS)
            self._executions_live = False
            return [SubscriptionFailed(EXECUTIONS, error)]
        # balances, or a failure we cannot attribute: without balances the
        # session is useless; the client reconnects with a fresh token
        # (docs/kraken.md, 'Token lifetime').
        if self._state in _CONNECTED:
            self._fire(Trigger.SUBSCRIPTION_FAILED)
        return [SubscriptionFailed(channel or BALANCES, error)]

    # -- balances ------------------------------------------------------------------

    def _on_snapshot(self, message: BalancesSnapshotMessage) -> list[SessionEvent]:
        if self._state not in _CONNECTED:
            self.counters.ignored += 1
            return []
        self._wallets = {item.asset: self._snapshot_wallets(item) for item in message.data}
        self._sequence[BALANCES] = message.sequence
        self._recent[BALANCES] = _empty_window()
        self._awaiting.discard(BALANCES)
        events: list[SessionEvent] = [
            BalancesSnapshot(self.wallets(), message.sequence),
        ]
        self._after_snapshot(BALANCES)
        return events

    @staticmethod
    def _snapshot_wallets(item: AssetBalance) -> dict[WalletKey, Decimal]:
        if not item.wallets:
            # No wallet breakdown: the whole balance is spot (the only place a
            # plain balance can be traded from).
            return {_SPOT_MAIN: item.balance}
        wallets: dict[WalletKey, Decimal] = {}
        for wallet in item.wallets:
            key = _wallet_key(wallet.type, wallet.id)
            known = wallets.get(key)  # a wallet listed twice adds up (exact, any digits)
            wallets[key] = wallet.balance if known is None else _add(known, wallet.balance)
        return wallets

    def _after_snapshot(self, channel: str) -> None:
        if self._state is SessionState.SUBSCRIBING and channel == BALANCES:
            self._fire(Trigger.BALANCES_SNAPSHOT)
        elif self._state is SessionState.RESYNCING and not self._awaiting:
            self._fire(Trigger.RESYNC_DONE)

    def _check_sequence(
        self, channel: str, sequence: int, ids: tuple[str, ...]
    ) -> list[SessionEvent] | None:
        """``None`` when the message is next in sequence; else the events to return."""
        last = self._sequence.get(channel)
        if last is None or sequence == last + 1:
            self._sequence[channel] = sequence
            window = self._recent.get(channel)
            if window is None:
                window = self._recent[channel] = _empty_window()
            window[sequence % _DUPLICATE_WINDOW] = (sequence, ids)
            return None
        if sequence <= last:
            window = self._recent.get(channel)
            if window is not None and window[sequence % _DUPLICATE_WINDOW] == (sequence, ids):
                self.counters.duplicates += 1
                return []
        self.counters.gaps += 1
        how = "gap" if sequence > last else "out of order"
        return self._start_resync(channel, f"sequence {how}: got {sequence} after {last}")

    def _on_update(self, message: BalancesUpdateMessage, now: float) -> list[SessionEvent]:
        if BALANCES in self._awaiting or self._state not in _CONNECTED:
            # Before (or while waiting for) a snapshot an update has no base.
            self.counters.ignored += 1
            return []
        entries = message.data
        # One entry is the common case: its ids without building a list first.
        ids = (entries[0].ledger_id,) if len(entries) == 1 else tuple(e.ledger_id for e in entries)
        rejected = self._check_sequence(BALANCES, message.sequence, ids)
        if rejected is not None:
            return rejected
        self.counters.updates += 1
        events: list[SessionEvent] = []
        broken = False
        for entry in entries:
            update = self._apply_entry(entry, now)
            broken = broken or not update.continuity_ok
            events.append(update)
        if broken:
            events.extend(
                self._start_resync(BALANCES, f"continuity break in sequence {message.sequence}")
            )
        return events

    def _apply_entry(self, entry: LedgerEntry, now: float) -> StreamLedgerUpdate:
        """Apply one entry to its wallet; the event carries the asset's amounts after it.

        One object from here to the manager's store: the client hands it on as it is.
        """
        self.counters.ledger_entries += 1
        asset = entry.asset
        wallets = self._wallets.get(asset)
        if wallets is None:
            wallets = self._wallets[asset] = {}
        key = (entry.wallet_type, entry.wallet_id)
        previous = wallets.get(key)
        # Exact arithmetic (the ambient context rounds beyond 28 digits): a
        # rounded sum would be a false continuity break, or a wrong balance.
        after = _sub(_add(ZERO if previous is None else previous, entry.amount), entry.fee)
        others = ZERO
        if previous is None:
            key = _wallet_key(*key)  # a new wallet: the dict keeps this key
        if len(wallets) > 1 or previous is None:
            for other, amount in wallets.items():
                if other != key:
                    others = _add(others, amount)
        ok = True
        if after == entry.balance:
            # Per-wallet reading (when the other wallets hold 0, both readings agree).
            wallet_balance = after
            if others:
                self._balance_scope = "wallet"
        elif others and _add(others, after) == entry.balance:
            # All-wallet total reading (the docs' wording): this wallet changed.
            wallet_balance = after
            self._balance_scope = "total"
        else:
            ok = False
            self.counters.continuity_breaks += 1
            # The stated balance is the truth; read it the way the last
            # unambiguous entry was read (default: the docs' "total").
            scope_total = self._balance_scope == "total"
            wallet_balance = _sub(entry.balance, others) if scope_total else entry.balance
        wallets[key] = wallet_balance
        if len(wallets) == 1:  # the common case: one spot wallet
            if wallet_is_tradable(*key):
                tradable, earn = wallet_balance, ZERO
            else:
                tradable, earn = ZERO, wallet_balance
        else:
            tradable, earn = _split(wallets)
        try:
            exchange_time: float | None = entry.time
        except ProtocolError:  # the amounts are still the truth: applied, time unknown
            exchange_time = None
        return StreamLedgerUpdate(
            asset, tradable, earn, entry.amount, entry.fee, entry.ledger_id, entry.ref_id,
            entry.type, exchange_time, now, ok,
        )  # fmt: skip

    # -- executions ------------------------------------------------------------------

    def _on_executions(self, message: ExecutionsMessage) -> list[SessionEvent]:
        if not self._subscribe_executions or self._state not in _CONNECTED:
            self.counters.ignored += 1
            return []
        if message.type == "snapshot":
            self._sequence[EXECUTIONS] = message.sequence
            self._recent[EXECUTIONS] = _empty_window()
            self._awaiting.discard(EXECUTIONS)
            self._executions_live = True
            # Always an event, even for an empty book: from this snapshot on the
            # holds are live, and the caller should hear so.
            changed = self._book.apply(message)
            events: list[SessionEvent] = [self._holds_event(changed)]
            self._after_snapshot(EXECUTIONS)
            return events
        if EXECUTIONS in self._awaiting:
            self.counters.ignored += 1
            return []
        if message.sequence is not None:
            ids = tuple(
                f"{item.order_id}/{item.exec_id or ''}/{item.exec_type}/{item.order_status or ''}"
                for item in message.data
            )
            rejected = self._check_sequence(EXECUTIONS, message.sequence, ids)
            if rejected is not None:
                return rejected
        return self._holds_events(self._book.apply(message))

    def _holds_events(self, changed: Iterable[str]) -> list[SessionEvent]:
        assets = set(changed)
        # An order placed and filled at once changes no hold, but its closing matters
        # to whoever waits for it (a reservation): an event all the same.
        return [self._holds_event(assets)] if assets or self._book.has_closed else []

    def _holds_event(self, changed: Iterable[str]) -> HoldsChanged:
        book = self._book
        return HoldsChanged(
            {a: book.hold(a) for a in sorted(changed)},
            book.uncertain_assets(),
            book.client_orders(),
            book.take_closed(),
        )

    # -- resync ----------------------------------------------------------------------

    def _start_resync(self, channel: str, reason: str) -> list[SessionEvent]:
        if channel in self._awaiting:
            return []  # a snapshot of this channel is already on its way
        self._fire(Trigger.RESYNC)
        self.counters.resyncs += 1
        # Unsubscribe first: subscribing to a live subscription is refused. The
        # same token is reused; if the server refuses it (not documented either
        # way; docs/kraken.md, 'Token lifetime') the failure closes the session
        # and the client reconnects with a new one.
        self._queue_unsubscribe(channel)
        self._queue_subscribe(channel)
        return [ResyncStarted(channel, reason)]
