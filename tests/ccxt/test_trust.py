"""Trust on the ccxt path: no wrong balance served as live, every loss found and repaired.

ccxt.pro's own kraken class at the simulator (loopback), on the manual clock (and a ccxt.pro
okx instance whose watch_balance alone is replaced, for its paged snapshot).
Each test failed before its fix (but the exact-duplicate guard).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import ccxt.pro as ccxtpro
import pytest
import pytest_asyncio

from balance_manager import BalanceManager, BalanceManagerConfig
from balance_manager.ccxt import CcxtRestSource, CcxtStreamSource
from balance_manager.ccxt.shapes import UnifiedShape, VenueShape
from balance_manager.core.sources import StreamEvent, StreamSnapshot
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive, wait_until

from .conftest import kraken_at

pytestmark = [pytest.mark.network, pytest.mark.asyncio]

CONFIG = BalanceManagerConfig(
    history_db_path=None,
    reconnect_initial_delay=0.05,
    reconnect_max_delay=0.2,
    force_update_interval=20.0,
)


@pytest_asyncio.fixture
async def quiet_sim(clock: ManualClock) -> AsyncIterator[SimulatedKraken]:
    """A simulator without market activity: only what a test does changes the account."""
    async with SimulatedKraken(clock=clock, seed=11, market=False) as simulator:
        yield simulator


def started(
    sim: SimulatedKraken, clock: ManualClock, shape: VenueShape | None = None
) -> tuple[CcxtRestSource, CcxtStreamSource]:
    rest = CcxtRestSource(kraken_at(sim), config=CONFIG, clock=clock, shape=shape)
    return rest, CcxtStreamSource(rest)


async def test_a_message_pushes_only_the_assets_it_changed(
    quiet_sim: SimulatedKraken, clock: ManualClock
) -> None:
    """After the connection's complete snapshot, a message's event lists only what it changed.

    A whole-account event per message replaced every held value each time, so
    a REST read in flight on a busy account never applied to any asset.
    """
    rest, stream = started(quiet_sim, clock)
    events: list[StreamEvent] = []
    await stream.start(events.append)
    try:
        await wait_until(lambda: stream.connected)
        snapshots = [e for e in events if isinstance(e, StreamSnapshot)]
        assert len(snapshots) == 1
        assert snapshots[0].complete
        quiet_sim.deposit("ETH", "0.5")
        await wait_until(lambda: len([e for e in events if isinstance(e, StreamSnapshot)]) == 2)
        last = [e for e in events if isinstance(e, StreamSnapshot)][-1]
        assert not last.complete
        assert set(last.balances) == {"ETH"}
        assert last.balances["ETH"].balance == quiet_sim.balances()["ETH"]
    finally:
        await stream.stop()
        await rest.close()


async def test_a_lost_update_is_repaired_while_the_account_is_busy(
    quiet_sim: SimulatedKraken, clock: ManualClock
) -> None:
    """REST finds an update the stream lost even when the stream speaks during every read.

    ccxt's unified path (any venue without a raw reader) has no sequence to
    show the loss: only REST can. Every REST answer takes 1 s; ETH moves every
    0.5 s. Before the fix BTC stayed wrong, served as websocket, for 60 s.
    """
    sim = quiet_sim
    rest, stream = started(sim, clock, UnifiedShape("kraken"))
    async with BalanceManager(stream, rest, CONFIG, clock=clock) as manager:
        await wait_until(lambda: stream.connected)
        await clock.run_for(1.0, step=0.5)
        sim.faults.slow_response(1.0, endpoint="BalanceEx", times=None)
        sim.faults.lose_frame(channel="balances")
        sim.deposit("BTC", "5")  # lost
        await clock.run_for(0.5, step=0.5)
        for _ in range(30):  # 15 s of a busy account
            sim.deposit("ETH", "0.01")
            await clock.run_for(0.5, step=0.25)
        btc = manager.sync_view().get_balance("BTC")
        assert btc is not None
        assert btc.balance == sim.balances()["BTC"]
        assert manager.get_statistics()["resyncs_requested"] >= 1


async def test_an_asset_only_rest_knows_is_not_a_rest_call_per_message(
    quiet_sim: SimulatedKraken, clock: ManualClock
) -> None:
    """The stream lost an asset's first update; REST adds it: the stream resyncs, no REST storm.

    Before, every later message (a whole-account event omitting the asset)
    asked REST about it: 40 messages, about 40 REST calls, and the stream
    never learnt the asset.
    """
    sim = quiet_sim
    rest, stream = started(sim, clock, UnifiedShape("kraken"))
    async with BalanceManager(stream, rest, CONFIG, clock=clock) as manager:
        await wait_until(lambda: stream.connected)
        await clock.run_for(1.0, step=0.5)
        sim.faults.lose_frame(channel="balances")
        sim.deposit("SOL", "7")  # its first update is lost
        await clock.run_for(6.0, step=0.5)  # REST's hold poll reads it
        sol = manager.sync_view().get_balance("SOL")
        assert sol is not None
        assert sol.balance == 7
        assert manager.get_statistics()["resyncs_requested"] >= 1
        calls = sim.rest_calls["BalanceEx"]
        for _ in range(40):
            sim.deposit("ETH", "0.01")
            await clock.run_for(0.25, step=0.25)
        assert sim.rest_calls["BalanceEx"] - calls <= 5


def btc_is_true(manager: BalanceManager, sim: SimulatedKraken) -> bool:
    """The manager serves the simulator's BTC balance."""
    btc = manager.sync_view().get_balance("BTC")
    return btc is not None and btc.balance == sim.balances()["BTC"]


async def test_a_lost_frame_resyncs_at_the_next_frame(
    quiet_sim: SimulatedKraken, clock: ManualClock
) -> None:
    """Kraken's sequence shows a lost frame at the next one: the stream resyncs at once.

    Before, the gap was not looked at: the lost deposit was served as live
    until REST's next hold poll.
    """
    sim = quiet_sim
    rest, stream = started(sim, clock)
    async with BalanceManager(stream, rest, CONFIG, clock=clock) as manager:
        await wait_until(lambda: stream.connected)
        await clock.run_for(1.0, step=0.5)
        sim.faults.lose_frame(channel="balances")
        sim.deposit("BTC", "5")  # lost
        sim.deposit("ETH", "0.01")  # its sequence shows the gap
        await wait_until(lambda: stream.get_statistics()["rejected"] >= 1)
        await drive(
            clock, 2.0, step=0.05, until=lambda: stream.connected and btc_is_true(manager, sim)
        )
        assert stream.connected
        assert btc_is_true(manager, sim)


async def test_reordered_frames_resync(quiet_sim: SimulatedKraken, clock: ManualClock) -> None:
    """A frame that comes after the next one (a step back in sequence) resyncs the stream.

    Before, the older frame was applied last: BTC went back to the value before
    the second deposit and was served as live.
    """
    sim = quiet_sim
    rest, stream = started(sim, clock)
    async with BalanceManager(stream, rest, CONFIG, clock=clock) as manager:
        await wait_until(lambda: stream.connected)
        await clock.run_for(1.0, step=0.5)
        sim.faults.reorder_frames(channel="balances")
        sim.deposit("BTC", "1")  # sent after the next frame
        sim.deposit("BTC", "2")
        await wait_until(lambda: stream.get_statistics()["rejected"] >= 1)
        await drive(
            clock, 2.0, step=0.05, until=lambda: stream.connected and btc_is_true(manager, sim)
        )
        assert stream.connected
        assert btc_is_true(manager, sim)


async def test_an_exact_duplicate_frame_is_dropped_without_a_resync(
    quiet_sim: SimulatedKraken, clock: ManualClock
) -> None:
    """The same frame twice is read once; no resync is needed.

    A guard for the sequence check (it passed before it, too): an exact repeat
    must not cost a reconnect.
    """
    sim = quiet_sim
    rest, stream = started(sim, clock)
    async with BalanceManager(stream, rest, CONFIG, clock=clock) as manager:
        await wait_until(lambda: stream.connected)
        await clock.run_for(1.0, step=0.5)
        sim.faults.duplicate_frame(channel="balances")
        sim.deposit("BTC", "1")
        sim.deposit("BTC", "2")
        await wait_until(lambda: btc_is_true(manager, sim))
        await clock.run_for(1.0, step=0.25)
        assert [fault.kind.value for fault in sim.faults.history] == ["ws_duplicate"]
        stats = stream.get_statistics()
        assert (stats["rejected"], stats["reconnects"]) == (0, 0)
        assert btc_is_true(manager, sim)


async def test_an_okx_snapshot_in_pages_starts_the_stream(clock: ManualClock) -> None:
    """OKX may send its subscription snapshot in pages: the stream starts from all of them.

    A real ccxt.pro okx instance; only watch_balance is replaced (no network):
    it hands the venue's pages to the source's message hook, as ccxt's receive
    loop does. Before, the stream never streamed ("no balance snapshot").
    """
    exchange = ccxtpro.okx({"apiKey": "k", "secret": "s", "password": "p"})
    rest = CcxtRestSource(exchange, config=CONFIG, clock=clock)
    stream = CcxtStreamSource(rest)
    pages = [
        {
            "arg": {"channel": "account", "uid": "1"},
            "eventType": "snapshot",
            "curPage": current,
            "lastPage": current == 2,
            "data": [
                {
                    "uTime": "1700000000000",
                    "details": [{"ccy": ccy, "cashBal": cash, "frozenBal": "0"}],
                }
            ],
        }
        for current, ccy, cash in ((1, "BTC", "1.5"), (2, "USDT", "100"))
    ]

    async def watch_balance(*args: object, **kwargs: object) -> None:
        del args, kwargs
        for page in pages:
            stream._on_message(page)
        await asyncio.Event().wait()

    async def close_ws_clients() -> None:
        return None

    exchange.watch_balance = watch_balance
    exchange.close_ws_clients = close_ws_clients
    events: list[StreamEvent] = []
    try:
        await stream.start(events.append)
        await drive(clock, 5.0, step=0.5, until=lambda: stream.connected)
        assert stream.connected
        snapshots = [e for e in events if isinstance(e, StreamSnapshot)]
        assert len(snapshots) == 1
        assert snapshots[0].complete
        assert {a: v.balance for a, v in snapshots[0].balances.items()} == {
            "BTC": Decimal("1.5"),
            "USDT": Decimal(100),
        }
    finally:
        await stream.stop()
        await rest.close()
