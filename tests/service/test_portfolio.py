"""PortfolioTracker through a BalanceManager against the simulator (loopback, manual clock)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterable, Sequence
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
import pytest_asyncio

from balance_manager import BalanceManager, BalanceManagerConfig, KrakenRestClient
from balance_manager.core.amounts import EXACT_CONTEXT
from balance_manager.core.models import Source
from balance_manager.core.prices import PairInfo, PairPrice, PriceSink, pair_price
from balance_manager.exceptions import ConfigError, TransportError, UnknownAssetError
from balance_manager.kraken.price_client import KrakenPriceFeed
from balance_manager.kraken.ws_client import KrakenWebSocketClient
from balance_manager.service.portfolio import PortfolioChange
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive, wait_until

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


def make_config(history_db_path: str | None = None) -> BalanceManagerConfig:
    """Short timings for tests; every timer runs on the manual clock."""
    return BalanceManagerConfig.from_mapping(
        {
            "history_db_path": history_db_path,
            "rest_api_timeout": 5.0,
            "websocket_timeout": 6.0,
            "websocket_ping_interval": 2.0,
            "reconnect_initial_delay": 0.5,
            "reconnect_max_delay": 4.0,
            "rest_max_retries": 1,
            "rest_poll_interval": 3.0,
        }
    )


@pytest_asyncio.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimulatedKraken]:
    """A simulator on loopback, on the manual clock."""
    async with SimulatedKraken(clock=clock, seed=11) as simulator:
        yield simulator


def build(
    sim: SimulatedKraken,
    clock: ManualClock,
    *,
    prices: bool = True,
    history_db_path: str | None = None,
) -> BalanceManager:
    config = make_config(history_db_path)
    rest = KrakenRestClient(
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        base_url=sim.rest_url,
        config=config,
        clock=clock,
        rng=random.Random(1),
    )
    ws = KrakenWebSocketClient(rest_client=rest, url=sim.ws_url, rng=random.Random(2))
    manager = BalanceManager(websocket_client=ws, rest_client=rest, config=config, clock=clock)
    if prices:
        manager.use_prices(KrakenPriceFeed(rest, sim.ws_url, rng=random.Random(3)))
    return manager


@pytest_asyncio.fixture
async def manager(sim: SimulatedKraken, clock: ManualClock) -> AsyncIterator[BalanceManager]:
    """A started manager with prices, streaming balances."""
    async with build(sim, clock) as started:
        await wait_until(lambda: started.get_status()["websocket"]["holds_live"])
        yield started


async def test_portfolio_values_every_balance_exactly(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """Each asset is its total times the market price; the total is their exact sum."""
    portfolio = await manager.portfolio("usd")
    assert portfolio.quote == "USD"
    balances = sim.balances()
    direct = {"USD": Decimal(1)} | {
        a: sim.price(f"{a}/USD") for a in ("BTC", "ETH", "USDT", "DOT", "SOL")
    }
    expected = Decimal(0)
    with localcontext(EXACT_CONTEXT):
        for asset, value in portfolio.assets.items():
            assert value.rate is not None
            if asset in direct:
                assert value.rate.rate == direct[asset], asset
            else:  # EUR: no EUR/USD pair, one hop through BTC
                assert value.rate.pairs == ("1/BTC/EUR", "BTC/USD")
            assert value.value_total == balances[asset] * value.rate.rate, asset
            expected += balances[asset] * value.rate.rate
    assert portfolio.total == expected
    assert portfolio.complete
    assert portfolio.fresh
    assert sum(portfolio.allocation().values()) == pytest.approx(Decimal(100), abs=Decimal("0.01"))


async def test_one_hop_path_and_unvalued_assets(manager: BalanceManager) -> None:
    """In EUR, ETH goes through BTC; USDT (two hops away) is unvalued, not zero."""
    portfolio = await manager.portfolio("EUR")
    eth = portfolio.assets["ETH"]
    assert eth.rate is not None
    assert eth.rate.path == ("ETH", "BTC", "EUR")
    assert "USDT" in portfolio.unvalued
    assert portfolio.assets["USDT"].value_total is None
    assert not portfolio.complete


async def test_bad_quote_and_missing_prices_are_refused(
    manager: BalanceManager, sim: SimulatedKraken, clock: ManualClock
) -> None:
    """An unknown quote currency names itself; a manager without prices says what to do."""
    with pytest.raises(UnknownAssetError, match="XYZ"):
        await manager.portfolio("XYZ")
    async with build(sim, clock, prices=False) as bare:
        with pytest.raises(ConfigError, match="use_prices"):
            await bare.portfolio()


async def test_callback_fires_on_a_move_above_the_threshold_only(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """A 0.1 % move is below a 1 % threshold; a large BTC move is reported with its change."""
    tracker = await manager.portfolio_tracker("USD", threshold_pct="1")
    calls: list[PortfolioChange] = []
    tracker.register_callback(calls.append)
    start = tracker.latest
    assert start is not None
    btc = sim.price("BTC/USD")
    sim.set_price("BTC/USD", btc * Decimal("1.001"))
    await wait_until(lambda: tracker.valuations >= 2 and tracker.latest != start)
    await tracker.drain_callbacks()
    assert calls == []
    sim.set_price("BTC/USD", btc * Decimal("1.2"))
    await wait_until(lambda: len(calls) == 1)
    change = calls[0]
    assert change.previous_total == start.total
    with localcontext(EXACT_CONTEXT):
        assert change.change == change.portfolio.total - start.total
    assert change.change_pct is not None
    assert change.change_pct > 1


async def test_deposit_is_a_flow_not_a_market_move(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """A deposit raises the value without counting as profit over the window."""
    tracker = await manager.portfolio_tracker("USD")
    before = tracker.latest
    assert before is not None
    sim.deposit("USD", "1000")
    await wait_until(lambda: len(tracker.flows()) == 1)
    await wait_until(lambda: tracker.latest is not None and tracker.latest.total > before.total)
    change = tracker.change_over(3600)
    assert change is not None
    assert change.change == Decimal(1000)
    assert change.flows == Decimal(1000)
    assert change.market == 0
    assert change.market_pct == 0
    assert change.complete


async def test_market_move_is_profit_and_loss(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """A price fall shows as a market loss over the window, percent included."""
    tracker = await manager.portfolio_tracker("USD")
    before = tracker.latest
    assert before is not None
    eth = sim.price("ETH/USD")
    sim.set_price("ETH/USD", eth / 2)
    await wait_until(lambda: tracker.latest is not None and tracker.latest.total < before.total)
    change = tracker.change_over(60)
    assert change is not None
    with localcontext(EXACT_CONTEXT):
        loss = sim.balances()["ETH"] * (eth / 2 - eth)
        assert change.market == loss
        end = before.total + loss
    assert change.flows == 0
    assert change.market_pct is not None
    assert change.market_pct < 0
    points = tracker.value_history()
    assert points[0].total == before.total
    assert points[-1].total == end


async def test_started_trackers_are_readable_without_await(manager: BalanceManager) -> None:
    """portfolio_trackers lists each quote's tracker once started; it cannot be changed."""
    assert dict(manager.portfolio_trackers) == {}
    tracker = await manager.portfolio_tracker("usd")
    assert manager.portfolio_trackers["USD"] is tracker
    assert await manager.portfolio_tracker("USD") is tracker
    with pytest.raises(TypeError):
        manager.portfolio_trackers["EUR"] = tracker  # type: ignore[index]  # read-only on purpose
    change = manager.portfolio_trackers["USD"].change_over(60)
    assert change is not None
    assert change.change == 0


class SimPrices:
    """A price source reading the simulator's prices directly; REST can be failed, no stream."""

    quiet_after = 5.0
    connected = False
    last_message_at = None

    def __init__(self, sim: SimulatedKraken, clock: ManualClock) -> None:
        self.sim = sim
        self.clock = clock
        self.failing = False

    async def load_pairs(self) -> list[PairInfo]:
        return [PairInfo(p.symbol, p.base, p.quote) for p in self.sim.exchange.instruments.pairs]

    async def fetch_prices(self, symbols: Sequence[str]) -> list[PairPrice]:
        if self.failing:
            raise TransportError("prices unreachable")
        now = self.clock.time()
        # A book, as Kraken's Ticker gives (a last trade alone would count as stale).
        return [
            pair_price(s, bid=self.sim.price(s), ask=self.sim.price(s), received_at=now)
            for s in symbols
        ]

    async def start(self, sink: PriceSink) -> None:
        del sink

    def follow(self, symbols: Iterable[str]) -> None:
        del symbols

    async def stop(self) -> None:
        return None


async def test_old_prices_are_flagged_stale_never_fresh(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """When no price source answers past max_price_age, values are shown stale with their age."""
    manager = build(sim, clock, prices=False)
    source = SimPrices(sim, clock)
    manager.use_prices(source)
    async with manager:
        await wait_until(lambda: manager.get_status()["websocket"]["holds_live"])
        first = await manager.portfolio("USD")
        assert first.fresh
        source.failing = True
        await drive(clock, manager.max_price_age + 4.0, step=1.0)
        later = await manager.portfolio("USD")
        assert not later.fresh
        assert set(later.stale) == set(later.assets) - {"USD"}
        btc = later.assets["BTC"]
        assert btc.rate is not None
        assert btc.rate.source is Source.CACHE
        assert btc.rate.age(later.valued_at) > manager.max_price_age
        assert btc.value_total == first.assets["BTC"].value_total  # last known, not zero
        assert manager.prices is not None
        assert manager.prices.last_error == "prices unreachable"
        source.failing = False
        await drive(clock, 4.0, step=1.0)
        assert (await manager.portfolio("USD")).fresh


async def test_concurrent_first_calls_share_one_tracker(manager: BalanceManager) -> None:
    """Several tasks asking for the same quote at once get the same tracker."""
    trackers = await asyncio.gather(*(manager.portfolio_tracker("USD") for _ in range(5)))
    assert len({id(tracker) for tracker in trackers}) == 1


async def test_value_history_survives_a_restart(
    sim: SimulatedKraken, clock: ManualClock, tmp_path: Path
) -> None:
    """Points go to the history database and come back after a restart, flows included."""
    path = str(tmp_path / "history.sqlite3")
    first = build(sim, clock, history_db_path=path)
    async with first:
        await wait_until(lambda: first.get_status()["websocket"]["holds_live"])
        tracker = await first.portfolio_tracker("USD")
        start = tracker.latest
        assert start is not None
        sim.deposit("USD", "500")
        await wait_until(
            lambda: tracker.latest is not None and tracker.latest.total - start.total == 500
        )
    second = build(sim, clock, history_db_path=path)
    async with second:
        await wait_until(lambda: second.get_status()["websocket"]["holds_live"])
        again = await second.portfolio_tracker("USD")
        totals = [point.total for point in again.value_history()]
        assert totals[0] == start.total
        assert totals[-1] - start.total == 500
        assert len(again.flows()) == 0  # noted before the restart: inside the points' sums
        change = again.change_over(3600)
        assert change is not None
        assert change.flows == Decimal(500)
        assert change.market == 0
        assert again.last_store_error is None


async def test_the_alert_monitor_watches_the_configured_quote_not_the_first_tracker(
    manager: BalanceManager,
) -> None:
    """A tracker in BTC started first (say by a dashboard request) does not decide what
    portfolio_drop follows: the one in alert_portfolio_quote (USD) does."""
    monitor = manager.alerts
    assert monitor is not None
    assert manager.config.alert_portfolio_quote == "USD"
    await manager.portfolio_tracker("BTC")
    assert monitor._portfolio_source is None  # private: nothing watched yet
    usd = await manager.portfolio_tracker("USD")
    source = monitor._portfolio_source
    assert source is not None
    point = usd.history.latest()
    assert point is not None
    assert source() == point.total - point.flows


async def test_the_alert_monitor_samples_the_value_net_of_flows(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """portfolio_drop samples the value net of deposits and withdrawals: a large withdrawal
    fires nothing, a market fall past 5 % fires; stale_price sees the pairs followed."""
    monitor = manager.alerts
    assert monitor is not None
    tracker = await manager.portfolio_tracker("USD")
    before = tracker.latest
    assert before is not None
    monitor.evaluate_now()
    assert set(monitor._price_confirmations()) == tracker.prices.wanted  # private: the wiring
    assert tracker.prices.wanted

    sim.withdraw("USD", "20000")  # far more than 5 % of the value, but a flow
    await wait_until(lambda: len(tracker.flows()) == 1)
    await wait_until(lambda: tracker.latest is not None and tracker.latest.total < before.total)
    assert not [a for a in monitor.evaluate_now().fired if a.rule == "portfolio_drop"]

    low = tracker.latest
    assert low is not None
    sim.set_price("ETH/USD", sim.price("ETH/USD") / 4)
    await wait_until(lambda: tracker.latest is not None and tracker.latest.total < low.total)
    (fired,) = [a for a in monitor.evaluate_now().fired if a.rule == "portfolio_drop"]
    assert fired.details["drop_percent"] > 5
    point = tracker.history.latest()
    assert point is not None
    assert fired.details["value"] == point.total - point.flows
