"""``balance-manager dashboard``: serve the live web dashboard of an account or of the simulator.

:func:`open_dashboard` starts a :class:`~balance_manager.dashboard.Dashboard` of a
started manager on the preferred port, or on any free one when that port is
taken (the demo uses it too); :func:`serve_until_stopped` prints where to open
it and serves until Ctrl-C or the end of ``--duration``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TextIO

from balance_manager.dashboard import DEFAULT_PORT, TOKEN_ENV, Dashboard, SharedStatus
from balance_manager.runtime.clock import Clock
from balance_manager.service.manager import BalanceManager

__all__ = ["open_dashboard", "optional_dashboard", "serve_until_stopped"]

logger = logging.getLogger(__name__)


@asynccontextmanager
async def open_dashboard(
    manager: BalanceManager,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    any_port_if_taken: bool = True,
    shared_status: SharedStatus | None = None,
) -> AsyncIterator[Dashboard]:
    """A started dashboard of ``manager``, stopped on exit.

    Args:
        manager: a started manager.
        host: address to bind (loopback by default; any other needs ``token``).
        port: the port to try first.
        token: the token required from every request, if any.
        any_port_if_taken: when ``port`` is in use, serve on any free port instead.
        shared_status: the shared-mode block's provider (a shared-balances leader's).

    Raises:
        ConfigError: ``host`` is not loopback and there is no token, or another bad option.
        OSError: the address cannot be bound.
    """
    dashboard = Dashboard(manager, host=host, port=port, token=token, shared_status=shared_status)
    try:
        await dashboard.start()
    except OSError as exc:
        if not any_port_if_taken or port == 0 or exc.errno != errno.EADDRINUSE:
            raise
        logger.info("port %d is in use; the dashboard takes a free one", port)
        dashboard = Dashboard(manager, host=host, port=0, token=token, shared_status=shared_status)
        await dashboard.start()
    try:
        yield dashboard
    finally:
        await dashboard.stop()


@asynccontextmanager
async def optional_dashboard(
    manager: BalanceManager, wanted: bool = True
) -> AsyncIterator[Dashboard | None]:
    """A loopback dashboard of ``manager`` if ``wanted`` and it can start, else ``None``.

    For the demo: a dashboard that cannot bind is logged, never a reason to stop.
    """
    async with contextlib.AsyncExitStack() as stack:
        dashboard = None
        if wanted:
            try:
                dashboard = await stack.enter_async_context(open_dashboard(manager))
            except OSError as exc:
                logger.warning("no dashboard: %s", exc)
        yield dashboard


async def serve_until_stopped(
    dashboard: Dashboard,
    *,
    out: TextIO,
    stop: asyncio.Event,
    duration: float | None,
    clock: Clock,
) -> bool:
    """Say where the dashboard is, then serve until ``stop`` or ``duration``; True if stopped."""
    manager = dashboard.manager
    what = "the simulator (balances are not real)" if manager.simulated else manager.exchange
    print(f"dashboard of {what}: {dashboard.url}", file=out)
    if dashboard.policy.needs_token:
        print(f"sign in with the token in {TOKEN_ENV}", file=out)
    print("press Ctrl-C to stop", file=out, flush=True)
    waiter = asyncio.ensure_future(stop.wait())
    timer = asyncio.ensure_future(clock.sleep(duration)) if duration is not None else None
    try:
        await asyncio.wait(
            {waiter, *([timer] if timer else [])}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (waiter, timer):
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(waiter, *([timer] if timer else []), return_exceptions=True)
    return stop.is_set()
