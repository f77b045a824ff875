"""One line for the common case: :func:`connect`.

::

    async with balance_manager.connect() as manager:                 # Kraken
        print(await manager.get_balance("BTC"))

    async with balance_manager.connect(simulator=True) as manager:   # the simulator
        ...

Credentials come from the arguments, else from ``config.credentials``, else
from the environment (``KRAKEN_API_KEY`` / ``KRAKEN_API_SECRET`` or
``KRAKEN_CREDENTIALS_FILE``). With none anywhere, :func:`connect` refuses to
start, naming those variables: it never falls back to fake balances. The
simulator is used only when asked for (``simulator=True``): a
:class:`~balance_manager.simulator.SimulatedKraken` is started on loopback
(with market activity), the manager's ``exchange`` is ``"simulator"``, history
stays in memory unless a path was set, and the simulator is stopped on exit
(reachable meanwhile as ``manager.simulator``).

Other venues go through ccxt (the ``ccxt`` extra): ``connect(exchange="binance")``
takes ``api_key``/``api_secret`` (and ``api_password`` where the venue has one)
or ``BINANCE_API_KEY``/``BINANCE_API_SECRET``/``BINANCE_API_PASSWORD``;
``exchange="ccxt:kraken"`` runs ccxt's Kraken (with ``simulator=True``, against
the simulator). See ``docs/venues.md``.
With ``redis_url=...`` it gives a *follower* of shared balances instead (see
``docs/shared.md``): a :class:`~balance_manager.shared.follower.SharedFollower`
with the manager's read API, fed through Redis by the account's leader
(``balance-manager serve --redis URL``), with ``reservations`` to set funds
aside. It needs no credentials and never talks to the exchange. Only the
argument chooses this: a ``redis_url`` option alone never turns ``connect()``
into a follower.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, overload

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.sources import RestSource, StreamSource
from balance_manager.credentials import Credentials, Secret, load_credentials, redact_url
from balance_manager.exceptions import ConfigError
from balance_manager.kraken.price_client import KRAKEN_PUBLIC_WS_URL, KrakenPriceFeed
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.kraken.ws_client import KrakenWebSocketClient
from balance_manager.runtime.clock import Clock
from balance_manager.service.manager import BalanceManager

if TYPE_CHECKING:
    from balance_manager.core.sources import RestSource, StreamSource
    from balance_manager.shared.follower import SharedFollower
    from balance_manager.shared.leader import SourceFactory
    from balance_manager.simulator import SimulatedKraken

__all__ = ["connect", "kraken_sources"]

logger = logging.getLogger(__name__)


def kraken_sources(
    config: BalanceManagerConfig,
    credentials: Credentials,
    *,
    rest_url: str | None = None,
    ws_url: str | None = None,
    websocket: bool = True,
    clock: Clock | None = None,
) -> SourceFactory:
    """Makes fresh Kraken clients (REST, WebSocket) for each term of a shared leader."""

    def make() -> tuple[RestSource, StreamSource | None]:
        rest = KrakenRestClient.from_credentials(
            credentials, rest_url or config.rest_url, config=config, clock=clock
        )
        stream = (
            KrakenWebSocketClient(rest, ws_url or config.ws_url, config=config)
            if websocket
            else None
        )
        return rest, stream

    return make


@overload
def connect(
    api_key: str | None = None,
    api_secret: str | Secret | None = None,
    *,
    config: BalanceManagerConfig | None = None,
    rest_url: str | None = None,
    ws_url: str | None = None,
    websocket: bool = True,
    clock: Clock | None = None,
    simulator: bool = False,
    simulator_seed: int = 0,
    simulator_market: bool = True,
    exchange: str = "kraken",
    api_password: str | Secret | None = None,
    redis_url: None = None,
) -> AbstractAsyncContextManager[BalanceManager]: ...


@overload
def connect(
    api_key: None = None,
    api_secret: None = None,
    *,
    config: BalanceManagerConfig | None = None,
    clock: Clock | None = None,
    redis_url: str,
) -> AbstractAsyncContextManager[SharedFollower]: ...


def connect(
    api_key: str | None = None,
    api_secret: str | Secret | None = None,
    *,
    config: BalanceManagerConfig | None = None,
    rest_url: str | None = None,
    ws_url: str | None = None,
    websocket: bool = True,
    clock: Clock | None = None,
    simulator: bool = False,
    simulator_seed: int = 0,
    simulator_market: bool = True,
    exchange: str = "kraken",
    api_password: str | Secret | None = None,
    redis_url: str | None = None,
) -> AbstractAsyncContextManager[BalanceManager] | AbstractAsyncContextManager[SharedFollower]:
    """A started :class:`BalanceManager` (see :func:`_manager`), or a shared follower.

    With ``redis_url``, a started
    :class:`~balance_manager.shared.follower.SharedFollower` of the account
    ``config.shared_account`` (namespace ``config.redis_namespace``); the other
    exchange arguments are refused then.

    Raises:
        ConfigError: see :func:`_manager`; or exchange arguments with ``redis_url``.
        SharedStateError: Redis could not be reached (follower).
    """
    if redis_url is not None:
        if (
            api_key is not None
            or api_secret is not None
            or api_password is not None
            or simulator
            or exchange != "kraken"
        ):
            raise ConfigError(
                "redis_url",
                "(given)",
                "a follower never talks to the exchange: give no key, venue or simulator with it",
            )
        return _follower(redis_url, config, clock)
    return _manager(
        api_key,
        api_secret,
        config=config,
        rest_url=rest_url,
        ws_url=ws_url,
        websocket=websocket,
        clock=clock,
        simulator=simulator,
        simulator_seed=simulator_seed,
        simulator_market=simulator_market,
        exchange=exchange,
        api_password=api_password,
    )


@asynccontextmanager
async def _follower(
    redis_url: str, config: BalanceManagerConfig | None, clock: Clock | None
) -> AsyncIterator[SharedFollower]:
    """A started follower of the shared balances at ``redis_url``."""
    from balance_manager.kraken.protocol.assets import AssetNames
    from balance_manager.shared.keys import AccountKeys

    try:
        from balance_manager.shared.connection import SharedRedis
        from balance_manager.shared.follower import SharedFollower
    except ImportError as exc:
        raise ConfigError("redis_url", redact_url(redis_url), str(exc)) from None

    config = config if config is not None else BalanceManagerConfig.from_env(credentials=None)
    config = config.replace(redis_url=redis_url)
    keys = AccountKeys(config.redis_namespace, config.shared_account)
    follower = SharedFollower(
        SharedRedis(redis_url, keys, timeout=config.redis_timeout),
        config,
        names=AssetNames(),
        clock=clock,
    )
    try:
        await follower.initialize()
        yield follower
    finally:
        await follower.close()


@asynccontextmanager
async def _manager(
    api_key: str | None = None,
    api_secret: str | Secret | None = None,
    *,
    config: BalanceManagerConfig | None = None,
    rest_url: str | None = None,
    ws_url: str | None = None,
    websocket: bool = True,
    clock: Clock | None = None,
    simulator: bool = False,
    simulator_seed: int = 0,
    simulator_market: bool = True,
    exchange: str = "kraken",
    api_password: str | Secret | None = None,
) -> AsyncIterator[BalanceManager]:
    """A started :class:`BalanceManager` for Kraken, or for the built-in simulator if asked.

    Args:
        api_key: Kraken API key (with ``api_secret``).
        api_secret: Kraken API secret, base64.
        config: options; ``BalanceManagerConfig.from_env()`` by default.
        rest_url: REST base URL (default: ``config.rest_url``).
        ws_url: WebSocket v2 URL (default: ``config.ws_url``).
        websocket: ``False`` runs on REST polling alone (keys without WebSocket permission).
        clock: time source for everything (tests pass a ``ManualClock``).
        simulator: start the built-in simulator and use it instead of Kraken
            (credentials are then the simulator's own; giving others is an error).
        simulator_seed: the simulator's seed, when one is started.
        simulator_market: run the simulator's market activity.
        exchange: ``"kraken"`` (the native client), a ccxt id (``"binance"``,
            ``"okx"``...) or ``"ccxt:<id>"`` to force ccxt (``"ccxt:kraken"``).
        api_password: the API passphrase of ccxt venues that have one (OKX).

    Raises:
        ConfigError: only one of ``api_key`` and ``api_secret`` was given; no
            credentials were found (and ``simulator`` is off); or credentials
            were given together with ``simulator=True``.
        AuthenticationError: the exchange refused the credentials.
    """
    if (api_key is None) != (api_secret is None):
        raise ConfigError("api_secret", "***", "give both api_key and api_secret, or neither")
    config = config if config is not None else BalanceManagerConfig.from_env()
    venue = exchange.removeprefix("ccxt:").strip().lower()
    via_ccxt = exchange.startswith("ccxt:") or venue != "kraken"
    if via_ccxt and simulator and venue != "kraken":
        raise ConfigError(
            "exchange", exchange, "the simulator is Kraken: use exchange='ccxt:kraken'"
        )
    if simulator and api_key is not None:
        raise ConfigError(
            "simulator", True, "the simulator has its own keys: give no api_key with simulator=True"
        )
    sim = None
    credentials: Credentials | None
    if simulator:
        from balance_manager.simulator import SimulatedKraken

        sim = SimulatedKraken(seed=simulator_seed, market=simulator_market, clock=clock)
        await sim.start()
        credentials = sim.credentials
        rest_url = rest_url or sim.rest_url
        ws_url = ws_url or sim.ws_url
        logger.info("using the built-in simulator at %s (balances are not real)", rest_url)
    elif via_ccxt:
        credentials = None
    elif api_key is not None and api_secret is not None:
        credentials = Credentials.of(api_key, api_secret)
    else:
        credentials = config.credentials or load_credentials()
        if credentials is None:
            raise ConfigError(
                "credentials",
                None,
                "no Kraken credentials: set KRAKEN_API_KEY and KRAKEN_API_SECRET (or "
                "KRAKEN_CREDENTIALS_FILE naming a file), pass api_key and api_secret, or ask "
                "for the built-in simulator with connect(simulator=True)",
            )
    try:
        rest: RestSource
        stream: StreamSource | None
        if via_ccxt:
            rest, stream = _ccxt_sources(
                venue,
                sim.credentials if sim is not None else None,
                (api_key, api_secret, api_password),
                rest_url,
                ws_url,
                config=config,
                clock=clock,
                websocket=websocket,
            )
        else:
            kraken = KrakenRestClient.from_credentials(
                credentials, rest_url or config.rest_url, config=config, clock=clock
            )
            rest = kraken
            stream = (
                KrakenWebSocketClient(kraken, ws_url or config.ws_url, config=config)
                if websocket
                else None
            )
        manager = BalanceManager(stream, rest, config, clock=clock)
        manager.simulator = sim
        if not via_ccxt:
            # Prices for portfolio(): nothing is read or connected until it is asked for;
            # without the WebSocket, prices come from REST alone too.
            public = _public_ws_url(sim, ws_url) if websocket else None
            manager.use_prices(KrakenPriceFeed(kraken, public, config=config))
        try:
            await manager.initialize()
            if config.metrics_enabled:
                from balance_manager.contrib.prometheus import serve_metrics

                serve_metrics(manager)
        except BaseException:
            # A start that fails or is cancelled half-way may have opened HTTP
            # sessions already; close() (idempotent) releases them.
            await manager.close()
            raise
        async with manager:
            yield manager
    finally:
        if sim is not None:
            await sim.stop()


def _public_ws_url(sim: SimulatedKraken | None, ws_url: str | None) -> str:
    """Where public prices stream: the simulator's endpoint, a given non-auth URL, or Kraken's."""
    if sim is not None:
        return sim.ws_url
    if ws_url and "ws-auth." not in ws_url:
        return ws_url
    return KRAKEN_PUBLIC_WS_URL


def _ccxt_sources(
    venue: str,
    simulated: Credentials | None,
    given: tuple[str | None, str | Secret | None, str | Secret | None],
    rest_url: str | None,
    ws_url: str | None,
    *,
    config: BalanceManagerConfig,
    clock: Clock | None,
    websocket: bool,
) -> tuple[RestSource, StreamSource | None]:
    """A ccxt venue's REST and stream sources (the ``ccxt`` extra)."""
    try:
        from balance_manager.ccxt import CcxtRestSource, CcxtStreamSource, make_exchange
    except ImportError as exc:
        raise ConfigError(
            "exchange", venue, "needs ccxt: pip install 'balance-manager[ccxt]'"
        ) from exc
    api_key, api_secret, password = given
    if simulated is not None:
        api_key, api_secret = simulated.api_key, simulated.api_secret
    elif api_key is None:
        prefix = venue.upper().replace("-", "_")
        api_key = os.environ.get(f"{prefix}_API_KEY")
        api_secret = os.environ.get(f"{prefix}_API_SECRET")
        password = password or os.environ.get(f"{prefix}_API_PASSWORD")
        if not api_key or not api_secret:
            raise ConfigError(
                "credentials",
                None,
                f"no {venue} credentials: set {prefix}_API_KEY and {prefix}_API_SECRET "
                f"(and {prefix}_API_PASSWORD if the venue has a passphrase), or pass "
                "api_key and api_secret",
            )
    client = make_exchange(
        venue,
        api_key=api_key,
        api_secret=api_secret,
        password=password,
        rest_url=rest_url,
        ws_url=ws_url,
    )
    rest = CcxtRestSource(client, config=config, clock=clock)
    return rest, (CcxtStreamSource(rest) if websocket else None)
