"""Fixtures: ccxt's own Kraken class pointed at a running simulator (loopback only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from balance_manager.ccxt import CcxtRestSource, make_exchange
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock


def kraken_at(sim: SimulatedKraken) -> Any:
    """ccxt.pro's kraken with every endpoint at ``sim`` (no pacing: the tests count calls)."""
    exchange = make_exchange(
        "kraken",
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        options={"enableRateLimit": False},
    )
    exchange.timeout_on_exit = 0  # ccxt sleeps this long (ms) on close
    return exchange


@pytest_asyncio.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimulatedKraken]:
    """A simulator on 127.0.0.1 (free port) driven by the manual clock."""
    async with SimulatedKraken(clock=clock, seed=11) as simulator:
        yield simulator


@pytest_asyncio.fixture
async def rest(sim: SimulatedKraken, clock: ManualClock) -> AsyncIterator[CcxtRestSource]:
    """A REST source on ccxt's kraken at the simulator."""
    source = CcxtRestSource(kraken_at(sim), clock=clock)
    yield source
    await source.close()
