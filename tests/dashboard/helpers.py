"""Helpers of the dashboard tests: a manager on a manual clock, and a Server-Sent Events reader."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from balance_manager import (
    BalanceManager,
    BalanceManagerConfig,
    KrakenPriceFeed,
    KrakenRestClient,
    KrakenWebSocketClient,
)
from balance_manager.core.freshness import ServingMode
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, wait_until

__all__ = ["EventReader", "Frame", "build_manager", "make_config", "streaming_manager"]


def make_config(**changes: object) -> BalanceManagerConfig:
    """Short timings; every timer runs on the manual clock."""
    base: dict[str, object] = {
        "history_db_path": None,
        "rest_api_timeout": 5.0,
        "websocket_timeout": 6.0,
        "websocket_ping_interval": 2.0,
        "reconnect_initial_delay": 0.5,
        "reconnect_max_delay": 4.0,
        "rest_max_retries": 0,
        "rest_poll_interval": 3.0,
        "circuit_failure_threshold": 2,
        "circuit_recovery_timeout": 5.0,
        "stale_after": 30.0,
    }
    base.update(changes)
    return BalanceManagerConfig.from_mapping(base)


def build_manager(
    sim: SimulatedKraken, clock: ManualClock, *, prices: bool = False, **changes: object
) -> BalanceManager:
    """A manager of ``sim`` on ``clock``; with ``prices``, it values from the simulator's market."""
    config = make_config(**changes)
    rest = KrakenRestClient(
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        base_url=sim.rest_url,
        config=config,
        clock=clock,
        rng=random.Random(1),
    )
    ws = KrakenWebSocketClient(rest_client=rest, url=sim.ws_url, rng=random.Random(2))
    manager = BalanceManager(websocket_client=ws, rest_client=rest, config=config, clock=clock)
    if prices:
        manager.use_prices(KrakenPriceFeed(rest, sim.ws_url, config=config, rng=random.Random(3)))
    return manager


@asynccontextmanager
async def streaming_manager(
    sim: SimulatedKraken, clock: ManualClock, *, prices: bool = False
) -> AsyncIterator[BalanceManager]:
    """A started manager of ``sim``, once it streams with live holds and its callbacks ran."""
    async with build_manager(sim, clock, prices=prices) as started:
        await wait_until(
            lambda: (
                started.serving_mode is ServingMode.WEBSOCKET
                and started.get_status()["websocket"]["holds_live"]
            )
        )
        await started.drain_callbacks()
        yield started


@dataclass
class Frame:
    """One Server-Sent Event."""

    event: str
    data: dict[str, Any]
    id: str | None = None


@dataclass
class EventReader:
    """Reads Server-Sent Events from an open response, one frame at a time."""

    response: aiohttp.ClientResponse
    frames: list[Frame] = field(default_factory=list)

    async def next(self, *, within: float = 5.0, skip_status: bool = True) -> Frame:
        """The next frame (``status`` frames skipped unless asked for)."""
        while True:
            frame = await asyncio.wait_for(self._read_one(), within)
            self.frames.append(frame)
            if not (skip_status and frame.event == "status"):
                return frame

    async def _read_one(self) -> Frame:
        fields: dict[str, str] = {}
        while True:
            raw = await self.response.content.readline()
            if not raw:
                raise ConnectionError("the stream ended")
            line = raw.decode().rstrip("\n")
            if not line:
                if "data" in fields:
                    return Frame(
                        fields.get("event", "message"), json.loads(fields["data"]), fields.get("id")
                    )
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
