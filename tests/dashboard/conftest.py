"""Fixtures of the dashboard tests: a simulator and a manager on a manual clock, a dashboard,
an HTTP session and event streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio
from tests.dashboard.helpers import EventReader, streaming_manager

from balance_manager import (
    BalanceManager,
)
from balance_manager.dashboard import Dashboard
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock


@pytest_asyncio.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimulatedKraken]:
    """A simulator on loopback, on the manual clock."""
    async with SimulatedKraken(clock=clock, seed=5) as simulator:
        yield simulator


@pytest_asyncio.fixture
async def manager(sim: SimulatedKraken, clock: ManualClock) -> AsyncIterator[BalanceManager]:
    """A started manager, streaming with live holds."""
    async with streaming_manager(sim, clock) as started:
        yield started


@pytest_asyncio.fixture
async def dashboard(manager: BalanceManager) -> AsyncIterator[Dashboard]:
    """A dashboard of the manager on loopback (a free port), its page watchdog off."""
    async with Dashboard(manager, stall_after=0) as served:
        yield served


@pytest_asyncio.fixture
async def priced(sim: SimulatedKraken, clock: ManualClock) -> AsyncIterator[BalanceManager]:
    """A started manager, streaming with live holds, that values from the simulator's prices."""
    async with streaming_manager(sim, clock, prices=True) as started:
        yield started


@pytest_asyncio.fixture
async def valued(priced: BalanceManager) -> AsyncIterator[Dashboard]:
    """A dashboard of the priced manager, its page watchdog off."""
    async with Dashboard(priced, stall_after=0) as served:
        yield served


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture
async def open_stream(http: aiohttp.ClientSession, dashboard: Dashboard) -> AsyncIterator[Any]:
    """``await open_stream(last_event_id=...)``: an EventReader on /api/stream (closed after)."""
    responses: list[aiohttp.ClientResponse] = []

    async def opener(last_event_id: str | None = None, *, header: bool = True) -> EventReader:
        url = f"{dashboard.url}api/stream"
        headers = {}
        if last_event_id is not None:
            if header:
                headers["Last-Event-ID"] = last_event_id
            else:
                url += f"?last_event_id={last_event_id}"
        response = await http.get(url, headers=headers)
        responses.append(response)
        assert response.status == 200
        return EventReader(response)

    yield opener
    for response in responses:
        response.close()
