"""Prometheus metrics (opt-in) and the connect() factory, against the simulator."""

from __future__ import annotations

import asyncio
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import balance_manager
from balance_manager import BalanceManagerConfig, ConfigError, ServingMode
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import wait_until

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


@pytest.fixture(autouse=True)
def _no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real credentials and no real state directory leak into these tests."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    for name in ("KRAKEN_API_KEY", "KRAKEN_API_SECRET", "KRAKEN_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


async def test_connect_without_credentials_uses_the_simulator() -> None:
    """connect() with no credentials starts a simulator, streams from it, and stops it."""
    async with balance_manager.connect(simulator_market=False) as manager:
        assert manager.simulator is not None
        await wait_until(lambda: manager.serving_mode is ServingMode.WEBSOCKET)
        manager.simulator.deposit("ETH", "2")
        await wait_until(
            lambda: (
                manager.sync_view().get_balance("ETH").balance  # type: ignore[union-attr]
                == Decimal("14.5")
            )
        )
        simulator = manager.simulator
        assert manager.config.history_db_path is None  # the user's real history is untouched
    assert not simulator.running


async def test_connect_rest_only() -> None:
    """websocket=False runs the manager on REST alone."""
    async with balance_manager.connect(websocket=False, simulator_market=False) as manager:
        assert manager.websocket_client is None
        btc = await manager.get_balance("BTC")
        assert btc is not None
        assert btc.source.value == "rest"


async def test_connect_refuses_half_credentials() -> None:
    """An API key without its secret is a configuration error naming the missing part."""
    with pytest.raises(ConfigError, match="api_secret"):
        async with balance_manager.connect(api_key="abc"):
            pass  # pragma: no cover


async def test_metrics_are_served_on_loopback() -> None:
    """metrics_enabled serves balances, the source and counters on 127.0.0.1."""
    config = BalanceManagerConfig(history_db_path=None, metrics_enabled=True)
    async with balance_manager.connect(config=config, simulator_market=False) as manager:
        await wait_until(lambda: manager.serving_mode is ServingMode.WEBSOCKET)
        metrics = manager._metrics
        assert metrics is not None
        assert metrics._server.server_address[0] == "127.0.0.1"
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{metrics.port}/metrics") as response,
        ):
            text = await response.text()
        assert 'balance_manager_balance{asset="BTC"} 1.2435' in text
        assert 'balance_manager_source{balance_manager_source="websocket"} 1.0' in text
        assert 'balance_manager_events_total{name="rest_api_calls"}' in text
        assert manager.simulator is not None
        assert manager.simulator.api_secret not in text


class _SessionLog:
    """Every aiohttp client session created while installed, to check that all were closed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sessions: list[aiohttp.ClientSession] = []
        original = aiohttp.ClientSession
        log = self.sessions

        def recorded(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
            session = original(*args, **kwargs)
            log.append(session)
            return session

        monkeypatch.setattr(aiohttp, "ClientSession", recorded)

    def all_closed(self) -> bool:
        return bool(self.sessions) and all(session.closed for session in self.sessions)


async def test_connect_that_fails_to_start_closes_its_sessions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A start-up failure after REST was used (metrics port busy) leaves no session open."""
    log = _SessionLog(monkeypatch)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        config = BalanceManagerConfig(
            history_db_path=None, metrics_enabled=True, metrics_port=busy.getsockname()[1]
        )
        async with SimulatedKraken() as sim:
            with pytest.raises(OSError, match="in use"):
                async with balance_manager.connect(
                    sim.api_key,
                    sim.api_secret,
                    config=config,
                    rest_url=sim.rest_url,
                    ws_url=sim.ws_url,
                ):
                    pass  # pragma: no cover
    assert log.all_closed(), log.sessions


async def test_connect_cancelled_during_start_closes_its_sessions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C while the first REST call hangs: the cancelled start leaves no session open."""
    log = _SessionLog(monkeypatch)
    async with SimulatedKraken() as sim:
        sim.faults.slow_response(60.0, times=None)

        async def start() -> None:
            async with balance_manager.connect(
                sim.api_key,
                sim.api_secret,
                config=BalanceManagerConfig(history_db_path=None),
                rest_url=sim.rest_url,
                ws_url=sim.ws_url,
            ):
                pass  # pragma: no cover

        task = asyncio.create_task(start())
        await wait_until(lambda: bool(sim.rest_calls))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert log.all_closed(), log.sessions
