"""The market driver: bounded random walk, seeded repeatability, ticks on the clock."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from balance_manager.simulator.model.exchange import SimExchange
from balance_manager.simulator.model.instruments import DEFAULT_PAIRS
from balance_manager.simulator.server.market import MarketDriver, random_walk_step
from balance_manager.testing import ManualClock


@given(seed=st.integers(0, 2**32), steps=st.integers(1, 300), index=st.integers(0, 6))
def test_random_walk_stays_in_its_band_and_on_the_tick(seed: int, steps: int, index: int) -> None:
    """However long the walk, prices stay within the band and on the pair's tick size."""
    pair = DEFAULT_PAIRS[index]
    rng = random.Random(seed)
    price = pair.start_price
    for _ in range(steps):
        price = random_walk_step(price, rng, pair=pair, max_step_bp=200, band=Decimal("0.1"))
        assert pair.start_price * Decimal("0.9") - pair.tick_size <= price
        assert price <= pair.start_price * Decimal("1.1") + pair.tick_size
        assert price == price.quantize(pair.tick_size)


def run_steps(seed: int, ticks: int) -> tuple[dict[str, Decimal], list[tuple[str, Decimal]]]:
    """Prices and the activity account's ledger after ``ticks`` ticks."""
    exchange = SimExchange(seed=seed)
    account = exchange.add_account("demo", balances={"USD": "50000", "BTC": "1"}, now=0.0)
    driver = MarketDriver(exchange, seed=seed, activity_account=account)
    for tick in range(ticks):
        driver.step(float(tick))
    account.check_invariants()
    return exchange.prices(), [(e.ledger_id, e.balance) for e in account.entries]


def test_same_seed_same_market() -> None:
    """Two drivers with the same seed produce the same prices and ledger."""
    assert run_steps(11, 200) == run_steps(11, 200)
    assert run_steps(11, 200) != run_steps(12, 200)


def test_activity_produces_ledger_entries_and_orders() -> None:
    """With activity on, a few hundred ticks make deposits, trades or orders happen."""
    _, entries = run_steps(5, 400)
    assert len(entries) > 2


@pytest.mark.asyncio
async def test_driver_ticks_on_the_manual_clock(clock: ManualClock) -> None:
    """The background driver ticks once per interval of manual time, and stops cleanly."""
    exchange = SimExchange(seed=2)
    driver = MarketDriver(exchange, clock, seed=2, interval=1.0)
    driver.start()
    await clock.run_for(5.0)
    assert driver.ticks == 5
    await driver.stop()
    assert not driver.running
    await clock.run_for(3.0)
    assert driver.ticks == 5
    await asyncio.sleep(0)


def test_the_price_path_does_not_depend_on_which_orders_fill() -> None:
    """Fills of the account's own orders draw nothing from the price path."""

    def path(with_orders: bool) -> list[dict[str, Decimal]]:
        exchange = SimExchange(seed=9)
        account = exchange.add_account("demo", balances={"USD": "50000", "BTC": "1"}, now=0.0)
        driver = MarketDriver(exchange, seed=9, activity_account=None)
        if with_orders:
            for offset in ("1", "2", "3", "5", "8"):  # near the price: they fill as it moves
                price = exchange.price("BTC/USD") - Decimal(offset) * 10
                exchange.place_order(
                    account, "BTC/USD", "buy", "limit", "0.001", now=0.0, price=price
                )
        prices = []
        for tick in range(200):
            driver.step(float(tick))
            prices.append(exchange.prices())
        assert not with_orders or not account.open_orders()  # they did fill
        return prices

    assert path(with_orders=True) == path(with_orders=False)
