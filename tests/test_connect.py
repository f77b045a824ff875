"""Prometheus metrics (opt-in) and the connect() factory, against the simulator."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import balance_manager
from balance_manager import BalanceManagerConfig, ConfigError, ServingMode
from balance_manager.contrib.prometheus import BalanceMetrics
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import wait_until

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


@pytest.fixture(autouse=True)
def _no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real credentials and no real state directory leak into these tests."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    for name in ("KRAKEN_API_KEY", "KRAKEN_API_SECRET", "KRAKEN_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


async def test_connect_without_credentials_refuses_to_start() -> None:
    """connect() with no credentials anywhere raises, naming the variables: never fake balances."""
    with pytest.raises(ConfigError) as info:
        async with balance_manager.connect():
            pass  # pragma: no cover
    message = str(info.value)
    for name in (
        "KRAKEN_API_KEY",
        "KRAKEN_API_SECRET",
        "KRAKEN_CREDENTIALS_FILE",
        "simulator=True",
    ):
        assert name in message


async def test_connect_refuses_credentials_with_the_simulator() -> None:
    """simulator=True with an API key is a contradiction, refused before any I/O."""
    with pytest.raises(ConfigError, match="simulator"):
        async with balance_manager.connect("key", "c2VjcmV0", simulator=True):
            pass  # pragma: no cover


async def test_connect_with_the_simulator_says_so_everywhere(tmp_path: Path) -> None:
    """connect(simulator=True) streams from a simulator, labelled as one, history in memory."""
    async with balance_manager.connect(simulator=True, simulator_market=False) as manager:
        assert manager.simulator is not None
        assert manager.simulated
        assert manager.get_status()["exchange"] == "simulator"
        assert "exchange=simulator" in repr(manager)
        await wait_until(lambda: manager.serving_mode is ServingMode.WEBSOCKET)
        manager.simulator.deposit("ETH", "2")
        await wait_until(
            lambda: (
                manager.sync_view().get_balance("ETH").balance  # type: ignore[union-attr]
                == Decimal("14.5")
            )
        )
        simulator = manager.simulator
        assert manager.history.store is None  # the user's real history is untouched
    assert not simulator.running
    assert not await asyncio.to_thread(lambda: list(tmp_path.rglob("*.sqlite3")))


async def test_connect_rest_only() -> None:
    """websocket=False runs the manager on REST alone."""
    async with balance_manager.connect(
        websocket=False, simulator=True, simulator_market=False
    ) as manager:
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
    async with balance_manager.connect(
        config=config, simulator=True, simulator_market=False
    ) as manager:
        await wait_until(lambda: manager.serving_mode is ServingMode.WEBSOCKET)
        metrics = next(o for o in manager._observers if isinstance(o, BalanceMetrics))
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


async def test_connect_passes_every_manager_argument_through() -> None:
    """The public connect() takes every argument the manager builder takes, under the same name.

    A merge once dropped ``exchange`` and ``api_password`` from the public wrapper while
    the builder still had them: ``connect(exchange="binance")`` was a TypeError.
    """
    connect_module = importlib.import_module("balance_manager.connect")
    public = inspect.signature(balance_manager.connect).parameters
    builder = inspect.signature(connect_module._manager).parameters
    assert set(builder) <= set(public), sorted(set(builder) - set(public))
    for name, parameter in builder.items():
        assert public[name].default == parameter.default, name


async def test_connect_refuses_a_venue_with_redis_url() -> None:
    """A follower never talks to an exchange: a venue with redis_url is refused, not ignored."""
    with pytest.raises(ConfigError, match="follower never talks"):
        async with balance_manager.connect(exchange="binance", redis_url="redis://127.0.0.1:1/0"):
            pass
