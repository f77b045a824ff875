"""connect(exchange=...) picks the ccxt venue; refusals come before any I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

import balance_manager
from balance_manager import ConfigError, ServingMode
from balance_manager.ccxt import CcxtRestSource, CcxtStreamSource
from balance_manager.testing import wait_until

pytestmark = [pytest.mark.asyncio]


@pytest.fixture(autouse=True)
def _no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real credentials and no real state directory leak into these tests."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_API_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


async def test_binance_without_credentials_names_the_variables() -> None:
    """connect(exchange="binance") with no key refuses, naming BINANCE_API_KEY/SECRET."""
    with pytest.raises(ConfigError) as info:
        async with balance_manager.connect(exchange="binance"):
            pass  # pragma: no cover
    assert "BINANCE_API_KEY" in str(info.value)
    assert "BINANCE_API_SECRET" in str(info.value)


async def test_unknown_venue_is_refused() -> None:
    """An id ccxt.pro does not have is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="no-such-venue"):
        async with balance_manager.connect("k", "s", exchange="no-such-venue"):
            pass  # pragma: no cover


async def test_simulator_only_with_kraken() -> None:
    """The simulator is Kraken: another venue with simulator=True is refused."""
    with pytest.raises(ConfigError, match="ccxt:kraken"):
        async with balance_manager.connect(exchange="binance", simulator=True):
            pass  # pragma: no cover


@pytest.mark.network
async def test_ccxt_kraken_against_the_simulator() -> None:
    """connect(exchange="ccxt:kraken", simulator=True) streams through ccxt, truthfully."""
    async with balance_manager.connect(
        exchange="ccxt:kraken", simulator=True, simulator_market=False
    ) as manager:
        assert isinstance(manager.rest_client, CcxtRestSource)
        assert isinstance(manager.websocket_client, CcxtStreamSource)
        assert manager.simulated
        await wait_until(lambda: manager.serving_mode is ServingMode.WEBSOCKET)
        sim = manager.simulator
        assert sim is not None
        held = {a: b.balance for a, b in (await manager.get_all_balances()).items() if b.balance}
        assert held == {a: v for a, v in sim.balances().items() if v}
