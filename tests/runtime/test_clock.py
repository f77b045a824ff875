"""Tests of balance_manager.runtime.clock: the manual clock tests rely on, and the system clock."""

from __future__ import annotations

import asyncio
import time

import pytest

from balance_manager.runtime.clock import Clock, SystemClock
from balance_manager.testing import ManualClock


async def settle() -> None:
    """Let woken tasks run to their next await."""
    for _ in range(10):
        await asyncio.sleep(0)


def test_manual_clock_starts_where_told_and_moves_both_times() -> None:
    """time() and monotonic() start at the given values and advance together."""
    clock = ManualClock(start=2_000_000.0, monotonic_start=50.0)
    assert (clock.time(), clock.monotonic()) == (2_000_000.0, 50.0)
    clock.advance(2.5)
    assert (clock.time(), clock.monotonic()) == (2_000_002.5, 52.5)
    clock.advance_to(60.0)
    assert clock.time() == 2_000_010.0


def test_manual_clock_never_moves_backwards() -> None:
    """advance() with a negative amount and advance_to() the past raise ValueError."""
    clock = ManualClock(monotonic_start=10.0)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1.0)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance_to(9.0)
    assert clock.monotonic() == 10.0


def test_both_clocks_satisfy_the_protocol() -> None:
    """ManualClock and SystemClock are Clocks."""
    assert isinstance(ManualClock(), Clock)
    assert isinstance(SystemClock(), Clock)


@pytest.mark.asyncio
async def test_sleepers_wake_in_deadline_order_on_advance() -> None:
    """One advance past several deadlines wakes the sleepers in deadline order."""
    clock = ManualClock()
    woken: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woken.append(seconds)

    tasks = [asyncio.create_task(sleeper(s)) for s in (3.0, 1.0, 2.0)]
    await settle()
    assert clock.pending_sleepers == 3
    clock.advance(10.0)
    await settle()
    assert woken == [1.0, 2.0, 3.0]
    assert all(task.done() for task in tasks)


@pytest.mark.asyncio
async def test_sleeper_stays_parked_until_its_deadline() -> None:
    """A sleeper is not woken before its deadline, and is woken exactly at it."""
    clock = ManualClock()
    task = asyncio.create_task(clock.sleep(5.0))
    await settle()
    clock.advance(4.999)
    await settle()
    assert not task.done()
    assert clock.next_deadline() == pytest.approx(clock.monotonic() + 0.001)
    clock.advance(0.001)
    await settle()
    assert task.done()
    assert clock.next_deadline() is None


@pytest.mark.asyncio
async def test_run_for_fires_each_timer_at_its_exact_time() -> None:
    """run_for() jumps from deadline to deadline, so a periodic loop sees its exact times."""
    clock = ManualClock(monotonic_start=0.0)
    ticks: list[float] = []

    async def every_two_seconds() -> None:
        while True:
            await clock.sleep(2.0)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(every_two_seconds())
    await clock.run_for(9.0)
    task.cancel()
    assert ticks == [2.0, 4.0, 6.0, 8.0]
    assert clock.monotonic() == 9.0


@pytest.mark.asyncio
async def test_run_for_with_step_advances_in_steps() -> None:
    """run_for(step=...) wakes a sleeper at the first step past its deadline."""
    clock = ManualClock(monotonic_start=0.0)
    woke_at: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(2.5)
        woke_at.append(clock.monotonic())

    task = asyncio.create_task(sleeper())
    await clock.run_for(4.0, step=1.0)
    assert woke_at == [3.0]
    assert task.done()


@pytest.mark.asyncio
async def test_zero_or_negative_sleep_only_yields() -> None:
    """sleep(0) and sleep(-1) return without waiting for the clock to move."""
    clock = ManualClock()
    await asyncio.wait_for(clock.sleep(0), timeout=5)
    await asyncio.wait_for(clock.sleep(-1.0), timeout=5)
    assert clock.pending_sleepers == 0


@pytest.mark.asyncio
async def test_cancelled_sleeper_is_forgotten() -> None:
    """A cancelled sleep no longer counts as pending and does not block next_deadline."""
    clock = ManualClock(monotonic_start=0.0)
    early = asyncio.create_task(clock.sleep(1.0))
    late = asyncio.create_task(clock.sleep(5.0))
    await settle()
    early.cancel()
    await settle()
    assert clock.pending_sleepers == 1
    assert clock.next_deadline() == 5.0
    clock.advance(5.0)
    await settle()
    assert late.done()


def test_manual_clock_repr_shows_both_times() -> None:
    """repr() shows the monotonic and wall-clock times."""
    assert repr(ManualClock(start=100.0, monotonic_start=1.0)) == (
        "ManualClock(monotonic=1.000, time=100.000)"
    )


# -- SystemClock ------------------------------------------------------------------------


def test_system_clock_reads_the_real_clocks() -> None:
    """SystemClock.time() is wall-clock time and monotonic() never goes back."""
    clock = SystemClock()
    before = time.time()
    now = clock.time()
    after = time.time()
    assert before <= now <= after
    readings = [clock.monotonic() for _ in range(100)]
    assert readings == sorted(readings)
    assert repr(clock) == "SystemClock()"


@pytest.mark.asyncio
async def test_system_clock_sleep_accepts_zero_and_negative() -> None:
    """SystemClock.sleep(0) and sleep(-1) return at once (negative is treated as zero)."""
    clock = SystemClock()
    await asyncio.wait_for(clock.sleep(0), timeout=5)
    await asyncio.wait_for(clock.sleep(-1.0), timeout=5)
