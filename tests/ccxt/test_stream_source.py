"""CcxtStreamSource end to end: ccxt.pro's kraken at the simulator, under a BalanceManager.

The manager is the one Kraken's clients run under, unchanged. Every check is
against the simulator's own truth (``sim.balances()``, ``sim.holds()``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio

from balance_manager import BalanceManager, BalanceManagerConfig, ServingMode
from balance_manager.ccxt import CcxtRestSource, CcxtStreamSource
from balance_manager.core.models import Source
from balance_manager.core.sources import StreamSource, StreamState
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, wait_until

from .conftest import kraken_at

pytestmark = [pytest.mark.network, pytest.mark.asyncio]

CONFIG = BalanceManagerConfig(
    history_db_path=None,
    reconnect_initial_delay=0.05,
    reconnect_max_delay=0.2,
    force_update_interval=3600.0,
)


@pytest_asyncio.fixture
async def manager(sim: SimulatedKraken, clock: ManualClock) -> AsyncIterator[BalanceManager]:
    """A started manager on ccxt's kraken (REST + watch_balance) at the simulator."""
    rest = CcxtRestSource(kraken_at(sim), config=CONFIG, clock=clock)
    stream = CcxtStreamSource(rest)
    async with BalanceManager(stream, rest, CONFIG, clock=clock) as started:
        await wait_until(lambda: stream.connected)
        yield started


def tradable(manager: BalanceManager) -> dict[str, Decimal]:
    """What the manager holds, as the simulator reports it (assets with funds)."""
    held = manager.sync_view().get_all_balances()
    return {asset: value.balance for asset, value in held.items() if value.balance}


def truth(sim: SimulatedKraken) -> dict[str, Decimal]:
    """The simulator's tradable balances, assets with funds only."""
    return {asset: value for asset, value in sim.balances().items() if value}


def stream_of(manager: BalanceManager) -> CcxtStreamSource:
    """The manager's stream, typed."""
    stream = manager.websocket_client
    assert isinstance(stream, CcxtStreamSource)
    return stream


async def test_is_a_stream_source(sim: SimulatedKraken, clock: ManualClock) -> None:
    """It implements the interface the manager uses."""
    rest = CcxtRestSource(kraken_at(sim), clock=clock)
    try:
        assert isinstance(CcxtStreamSource(rest), StreamSource)
    finally:
        await rest.close()


async def test_streams_the_simulator_truth(manager: BalanceManager, sim: SimulatedKraken) -> None:
    """After start, the manager serves the simulator's balances from the stream."""
    assert manager.serving_mode is ServingMode.WEBSOCKET
    assert tradable(manager) == truth(sim)
    btc = await manager.get_balance("XBT")
    assert btc is not None
    assert btc.source is Source.WEBSOCKET


async def test_stream_values_are_marked_inexact_and_rest_holds_survive(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """Kraken's stream numbers reach ccxt as floats: marked inexact; holds stay REST's."""
    sim.place_order("BTC/USD", "sell", "limit", "0.25", price="95000")
    await manager.refresh_all_balances()
    sim.deposit("BTC", "0.5")
    await wait_until(lambda: tradable(manager) == truth(sim))
    btc = manager.sync_view().get_balance("BTC")
    assert btc is not None
    assert not btc.exact
    assert "inexact" in str(btc)
    assert btc.hold_trade == sim.holds()["BTC"] == Decimal("0.25")


async def test_a_message_is_counted_as_updates_not_as_a_snapshot(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """Each message carries only the assets it changed (a partial snapshot event): the
    manager counts it in ``updates``, and ``snapshots`` stays the whole-account ones."""
    before = manager.get_statistics()
    for _ in range(3):
        sim.deposit("ETH", "0.5")
    await wait_until(lambda: tradable(manager) == truth(sim))
    after = manager.get_statistics()
    assert after["snapshots"] == before["snapshots"]
    assert after["updates"] >= before["updates"] + 1


async def test_every_update_arrives_even_back_to_back(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """Ledger entries sent together are all applied (ccxt's watch_balance alone sees one)."""
    for asset, amount in (("BTC", "0.1"), ("ETH", "2.25"), ("USD", "10.01"), ("DOT", "3")):
        sim.deposit(asset, amount)
    await wait_until(lambda: tradable(manager) == truth(sim))
    assert stream_of(manager).get_statistics()["updates"] >= 4


async def test_earn_wallet_updates_do_not_replace_the_tradable_balance(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """A staking transfer moves funds to earn: balance and earn both follow the simulator."""
    sim.transfer("ETH", "2", to_wallet=("earn", "bonded"))

    def earn_of_eth() -> Decimal | None:
        eth = manager.sync_view().get_balance("ETH")
        return None if eth is None else eth.earn

    # The spot debit and the earn credit are two ledger entries, two updates: wait for both.
    await wait_until(lambda: tradable(manager) == truth(sim) and earn_of_eth() == Decimal(2))
    assert sim.earn()["ETH"] == Decimal(2)
    assert tradable(manager) == truth(sim)


async def test_a_dropped_connection_reconnects_and_resnapshots(
    manager: BalanceManager, sim: SimulatedKraken, clock: ManualClock
) -> None:
    """Changes made while the stream is down show up after the reconnect's snapshot."""
    stream = stream_of(manager)
    states: list[str] = []
    manager.register_callback("connection_state", lambda event: states.append(event["state"]))
    sim.faults.drop_websocket()
    sim.deposit("BTC", "0.01")  # the drop fires on this update: it never reaches the client
    await wait_until(lambda: not stream.connected)
    sim.deposit("ETH", "1.5")
    for _ in range(40):
        await clock.run_for(0.25)
        if stream.connected and tradable(manager) == truth(sim):
            break
    await wait_until(lambda: stream.connected and tradable(manager) == truth(sim))
    await manager.drain_callbacks()
    assert "disconnected" in states
    assert states[-1] == "streaming"
    assert stream.get_statistics()["reconnects"] >= 1


async def test_a_malformed_frame_is_survived(
    manager: BalanceManager, sim: SimulatedKraken, clock: ManualClock
) -> None:
    """A broken frame never becomes a balance; the stream recovers the truth."""
    stream = stream_of(manager)
    sim.faults.malformed_frame(channel="balances")
    sim.deposit("USD", "7.5")
    sim.deposit("USD", "2.5")
    for _ in range(40):
        if stream.connected and tradable(manager) == truth(sim):
            break
        await clock.run_for(0.25)
    await wait_until(lambda: stream.connected and tradable(manager) == truth(sim))
    assert [fired.kind.value for fired in sim.faults.history] == ["ws_malformed"]
    # ccxt stops reading a connection whose frame it cannot decode; the manager's
    # REST check of the quiet stream finds the lost update and asks for a resync.
    assert stream.get_statistics()["reconnects"] >= 1


async def test_silence_is_noticed_on_the_injected_clock(
    manager: BalanceManager, sim: SimulatedKraken, clock: ManualClock
) -> None:
    """A stream silent past websocket_timeout is dropped and reconnected; values stay true."""
    stream = stream_of(manager)
    sim.faults.go_silent(seconds=None)
    for _ in range(60):
        await clock.run_for(0.5)
        if not stream.connected:
            break
    assert not stream.connected
    assert stream.get_statistics()["silence_timeouts"] >= 1
    sim.faults.clear()
    sim.deposit("DOT", "1")
    for _ in range(60):
        if stream.connected and tradable(manager) == truth(sim):
            break
        await clock.run_for(0.25)
    await wait_until(lambda: stream.connected and tradable(manager) == truth(sim))


async def test_resync_request_resnapshots(manager: BalanceManager, sim: SimulatedKraken) -> None:
    """request_resync reports resyncing at once, then streams from a new snapshot."""
    stream = stream_of(manager)
    before = stream.get_statistics()["snapshots"]
    stream.request_resync("test")
    assert stream.state is StreamState.RESYNCING or not stream.connected
    await wait_until(lambda: stream.connected and stream.get_statistics()["snapshots"] > before)
    assert tradable(manager) == truth(sim)


async def test_stop_leaves_nothing_behind(manager: BalanceManager) -> None:
    """Closing the manager stops the stream and closes ccxt's connections."""
    stream = stream_of(manager)
    await manager.close()
    assert not stream.connected
    assert not stream.failed
    assert not stream.exchange.clients


async def test_no_reading_after_a_resync_was_requested(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """A frame ccxt hands over after request_resync is not read: nothing reaches the manager.

    The frame stands for one already in ccxt's receive buffer when the resync
    was asked for (handed to the source's message hook, as ccxt's receive loop
    does): its values belong to the connection being replaced.
    """
    stream = stream_of(manager)
    updates = stream.get_statistics()["updates"]
    eth = manager.sync_view().get_balance("ETH")
    assert eth is not None
    stream.request_resync("test")
    assert stream.state is StreamState.RESYNCING
    stream._on_message(
        {
            "channel": "balances",
            "type": "snapshot",
            "sequence": 1,
            "data": [{"asset": "ETH", "balance": 99.0, "wallets": []}],
        }
    )
    assert stream.get_statistics()["updates"] == updates
    assert manager.sync_view().get_balance("ETH") == eth
    await wait_until(lambda: stream.connected)
    assert tradable(manager) == truth(sim)
