"""KrakenWebSocketClient against the simulator over real loopback sockets, on a manual clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.sources import (
    StreamEvent,
    StreamHolds,
    StreamLedgerUpdate,
    StreamSnapshot,
    StreamState,
    StreamStatus,
)
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.kraken.ws_client import KrakenWebSocketClient
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive, wait_until

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


class Recorder:
    """A sink that records every stream event."""

    def __init__(self) -> None:
        self.events: list[StreamEvent] = []

    def __call__(self, event: StreamEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[StreamEvent]) -> list[StreamEvent]:
        return [e for e in self.events if isinstance(e, kind)]

    def states(self) -> list[StreamState]:
        return [e.state for e in self.events if isinstance(e, StreamStatus)]


@pytest_asyncio.fixture
async def stream(
    rest: KrakenRestClient, sim: SimulatedKraken, clock: ManualClock, config: BalanceManagerConfig
) -> AsyncIterator[tuple[KrakenWebSocketClient, Recorder]]:
    """A started client of the simulator and the recorder of its events."""
    client = KrakenWebSocketClient(rest, sim.ws_url, config=config, rng=random.Random(9))
    recorder = Recorder()
    await client.start(recorder)
    try:
        await wait_until(lambda: client.connected and client.holds_live)
        yield client, recorder
    finally:
        await client.stop()


async def test_snapshot_then_ledger_updates(
    stream: tuple[KrakenWebSocketClient, Recorder], sim: SimulatedKraken
) -> None:
    """The first snapshot equals the exchange; a deposit arrives as one ledger update."""
    client, recorder = stream
    snapshot = recorder.of(StreamSnapshot)[0]
    assert isinstance(snapshot, StreamSnapshot)
    assert {a: s.balance for a, s in snapshot.balances.items()} == sim.balances()
    sim.deposit("BTC", "0.25")
    await wait_until(lambda: bool(recorder.of(StreamLedgerUpdate)))
    update = recorder.of(StreamLedgerUpdate)[0]
    assert isinstance(update, StreamLedgerUpdate)
    assert update.asset == "BTC"
    assert update.balance == sim.balances()["BTC"] == Decimal("1.4935")
    assert update.amount == Decimal("0.25")
    assert update.continuity_ok
    assert client.get_statistics()["token_fetches"] == 1


async def test_holds_follow_orders(
    stream: tuple[KrakenWebSocketClient, Recorder], sim: SimulatedKraken
) -> None:
    """Placing and cancelling an order moves the derived hold, equal to the exchange's."""
    _, recorder = stream
    order = sim.place_order("BTC/USD", "buy", "limit", "0.2", price="30000")
    await wait_until(
        lambda: any(isinstance(e, StreamHolds) and e.holds.get("USD") for e in recorder.events)
    )
    held = [e for e in recorder.of(StreamHolds) if isinstance(e, StreamHolds)][-1]
    assert held.holds["USD"] == sim.holds()["USD"] > Decimal("6000")
    sim.cancel_order(order.order_id)
    await wait_until(lambda: recorder.of(StreamHolds)[-1].holds.get("USD", 0) == 0)  # type: ignore[union-attr]


async def test_dropped_connection_reconnects_with_a_fresh_token(
    stream: tuple[KrakenWebSocketClient, Recorder], sim: SimulatedKraken, clock: ManualClock
) -> None:
    """After a drop the client backs off on the clock, reconnects with a new token, resyncs."""
    client, recorder = stream
    sim.faults.drop_websocket()
    sim.deposit("USD", "100")  # the frame that carries it triggers the drop
    await wait_until(lambda: StreamState.DISCONNECTED in recorder.states())
    sim.deposit("USD", "5")  # while away
    await drive(clock, 10.0, until=lambda: client.connected)
    await wait_until(lambda: client.connected)
    stats = client.get_statistics()
    assert stats["token_fetches"] == 2
    assert stats["reconnects"] == 1
    latest = recorder.of(StreamSnapshot)[-1]
    assert isinstance(latest, StreamSnapshot)
    assert latest.balances["USD"].balance == sim.balances()["USD"] == Decimal("25540.21")


async def test_silent_connection_is_declared_dead(
    stream: tuple[KrakenWebSocketClient, Recorder], sim: SimulatedKraken, clock: ManualClock
) -> None:
    """No frame for websocket_timeout seconds: the watchdog closes it and it reconnects."""
    client, _ = stream
    sim.faults.go_silent(seconds=8.0)
    await drive(
        clock, 30.0, step=0.5, until=lambda: client.get_statistics()["silence_timeouts"] >= 1
    )
    assert client.get_statistics()["silence_timeouts"] == 1
    await drive(
        clock, 30.0, until=lambda: client.connected and client.get_statistics()["connects"] == 2
    )
    assert client.connected


async def test_malformed_frame_is_counted_and_the_stream_goes_on(
    stream: tuple[KrakenWebSocketClient, Recorder], sim: SimulatedKraken
) -> None:
    """A broken frame is rejected and counted; the next update still applies."""
    client, recorder = stream
    sim.faults.malformed_frame(channel="balances")
    sim.deposit("ETH", "1")
    await wait_until(lambda: bool(recorder.of(StreamLedgerUpdate)))
    assert client.get_statistics()["rejected"] == 1
    assert client.connected


async def test_sequence_gap_resyncs_to_the_truth(
    stream: tuple[KrakenWebSocketClient, Recorder], sim: SimulatedKraken
) -> None:
    """A skipped sequence number starts a resync; the new snapshot has the true balances."""
    client, recorder = stream
    sim.faults.skip_sequence(channel="balances")
    sim.deposit("DOT", "3")
    await wait_until(
        lambda: (
            client.get_statistics()["resyncs"] == 1
            and client.connected
            and len(recorder.of(StreamSnapshot)) == 2
        )
    )
    latest = recorder.of(StreamSnapshot)[-1]
    assert isinstance(latest, StreamSnapshot)
    assert latest.balances["DOT"].balance == sim.balances()["DOT"] == Decimal("253")
    assert StreamState.RESYNCING in recorder.states()


async def test_rejected_token_reconnects(
    rest: KrakenRestClient, sim: SimulatedKraken, clock: ManualClock, config: BalanceManagerConfig
) -> None:
    """A refused subscription closes the connection; the next one, with a fresh token, works."""
    sim.faults.reject_token(times=1)
    client = KrakenWebSocketClient(rest, sim.ws_url, config=config, rng=random.Random(2))
    recorder = Recorder()
    await client.start(recorder)
    try:
        await wait_until(lambda: client.get_statistics()["subscription_failures"] == 1)
        await drive(clock, 60.0, until=lambda: client.connected)
        assert client.connected
        assert client.get_statistics()["token_fetches"] == 2
    finally:
        await client.stop()


async def test_stop_leaves_no_task_or_socket(
    rest: KrakenRestClient, sim: SimulatedKraken, config: BalanceManagerConfig
) -> None:
    """stop() unsubscribes, closes the socket and ends every task it started."""
    before = set(asyncio.all_tasks())
    client = KrakenWebSocketClient(rest, sim.ws_url, config=config)
    await client.start(Recorder())
    await wait_until(lambda: client.connected)
    assert sim.connections == 1
    await client.stop()
    await wait_until(lambda: sim.connections == 0)
    # The simulator's server-side handlers of the closed connections end soon after.
    # (The REST client's keep-alive connection keeps one server handler: not ours.)
    await wait_until(
        lambda: (
            not [
                t
                for t in asyncio.all_tasks() - before
                if not t.done() and "web_protocol" not in repr(t)
            ]
        )
    )
    assert client.state is StreamState.CLOSED


async def test_holds_name_the_client_order_ids(
    stream: tuple[KrakenWebSocketClient, Recorder], sim: SimulatedKraken
) -> None:
    """An order placed with a cl_ord_id is named while held, then among the closed on cancel."""
    _, recorder = stream
    order = sim.place_order("BTC/USD", "buy", "limit", "0.2", price="30000", cl_ord_id="res-7")
    await wait_until(
        lambda: any(isinstance(e, StreamHolds) and "res-7" in e.orders for e in recorder.events)
    )
    sim.cancel_order(order.order_id)
    await wait_until(
        lambda: any(isinstance(e, StreamHolds) and "res-7" in e.closed for e in recorder.events)
    )
    last = recorder.of(StreamHolds)[-1]
    assert isinstance(last, StreamHolds)
    assert "res-7" not in last.orders


async def test_an_order_filled_at_once_is_told_closed(
    stream: tuple[KrakenWebSocketClient, Recorder], sim: SimulatedKraken
) -> None:
    """A market order (placed and filled in one step, no hold change) still reports its close."""
    _, recorder = stream
    sim.place_order("BTC/USD", "sell", "market", "0.01", cl_ord_id="res-8")
    await wait_until(
        lambda: any(isinstance(e, StreamHolds) and "res-8" in e.closed for e in recorder.events)
    )
