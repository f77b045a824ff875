"""The simulated exchange's state: accounts, market prices and system status (sans-I/O).

:class:`SimExchange` ties the per-account ledgers (:mod:`.ledger`) to one
price per pair and to Kraken's system status (docs/kraken.md, 'Time and SystemStatus'):

* ``online``: orders are placed and matched;
* ``cancel_only``: only cancels; ``post_only``: limit orders rest but nothing
  matches; ``maintenance``: no new orders and no cancels.

Market orders fill at once at the current price (taker). A limit order that
crosses the current price when placed fills at once at that price (taker);
otherwise it rests and fills at its limit price (maker) when
:meth:`SimExchange.set_price` moves the price through it.

Like the ledger, this module reads no clock: operations take ``now`` (Unix
seconds).
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, TypeAlias

from balance_manager.core.amounts import AmountLike, round_to, to_amount
from balance_manager.exceptions import ConfigError, ExchangeError, InvalidAmountError
from balance_manager.kraken.protocol.holds import DEFAULT_FEE_RATE
from balance_manager.simulator.model.instruments import Instruments
from balance_manager.simulator.model.ledger import Account, Order, Trade, check_digits

__all__ = ["SYSTEM_STATUSES", "PriceListener", "SimExchange", "StatusListener", "SystemStatus"]

logger = logging.getLogger(__name__)

SystemStatus: TypeAlias = Literal["online", "maintenance", "cancel_only", "post_only"]
#: The values of REST ``SystemStatus.status`` and WebSocket ``status.system``.
SYSTEM_STATUSES: tuple[SystemStatus, ...] = ("online", "maintenance", "cancel_only", "post_only")
#: Called with the new status whenever it changes.
StatusListener: TypeAlias = Callable[[SystemStatus], None]
#: Called with a pair's v2 symbol and new price whenever the price moves.
PriceListener: TypeAlias = Callable[[str, Decimal], None]


class SimExchange:
    """Every account, the market prices and the system status.

    Args:
        seed: seeds every account's ids (drawn once per account, in creation
            order), so a run is repeatable.
        instruments: assets and pairs (the default table if omitted).
        fee_rate: fee of every fill.
        prices: starting prices by pair symbol (each pair's ``start_price`` otherwise).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        instruments: Instruments | None = None,
        fee_rate: Decimal = DEFAULT_FEE_RATE,
        prices: Mapping[str, AmountLike] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.instruments = instruments if instruments is not None else Instruments()
        self.fee_rate = fee_rate
        self._accounts: dict[str, Account] = {}
        self._trade_ids = itertools.count(10_000_001)
        self._prices = {pair.symbol: pair.start_price for pair in self.instruments.pairs}
        for symbol, price in (prices or {}).items():
            self._prices[self.instruments.pair(symbol).symbol] = to_amount(price, name="price")
        self._status: SystemStatus = "online"
        self._status_listeners: list[StatusListener] = []
        self._price_listeners: list[PriceListener] = []

    # -- accounts --------------------------------------------------------------

    def add_account(
        self,
        name: str,
        *,
        balances: Mapping[str, AmountLike] | None = None,
        earn: Mapping[tuple[str, str], AmountLike] | None = None,
        now: float,
    ) -> Account:
        """Open an account funded by deposits (so its ledger explains every balance).

        Args:
            name: unique account name.
            balances: spot deposits by asset, e.g. ``{"BTC": "1.5"}``.
            earn: earn deposits by ``(asset, wallet_id)``, e.g. ``{("USDT", "liquid"): "100"}``.
            now: Unix seconds of the deposits.

        Raises:
            ConfigError: the name is taken.
        """
        if name in self._accounts:
            raise ConfigError("account", name, "an account of that name exists")
        account = Account(
            name,
            instruments=self.instruments,
            rng=self.rng,
            fee_rate=self.fee_rate,
            trade_ids=self._trade_ids,
        )
        for asset, amount in (balances or {}).items():
            account.deposit(asset, amount, now=now)
        for (asset, wallet_id), amount in (earn or {}).items():
            account.deposit(asset, amount, now=now, wallet_type="earn", wallet_id=wallet_id)
        self._accounts[name] = account
        return account

    def account(self, name: str) -> Account:
        """The account called ``name``.

        Raises:
            ConfigError: no such account.
        """
        try:
            return self._accounts[name]
        except KeyError:
            raise ConfigError("account", name, "no account of that name") from None

    def accounts(self) -> list[Account]:
        """Every account, in creation order."""
        return list(self._accounts.values())

    # -- prices ----------------------------------------------------------------

    def price(self, symbol: str) -> Decimal:
        """The current price of a pair (any spelling)."""
        return self._prices[self.instruments.pair(symbol).symbol]

    def prices(self) -> dict[str, Decimal]:
        """Every pair's current price, by v2 symbol."""
        return dict(self._prices)

    def set_price(self, symbol: str, price: AmountLike, *, now: float) -> list[Trade]:
        """Move a pair's price and fill the resting orders it crosses; returns the fills."""
        pair = self.instruments.pair(symbol)
        self.move_price(pair.symbol, price)
        return self.fill_crossed(now=now, symbol=pair.symbol)

    def move_price(self, symbol: str, price: AmountLike) -> Decimal:
        """Move a pair's price without filling anything (see :meth:`fill_crossed`).

        Raises:
            ExchangeError: ``EGeneral:Invalid arguments:price`` for a price not above 0.
            InvalidAmountError: the price is not an amount, or is too large to
                keep at the pair's decimals (see ``ledger.MAX_DIGITS``).
        """
        pair = self.instruments.pair(symbol)
        value = to_amount(price, name="price")
        if value <= 0:
            raise ExchangeError("EGeneral:Invalid arguments:price")
        # Rounded to the pair's decimals below: only its size must fit.
        check_digits("price", value, pair.pair_decimals, rounded=True)
        new = round_to(value, pair.pair_decimals, ROUND_HALF_UP)
        old = self._prices[pair.symbol]
        self._prices[pair.symbol] = new
        if new != old:
            for listener in list(self._price_listeners):
                listener(pair.symbol, new)
        return new

    def quote(self, symbol: str) -> tuple[Decimal, Decimal]:
        """Best bid and ask of a pair: one tick either side of its price (the mid is the price).

        A price of one tick has no room below it: bid and ask are then the price.
        """
        pair = self.instruments.pair(symbol)
        price = self._prices[pair.symbol]
        tick = pair.tick_size
        if price <= tick:
            return price, price
        return price - tick, price + tick

    def on_price(self, listener: PriceListener) -> Callable[[], None]:
        """Call ``listener(symbol, price)`` on every price move; returns an unsubscriber."""
        self._price_listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._price_listeners:
                self._price_listeners.remove(listener)

        return unsubscribe

    def crossed(self, symbol: str | None = None) -> list[tuple[Account, Order]]:
        """Resting limit orders that the current price has reached."""
        found = []
        for account in self._accounts.values():
            for order in account.open_orders():
                if symbol is not None and order.symbol != symbol:
                    continue
                if order.limit_price is None:
                    continue
                price = self._prices[order.symbol]
                if (order.side == "buy" and price <= order.limit_price) or (
                    order.side == "sell" and price >= order.limit_price
                ):
                    found.append((account, order))
        return found

    def fill_crossed(
        self,
        *,
        now: float,
        symbol: str | None = None,
        portion: Callable[[Order], Decimal] | None = None,
    ) -> list[Trade]:
        """Fill crossed resting orders at their limit price (maker); nothing unless ``online``.

        Args:
            now: Unix seconds of the fills.
            symbol: only this pair's orders.
            portion: quantity to fill of each order (its remaining quantity if omitted).
        """
        if self._status != "online":
            return []
        trades = []
        for account, order in self.crossed(symbol):
            qty = portion(order) if portion is not None else order.remaining
            limit = order.limit_price
            if qty <= 0 or limit is None:
                continue
            try:
                trades.append(account.fill(order.order_id, qty, limit, now=now))
            except ExchangeError as exc:
                # Rounding left the order unable to pay: Kraken would cancel it.
                logger.info("canceling %s of %s: %s", order.order_id, account.name, exc.code)
                account.cancel_order(order.order_id, now=now, reason="Insufficient funds")
            except InvalidAmountError as exc:
                # Its proceeds would take a balance beyond what the ledger keeps.
                logger.info("canceling %s of %s: %s", order.order_id, account.name, exc)
                account.cancel_order(order.order_id, now=now, reason="Invalid amount")
        return trades

    # -- orders ----------------------------------------------------------------

    def place_order(
        self,
        account: Account,
        symbol: str,
        side: str,
        order_type: str,
        volume: AmountLike,
        *,
        now: float,
        price: AmountLike | None = None,
        userref: int | None = None,
        origin: str = "api",
        cl_ord_id: str | None = None,
    ) -> Order:
        """Place an order under the current system status (see module docs).

        ``origin`` picks the stream of order ids (see :meth:`Account.place_order`).

        Raises:
            ExchangeError: refused by the status (``EService:Unavailable``,
                ``EService:Market in cancel_only mode``, ``EService:Market in
                post_only mode``) or by the ledger.
            InvalidAmountError: an amount the ledger cannot represent (a limit
                order that crosses at once is then canceled).
        """
        if self._status == "maintenance":
            raise ExchangeError("EService:Unavailable")
        if self._status == "cancel_only":
            raise ExchangeError("EService:Market in cancel_only mode")
        if self._status == "post_only" and order_type == "market":
            raise ExchangeError("EService:Market in post_only mode")
        pair = self.instruments.pair(symbol)
        market_price = self._prices[pair.symbol]
        order = account.place_order(
            pair.symbol,
            side,
            order_type,
            volume,
            now=now,
            limit_price=price if order_type == "limit" else None,
            market_price=market_price if order_type == "market" else None,
            userref=userref,
            origin=origin,
            cl_ord_id=cl_ord_id,
        )
        if order.is_open and order.limit_price is not None and self._status == "online":
            crosses = (side == "buy" and market_price <= order.limit_price) or (
                side == "sell" and market_price >= order.limit_price
            )
            if crosses:
                try:
                    account.fill(
                        order.order_id, order.remaining, market_price, now=now, liquidity="t"
                    )
                except InvalidAmountError:
                    # Cannot be filled at the market (its cost or proceeds would
                    # be beyond what the ledger keeps): it does not stay either.
                    account.cancel_order(order.order_id, now=now, reason="Invalid amount")
                    raise
                order = account.order(order.order_id)
        return order

    def cancel_order(self, account: Account, order_id: str, *, now: float) -> Order:
        """Cancel an order, unless the exchange is in maintenance.

        Raises:
            ExchangeError: ``EService:Unavailable`` or ``EOrder:Unknown order``.
        """
        if self._status == "maintenance":
            raise ExchangeError("EService:Unavailable")
        return account.cancel_order(order_id, now=now)

    # -- status ----------------------------------------------------------------

    @property
    def status(self) -> SystemStatus:
        """The system status (``online``, ``maintenance``, ``cancel_only``, ``post_only``)."""
        return self._status

    def set_status(self, status: str) -> None:
        """Change the system status and tell the listeners (the WebSocket layer).

        Raises:
            ConfigError: not one of :data:`SYSTEM_STATUSES`.
        """
        for known in SYSTEM_STATUSES:
            if status == known:
                break
        else:
            raise ConfigError("status", status, f"must be one of {', '.join(SYSTEM_STATUSES)}")
        if known == self._status:
            return
        self._status = known
        for listener in list(self._status_listeners):
            listener(known)

    def on_status(self, listener: StatusListener) -> Callable[[], None]:
        """Call ``listener`` on every status change; returns an unsubscriber."""
        self._status_listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._status_listeners:
                self._status_listeners.remove(listener)

        return unsubscribe

    def __repr__(self) -> str:
        return f"SimExchange(accounts={len(self._accounts)}, status={self._status!r})"
