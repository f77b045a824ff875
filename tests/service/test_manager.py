"""BalanceManager end to end against the simulator over loopback, on a manual clock."""

from __future__ import annotations

import asyncio
import base64
import random
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio

from balance_manager import (
    BalanceManager,
    BalanceManagerConfig,
    KrakenRestClient,
    KrakenWebSocketClient,
    ServingMode,
    Source,
    StaleBalanceError,
    UnknownEventError,
)
from balance_manager.core.sources import StreamLedgerUpdate
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, RecordingCallbacks, drive, wait_until

pytestmark = [pytest.mark.network, pytest.mark.asyncio]

#: A secret of the shape the REST client checks (base64 of 64 bytes), never sent anywhere.
BENCH_LIKE_SECRET = base64.b64encode(b"test-secret-".ljust(64, b".")).decode()


def make_config(**changes: object) -> BalanceManagerConfig:
    """Short timings for tests; every timer runs on the manual clock."""
    base: dict[str, object] = {
        "history_db_path": None,
        "rest_api_timeout": 5.0,
        "websocket_timeout": 6.0,
        "websocket_ping_interval": 2.0,
        "reconnect_initial_delay": 0.5,
        "reconnect_max_delay": 4.0,
        "rest_max_retries": 1,
        "rest_poll_interval": 3.0,
        "circuit_failure_threshold": 3,
        "circuit_recovery_timeout": 5.0,
    }
    base.update(changes)
    return BalanceManagerConfig.from_mapping(base)


@pytest_asyncio.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimulatedKraken]:
    """A simulator on loopback, on the manual clock."""
    async with SimulatedKraken(clock=clock, seed=11) as simulator:
        yield simulator


def build(
    sim: SimulatedKraken,
    clock: ManualClock,
    config: BalanceManagerConfig,
    *,
    websocket: bool = True,
) -> BalanceManager:
    rest = KrakenRestClient(
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        base_url=sim.rest_url,
        config=config,
        clock=clock,
        rng=random.Random(1),
    )
    ws = (
        KrakenWebSocketClient(rest_client=rest, url=sim.ws_url, rng=random.Random(2))
        if websocket
        else None
    )
    return BalanceManager(websocket_client=ws, rest_client=rest, config=config, clock=clock)


@pytest_asyncio.fixture
async def manager(sim: SimulatedKraken, clock: ManualClock) -> AsyncIterator[BalanceManager]:
    """A started manager, streaming."""
    async with build(sim, clock, make_config()) as started:
        await wait_until(
            lambda: (
                started.serving_mode is ServingMode.WEBSOCKET
                and started.get_status()["websocket"]["holds_live"]
            )
        )
        yield started


def assert_matches_exchange(manager: BalanceManager, sim: SimulatedKraken) -> None:
    view = manager.sync_view().get_all_balances()
    assert {
        a: b.balance for a, b in view.items() if b.balance or a in sim.balances()
    } == sim.balances()
    holds = sim.holds()
    for asset, balance in view.items():
        assert balance.hold_trade == holds.get(asset, Decimal(0)), asset
        assert balance.free == sim.free().get(asset, Decimal(0)), asset


async def test_seed_basic_usage(manager: BalanceManager, sim: SimulatedKraken) -> None:
    """The seed's basic usage: get_balance(...)['free'], get_all_balances(), refresh."""
    usdt = await manager.get_balance("USDT")
    assert usdt is not None
    assert usdt["free"] == Decimal("6000")  # spot 5000 + Kraken Rewards (.F) 1000
    assert usdt["asset"] == "USDT"
    all_balances = await manager.get_all_balances()
    for asset, data in all_balances.items():
        assert data["balance"] == sim.balances()[asset]
        assert data["free"] == data["balance"] - data["hold_trade"]
    await manager.refresh_all_balances()
    assert_matches_exchange(manager, sim)


async def test_names_in_any_spelling(manager: BalanceManager) -> None:
    """XBT, XXBT, btc and BTC are one asset; an asset not held is None."""
    btc = await manager.get_balance("BTC")
    assert btc is not None
    for name in ("XBT", "XXBT", "btc", "xbt"):
        assert await manager.get_balance(name) == btc
    assert await manager.get_balance("NOPE") is None


async def test_no_rest_calls_while_the_stream_is_healthy(
    manager: BalanceManager, sim: SimulatedKraken, clock: ManualClock
) -> None:
    """Five simulated minutes of streaming and reading cost zero REST calls.

    The clock moves in half-second steps: a step as long as the heartbeat interval
    can deliver a heartbeat one step late, which the client would rightly take for
    a silence (and check over REST).
    """
    before = sum(sim.rest_calls.values())
    for i in range(10):
        sim.deposit("USD", "1")
        await drive(clock, 30.0, step=0.5)
        value = await manager.get_balance("USD")
        assert value is not None
        assert value.source is Source.WEBSOCKET
        assert value.balance == sim.balances()["USD"], i
    assert sum(sim.rest_calls.values()) == before
    assert manager.serving_mode is ServingMode.WEBSOCKET


async def test_callbacks_fire_once_per_change(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """balance_update fires once per change, balance_change only past the thresholds."""
    calls = RecordingCallbacks()
    manager.register_callback("balance_update", calls.recorder("update"))
    manager.register_callback("balance_change", calls.recorder("change"))
    sim.deposit("BTC", "0.5")  # +40 %: significant
    sim.deposit("USD", "0.01")  # tiny: an update, not a significant change
    await wait_until(lambda: len(calls["update"]) == 2)
    await asyncio.sleep(0.05)
    assert [c["asset"] for c in calls["update"]] == ["BTC", "USD"]
    assert [c["asset"] for c in calls["change"]] == ["BTC"]
    change = calls["change"][0]
    assert change["delta"] == Decimal("0.5")
    assert change["old_balance"] == Decimal("1.2435")
    assert change["source"] == "websocket"
    assert change.ledger_id is not None
    with pytest.raises(UnknownEventError):
        manager.register_callback("balance_updated", calls.recorder("x"))


async def test_failing_callback_never_stops_the_stream(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """A raising callback is counted; later updates still apply and reach other callbacks."""
    seen: list[str] = []

    def broken(change: object) -> None:
        raise RuntimeError("strategy bug")

    manager.register_callback("balance_update", broken)
    manager.register_callback("balance_update", lambda c: seen.append(c["asset"]))
    sim.deposit("ETH", "1")
    sim.deposit("ETH", "1")
    await wait_until(lambda: len(seen) == 2)
    assert manager.get_statistics()["callback_errors"] == 2
    assert (await manager.get_balance("ETH")).balance == Decimal("14.5")  # type: ignore[union-attr]


async def test_holds_and_free_follow_orders(manager: BalanceManager, sim: SimulatedKraken) -> None:
    """An order's hold shows in free at once; a fill moves both legs; all equal the exchange."""
    order = sim.place_order("BTC/USD", "sell", "limit", "0.5", price=sim.price("BTC/USD") * 2)
    await wait_until(lambda: manager.sync_view().get_balance("BTC").hold_trade == Decimal("0.5"))  # type: ignore[union-attr]
    btc = manager.sync_view().get_balance("BTC")
    assert btc is not None
    assert btc["free"] == Decimal("0.7435")
    sim.fill(order.order_id)
    await wait_until(lambda: manager.sync_view().get_balance("BTC").hold_trade == 0)  # type: ignore[union-attr]
    await wait_until(
        lambda: manager.sync_view().get_balance("USD").balance == sim.balances()["USD"]
    )  # type: ignore[union-attr]
    assert_matches_exchange(manager, sim)


async def test_fallback_to_rest_and_back(
    manager: BalanceManager, sim: SimulatedKraken, clock: ManualClock
) -> None:
    """Stream down: REST serves (source rest) and sees a deposit; stream back: websocket again."""
    sim.faults.reject_token(times=None)
    sim.faults.drop_websocket()
    sim.deposit("USD", "10")
    await wait_until(lambda: manager.get_status()["websocket"]["state"] != "streaming")
    sim.deposit("USD", "7")  # during the outage
    await drive(clock, 8.0, step=1.0)
    assert manager.serving_mode is ServingMode.REST
    usd = await manager.get_balance("USD")
    assert usd is not None
    assert usd.source is Source.REST
    assert usd.balance == sim.balances()["USD"]
    assert manager.get_statistics()["fallbacks"] == 1
    sim.faults.clear()
    await drive(clock, 30.0, step=1.0, until=lambda: manager.serving_mode is ServingMode.WEBSOCKET)
    assert manager.serving_mode is ServingMode.WEBSOCKET
    assert_matches_exchange(manager, sim)
    history = manager.history.get_asset_history("USD")
    assert [e.balance for e in history][-1] == sim.balances()["USD"]


async def test_both_sources_down_serves_stale_marked_values(
    manager: BalanceManager, sim: SimulatedKraken, clock: ManualClock
) -> None:
    """With stream and REST down, values come back with source cache, and max_age refuses them."""
    sim.faults.reject_token(times=None)
    sim.faults.http_error(520, times=None)
    sim.faults.drop_websocket()
    sim.deposit("EUR", "1")
    await drive(clock, 40.0, step=1.0)
    assert manager.serving_mode is ServingMode.CACHE
    eur = await manager.get_balance("EUR")
    assert eur is not None
    assert eur.source is Source.CACHE
    assert manager.get_status()["source"] == "cache"
    with pytest.raises(StaleBalanceError, match="EUR"):
        await manager.get_balance("EUR", max_age=5.0)
    sim.faults.clear()
    await drive(clock, 60.0, step=1.0, until=lambda: manager.serving_mode is ServingMode.WEBSOCKET)
    fresh = await manager.get_balance("EUR", max_age=5.0)
    assert fresh is not None
    assert fresh.balance == sim.balances()["EUR"]


async def test_rest_only_mode_polls_within_the_rate_limit(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """websocket_client=None: values come from REST polls, spaced by the poll interval."""
    async with build(sim, clock, make_config(rest_poll_interval=5.0), websocket=False) as manager:
        sim.deposit("BTC", "1")
        await drive(clock, 60.0, step=1.0)
        btc = await manager.get_balance("BTC")
        assert btc is not None
        assert btc.balance == Decimal("2.2435")
        assert btc.source is Source.REST
        calls = sim.rest_calls["BalanceEx"]
        assert 10 <= calls <= 14  # 1 at start + one per 5 s
        assert manager.get_statistics()["rest"]["rate_limited"] == 0


async def test_history_survives_a_restart(
    sim: SimulatedKraken, clock: ManualClock, tmp_path: Path
) -> None:
    """History written by one manager is there for the next; the first snapshot reconciles."""
    config = make_config(history_db_path=str(tmp_path / "history.sqlite3"))
    async with build(sim, clock, config) as first:
        await wait_until(lambda: first.serving_mode is ServingMode.WEBSOCKET)
        sim.deposit("DOT", "5")
        await wait_until(lambda: len(first.history.get_asset_history("DOT")) == 2)
    sim.deposit("DOT", "2")  # while no manager runs
    async with build(sim, clock, config) as second:
        entries = second.history.get_asset_history("DOT")
        assert [e.balance for e in entries][:2] == [Decimal("250"), Decimal("255")]
        dot = await second.get_balance("DOT")
        assert dot is not None
        assert dot.balance == Decimal("257")


async def test_status_and_statistics_shapes(manager: BalanceManager) -> None:
    """The seed's monitoring keys exist with sensible values."""
    await manager.get_balance("BTC")
    status = manager.get_status()
    assert status["websocket"]["connected"] is True
    assert isinstance(status["cache"]["hit_rate_percent"], float)
    assert status["tracked_assets"] == 6
    stats = manager.get_statistics()
    for key in (
        "rest_api_calls",
        "validation_failures",
        "websocket_messages",
        "reconnects",
        "fallbacks",
        "callback_errors",
    ):
        assert key in stats
    result = await manager.validate_all_balances()
    assert result.is_valid, result.report()


async def test_sync_view_from_threads_never_tears(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """Threads reading while updates stream always see free + hold == balance."""
    view = manager.sync_view()
    stop = threading.Event()
    errors: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            for balance in view.get_all_balances().values():
                if balance.free + balance.hold_trade != balance.balance:
                    errors.append(repr(balance))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(20):
        sim.place_order("BTC/USD", "buy", "limit", "0.01", price="100")
        sim.deposit("USD", "1")
        await asyncio.sleep(0.005)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []


async def test_close_leaves_nothing_behind(sim: SimulatedKraken, clock: ManualClock) -> None:
    """close() ends every task and socket the manager started."""
    before = set(asyncio.all_tasks())
    manager = build(sim, clock, make_config())
    await manager.initialize()
    await wait_until(lambda: manager.serving_mode is ServingMode.WEBSOCKET)
    await manager.close()
    await wait_until(lambda: sim.connections == 0)
    # The simulator's server-side handlers of the closed connections end soon after.
    await wait_until(lambda: not [t for t in asyncio.all_tasks() - before if not t.done()])


async def test_a_stream_of_more_assets_than_the_cache_holds_evicts_nothing(
    clock: ManualClock,
) -> None:
    """10,000 streamed assets into the default cache (1,000) evict nothing; reads stay exact."""
    config = make_config()
    rest = KrakenRestClient(
        api_key="key", api_secret=BENCH_LIKE_SECRET, base_url="http://127.0.0.1:9",
        config=config, clock=clock,
    )  # fmt: skip
    manager = BalanceManager(rest_client=rest, config=config, clock=clock)
    assert manager.cache.max_size == 1000
    for round_ in range(2):
        for i in range(10_000):
            manager._on_stream_event(  # the stream client's sink, fed directly
                StreamLedgerUpdate(
                    f"A{i}",
                    Decimal(i + round_),
                    Decimal(0),
                    Decimal(round_ or i),
                    Decimal(0),
                    f"L{round_}-{i}",
                    "R",
                    "deposit",
                    None,
                    clock.time(),
                )
            )
    stats = manager.cache.get_statistics()
    assert (stats["evictions"], stats["size"]) == (0, 1000)
    for i in (0, 5_000, 9_999):  # an asset the cache does not hold is read from the store
        value = await manager.get_balance(f"A{i}")
        assert value is not None
        assert value.balance == Decimal(i + 1)
    await manager.close()
