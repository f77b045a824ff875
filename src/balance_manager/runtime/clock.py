"""Time, injected: the :class:`Clock` interface and the real :class:`SystemClock`.

Everything time-dependent in balance-manager asks a :class:`Clock` (the
sans-I/O core is handed ``now`` as an argument instead). Tests drive a
:class:`balance_manager.testing.ManualClock`, which wakes the tasks whose
``sleep`` deadline has passed, so no test has to sleep for real.
"""

from __future__ import annotations

import asyncio
import time as _time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


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
