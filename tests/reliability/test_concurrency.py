"""Concurrency: 100 reader tasks and several reader threads while updates stream.

The simulator streams deposits, orders, cancels and fills (and, midway, drops
the WebSocket so the manager falls back to REST and comes back) while 100
asyncio tasks read with ``get_balance`` / ``get_all_balances`` (some with
``max_age``, which forces REST reads) and 4 threads read through
``manager.sync_view()``. Over the whole run, every value read must be whole:
``free + hold_trade == balance + credit - credit_used``, holds never negative,
and an asset that only ever receives deposits never seen going backwards by
any one reader. No reader may raise, the run must finish within its bound (no
deadlock), and at the end the manager equals the exchange.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio

from balance_manager import BalanceManager, ServingMode, StaleBalanceError
from balance_manager.core.models import Balance
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock

from .harness import (
    Observer,
    build_manager,
    converged,
    mismatches,
    reliability_config,
    start_streaming,
)

pytestmark = [pytest.mark.network, pytest.mark.asyncio]

READER_TASKS = 100
READER_THREADS = 4
#: Rounds of exchange activity (each advances the clock half a second).
ROUNDS = 120
#: Real seconds the whole run may take before it counts as a deadlock.
DEADLINE = 60.0

#: The asset that only receives deposits during the run: its balance never decreases.
RISING = "EUR"


def whole(value: Balance) -> str | None:
    """Why ``value`` is torn or impossible, or ``None`` when it is whole."""
    if value.free + value.hold_trade != value.balance + value.credit - value.credit_used:
        return f"free + hold != balance + credit - credit_used: {value!r}"
    if value.hold_trade < 0:
        return f"negative hold: {value!r}"
    if value.total != value.balance + value.earn:
        return f"total != balance + earn: {value!r}"
    return None


class ReadLog:
    """What one reader saw: how many values, and the problems found."""

    def __init__(self) -> None:
        self.reads = 0
        self.problems: list[str] = []
        self.last_rising: Decimal | None = None

    def check(self, value: Balance) -> None:
        self.reads += 1
        problem = whole(value)
        if problem is not None:
            self.problems.append(problem)
        if value.asset == RISING:
            if self.last_rising is not None and value.balance < self.last_rising:
                self.problems.append(f"{RISING} went back: {self.last_rising} -> {value.balance}")
            self.last_rising = value.balance


@pytest_asyncio.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimulatedKraken]:
    """A simulator on loopback, on the manual clock."""
    async with SimulatedKraken(clock=clock, seed=17) as simulator:
        yield simulator


async def task_reader(manager: BalanceManager, log: ReadLog, stop: asyncio.Event, n: int) -> None:
    """Read in a loop until ``stop``; every 25th read of reader 0-9 asks for max_age."""
    assets = ["BTC", "USD", "ETH", RISING, "XBT", "ZUSD"]
    turn = 0
    while not stop.is_set():
        turn += 1
        if turn % 3 == 0:
            for each in (await manager.get_all_balances()).values():
                log.check(each)
        elif n < 10 and turn % 25 == 0:
            try:
                value = await manager.get_balance("USD", max_age=30.0)
            except StaleBalanceError:
                pass  # allowed: REST may be down; a stale value would not be
            else:
                assert value is not None
                log.check(value)
        else:
            found = await manager.get_balance(assets[(turn + n) % len(assets)])
            if found is not None:
                log.check(found)
        # A read that hits memory never suspends: yield, briefly, so the stream's
        # I/O keeps flowing among 100 busy readers.
        await asyncio.sleep(0.001)


def thread_reader(manager: BalanceManager, log: ReadLog, stop: threading.Event) -> None:
    """Read through the sync view in a loop until ``stop``."""
    view = manager.sync_view()
    try:
        while not stop.is_set():
            for value in view.get_all_balances().values():
                log.check(value)
            btc = view.get_balance("XBT")
            if btc is not None:
                log.check(btc)
            time.sleep(0.0001)  # let the event loop thread have the GIL now and then
    except Exception as error:  # reported, not lost with the thread
        log.problems.append(f"thread raised {type(error).__name__}: {error}")


async def stream_activity(sim: SimulatedKraken, clock: ManualClock, rng: random.Random) -> None:
    """ROUNDS of exchange activity; the WebSocket is dropped a third of the way in."""
    open_orders: list[str] = []
    for round_ in range(ROUNDS):
        sim.deposit(RISING, f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d}")
        choice = rng.random()
        if choice < 0.3:
            price = sim.price("BTC/USD") * Decimal("0.5")
            open_orders.append(
                sim.place_order("BTC/USD", "buy", "limit", "0.01", price=price).order_id
            )
        elif choice < 0.5 and open_orders:
            sim.cancel_order(open_orders.pop(rng.randrange(len(open_orders))))
        elif choice < 0.7 and open_orders:
            sim.fill(open_orders.pop(0))
        else:
            sim.deposit("USD", str(rng.randint(1, 99)))
        if round_ == ROUNDS // 3:
            sim.faults.drop_websocket()
        clock.advance(0.5)
        await asyncio.sleep(0.005)


async def test_readers_never_see_a_torn_value(sim: SimulatedKraken, clock: ManualClock) -> None:
    """100 tasks and 4 threads read while updates stream: whole values, no error, no deadlock."""
    manager = build_manager(sim, clock, reliability_config(None))
    observer = Observer(manager, sim, clock)
    stop_tasks = asyncio.Event()
    stop_threads = threading.Event()
    task_logs = [ReadLog() for _ in range(READER_TASKS)]
    thread_logs = [ReadLog() for _ in range(READER_THREADS)]
    threads = [
        threading.Thread(target=thread_reader, args=(manager, log, stop_threads), daemon=True)
        for log in thread_logs
    ]
    try:
        await start_streaming(manager)
        readers = [
            asyncio.create_task(task_reader(manager, log, stop_tasks, n), name=f"reader-{n}")
            for n, log in enumerate(task_logs)
        ]
        for thread in threads:
            thread.start()
        started = time.perf_counter()
        await asyncio.wait_for(stream_activity(sim, clock, random.Random(5)), DEADLINE)
        await asyncio.wait_for(observer.recover(within=60.0), DEADLINE)

        stop_tasks.set()
        done, pending = await asyncio.wait(readers, timeout=DEADLINE)
        assert not pending, f"{len(pending)} readers stuck (deadlock?)"
        for task in done:
            task.result()  # a reader that raised fails the test here
        elapsed = time.perf_counter() - started
        assert manager.serving_mode is ServingMode.WEBSOCKET
        assert manager.get_statistics()["fallbacks"] >= 1  # the drop was lived through
    finally:
        stop_threads.set()
        for thread in threads:
            thread.join(timeout=10.0)
        observer.close()
        await manager.close()
    assert not [t for t in threads if t.is_alive()], "a reader thread did not stop (deadlock?)"
    problems = [p for log in task_logs + thread_logs for p in log.problems]
    assert problems == [], problems[:5]
    assert all(log.reads > 0 for log in task_logs + thread_logs)
    print(
        f"\nreads: {sum(log.reads for log in task_logs)} by {READER_TASKS} tasks, "
        f"{sum(log.reads for log in thread_logs)} by {READER_THREADS} threads "
        f"in {elapsed:.2f} s; none torn"
    )
    assert sum(log.reads for log in thread_logs) > 1000
    assert converged(manager, sim), mismatches(manager, sim)
    observer.check_history()
    observer.check_events()
    assert elapsed < DEADLINE
