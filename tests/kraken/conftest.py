"""Fixtures for the adapter tests: a simulator on loopback and clients of it, on a manual clock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from balance_manager.config import BalanceManagerConfig
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock


@pytest.fixture
def config() -> BalanceManagerConfig:
    """Options with short, test-friendly timings (all on the manual clock)."""
    return BalanceManagerConfig(
        history_db_path=None,
        rest_api_timeout=5.0,
        websocket_timeout=6.0,
        websocket_ping_interval=2.0,
        reconnect_initial_delay=0.5,
        reconnect_max_delay=4.0,
        rest_max_retries=2,
        circuit_failure_threshold=3,
        circuit_recovery_timeout=10.0,
    )


@pytest_asyncio.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimulatedKraken]:
    """A simulator on 127.0.0.1 (free port) driven by the manual clock."""
    async with SimulatedKraken(clock=clock, seed=3) as simulator:
        yield simulator


@pytest_asyncio.fixture
async def rest(
    sim: SimulatedKraken, clock: ManualClock, config: BalanceManagerConfig
) -> AsyncIterator[KrakenRestClient]:
    """A REST client of the simulator's default account."""
    client = KrakenRestClient(
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        base_url=sim.rest_url,
        config=config,
        clock=clock,
        rng=random.Random(5),
    )
    yield client
    await client.close()
