"""``SimulatedKraken``: Kraken's REST and WebSocket v2 APIs on a local port.

Start it as an async context manager; point any Kraken client at
:attr:`SimulatedKraken.rest_url` and :attr:`SimulatedKraken.ws_url` with
:attr:`~SimulatedKraken.api_key` / :attr:`~SimulatedKraken.api_secret`::

    async with SimulatedKraken(clock=ManualClock()) as sim:
        ...  # sign requests to f"{sim.rest_url}/0/private/Balance"
        sim.deposit("BTC", "0.5")
        sim.faults.drop_websocket()

The same object is the test's handle on the exchange: the account's true
balances and holds for assertions, deposits, withdrawals, orders, fills,
prices, the system status, faults, and :meth:`~SimulatedKraken.restart`
(stop and start on the same port, every balance, nonce and token kept).

Only :meth:`~SimulatedKraken.start`, :meth:`~SimulatedKraken.stop` and
:meth:`~SimulatedKraken.restart` do I/O and are awaited. Everything that acts
on the exchange is a plain call that has happened when it returns (its
``balances`` and ``executions`` updates are on their way to subscribers);
awaiting one raises a ``TypeError`` that names the call.

The server listens on 127.0.0.1 unless another host is asked for explicitly.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Self

from aiohttp import WSCloseCode, web

from balance_manager.core.amounts import AmountLike
from balance_manager.core.bounds import count, seconds
from balance_manager.credentials import Credentials
from balance_manager.runtime.clock import Clock, SystemClock
from balance_manager.simulator.model.auth import Authenticator
from balance_manager.simulator.model.exchange import SimExchange
from balance_manager.simulator.model.faults import Faults
from balance_manager.simulator.model.ledger import (
    Account,
    LedgerEntry,
    Order,
    OrderType,
    Side,
    Trade,
    WalletKey,
)
from balance_manager.simulator.model.results import SyncList
from balance_manager.simulator.server.context import SimContext
from balance_manager.simulator.server.control import add_control_routes
from balance_manager.simulator.server.market import MarketDriver
from balance_manager.simulator.server.rest_app import add_rest_routes
from balance_manager.simulator.server.ws_app import ws_handler

__all__ = ["DEFAULT_ACCOUNT", "DEFAULT_BALANCES", "DEFAULT_EARN", "SimulatedKraken"]

logger = logging.getLogger(__name__)

#: Name of the account whose key is :attr:`SimulatedKraken.api_key`.
DEFAULT_ACCOUNT = "default"
#: Spot balances of the default account (BTC and USD as in Kraken's BalanceEx example).
DEFAULT_BALANCES: Mapping[str, str] = {
    "BTC": "1.2435",
    "ETH": "12.5",
    "USD": "25435.21",
    "USDT": "5000",
    "EUR": "1500",
    "DOT": "250",
}
#: Earn balances of the default account: USDT in Kraken Rewards (REST key ``USDT.F``).
DEFAULT_EARN: Mapping[tuple[str, str], str] = {("USDT", "liquid"): "1000"}


class SimulatedKraken:
    """A simulated Kraken exchange on a local port (see module docs).

    Args:
        host: address to listen on (loopback by default).
        port: port to listen on; 0 picks a free one.
        seed: seeds ids, keys, tokens, connection ids and the market.
        clock: drives heartbeats, delays, limits and the market (``SystemClock`` by default).
        accounts: extra accounts, name → spot balances (``{"bot2": {"BTC": "1"}}``);
            a ``"default"`` entry replaces the default account's balances.
        market: run the market driver (moving prices, fills, demo activity).
        heartbeat_interval: seconds of channel silence before a heartbeat (10 ms to a year).
        tier: Kraken verification tier for the call counter (``starter``,
            ``intermediate``, ``pro``).
        lockout_threshold: failed calls within ``lockout_window`` that lock a key out.
        lockout_window: seconds over which failures count.
        lockout_duration: seconds a lockout lasts.
        token_ttl: seconds a WebSocket token may wait for its first use.
        market_interval: seconds between market ticks (10 ms to a year).
        control: serve the ``/_sim/...`` control endpoint.

    Raises:
        ConfigError: an option is out of range (durations: 1 ms to a year), naming it.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        clock: Clock | None = None,
        accounts: Mapping[str, Mapping[str, AmountLike]] | None = None,
        market: bool = False,
        heartbeat_interval: float = 1.0,
        tier: str = "starter",
        lockout_threshold: int = 5,
        lockout_window: float = 60.0,
        lockout_duration: float = 900.0,
        token_ttl: float = 900.0,
        market_interval: float = 1.0,
        control: bool = True,
    ) -> None:
        port = count("port", port, minimum=0, maximum=65535)
        # Durations: the library's one check (1 ms to a year); the two loops
        # (heartbeats, market ticks) no faster than every 10 ms.
        heartbeat_interval = seconds("heartbeat_interval", heartbeat_interval, minimum=0.01)
        market_interval = seconds("market_interval", market_interval, minimum=0.01)
        lockout_window = seconds("lockout_window", lockout_window)
        lockout_duration = seconds("lockout_duration", lockout_duration)
        token_ttl = seconds("token_ttl", token_ttl)
        lockout_threshold = count("lockout_threshold", lockout_threshold, minimum=1, maximum=10**6)
        self.host = host
        self._port = port
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.exchange = SimExchange(seed=seed)
        self.auth = Authenticator(
            random.Random(seed + 1),
            tier=tier,
            lockout_threshold=lockout_threshold,
            lockout_window=lockout_window,
            lockout_duration=lockout_duration,
            token_ttl=token_ttl,
        )
        self.faults = Faults(self.clock.monotonic)
        self._ctx = SimContext(
            exchange=self.exchange,
            auth=self.auth,
            faults=self.faults,
            clock=self.clock,
            rng=random.Random(seed + 2),
            heartbeat_interval=heartbeat_interval,
        )
        self.faults.wire(
            revoke_tokens=self.auth.revoke_tokens,
            set_status=self.exchange.set_status,
            get_status=lambda: self.exchange.status,
        )
        self.exchange.on_status(self._broadcast_status)
        specs = dict(accounts or {})
        default_balances = specs.pop(DEFAULT_ACCOUNT, None)
        self._default = self.add_account(
            DEFAULT_ACCOUNT,
            balances=DEFAULT_BALANCES if default_balances is None else default_balances,
            earn=DEFAULT_EARN if default_balances is None else None,
        )
        for name, balances in specs.items():
            self.add_account(name, balances=balances)
        self._market_enabled = market
        self.market = MarketDriver(
            self.exchange,
            self.clock,
            seed=seed,
            interval=market_interval,
            activity_account=self.exchange.account(DEFAULT_ACCOUNT),
        )
        self._control = control
        self._runner: web.AppRunner | None = None
        self._rest_calls: Counter[str] = Counter()
        self._ctx.on_request.append(self._count_call)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``host:port`` (port 0: a free one, kept across :meth:`restart`)."""
        if self._runner is not None:
            return
        if not _is_loopback(self.host):
            logger.warning("simulator listening on %s, beyond this machine", self.host)
        app = web.Application()
        add_rest_routes(app, self._ctx)
        app.router.add_get("/v2", ws_handler(self._ctx))
        if self._control:
            add_control_routes(app, self._ctx)
        app.on_shutdown.append(self._close_connections)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self._port = int(address[1])
        if self._market_enabled:
            self.market.start()
        logger.info("simulated Kraken on %s", self.rest_url)

    async def stop(self) -> None:
        """Close every connection and stop listening (state is kept)."""
        await self.market.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def restart(self) -> None:
        """Stop, then start again on the same port with every balance, order, nonce and token."""
        await self.stop()
        await self.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _close_connections(self, app: web.Application) -> None:
        for connection in list(self._ctx.connections):
            await connection.shutdown(WSCloseCode.SERVICE_RESTART)

    def _broadcast_status(self, system: str) -> None:
        for connection in list(self._ctx.connections):
            connection.push_status(system)

    # -- where to connect ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._runner is not None

    @property
    def port(self) -> int:
        """The port (known after :meth:`start` when 0 was asked for)."""
        return self._port

    @property
    def rest_url(self) -> str:
        """REST base URL: private methods are at ``{rest_url}/0/private/<Method>``."""
        return f"http://{_url_host(self.host)}:{self._port}"

    @property
    def ws_url(self) -> str:
        """WebSocket v2 URL (``ws://127.0.0.1:PORT/v2``)."""
        return f"ws://{_url_host(self.host)}:{self._port}/v2"

    @property
    def control_url(self) -> str:
        """Base URL of the control endpoint (``{rest_url}/_sim``)."""
        return f"{self.rest_url}/_sim"

    @property
    def credentials(self) -> Credentials:
        """Key and secret of the default account."""
        return self._default

    @property
    def api_key(self) -> str:
        """The default account's API key."""
        return self._default.api_key

    @property
    def api_secret(self) -> str:
        """The default account's API secret (base64 of 64 bytes; a simulator credential)."""
        return self._default.api_secret.reveal()

    @property
    def rest_calls(self) -> Counter[str]:
        """How many times each REST method was called (faulted calls included)."""
        return Counter(self._rest_calls)

    def on_request(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call ``listener`` with each REST method name as its request arrives.

        It runs before faults act, so a test can wait for a request to be in
        flight (e.g. parked by ``slow_response``). Returns an unsubscriber.
        """
        self._ctx.on_request.append(listener)

        def unsubscribe() -> None:
            if listener in self._ctx.on_request:
                self._ctx.on_request.remove(listener)

        return unsubscribe

    def _count_call(self, method: str) -> None:
        self._rest_calls[method] += 1

    @property
    def connections(self) -> int:
        """Number of open WebSocket connections."""
        return len(self._ctx.connections)

    # -- accounts ----------------------------------------------------------------------------

    def add_account(
        self,
        name: str | None = None,
        *,
        balances: Mapping[str, AmountLike] | None = None,
        earn: Mapping[tuple[str, str], AmountLike] | None = None,
    ) -> Credentials:
        """Open an account with its own key pair; returns the credentials.

        Args:
            name: unique account name (``account-N`` if omitted).
            balances: spot balances by asset, deposited at once.
            earn: earn balances by ``(asset, wallet_id)``, e.g. ``{("DOT", "bonded"): "10"}``.
        """
        name = name or f"account-{len(self.exchange.accounts()) + 1}"
        self.exchange.add_account(name, balances=balances, earn=earn, now=self.clock.time())
        return self.add_key(name)

    def add_key(
        self, account: str = DEFAULT_ACCOUNT, *, credentials: Credentials | None = None
    ) -> Credentials:
        """A further key pair for an existing account (its own nonce and call counter).

        Args:
            account: the account the key opens.
            credentials: a key pair to accept (e.g. one shaped like a real Kraken
                key, so a manager treats it as a real account); by default a new
                simulator key (``sim-...``) is made.
        """
        self.exchange.account(account)
        if credentials is None:
            credentials = self.auth.new_credentials(account)
        else:
            self.auth.add_key(credentials.api_key, credentials.api_secret, account)
        self._ctx.accounts_by_key[credentials.api_key] = account
        return credentials

    def account(self, api_key: str | None = None) -> Account:
        """The ledger of the account of ``api_key`` (the default account if ``None``)."""
        return self._ctx.account_for_key(api_key or self.api_key)

    def balances(self, api_key: str | None = None) -> dict[str, Decimal]:
        """Tradable balance by canonical asset: spot plus earn ``liquid`` (``.F``)."""
        return self.account(api_key).balances()

    def holds(self, api_key: str | None = None) -> dict[str, Decimal]:
        """Amount held by open orders by asset (assets without a hold are absent)."""
        return self.account(api_key).holds()

    def free(self, api_key: str | None = None) -> dict[str, Decimal]:
        """Tradable minus held, by asset."""
        account = self.account(api_key)
        return {asset: account.free(asset) for asset in account.assets()}

    def earn(self, api_key: str | None = None) -> dict[str, Decimal]:
        """Funds in earn wallets that cannot be traded (``flex``, ``bonded``...), by asset."""
        account = self.account(api_key)
        return {asset: account.earn(asset) for asset in account.assets()}

    def wallets(self, api_key: str | None = None) -> dict[WalletKey, Decimal]:
        """Every wallet: ``(asset, wallet_type, wallet_id)`` → balance."""
        return self.account(api_key).wallets()

    def ledger(self, api_key: str | None = None) -> tuple[LedgerEntry, ...]:
        """The account's ledger entries, oldest first."""
        return self.account(api_key).entries

    # -- acting on the exchange ---------------------------------------------------------------

    def deposit(
        self,
        asset: str,
        amount: AmountLike,
        *,
        api_key: str | None = None,
        wallet_type: str = "spot",
        wallet_id: str = "main",
    ) -> list[LedgerEntry]:
        """Credit ``amount`` to a wallet (a ``balances`` update goes to subscribers).

        Synchronous: done when it returns (do not ``await`` it).

        Args:
            asset: any spelling (``BTC``, ``XBT``, ``XXBT``).
            amount: ``Decimal``, ``int`` or ``str`` (a ``float`` is refused).
            api_key: the account's key (the default account if ``None``).
            wallet_type: ``spot``, or ``earn``.
            wallet_id: ``main`` for spot; ``liquid``, ``flex``, ``bonded``... for earn.

        Returns:
            The ledger entries written (one).
        """
        entries = self.account(api_key).deposit(
            asset, amount, now=self.clock.time(), wallet_type=wallet_type, wallet_id=wallet_id
        )
        return SyncList(entries, call="sim.deposit()")

    def withdraw(
        self, asset: str, amount: AmountLike, *, api_key: str | None = None, fee: AmountLike = 0
    ) -> list[LedgerEntry]:
        """Debit ``amount`` plus ``fee`` from spot (a ``balances`` update goes to subscribers).

        Synchronous: done when it returns (do not ``await`` it).

        Raises:
            ExchangeError: ``EFunding:Insufficient funds`` beyond the free balance.
        """
        entries = self.account(api_key).withdraw(asset, amount, now=self.clock.time(), fee=fee)
        return SyncList(entries, call="sim.withdraw()")

    def transfer(
        self,
        asset: str,
        amount: AmountLike,
        *,
        to_wallet: tuple[str, str],
        from_wallet: tuple[str, str] = ("spot", "main"),
        api_key: str | None = None,
    ) -> list[LedgerEntry]:
        """Move funds between spot and an earn wallet (two ledger entries; synchronous).

        Args:
            asset: any spelling.
            amount: ``Decimal``, ``int`` or ``str``.
            to_wallet: ``(wallet_type, wallet_id)``, e.g. ``("earn", "bonded")``.
            from_wallet: ``(wallet_type, wallet_id)``; spot by default.
            api_key: the account's key (the default account if ``None``).
        """
        entries = self.account(api_key).transfer(
            asset, amount, now=self.clock.time(), to_wallet=to_wallet, from_wallet=from_wallet
        )
        return SyncList(entries, call="sim.transfer()")

    def place_order(
        self,
        pair: str,
        side: Side,
        order_type: OrderType,
        volume: AmountLike,
        *,
        price: AmountLike | None = None,
        userref: int | None = None,
        api_key: str | None = None,
        cl_ord_id: str | None = None,
    ) -> Order:
        """Place an order as the account would through ``AddOrder`` (synchronous).

        Its hold is taken at once and an ``executions`` update goes to subscribers;
        a limit order the price already crosses fills at once.

        Args:
            pair: the pair in any spelling (``BTC/USD``, ``XBTUSD``, ``XXBTZUSD``), as
                ``KrakenRestClient.add_order`` and the control endpoint take it; the
                order shows it as WebSocket v2 does (``Order.symbol``, ``BTC/USD``).
            side: ``"buy"`` or ``"sell"``.
            order_type: ``"limit"`` or ``"market"``.
            volume: base quantity (``Decimal``, ``int`` or ``str``).
            price: the limit price (limit orders only).
            userref: a numeric reference of your own.
            api_key: the account's key (the default account if ``None``).

        Returns:
            The order as placed (``order_id``, ``status``...).

        Raises:
            ExchangeError: Kraken's refusal (``EOrder:Insufficient funds``,
                ``EQuery:Unknown asset pair``, ``EGeneral:Invalid arguments:...``).
        """
        return self.exchange.place_order(
            self.account(api_key),
            pair,
            side,
            order_type,
            volume,
            now=self.clock.time(),
            price=price,
            userref=userref,
            cl_ord_id=cl_ord_id,
        )

    def cancel_order(self, order_id: str, *, api_key: str | None = None) -> Order:
        """Cancel an open order; its hold is released (synchronous)."""
        return self.exchange.cancel_order(self.account(api_key), order_id, now=self.clock.time())

    def fill(
        self,
        order_id: str,
        volume: AmountLike | None = None,
        price: AmountLike | None = None,
        *,
        api_key: str | None = None,
    ) -> Trade:
        """Fill an open order: all of what remains, at its limit price, unless told otherwise.

        Synchronous. Both legs and the fee go to the ledger, and subscribers get the
        ``balances`` and ``executions`` updates.

        Args:
            order_id: the order (``Order.order_id``).
            volume: the base quantity to fill (what remains, by default).
            price: the fill price (the limit price, or the market's for a market order).
            api_key: the account's key (the default account if ``None``).
        """
        account = self.account(api_key)
        order = account.order(order_id)
        return account.fill(
            order_id,
            order.remaining if volume is None else volume,
            (order.limit_price or self.exchange.price(order.symbol)) if price is None else price,
            now=self.clock.time(),
        )

    def set_price(self, pair: str, price: AmountLike) -> list[Trade]:
        """Move a pair's price; resting orders it crosses fill at their limit price.

        Synchronous. Returns the fills it caused.
        """
        trades = self.exchange.set_price(pair, price, now=self.clock.time())
        return SyncList(trades, call="sim.set_price()")

    def price(self, pair: str) -> Decimal:
        """A pair's current price (``pair`` in any spelling: ``BTC/USD``, ``XBTUSD``...)."""
        return self.exchange.price(pair)

    def set_status(self, status: str) -> None:
        """Set the system status (``online``, ``maintenance``, ``cancel_only``, ``post_only``)."""
        self.exchange.set_status(status)

    @property
    def status(self) -> str:
        """The system status."""
        return self.exchange.status

    def __repr__(self) -> str:
        state = f"{self.rest_url}" if self.running else "stopped"
        return f"SimulatedKraken({state}, accounts={len(self.exchange.accounts())})"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 - we only build a URL to reach it locally
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
