"""Fixtures for the simulator's tests: a running simulator on loopback and a tiny signed client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock

from .helpers import KrakenTestClient, WsTestClient


@pytest_asyncio.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimulatedKraken]:
    """A simulator on 127.0.0.1 (free port) driven by the manual clock."""
    async with SimulatedKraken(clock=clock, seed=7) as simulator:
        yield simulator


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session."""
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def kraken(sim: SimulatedKraken, session: aiohttp.ClientSession) -> KrakenTestClient:
    """A signed client of ``sim``."""
    return KrakenTestClient(sim, session)


@pytest_asyncio.fixture
async def ws(sim: SimulatedKraken, session: aiohttp.ClientSession) -> AsyncIterator[WsTestClient]:
    """A WebSocket connection to ``sim`` whose ``status`` greeting has been read."""
    async with session.ws_connect(sim.ws_url) as connection:
        client = WsTestClient(connection)
        greeting = await client.recv()
        assert greeting["channel"] == "status"
        yield client


@pytest_asyncio.fixture
async def token(kraken: KrakenTestClient) -> str:
    """A fresh WebSocket token of the default account."""
    return await kraken.token()
