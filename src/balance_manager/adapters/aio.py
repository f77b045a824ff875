"""Small asyncio helpers shared by the adapters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from balance_manager.clock import Clock, SystemClock
from balance_manager.exceptions import RequestTimeoutError

__all__ = ["cancel_and_wait", "with_timeout"]

T = TypeVar("T")


async def with_timeout(clock: Clock, seconds: float, awaitable: Awaitable[T], operation: str) -> T:
    """Await ``awaitable`` for at most ``seconds`` of ``clock`` time.

    The deadline is measured on the injected clock, so a test driving a
    :class:`~balance_manager.clock.ManualClock` decides when it passes (no real
    waiting); with the system clock this is :func:`asyncio.timeout`.

    Raises:
        RequestTimeoutError: the deadline passed first (the work is cancelled).
    """
    if isinstance(clock, SystemClock):
        try:
            async with asyncio.timeout(seconds):
                return await awaitable
        except TimeoutError:
            raise RequestTimeoutError(operation, seconds) from None
    work = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not work.done():
            await cancel_and_wait(work)
    if work.cancelled():
        raise RequestTimeoutError(operation, seconds)
    return work.result()


async def cancel_and_wait(task: asyncio.Future[object] | asyncio.Task[object] | None) -> None:
    """Cancel ``task`` and wait until it has finished (its errors are dropped)."""
    if task is None or task.done():
        if task is not None and not task.cancelled():
            task.exception()  # mark it retrieved
        return
    task.cancel()
    # asyncio.wait never raises the task's own error or cancellation, while a
    # cancellation of the *calling* task still propagates.
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()
