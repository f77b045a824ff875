"""Soak: the manager runs for a while with exchange activity and random faults under a seed.

For ``BALANCE_MANAGER_SOAK_SECONDS`` real seconds (default 6 in ``make test``; ``make
test-long`` runs 120, and any value can be set for a longer run) the simulator streams
deposits, withdrawals, orders, cancels and fills, and every 10 clock seconds
:meth:`Faults.random_plan` injects two one-shot faults drawn from
``random.Random(seed)`` (drops, delays, malformed, skipped, duplicated and reordered
frames, HTTP 5xx, HTML pages, rate limits, ``EService:Unavailable``, invalid nonces).
``BALANCE_MANAGER_SOAK_SEED`` picks the seed (default 1), so a failing run can be
replayed.

Checked over the run: every value served says its source and age; memory
allocated by balance-manager's own code (tracemalloc, the simulator's excluded)
stays bounded after warm-up; asyncio tasks, open file descriptors and
WebSocket connections do not grow. At the end, once the faults are cleared:
the manager equals the exchange, history and events are consistent, the
exchange never refused a call for the rate limit unless told to, reconnects
kept to the backoff; after ``close()`` no task is left behind.

Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest

from balance_manager import ServingMode
from balance_manager.exceptions import ExchangeError
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, wait_until

from .harness import (
    Observer,
    build_manager,
    converged,
    reliability_config,
    start_streaming,
    stored_ledger_ids,
)

pytestmark = [pytest.mark.network, pytest.mark.asyncio, pytest.mark.slow]

SOAK_SECONDS = float(os.environ.get("BALANCE_MANAGER_SOAK_SECONDS", "6"))
SOAK_SEED = int(os.environ.get("BALANCE_MANAGER_SOAK_SEED", "1"))
#: Growth allowed, after warm-up, of memory allocated by balance-manager's code.
#: History (about 18 bytes an entry, 10,000 entries per asset at most) and the
#: 10,000 remembered ledger ids are bounded; a leak per update would exceed this.
MEMORY_BOUND = 4 * 1024 * 1024
#: Asyncio tasks and file descriptors allowed beyond the warm-up count.
TASK_SLACK = 6
FD_SLACK = 6

#: Allocations made by balance-manager's code, not on behalf of the simulator
#: (which shares core modules: its ledger keeps every entry, by design).
_OURS = [
    tracemalloc.Filter(True, "*/balance_manager/*"),
    tracemalloc.Filter(False, "*/balance_manager/simulator/*", all_frames=True),
]
#: Frames kept per allocation: enough to see a simulator frame above shared code.
_FRAMES = 8


def _manager_memory() -> int:
    """Bytes currently allocated by balance-manager's code (simulator excluded)."""
    snapshot = tracemalloc.take_snapshot().filter_traces(_OURS)
    return sum(stat.size for stat in snapshot.statistics("filename"))


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def _activity(sim: SimulatedKraken, rng: random.Random, open_orders: list[str]) -> None:
    """One random move of the account (withdrawals only within what is free)."""
    choice = rng.random()
    try:
        if choice < 0.35:
            sim.deposit(
                rng.choice(["USD", "EUR", "DOT"]), f"{rng.randint(1, 200)}.{rng.randint(0, 99)}"
            )
        elif choice < 0.45:
            sim.withdraw("EUR", str(rng.randint(1, 5)))
        elif choice < 0.65:
            price = sim.price("BTC/USD") * Decimal(rng.choice(["0.5", "0.8", "2"]))
            side = "buy" if price < sim.price("BTC/USD") else "sell"
            order = sim.place_order("BTC/USD", side, "limit", "0.001", price=price)
            if order.is_open:
                open_orders.append(order.order_id)
        elif choice < 0.8 and open_orders:
            sim.fill(open_orders.pop(rng.randrange(len(open_orders))))
        elif open_orders:
            sim.cancel_order(open_orders.pop(0))
    except ExchangeError as error:
        refused = error.code
    else:
        return
    # Funds run short now and then (a withdrawal, a buy): the exchange refuses, nothing else.
    assert "Insufficient" in refused or "Invalid arguments" in refused, refused


async def test_soak(clock: ManualClock, tmp_path: Path) -> None:
    """Random faults under a seed for a while: bounded memory, no leak, the truth at the end."""
    rng = random.Random(SOAK_SEED)
    tasks_at_start = set(asyncio.all_tasks())
    sim = SimulatedKraken(clock=clock, seed=SOAK_SEED)
    await sim.start()
    manager = build_manager(sim, clock, reliability_config(tmp_path / "history.sqlite3"))
    observer = Observer(manager, sim, clock, record_updates=False)
    open_orders: list[str] = []
    rounds = plans = 0
    max_tasks = max_fds = max_connections = 0
    tracemalloc.start(_FRAMES)
    try:
        await start_streaming(manager)
        started = time.perf_counter()
        deadline = started + SOAK_SECONDS
        warm_until = started + min(3.0, SOAK_SECONDS / 5)
        warm: tuple[int, int, int] | None = None
        while time.perf_counter() < deadline:
            rounds += 1
            _activity(sim, rng, open_orders)
            if rounds % 20 == 0:
                sim.faults.random_plan(SOAK_SEED * 100_000 + rounds, 2)
                plans += 1
            await observer.step(0.5)
            if rounds % 100 == 0:
                await observer.check_max_age("USD", 10.0)
            if warm is None and time.perf_counter() >= warm_until:
                warm = (_manager_memory(), len(asyncio.all_tasks()), _open_fds())
            if warm is not None and rounds % 25 == 0:
                max_tasks = max(max_tasks, len(asyncio.all_tasks()))
                max_fds = max(max_fds, _open_fds())
                max_connections = max(max_connections, sim.connections)
        assert warm is not None
        sim.faults.clear()
        observer.start_timer()
        recovery = await observer.recover(within=300.0)
        memory_end = _manager_memory()
        traced, traced_peak = tracemalloc.get_traced_memory()
        tasks_end, fds_end = len(asyncio.all_tasks()), _open_fds()
        assert manager.serving_mode is ServingMode.WEBSOCKET
        # Within each source strictly; across sources a delayed snapshot may be
        # older than a REST read applied before it (counted and printed).
        crossings = observer.check_history(across_sources=False)
        observer.check_events()
        observer.check_rate_limit()
        observer.check_backoff()
        stats = manager.get_statistics()
    finally:
        tracemalloc.stop()
        observer.close()
        await manager.close()
    fired = len(sim.faults.history)
    memory_warm, tasks_warm, fds_warm = warm
    print(
        f"\nsoak seed={SOAK_SEED}: {time.perf_counter() - started:.1f} s real, {rounds} rounds "
        f"({rounds * 0.5:.0f} clock s), {plans} fault plans, {fired} faults fired, "
        f"{stats['reconnects']} reconnects, {stats['fallbacks']} fallbacks, "
        f"{stats['rest_api_calls']} REST calls, {stats['websocket_messages']} WS messages\n"
        f"  manager memory {memory_warm / 1024:.0f} KiB after warm-up -> "
        f"{memory_end / 1024:.0f} KiB at the end (all traced {traced / 1024:.0f} KiB, "
        f"peak {traced_peak / 1024:.0f} KiB)\n"
        f"  tasks {tasks_warm} -> {tasks_end} (max {max_tasks}), fds {fds_warm} -> {fds_end} "
        f"(max {max_fds}), WebSocket connections max {max_connections}\n"
        f"  recovery after clearing: {recovery.clock_seconds:.1f} clock s; "
        f"history values out of order across sources: {crossings}"
    )
    # The faults did happen (the last plan may come too late in a short soak to act).
    assert fired >= plans - 1
    assert memory_end - memory_warm < MEMORY_BOUND
    assert tasks_end <= tasks_warm + TASK_SLACK
    assert max_tasks <= tasks_warm + 3 * TASK_SLACK
    assert fds_end <= fds_warm + FD_SLACK
    assert max_connections <= 1
    assert converged(manager, sim)
    stored = stored_ledger_ids(tmp_path / "history.sqlite3")
    assert len(stored) == len(set(stored)), "a ledger entry was stored twice"
    # After close() only the simulator's own server tasks may remain; then none.
    await wait_until(lambda: sim.connections == 0)
    await sim.stop()
    await wait_until(
        lambda: not [t for t in asyncio.all_tasks() - tasks_at_start if not t.done()],
        within=10.0,
    )
