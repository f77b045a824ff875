"""The ingest path against a reference model of its semantics, on random streams (issue 13).

Random ``balances`` streams (gaps, duplicates, continuity breaks, resync snapshots, earn
wallets beside spot, values from 10**-20 to 10**20) go through the real path, frame by
frame, as the client's read loop does (``KrakenSession.feed`` → the client's handling →
the manager's sink), and through a plain model of what that path promises:

* the session applies an update only when it is next in sequence; a replayed one (same
  sequence, same ledger ids) is dropped; anything else, or an entry whose arithmetic does
  not add up, starts a resync, and updates are ignored until the next snapshot;
* an applied entry sets its wallet to ``previous + amount - fee`` (the stated all-wallet
  balance minus the other wallets on a break); an asset's ``balance`` is its spot wallets,
  its ``earn`` the rest;
* the manager publishes ``balance_update`` for a new asset or changed amounts, never for
  an unchanged one, and records history whenever the tradable balance changed.

Balances, events (in order) and history must be identical. Any shortcut taken on the hot
path (however it fuses the steps) has to keep this test green.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Context, Decimal

import msgspec
from hypothesis import HealthCheck, given, settings, strategies as st

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.models import BalanceChange
from balance_manager.kraken.protocol import ws_messages as wsm
from balance_manager.kraken.protocol.timefmt import format_rfc3339
from balance_manager.kraken.protocol.ws_session import SessionState
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.kraken.ws_client import KrakenWebSocketClient
from balance_manager.service.manager import BalanceManager
from balance_manager.testing import ManualClock

ASSETS = ("BTC", "ETH", "USDT", "DOT")
WALLETS = (("spot", "main"), ("earn", "flexible"), ("earn", "bonded"))
T0 = 1_700_000_000.0
SECRET = base64.b64encode(b"differential-".ljust(64, b".")).decode()

Wallets = dict[tuple[str, str], Decimal]
Event = tuple[str, Decimal, Decimal, str, str | None]


#: The model's arithmetic is exact whatever the digits (the default context rounds at 28).
EXACT = Context(prec=200)


def amount(units: int, scale: int) -> Decimal:
    """``units * 10**-scale``, exact."""
    return Decimal(units).scaleb(-scale)


def total(values: Iterable[Decimal]) -> Decimal:
    """The exact sum."""
    result = Decimal(0)
    for value in values:
        result = EXACT.add(result, value)
    return result


def plus(a: Decimal, b: Decimal, c: Decimal = Decimal(0)) -> Decimal:
    """``a + b - c``, exact."""
    return EXACT.subtract(EXACT.add(a, b), c)


step = st.one_of(
    st.tuples(
        st.just("entry"),
        st.integers(0, len(ASSETS) - 1),
        st.sampled_from([0, 0, 0, 1, 2]),  # mostly spot, some earn wallets
        st.integers(-(10**12), 10**12),
        st.integers(0, 10**4),
        st.sampled_from([0, 2, 8, 8, 10, 18, 20]),
    ),
    st.tuples(st.just("huge"), st.integers(0, len(ASSETS) - 1), st.integers(1, 10**20)),
    st.tuples(st.just("duplicate")),
    st.tuples(st.just("gap"), st.integers(1, 3)),
    st.tuples(st.just("break"), st.integers(0, len(ASSETS) - 1)),
    st.tuples(st.just("snapshot")),
)


@dataclass
class Exchange:
    """The server: the true wallets, the sequence, the frames it sends."""

    wallets: dict[str, Wallets] = field(default_factory=dict)
    sequence: int = 1
    count: int = 0

    def total(self, asset: str) -> Decimal:
        return total(self.wallets.get(asset, {}).values())

    def entry_frame(
        self, asset: str, wallet: tuple[str, str], change: Decimal, fee: Decimal, lie: Decimal
    ) -> tuple[bytes, wsm.LedgerEntry]:
        """One update frame (next sequence); ``lie`` added to the stated balance (a break)."""
        wallets = self.wallets.setdefault(asset, {})
        if lie == 0:
            wallets[wallet] = plus(wallets.get(wallet, Decimal(0)), change, fee)
        self.sequence += 1
        self.count += 1
        entry = wsm.LedgerEntry(
            ledger_id=f"L{self.count:08d}",
            ref_id=f"R{self.count:08d}",
            timestamp=format_rfc3339(T0 + self.count),
            type="deposit" if change >= 0 else "withdrawal",
            asset=asset,
            asset_class="currency",
            category="deposit" if change >= 0 else "withdrawal",
            wallet_type=wallet[0],
            wallet_id=wallet[1],
            amount=change,
            fee=fee,
            balance=plus(self.total(asset), lie),
        )
        return wsm.encode_balances_update([entry], self.sequence), entry

    def snapshot_frame(self) -> bytes:
        self.sequence += 1
        items = [
            wsm.AssetBalance(
                asset=asset,
                asset_class="currency",
                balance=self.total(asset),
                wallets=tuple(
                    wsm.WalletBalance(type=kind, id=name, balance=value)
                    for (kind, name), value in wallets.items()
                ),
            )
            for asset, wallets in self.wallets.items()
        ]
        return wsm.encode_balances_snapshot(items, self.sequence)


@dataclass
class Model:
    """What the path promises: the session's view, the manager's values, events, history."""

    wallets: dict[str, Wallets] = field(default_factory=dict)
    sequence: int = 1
    recent: dict[int, tuple[str, ...]] = field(default_factory=dict)
    awaiting: bool = False
    duplicates: int = 0
    held: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    history: dict[str, list[Decimal]] = field(default_factory=dict)

    def _apply(self, asset: str, kind: str, ledger_id: str | None) -> None:
        wallets = self.wallets[asset]
        tradable = total(v for (k, _), v in wallets.items() if k == "spot")
        earn = total(v for (k, _), v in wallets.items() if k != "spot")
        old = self.held.get(asset)
        self.held[asset] = (tradable, earn)
        if old == (tradable, earn):
            return
        self.events.append((asset, tradable, earn, kind, ledger_id))
        recorded = self.history.setdefault(asset, [])
        if not recorded or recorded[-1] != tradable:
            recorded.append(tradable)

    def update(self, sequence: int, entry: wsm.LedgerEntry) -> None:
        ids = (entry.ledger_id,)
        if self.awaiting:
            return
        if sequence != self.sequence + 1:
            if sequence <= self.sequence and self.recent.get(sequence) == ids:
                self.duplicates += 1  # a replay: dropped
            else:
                self.awaiting = True  # a gap, or out of order: resync
            return
        self.sequence = sequence
        self.recent[sequence] = ids
        wallets = self.wallets.setdefault(entry.asset, {})
        key = (entry.wallet_type, entry.wallet_id)
        after = plus(wallets.get(key, Decimal(0)), entry.amount, entry.fee)
        others = total(v for k, v in wallets.items() if k != key)
        broken = EXACT.add(after, others) != entry.balance
        wallets[key] = EXACT.subtract(entry.balance, others) if broken else after
        self._apply(entry.asset, "update", entry.ledger_id)
        if broken:
            self.awaiting = True

    def snapshot(self, sequence: int, exchange: Exchange) -> None:
        self.wallets = {asset: dict(wallets) for asset, wallets in exchange.wallets.items()}
        self.sequence = sequence
        self.recent = {}
        self.awaiting = False
        for asset in self.wallets:
            self._apply(asset, "snapshot", None)


def build() -> tuple[BalanceManager, KrakenWebSocketClient]:
    """A manager and its stream client, subscribed, fed by hand (no socket, a manual clock)."""
    clock = ManualClock(start=T0)
    config = BalanceManagerConfig(history_db_path=None, subscribe_executions=False)
    rest = KrakenRestClient(
        api_key="key", api_secret=SECRET, base_url="http://127.0.0.1:9", config=config, clock=clock
    )
    client = KrakenWebSocketClient(rest, url="ws://127.0.0.1:9/v2", config=config, clock=clock)
    manager = BalanceManager(websocket_client=client, config=config, clock=clock)
    client._sink = manager._on_stream_event  # what start() does, without a socket
    session = client.session
    session.connection_opened()
    session.token_received("token")
    session.data_to_send()
    return manager, client


async def run_stream(steps: list[tuple[object, ...]]) -> None:
    """Feed the steps through the real path and the model; compare everything."""
    manager, client = build()
    session = client.session

    exchange = Exchange()
    model = Model()
    seen: list[Event] = []

    def record(change: BalanceChange) -> None:
        new = change.new
        seen.append((new.asset, new.balance, new.earn, change.kind, change.ledger_id))

    def send(frame: bytes) -> None:
        client._receive(frame)  # the read loop's body
        session.data_to_send()  # the resync's unsubscribe/subscribe: no socket here

    send(exchange.snapshot_frame())
    assert session.state is SessionState.STREAMING
    model.snapshot(exchange.sequence, exchange)
    manager.register_callback("balance_update", record)
    model.events.clear()
    last_update: tuple[bytes, int, wsm.LedgerEntry] | None = None
    for item in steps:
        kind = item[0]
        if kind in ("entry", "huge", "break"):
            asset = ASSETS[int(item[1])]  # type: ignore[call-overload]  # ints from the strategy
            held = exchange.wallets.get(asset, {})
            if kind == "entry":
                _, _, wallet_index, units, fee_units, scale = item
                wallet = WALLETS[int(wallet_index)]  # type: ignore[call-overload]
                change = amount(int(units), int(scale))  # type: ignore[call-overload]
                fee = amount(int(fee_units), int(scale))  # type: ignore[call-overload]
                if plus(held.get(wallet, Decimal(0)), change, fee) < 0:
                    change, fee = -change if change < 0 else change, Decimal(0)
                frame, entry = exchange.entry_frame(asset, wallet, change, fee, Decimal(0))
            elif kind == "huge":
                change = Decimal(int(item[2]))  # type: ignore[call-overload]
                frame, entry = exchange.entry_frame(
                    asset, WALLETS[0], change, Decimal(0), Decimal(0)
                )
            else:
                lie = Decimal("0.5")
                frame, entry = exchange.entry_frame(asset, WALLETS[0], Decimal(1), Decimal(0), lie)
            last_update = (frame, exchange.sequence, entry)
            send(frame)
            model.update(exchange.sequence, entry)
        elif kind == "duplicate" and last_update is not None:
            frame, sequence, entry = last_update
            send(frame)
            model.update(sequence, entry)
        elif kind == "gap":
            exchange.sequence += int(item[1])  # type: ignore[call-overload]  # frames lost
        elif kind == "snapshot":
            send(exchange.snapshot_frame())
            model.snapshot(exchange.sequence, exchange)
    await manager.drain_callbacks()

    values = manager.sync_view().get_all_balances()
    assert {a: (b.balance, b.earn) for a, b in values.items()} == model.held
    assert seen == model.events
    history = {a: [e.balance for e in manager.history.get_asset_history(a)] for a in model.history}
    assert history == model.history
    assert session.counters.duplicates == model.duplicates
    await manager.close()


def test_an_entry_with_an_unreadable_timestamp_still_moves_the_balance() -> None:
    """A ledger entry whose time cannot be read updates the balance (it was lost, served fresh)."""

    async def scenario() -> None:
        manager, client = build()
        exchange = Exchange()
        exchange.wallets["BTC"] = {WALLETS[0]: Decimal(1)}
        client._receive(exchange.snapshot_frame())
        _, entry = exchange.entry_frame("BTC", WALLETS[0], Decimal(1), Decimal(0), Decimal(0))
        bad = msgspec.structs.replace(entry, timestamp="yesterday")
        client._receive(wsm.encode_balances_update([bad], exchange.sequence))
        held = manager.sync_view().get_balance("BTC")
        assert held is not None
        assert held.balance == Decimal(2)
        assert client.session.state is SessionState.STREAMING
        await manager.close()

    asyncio.run(scenario())


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=st.lists(step, max_size=60))
def test_random_streams_give_the_model_s_balances_events_and_history(
    steps: list[tuple[object, ...]],
) -> None:
    """Gaps, duplicates, breaks, resyncs, earn wallets, extreme values: the model's results."""
    asyncio.run(run_stream(steps))
