"""Helpers for testing code that uses balance-manager (ours and our users').

* :class:`~balance_manager.clock.ManualClock` (re-exported): time that moves
  only when the test says so.
* :func:`wait_until`: wait, on the real clock but bounded, for a condition
  that real loopback I/O will make true.
* :func:`drive`: move a manual clock forward in steps while real I/O runs, so
  heartbeats, pings, timeouts and polls fire as they would over that time.
* :class:`RecordingCallbacks`: a callback that records every payload.

Example::

    async with SimulatedKraken(clock=clock) as sim, connect(..., clock=clock) as manager:
        sim.deposit("BTC", "0.5")
        await wait_until(lambda: manager.sync_view().get_balance("BTC").balance == ...)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from balance_manager.clock import ManualClock

__all__ = ["ManualClock", "RecordingCallbacks", "drive", "drive_until_done", "wait_until"]


async def wait_until(
    predicate: Callable[[], bool], *, within: float = 5.0, interval: float = 0.002
) -> None:
    """Return once ``predicate()`` is true; fail after ``within`` real seconds.

    Raises:
        TimeoutError: the condition did not come true in time (the message says so).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() >= deadline:
            raise TimeoutError(f"condition not met within {within:g} s: {predicate!r}")
        await asyncio.sleep(interval)


async def drive(
    clock: ManualClock,
    seconds: float,
    *,
    step: float = 0.5,
    io_pause: float = 0.002,
    until: Callable[[], bool] | None = None,
) -> float:
    """Advance ``clock`` by up to ``seconds`` in ``step``-sized moves.

    After each move the real event loop runs for ``io_pause`` seconds, so
    frames and requests on loopback sockets get through before time moves
    again. Stops early once ``until()`` is true.

    Returns:
        The clock seconds actually advanced.
    """
    moved = 0.0
    await asyncio.sleep(io_pause)
    while moved < seconds:
        if until is not None and until():
            break
        delta = min(step, seconds - moved)
        clock.advance(delta)
        moved += delta
        await asyncio.sleep(io_pause)
    return moved


async def drive_until_done(
    clock: ManualClock, awaitable: Awaitable[Any], *, seconds: float = 120.0, step: float = 0.5
) -> Any:
    """Await ``awaitable`` while driving ``clock`` (for calls that sleep on the clock)."""
    task = asyncio.ensure_future(awaitable)
    await drive(clock, seconds, step=step, until=task.done)
    return await asyncio.wait_for(task, timeout=5.0)


class RecordingCallbacks:
    """A callback (sync) that records the payloads it receives, per event name.

    Example::

        calls = RecordingCallbacks()
        manager.register_callback("balance_update", calls.recorder("balance_update"))
    """

    def __init__(self) -> None:
        self.calls: dict[str, list[Any]] = {}

    def recorder(self, event: str) -> Callable[[Any], None]:
        """A callback recording into ``calls[event]``."""
        bucket = self.calls.setdefault(event, [])
        return bucket.append

    def __getitem__(self, event: str) -> list[Any]:
        return self.calls.get(event, [])
