"""KrakenPriceFeed against the simulator over real loopback sockets, on a manual clock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.models import Source
from balance_manager.core.prices import PriceEvent, PriceStreamState, PriceStreamStatus, PriceUpdate
from balance_manager.kraken.price_client import KrakenPriceFeed
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive, wait_until

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


class Recorder:
    """A sink that records every price event."""

    def __init__(self) -> None:
        self.events: list[PriceEvent] = []

    def __call__(self, event: PriceEvent) -> None:
        self.events.append(event)

    def prices(self, symbol: str) -> list[Decimal | None]:
        return [
            p.price
            for e in self.events
            if isinstance(e, PriceUpdate)
            for p in e.prices
            if p.symbol == symbol
        ]

    def states(self) -> list[PriceStreamState]:
        return [e.state for e in self.events if isinstance(e, PriceStreamStatus)]


@pytest_asyncio.fixture
async def feed(
    rest: KrakenRestClient, sim: SimulatedKraken, config: BalanceManagerConfig
) -> AsyncIterator[KrakenPriceFeed]:
    """A price feed of the simulator (stopped afterwards)."""
    client = KrakenPriceFeed(rest, sim.ws_url, config=config, rng=random.Random(4))
    yield client
    await client.stop()


async def test_pairs_are_the_simulators_in_v2_names(feed: KrakenPriceFeed) -> None:
    """AssetPairs gives canonical symbols and Kraken's REST keys."""
    pairs = {pair.symbol: pair for pair in await feed.load_pairs()}
    assert pairs["BTC/USD"].venue_name == "XXBTZUSD"
    assert pairs["ETH/BTC"].base == "ETH"


async def test_rest_prices_are_the_market_mid(feed: KrakenPriceFeed, sim: SimulatedKraken) -> None:
    """Ticker's bid and ask sit one tick around the simulator's price: the mid is the price."""
    sim.set_price("BTC/USD", "61234.5")
    prices = {p.symbol: p for p in await feed.fetch_prices(["BTC/USD", "DOT/USD", "NOPE/USD"])}
    assert set(prices) == {"BTC/USD", "DOT/USD"}
    btc = prices["BTC/USD"]
    assert (btc.bid, btc.ask, btc.mid) == (
        Decimal("61234.4"),
        Decimal("61234.6"),
        Decimal("61234.5"),
    )
    assert btc.source is Source.REST


async def test_stream_sends_a_snapshot_then_every_move(
    feed: KrakenPriceFeed, sim: SimulatedKraken
) -> None:
    """Followed pairs get a snapshot, then an update whenever the market moves them."""
    recorder = Recorder()
    await feed.start(recorder)
    feed.follow(["BTC/USD", "ETH/USD"])
    await wait_until(lambda: len(recorder.prices("ETH/USD")) == 1 and feed.connected)
    sim.set_price("BTC/USD", "59000.0")
    sim.set_price("ETH/USD", "2900.00")  # unrelated pairs stay quiet
    sim.set_price("SOL/USD", "140.00")
    await wait_until(lambda: recorder.prices("ETH/USD")[-1] == Decimal("2900.00"))
    assert recorder.prices("BTC/USD")[-1] == Decimal("59000.0")
    assert recorder.prices("SOL/USD") == []
    assert recorder.states()[-1] is PriceStreamState.STREAMING
    feed.follow(["SOL/USD"])  # a pair added later is subscribed on the live connection
    await wait_until(lambda: recorder.prices("SOL/USD") == [Decimal("140.00")])


async def test_refused_pair_is_dropped(feed: KrakenPriceFeed) -> None:
    """A pair the server does not know is refused once, then no longer asked for."""
    recorder = Recorder()
    await feed.start(recorder)
    feed.follow(["XBT/USD", "BTC/USD"])  # a v1 name: refused, as Kraken does
    await wait_until(lambda: feed.get_statistics()["refused_pairs"] == 1)
    assert feed.followed == {"BTC/USD"}
    await wait_until(lambda: len(recorder.prices("BTC/USD")) == 1)


async def test_dropped_stream_reconnects_and_resubscribes(
    feed: KrakenPriceFeed, sim: SimulatedKraken, clock: ManualClock
) -> None:
    """After a dropped connection the feed reports it, reconnects and gets a new snapshot."""
    recorder = Recorder()
    await feed.start(recorder)
    feed.follow(["BTC/USD"])
    await wait_until(lambda: feed.connected)
    sim.faults.drop_websocket()
    sim.set_price("BTC/USD", "58000.0")  # the frame that carries it triggers the drop
    await wait_until(lambda: not feed.connected)
    assert PriceStreamState.DISCONNECTED in recorder.states()
    await drive(clock, 10.0, step=0.5, until=lambda: feed.connected)
    assert feed.connected
    await wait_until(lambda: recorder.prices("BTC/USD")[-1] == Decimal("58000.0"))
    assert feed.get_statistics()["reconnects"] >= 1
