"""Time, injected: a real clock for production and a manual one for tests.

Everything time-dependent in balance-manager asks a :class:`Clock` (the
sans-I/O core is handed ``now`` as an argument instead). Tests drive a
:class:`ManualClock` with :meth:`ManualClock.advance`, which wakes the tasks
whose ``sleep`` deadline has passed, so no test has to sleep for real.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time as _time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What balance-manager needs to know about time."""

    def time(self) -> float:
        """Wall-clock time, Unix seconds (timestamps, ages across restarts)."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds (timeouts, rate limits, backoff)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""
        ...


class SystemClock:
    """The real clock: :func:`time.time`, :func:`time.monotonic`, :func:`asyncio.sleep`."""

    __slots__ = ()

    # The C functions themselves, not Python methods wrapping them: these are
    # read on every streamed frame, and a staticmethod saves a Python call.
    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


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
