"""One line for the common case: :func:`connect`.

::

    async with balance_manager.connect() as manager:         # the simulator
        print(await manager.get_balance("BTC"))

    async with balance_manager.connect(api_key=..., api_secret=...) as manager:   # Kraken
        ...

Credentials come from the arguments, else from ``config.credentials``, else
from the environment (``KRAKEN_API_KEY`` / ``KRAKEN_API_SECRET`` or
``KRAKEN_CREDENTIALS_FILE``). With none anywhere, a
:class:`~balance_manager.simulator.SimulatedKraken` is started on loopback
(with market activity) and the manager talks to it; it is stopped on exit and
is reachable as ``manager.simulator``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from balance_manager.adapters.kraken_rest import KrakenRestClient
from balance_manager.adapters.kraken_ws import KrakenWebSocketClient
from balance_manager.clock import Clock
from balance_manager.config import BalanceManagerConfig, default_history_path
from balance_manager.credentials import Credentials, Secret, load_credentials
from balance_manager.exceptions import ConfigError
from balance_manager.manager import BalanceManager

__all__ = ["connect"]

logger = logging.getLogger(__name__)


@asynccontextmanager
async def connect(
    api_key: str | None = None,
    api_secret: str | Secret | None = None,
    *,
    config: BalanceManagerConfig | None = None,
    rest_url: str | None = None,
    ws_url: str | None = None,
    websocket: bool = True,
    clock: Clock | None = None,
    simulator_seed: int = 0,
    simulator_market: bool = True,
) -> AsyncIterator[BalanceManager]:
    """A started :class:`BalanceManager` for Kraken, or for the simulator without credentials.

    Args:
        api_key: Kraken API key (with ``api_secret``).
        api_secret: Kraken API secret, base64.
        config: options; ``BalanceManagerConfig.from_env()`` by default.
        rest_url: REST base URL (default: ``config.rest_url``).
        ws_url: WebSocket v2 URL (default: ``config.ws_url``).
        websocket: ``False`` runs on REST polling alone (keys without WebSocket permission).
        clock: time source for everything (tests pass a ``ManualClock``).
        simulator_seed: the simulator's seed, when one is started.
        simulator_market: run the simulator's market activity.

    Raises:
        ConfigError: only one of ``api_key`` and ``api_secret`` was given.
        AuthenticationError: the exchange refused the credentials.
    """
    if (api_key is None) != (api_secret is None):
        raise ConfigError("api_secret", "***", "give both api_key and api_secret, or neither")
    config = config if config is not None else BalanceManagerConfig.from_env()
    credentials: Credentials | None
    if api_key is not None and api_secret is not None:
        credentials = Credentials.of(api_key, api_secret)
    else:
        credentials = config.credentials or load_credentials()
    simulator = None
    if credentials is None:
        from balance_manager.simulator import SimulatedKraken

        simulator = SimulatedKraken(seed=simulator_seed, market=simulator_market, clock=clock)
        await simulator.start()
        credentials = simulator.credentials
        rest_url = rest_url or simulator.rest_url
        ws_url = ws_url or simulator.ws_url
        if config.history_db_path == default_history_path():
            # Simulated balances have no place in the user's real history file.
            config = config.replace(history_db_path=None)
        logger.info("no Kraken credentials: using the built-in simulator at %s", rest_url)
    try:
        rest = KrakenRestClient.from_credentials(
            credentials, rest_url or config.rest_url, config=config, clock=clock
        )
        stream = (
            KrakenWebSocketClient(rest, ws_url or config.ws_url, config=config)
            if websocket
            else None
        )
        manager = BalanceManager(stream, rest, config, clock=clock)
        manager.simulator = simulator
        try:
            await manager.initialize()
        except BaseException:
            # A start that fails or is cancelled half-way may have opened HTTP
            # sessions already; close() (idempotent) releases them.
            await manager.close()
            raise
        async with manager:
            yield manager
    finally:
        if simulator is not None:
            await simulator.stop()
