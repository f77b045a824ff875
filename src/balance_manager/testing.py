"""Helpers for testing code that uses balance-manager (ours and our users').

* :class:`ManualClock`: time that moves only when the test says so.
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
import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

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
    await _let_io_run(io_pause)
    while moved < seconds:
        if until is not None and until():
            break
        delta = min(step, seconds - moved)
        clock.advance(delta)
        moved += delta
        await _let_io_run(io_pause)
    return moved


async def _let_io_run(pause: float) -> None:
    """Let loopback I/O through before time moves on.

    A real pause lets the kernel hand over what was written, then a few bare
    yields let each hop (transport, protocol, reader task, session, sink) run:
    a frame sent at one clock time is then seen at that time, even on a
    loaded machine, instead of one step later.
    """
    await asyncio.sleep(pause)
    for _ in range(_SETTLE_ROUNDS):
        await asyncio.sleep(0)


#: Bare yields after each real pause in :func:`drive`.
_SETTLE_ROUNDS = 8


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


class ManualClock:
    """A clock that moves only when told to.

    ``time()`` and ``monotonic()`` advance together. ``await clock.sleep(s)``
    parks the task until :meth:`advance` (or :meth:`advance_to`) moves the
    clock past its deadline; :meth:`run_for` advances in steps and lets woken
    tasks run between them, which is how tests drive background loops.

    Args:
        start: initial wall-clock time (Unix seconds).
        monotonic_start: initial monotonic time.
    """

    def __init__(self, start: float = 1_700_000_000.0, monotonic_start: float = 1000.0) -> None:
        self._offset = start - monotonic_start
        self._now = monotonic_start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._ids = itertools.count()

    def time(self) -> float:
        return self._now + self._offset

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._ids), future))
        await future

    @property
    def pending_sleepers(self) -> int:
        """Number of tasks currently parked in :meth:`sleep`."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def next_deadline(self) -> float | None:
        """Monotonic deadline of the earliest parked sleeper, if any."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper now due."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards (seconds={seconds})")
        self.advance_to(self._now + seconds)

    def advance_to(self, monotonic: float) -> None:
        """Move monotonic time to ``monotonic`` and wake every sleeper now due."""
        if monotonic < self._now:
            raise ValueError(f"cannot move a clock backwards ({monotonic} < {self._now})")
        self._now = monotonic
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def run_for(self, seconds: float, *, step: float | None = None) -> None:
        """Advance ``seconds`` in total, letting woken tasks run after each step.

        Without ``step``, time jumps from one sleeper's deadline to the next,
        so every timer fires at its exact due time.
        """
        end = self._now + seconds
        await _settle()
        while True:
            target = end
            if step is not None:
                target = min(end, self._now + step)
            else:
                deadline = self.next_deadline()
                if deadline is not None and deadline < end:
                    target = max(deadline, self._now)
            self.advance_to(target)
            await _settle()
            if self._now >= end:
                return

    def __repr__(self) -> str:
        return f"ManualClock(monotonic={self._now:.3f}, time={self.time():.3f})"


async def _settle(rounds: int = 20) -> None:
    """Yield to the event loop enough times for woken tasks to run to their next await."""
    for _ in range(rounds):
        await asyncio.sleep(0)
