"""One simulated Kraken account: wallets, open orders, fills and the ledger (sans-I/O).

Every change of a balance is a ledger entry, as on Kraken (docs/kraken.md,
'Balances updates'):
a deposit, a withdrawal, one entry per asset leg of a trade, one per wallet of
a transfer between spot and earn. An entry records the wallet's balance
*after* the event, with ``balance == previous + amount - fee``, which is how
the documented trade example adds up (Kraken's example messages
``tests/kraken/protocol/fixtures/ws_balances_update_trade_*.json``: selling
0.005 BTC at 26599.9 gives a BTC leg of -0.005 with fee 0 and a USD leg of
+132.9995 with fee 0.3458).

Each operation is staged on a copy, checked, then committed, so a refused
operation (insufficient funds, bad quantity...) changes nothing.

The simulator keeps :data:`MAX_DIGITS` (28) significant digits, like Python's
default decimal context in which its arithmetic and its WebSocket encoder
work: every amount must be writable in 28 digits at its asset's decimals (USD,
4 decimals: below 10**24; BTC, 10 decimals: below 10**18). What is not is
refused at the door, before anything is staged: an argument beyond it (an
amount, a fee, a volume, a price, or volume × price for an order's cost) and
an operation that would take an asset's total beyond it both raise
:class:`~balance_manager.exceptions.InvalidAmountError` naming the argument.
Nothing is ever rounded into the ledger, and every entry can be sent. After every
commit :meth:`Account.check_invariants` verifies that no wallet is negative,
that no asset holds more for open orders than it can trade, and that each
wallet equals the sum of its ledger legs (``amount - fee``). Refusals raise
:class:`~balance_manager.exceptions.ExchangeError` with Kraken's error string
(``EOrder:Insufficient funds``...); a broken invariant, which would be a bug,
raises :class:`~balance_manager.exceptions.BalanceStateError`.

Which wallets can be traded follows ``kraken/assets.py``: spot ``main`` and
the earn ``liquid`` wallet (Kraken Rewards, REST ``.F``). Spending draws on
spot first; when spot is short, the shortfall first moves from ``liquid`` to
spot as a transfer, so no wallet ever goes negative.

This module does no I/O and never reads a clock: every operation takes ``now``
(Unix seconds) and ids come from an injected :class:`random.Random`.
Observers registered with :meth:`Account.subscribe` receive each
:class:`LedgerEntry` and :class:`OrderEvent` after the commit, in order.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal
from typing import ClassVar, Literal, TypeAlias

from balance_manager.core.amounts import (
    EXACT_CONTEXT,
    ZERO,
    AmountLike,
    decimal_places,
    round_to,
    significant_places,
    to_amount,
)
from balance_manager.exceptions import BalanceStateError, ExchangeError, InvalidAmountError
from balance_manager.kraken.protocol.assets import wallet_is_tradable
from balance_manager.kraken.protocol.holds import DEFAULT_FEE_RATE, hold_for_order
from balance_manager.simulator.model.ids import IdSource
from balance_manager.simulator.model.instruments import EARN_WALLET_SUFFIX, Instruments, PairSpec
from balance_manager.simulator.model.results import NotAwaitable

__all__ = [
    "LIQUID_WALLET",
    "MAX_DIGITS",
    "SPOT_WALLET",
    "Account",
    "AccountEvent",
    "ExecType",
    "LedgerEntry",
    "Listener",
    "Order",
    "OrderEvent",
    "OrderStatus",
    "OrderType",
    "Side",
    "Trade",
    "WalletKey",
    "check_digits",
]

logger = logging.getLogger(__name__)

Side: TypeAlias = Literal["buy", "sell"]
OrderType: TypeAlias = Literal["limit", "market"]
OrderStatus: TypeAlias = Literal["pending_new", "new", "partially_filled", "filled", "canceled"]
ExecType: TypeAlias = Literal["pending_new", "new", "trade", "filled", "canceled"]
#: ``(asset, wallet_type, wallet_id)``, e.g. ``("BTC", "spot", "main")``.
WalletKey: TypeAlias = tuple[str, str, str]

#: The spot wallet: ``(wallet_type, wallet_id)``.
SPOT_WALLET = ("spot", "main")
#: The Kraken Rewards earn wallet, tradable through the base asset (REST ``.F``).
LIQUID_WALLET = ("earn", "liquid")

_MAX_CLOSED_ORDERS = 10_000
#: Significant digits the simulator keeps (see the module docs).
MAX_DIGITS = 28
#: The most a userref can be: Kraken's is a 32-bit signed integer.
_USERREF_RANGE = range(-(2**31), 2**31)
#: Kraken's client order id: a UUID (with or without dashes) or up to 18
#: characters of free text (letters, digits, ``-`` and ``_`` here).
_CL_ORD_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32}|[A-Za-z0-9_-]{1,18}"
)
_add = EXACT_CONTEXT.add
_subtract = EXACT_CONTEXT.subtract
_multiply = EXACT_CONTEXT.multiply


def check_digits(
    name: str, value: Decimal, decimals: int, *, what: str = "", rounded: bool = False
) -> None:
    """Refuse ``value`` unless it can be written in :data:`MAX_DIGITS` digits.

    It is written with ``decimals`` decimals, or more if it has more
    significant places (so ``1e-40`` needs 40 digits) unless it is to be
    ``rounded`` to ``decimals``.

    Args:
        name: the argument named in the error (``amount``, ``price``...).
        value: a finite amount.
        decimals: the decimals it is kept at (the asset's, or the pair's for a price).
        what: what ``value`` is, when it is not the argument itself.
        rounded: the caller rounds ``value`` to ``decimals``: only its size counts.

    Raises:
        InvalidAmountError: naming ``name``; the message gives the limit.
    """
    if not value:
        return
    places = decimals if rounded else max(decimals, significant_places(value))
    if value.adjusted() + 1 + places <= MAX_DIGITS:
        return
    raise InvalidAmountError(name, value, f"{what or 'it'} is {_beyond(decimals)}")


def _beyond(decimals: int) -> str:
    limit = Decimal(1).scaleb(max(MAX_DIGITS - decimals, 0))
    return (
        f"beyond the {MAX_DIGITS} significant digits the simulator keeps "
        f"(at {decimals} decimals, amounts stay below {limit:,f})"
    )


@dataclass(frozen=True, slots=True)
class LedgerEntry(NotAwaitable):
    """One completed balance change of one wallet (a ``balances`` update entry).

    Attributes:
        ledger_id: Kraken-like id, ``L`` + base32 blocks (``LAICKV-NMQSR-ZO5IJD``).
        ref_id: reference: the trade id for a trade leg, the funding id otherwise.
        timestamp: Unix seconds of the change.
        type: ``deposit``, ``withdrawal``, ``trade``, ``transfer``.
        category: ``deposit``, ``withdrawal``, ``trade``, ``transfer``.
        asset: canonical asset name.
        wallet_type: ``spot`` or ``earn``.
        wallet_id: ``main`` for spot; ``liquid``, ``flex``, ``bonded``... for earn.
        amount: the change (negative for debits).
        fee: the fee charged with it.
        balance: the wallet's balance after the event (``before + amount - fee``).
        subtype: for transfers, ``spottostaking``, ``stakingfromspot``,
            ``stakingtospot`` or ``spotfromstaking``.
    """

    ledger_id: str
    ref_id: str
    timestamp: float
    type: str
    category: str
    asset: str
    wallet_type: str
    wallet_id: str
    amount: Decimal
    fee: Decimal
    balance: Decimal
    subtype: str | None = None

    _SYNC_CALLS: ClassVar[str] = "sim.deposit(), sim.withdraw() or sim.transfer()"


@dataclass(frozen=True, slots=True)
class Order(NotAwaitable):
    """An order's state at one moment (orders are replaced, never mutated).

    Attributes:
        order_id: Kraken-like order id (``OK4GJX-KSTLS-7DZZO5``).
        symbol: WebSocket v2 pair symbol, ``BTC/USD``.
        side: ``buy`` or ``sell``.
        order_type: ``limit`` or ``market``.
        order_qty: ordered base quantity.
        limit_price: limit price (``None`` for a market order).
        created: Unix seconds the order was placed.
        userref: the client's numeric reference, if given.
        cl_ord_id: the client order id, if given (unique among open orders).
        cum_qty: quantity filled so far.
        cum_cost: quote cost of the fills so far.
        fee_paid: fees paid so far (quote asset).
        status: ``pending_new``, ``new``, ``partially_filled``, ``filled`` or ``canceled``.
        updated: Unix seconds of the last change.
    """

    order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    order_qty: Decimal
    limit_price: Decimal | None
    created: float
    userref: int | None = None
    cl_ord_id: str | None = None
    cum_qty: Decimal = ZERO
    cum_cost: Decimal = ZERO
    fee_paid: Decimal = ZERO
    status: OrderStatus = "pending_new"
    updated: float = 0.0

    _SYNC_CALLS: ClassVar[str] = "sim.place_order() or sim.cancel_order()"

    @property
    def remaining(self) -> Decimal:
        """Quantity still to fill."""
        return self.order_qty - self.cum_qty

    @property
    def is_open(self) -> bool:
        """Whether the order can still fill (and holds funds)."""
        return self.status in ("pending_new", "new", "partially_filled")

    @property
    def avg_price(self) -> Decimal:
        """Average fill price (0 before any fill)."""
        return self.cum_cost / self.cum_qty if self.cum_qty else ZERO


@dataclass(frozen=True, slots=True)
class Trade(NotAwaitable):
    """One fill of one order.

    Attributes:
        trade_id: numeric trade id (the ``trade_id`` of ``executions``).
        exec_id: Kraken-like execution id (``TGBB7L-HT5LX-J3BZ4A``); also the
            ``ref_id`` of the two ledger legs.
        order_id: the order filled.
        symbol: pair symbol.
        side: the order's side.
        qty: base quantity filled.
        price: fill price.
        cost: ``qty * price`` at the quote asset's decimals.
        fee: fee in the quote asset.
        fee_asset: the fee's asset (the quote asset).
        liquidity: ``m`` (maker, resting order) or ``t`` (taker).
        timestamp: Unix seconds of the fill.
    """

    trade_id: int
    exec_id: str
    order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    cost: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: Literal["m", "t"]
    timestamp: float

    _SYNC_CALLS: ClassVar[str] = "sim.fill() or sim.set_price()"


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """Something happened to an order (an ``executions`` update).

    Attributes:
        exec_type: ``pending_new``, ``new``, ``trade``, ``filled`` or ``canceled``.
        order: the order after the event.
        timestamp: Unix seconds of the event.
        trade: the fill, for ``trade`` events.
        reason: why, for ``canceled`` events.
    """

    exec_type: ExecType
    order: Order
    timestamp: float
    trade: Trade | None = None
    reason: str | None = None


#: What observers receive.
AccountEvent: TypeAlias = LedgerEntry | OrderEvent
#: An observer of an account.
Listener: TypeAlias = Callable[[AccountEvent], None]


@dataclass(slots=True)
class _Stage:
    """A tentative copy of the mutable state; committed only if it checks out."""

    balances: dict[WalletKey, Decimal]
    open_orders: dict[str, Order]
    closed: list[Order] = field(default_factory=list)
    entries: list[LedgerEntry] = field(default_factory=list)
    events: list[AccountEvent] = field(default_factory=list)


class Account:
    """One account's wallets, open orders and ledger.

    Args:
        name: a label for logs and the control endpoint (not a secret).
        instruments: the assets and pairs traded.
        rng: seeds the account's ids (seed it for repeatable runs); each kind of
            id, and each origin of orders, then has a stream of its own
            (:class:`~balance_manager.simulator.model.ids.IdSource`).
        fee_rate: fee charged on every fill and covered by buy holds.
        trade_ids: shared counter of numeric trade ids (one per exchange).
    """

    def __init__(
        self,
        name: str,
        *,
        instruments: Instruments,
        rng: random.Random,
        fee_rate: Decimal = DEFAULT_FEE_RATE,
        trade_ids: Iterator[int] | None = None,
    ) -> None:
        self.name = name
        self.instruments = instruments
        self.fee_rate = fee_rate
        self._ids = IdSource(rng.getrandbits(64))
        self._trade_ids = trade_ids if trade_ids is not None else itertools.count(1)
        self._balances: dict[WalletKey, Decimal] = {}
        self._sums: dict[WalletKey, Decimal] = {}
        self._entries: list[LedgerEntry] = []
        self._open: dict[str, Order] = {}
        self._closed: OrderedDict[str, Order] = OrderedDict()
        self._listeners: list[Listener] = []

    # -- observers -------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every ledger entry and order event; returns an unsubscriber."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    # -- reads -----------------------------------------------------------------

    @property
    def entries(self) -> tuple[LedgerEntry, ...]:
        """Every ledger entry, oldest first."""
        return tuple(self._entries)

    def wallets(self) -> dict[WalletKey, Decimal]:
        """Every wallet the account has used, with its balance."""
        return dict(self._balances)

    def wallet_balance(
        self, asset: str, wallet_type: str = "spot", wallet_id: str = "main"
    ) -> Decimal:
        """The balance of one wallet (0 if never used)."""
        name = self.instruments.asset(asset).name
        return self._balances.get((name, wallet_type, wallet_id), ZERO)

    def assets(self) -> list[str]:
        """Canonical names of every asset the account has a wallet of, sorted."""
        return sorted({key[0] for key in self._balances})

    def tradable(self, asset: str) -> Decimal:
        """Spot plus tradable earn (``liquid``) funds of ``asset``."""
        return _tradable(self._balances, self.instruments.asset(asset).name)

    def earn(self, asset: str) -> Decimal:
        """Earn funds of ``asset`` that cannot be traded (``flex``, ``bonded``...)."""
        name = self.instruments.asset(asset).name
        return sum(
            (
                v
                for (a, wt, wid), v in self._balances.items()
                if a == name and not wallet_is_tradable(wt, wid)
            ),
            ZERO,
        )

    def total(self, asset: str) -> Decimal:
        """Everything held of ``asset``, in every wallet."""
        name = self.instruments.asset(asset).name
        return sum((v for (a, _, _), v in self._balances.items() if a == name), ZERO)

    def hold(self, asset: str) -> Decimal:
        """Amount of ``asset`` held by open orders."""
        return self.holds().get(self.instruments.asset(asset).name, ZERO)

    def holds(self) -> dict[str, Decimal]:
        """Held amount per asset, for every asset with a non-zero hold."""
        return self._holds(self._open)

    def free(self, asset: str) -> Decimal:
        """Tradable funds not held by open orders."""
        return self.tradable(asset) - self.hold(asset)

    def balances(self) -> dict[str, Decimal]:
        """Tradable balance per asset, for every asset the account has a wallet of."""
        return {asset: _tradable(self._balances, asset) for asset in self.assets()}

    def open_orders(self) -> list[Order]:
        """Open orders, oldest first."""
        return list(self._open.values())

    def order(self, order_id: str) -> Order:
        """An order by id (open or recently closed).

        Raises:
            ExchangeError: ``EOrder:Unknown order``.
        """
        found = (
            (self._open.get(order_id) or self._closed.get(order_id))
            if isinstance(order_id, str)
            else None
        )
        if found is None:
            raise ExchangeError("EOrder:Unknown order")
        return found

    # -- funding ---------------------------------------------------------------

    def deposit(
        self,
        asset: str,
        amount: AmountLike,
        *,
        now: float,
        wallet_type: str = "spot",
        wallet_id: str = "main",
    ) -> list[LedgerEntry]:
        """Credit ``amount`` of ``asset`` to a wallet (spot ``main`` by default).

        Raises:
            ExchangeError: the amount is not positive or has too many decimals.
            InvalidAmountError: the amount, or the balance it would make, is
                beyond what the simulator represents (see the module docs).
        """
        spec = self.instruments.asset(asset)
        value = self._funding_amount(amount, spec.decimals)
        _check_wallet(wallet_type, wallet_id)
        stage = self._stage()
        ref = self._ids.next("F")
        self._leg(stage, (spec.name, wallet_type, wallet_id), value, ZERO, "deposit", ref, now)
        return self._commit(stage, "EFunding:Invalid amount", ("amount", value))

    def withdraw(
        self, asset: str, amount: AmountLike, *, now: float, fee: AmountLike = ZERO
    ) -> list[LedgerEntry]:
        """Debit ``amount`` (plus ``fee``) of ``asset`` from spot; it may not exceed free funds.

        Raises:
            ExchangeError: ``EFunding:Insufficient funds`` when ``amount + fee``
                exceeds what is free (tradable minus holds), or a bad amount.
        """
        spec = self.instruments.asset(asset)
        value = self._funding_amount(amount, spec.decimals)
        fee_value = to_amount(fee, name="fee")
        if fee_value < 0 or decimal_places(fee_value) > spec.decimals:
            raise ExchangeError("EGeneral:Invalid arguments:fee")
        check_digits("fee", fee_value, spec.decimals)
        stage = self._stage()
        ref = self._ids.next("F")
        self._spend(stage, spec.name, value + fee_value, now)
        self._leg(stage, (spec.name, *SPOT_WALLET), -value, fee_value, "withdrawal", ref, now)
        return self._commit(stage, "EFunding:Insufficient funds", ("amount", value))

    def transfer(
        self,
        asset: str,
        amount: AmountLike,
        *,
        now: float,
        to_wallet: tuple[str, str],
        from_wallet: tuple[str, str] = SPOT_WALLET,
    ) -> list[LedgerEntry]:
        """Move funds between spot and an earn wallet (two ledger entries, one ref_id).

        Raises:
            ExchangeError: ``EFunding:Insufficient funds`` when the source wallet
                is short or the move would leave open orders uncovered.
        """
        spec = self.instruments.asset(asset)
        value = self._funding_amount(amount, spec.decimals)
        _check_wallet(*to_wallet)
        _check_wallet(*from_wallet)
        if from_wallet == to_wallet or SPOT_WALLET not in (from_wallet, to_wallet):
            raise ExchangeError("EGeneral:Invalid arguments:wallet")
        stage = self._stage()
        self._move(stage, spec.name, value, from_wallet, to_wallet, now)
        return self._commit(stage, "EFunding:Insufficient funds", ("amount", value))

    # -- orders ----------------------------------------------------------------

    def place_order(
        self,
        symbol: str,
        side: str,
        order_type: str,
        qty: AmountLike,
        *,
        now: float,
        limit_price: AmountLike | None = None,
        market_price: AmountLike | None = None,
        userref: int | None = None,
        origin: str = "api",
        cl_ord_id: str | None = None,
    ) -> Order:
        """Place an order; a market order fills at once at ``market_price``.

        A limit order rests until :meth:`fill` is called (the market does it
        when the price crosses). Funds are held from placement on. Order ids
        come from one stream per ``origin`` (``api``: the account's own
        orders; ``market``: the simulated activity), so the n-th API order
        has the same id whatever the market did meanwhile.

        Raises:
            ExchangeError: ``EQuery:Unknown asset pair``, ``EGeneral:Invalid
                arguments:<field>``, ``EOrder:Order minimum not met``,
                ``EOrder:Invalid price...`` or ``EOrder:Insufficient funds``.
            InvalidAmountError: the volume, the price or their cost is beyond
                what the simulator represents (see the module docs).
        """
        pair = self.instruments.pair(symbol)
        if side not in ("buy", "sell"):
            raise ExchangeError("EGeneral:Invalid arguments:type")
        if order_type not in ("limit", "market"):
            raise ExchangeError("EGeneral:Invalid arguments:ordertype")
        if userref is not None and (
            isinstance(userref, bool)
            or not isinstance(userref, int)
            or userref not in _USERREF_RANGE
        ):
            raise ExchangeError("EGeneral:Invalid arguments:userref")
        if cl_ord_id is not None and (
            userref is not None
            or not isinstance(cl_ord_id, str)
            or _CL_ORD_ID.fullmatch(cl_ord_id) is None
            or any(o.cl_ord_id == cl_ord_id for o in self._open.values())
        ):
            raise ExchangeError("EGeneral:Invalid arguments:cl_ord_id")
        volume = self._argument(qty, "volume")
        if volume <= 0 or significant_places(volume) > pair.lot_decimals:
            raise ExchangeError("EGeneral:Invalid arguments:volume")
        check_digits("volume", volume, self.instruments.decimals(pair.base))
        if volume < pair.ordermin:
            raise ExchangeError("EOrder:Order minimum not met")
        limit: Decimal | None = None
        if order_type == "limit":
            limit = self._price(limit_price, pair)
            price_for_hold = limit
        else:
            if market_price is None:
                raise ExchangeError("EGeneral:Invalid arguments:price")
            price_for_hold = self._argument(market_price, "price")
            check_digits("price", price_for_hold, pair.pair_decimals)
        self._check_cost(pair, volume, price_for_hold)
        typed_side: Side = "buy" if side == "buy" else "sell"
        typed_type: OrderType = "limit" if order_type == "limit" else "market"
        order = Order(
            order_id=self._ids.next("O", origin),
            symbol=pair.symbol,
            side=typed_side,
            order_type=typed_type,
            order_qty=volume,
            limit_price=limit,
            created=now,
            userref=userref,
            cl_ord_id=cl_ord_id,
            status="pending_new",
            updated=now,
        )
        stage = self._stage()
        stage.events.append(OrderEvent("pending_new", order, now))
        accepted = replace(order, status="new")
        stage.open_orders[order.order_id] = accepted
        stage.events.append(OrderEvent("new", accepted, now))
        if typed_type == "market":
            # Placed and filled in one commit: a refused fill leaves no trace.
            self._stage_fill(stage, accepted, volume, price_for_hold, now, "t")
        self._commit(stage, "EOrder:Insufficient funds", ("volume", volume))
        return self.order(order.order_id)

    def cancel_order(self, order_id: str, *, now: float, reason: str = "User requested") -> Order:
        """Cancel an open order, releasing its hold.

        Raises:
            ExchangeError: ``EOrder:Unknown order`` (unknown or already closed).
        """
        order = self._open.get(order_id) if isinstance(order_id, str) else None
        if order is None:
            raise ExchangeError("EOrder:Unknown order")
        stage = self._stage()
        canceled = replace(order, status="canceled", updated=now)
        del stage.open_orders[order_id]
        stage.closed.append(canceled)
        stage.events.append(OrderEvent("canceled", canceled, now, reason=reason))
        self._commit(stage, "EOrder:Unknown order", ("order_id", order_id))
        return canceled

    def fill(
        self,
        order_id: str,
        qty: AmountLike,
        price: AmountLike,
        *,
        now: float,
        liquidity: Literal["m", "t"] = "m",
    ) -> Trade:
        """Fill ``qty`` of an open order at ``price``: both ledger legs, the fee, the events.

        The fee is ``cost * fee_rate`` in the quote asset, rounded half-up to
        its decimals. A buy pays ``cost + fee`` (quote leg amount ``-cost``,
        fee ``fee``); a sell receives ``cost - fee`` (quote leg amount
        ``+cost``, fee ``fee``); the base leg moves ``qty`` with no fee.

        Raises:
            ExchangeError: ``EOrder:Unknown order``; ``EGeneral:Invalid
                arguments:volume`` (not above 0 or above what remains);
                ``EGeneral:Invalid arguments:price`` (worse than the limit);
                ``EOrder:Insufficient funds`` (rounding left the order's hold
                short and the free balance cannot cover it).
            InvalidAmountError: the price, the cost or a resulting balance is
                beyond what the simulator represents (see the module docs).
        """
        order = self._open.get(order_id) if isinstance(order_id, str) else None
        if order is None:
            raise ExchangeError("EOrder:Unknown order")
        volume = self._argument(qty, "volume")
        if volume <= 0 or volume > order.remaining:
            raise ExchangeError("EGeneral:Invalid arguments:volume")
        fill_price = self._argument(price, "price")
        if fill_price <= 0 or (
            order.limit_price is not None
            and (
                (order.side == "buy" and fill_price > order.limit_price)
                or (order.side == "sell" and fill_price < order.limit_price)
            )
        ):
            raise ExchangeError("EGeneral:Invalid arguments:price")
        pair = self.instruments.pair(order.symbol)
        check_digits("price", fill_price, pair.pair_decimals)
        # The whole order at this price: cum_cost never outgrows what is checked.
        self._check_cost(pair, order.order_qty, fill_price)
        stage = self._stage()
        trade = self._stage_fill(stage, order, volume, fill_price, now, liquidity)
        self._commit(stage, "EOrder:Insufficient funds", ("volume", volume))
        return trade

    # -- invariants ------------------------------------------------------------

    def check_invariants(self) -> None:
        """Verify the committed state.

        Raises:
            BalanceStateError: a wallet is negative, an asset holds more than it
                can trade, or a wallet differs from the sum of its ledger legs.
        """
        problem = self._violation(self._balances, self._open)
        if problem is not None:
            asset, field_name, value, reason = problem
            raise BalanceStateError(asset, field_name, value, reason)
        keys = set(self._balances) | set(self._sums)
        for key in keys:
            balance = self._balances.get(key, ZERO)
            summed = self._sums.get(key, ZERO)
            if balance != summed:
                raise BalanceStateError(
                    key[0],
                    f"{key[1]}/{key[2]}",
                    balance,
                    f"differs from the sum of its ledger legs ({summed})",
                )

    def audit(self) -> dict[WalletKey, Decimal]:
        """Recompute every wallet from the full ledger (``sum(amount - fee)``)."""
        sums: dict[WalletKey, Decimal] = {}
        for entry in self._entries:
            key = (entry.asset, entry.wallet_type, entry.wallet_id)
            sums[key] = sums.get(key, ZERO) + entry.amount - entry.fee
        return sums

    # -- internals -------------------------------------------------------------

    def _stage(self) -> _Stage:
        return _Stage(balances=dict(self._balances), open_orders=dict(self._open))

    def _commit(
        self, stage: _Stage, refusal: str, subject: tuple[str, object]
    ) -> list[LedgerEntry]:
        """Check the staged state; refuse with ``refusal`` or make it current and notify.

        ``subject`` is the operation's main argument ``(name, value)``, named
        when the state it would make cannot be represented.
        """
        if self._violation(stage.balances, stage.open_orders) is not None:
            raise ExchangeError(refusal)
        self._check_totals(stage.balances, subject)
        self._balances = stage.balances
        self._open = stage.open_orders
        for order in stage.closed:
            self._closed[order.order_id] = order
        while len(self._closed) > _MAX_CLOSED_ORDERS:
            self._closed.popitem(last=False)
        for entry in stage.entries:
            self._entries.append(entry)
            key = (entry.asset, entry.wallet_type, entry.wallet_id)
            self._sums[key] = self._sums.get(key, ZERO) + entry.amount - entry.fee
        self.check_invariants()
        for event in stage.events:
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:
                    # An observer's bug must not undo a committed exchange operation.
                    logger.exception("account %s: listener failed", self.name)
        return list(stage.entries)

    def _leg(
        self,
        stage: _Stage,
        key: WalletKey,
        amount: Decimal,
        fee: Decimal,
        kind: str,
        ref_id: str,
        now: float,
        subtype: str | None = None,
    ) -> None:
        """Stage one ledger entry and its effect on the wallet."""
        balance = _subtract(_add(stage.balances.get(key, ZERO), amount), fee)
        stage.balances[key] = balance
        entry = LedgerEntry(
            ledger_id=self._ids.next("L"),
            ref_id=ref_id,
            timestamp=now,
            type=kind,
            category=kind,
            asset=key[0],
            wallet_type=key[1],
            wallet_id=key[2],
            amount=amount,
            fee=fee,
            balance=balance,
            subtype=subtype,
        )
        stage.entries.append(entry)
        stage.events.append(entry)

    def _stage_fill(
        self,
        stage: _Stage,
        order: Order,
        volume: Decimal,
        fill_price: Decimal,
        now: float,
        liquidity: Literal["m", "t"],
    ) -> Trade:
        """Stage one fill: the order's new state, both ledger legs and the events."""
        pair = self.instruments.pair(order.symbol)
        quote_decimals = self.instruments.decimals(pair.quote)
        cost = round_to(volume * fill_price, quote_decimals, ROUND_HALF_UP)
        fee = round_to(cost * self.fee_rate, quote_decimals, ROUND_HALF_UP)
        trade = Trade(
            trade_id=next(self._trade_ids),
            exec_id=self._ids.next("T"),
            order_id=order.order_id,
            symbol=pair.symbol,
            side=order.side,
            qty=volume,
            price=fill_price,
            cost=cost,
            fee=fee,
            fee_asset=pair.quote,
            liquidity=liquidity,
            timestamp=now,
        )
        cum_qty = order.cum_qty + volume
        after = replace(
            order,
            cum_qty=cum_qty,
            cum_cost=order.cum_cost + cost,
            fee_paid=order.fee_paid + fee,
            status="filled" if cum_qty == order.order_qty else "partially_filled",
            updated=now,
        )
        # The filled part no longer holds funds: update the order before spending.
        if after.status == "filled":
            del stage.open_orders[order.order_id]
            stage.closed.append(after)
        else:
            stage.open_orders[order.order_id] = after
        base_key = (pair.base, *SPOT_WALLET)
        quote_key = (pair.quote, *SPOT_WALLET)
        ref = trade.exec_id
        # Ledger legs go out before the order events, so a client that follows
        # holds on `executions` never sees a hold released before the payment.
        if order.side == "sell":
            self._spend(stage, pair.base, volume, now)
            self._leg(stage, base_key, -volume, ZERO, "trade", ref, now)
            self._leg(stage, quote_key, cost, fee, "trade", ref, now)
        else:
            self._spend(stage, pair.quote, cost + fee, now)
            self._leg(stage, base_key, volume, ZERO, "trade", ref, now)
            self._leg(stage, quote_key, -cost, fee, "trade", ref, now)
        stage.events.append(OrderEvent("trade", after, now, trade=trade))
        if after.status == "filled":
            stage.events.append(OrderEvent("filled", after, now))
        return trade

    def _move(
        self,
        stage: _Stage,
        asset: str,
        amount: Decimal,
        source: tuple[str, str],
        dest: tuple[str, str],
        now: float,
    ) -> None:
        """Stage a transfer: a debit leg on ``source`` and a credit leg on ``dest``."""
        to_earn = source == SPOT_WALLET
        ref = self._ids.next("F")
        self._leg(
            stage,
            (asset, *source),
            -amount,
            ZERO,
            "transfer",
            ref,
            now,
            "spottostaking" if to_earn else "stakingtospot",
        )
        self._leg(
            stage,
            (asset, *dest),
            amount,
            ZERO,
            "transfer",
            ref,
            now,
            "stakingfromspot" if to_earn else "spotfromstaking",
        )

    def _spend(self, stage: _Stage, asset: str, amount: Decimal, now: float) -> None:
        """Make sure spot can pay ``amount``, topping it up from ``liquid`` if needed."""
        spot = stage.balances.get((asset, *SPOT_WALLET), ZERO)
        if spot >= amount:
            return
        liquid = stage.balances.get((asset, *LIQUID_WALLET), ZERO)
        shortfall = amount - spot
        if liquid >= shortfall:
            self._move(stage, asset, shortfall, LIQUID_WALLET, SPOT_WALLET, now)
        # Otherwise the spot wallet goes negative and the commit check refuses.

    def _holds(self, open_orders: Mapping[str, Order]) -> dict[str, Decimal]:
        held: dict[str, Decimal] = {}
        for order in open_orders.values():
            if order.limit_price is None:
                continue  # a market order fills within its own placement
            pair = self.instruments.pair(order.symbol)
            asset = pair.quote if order.side == "buy" else pair.base
            amount = self._order_hold(order, order.limit_price)
            if amount:
                held[asset] = held.get(asset, ZERO) + amount
        return held

    def _order_hold(self, order: Order, price: Decimal | None) -> Decimal:
        # The client's own rule (kraken/holds.py), so client and simulator agree.
        pair = self.instruments.pair(order.symbol)
        held = hold_for_order(
            order.side,
            order.order_type,
            order.remaining,
            price,
            self.fee_rate,
            self.instruments.decimals(pair.quote),
            base_decimals=self.instruments.decimals(pair.base),
        )
        if held is None:  # a buy without a price: only market orders, filled at placement
            raise BalanceStateError(pair.quote, "hold_trade", order.order_id, "order has no price")
        return held

    def _violation(
        self, balances: Mapping[WalletKey, Decimal], open_orders: Mapping[str, Order]
    ) -> tuple[str, str, Decimal, str] | None:
        """The first broken rule of a state, or ``None``."""
        for (asset, wallet_type, wallet_id), value in balances.items():
            if value < 0:
                return asset, f"{wallet_type}/{wallet_id}", value, "wallet balance is negative"
        held = self._holds(open_orders)
        for asset, amount in held.items():
            tradable = _tradable(balances, asset)
            if amount > tradable:
                return asset, "hold_trade", amount, f"exceeds the tradable balance {tradable}"
        return None

    def _funding_amount(self, amount: AmountLike, decimals: int) -> Decimal:
        value = self._argument(amount, "amount")
        # significant_places, not normalize(): that rounds to 28 digits first,
        # so 0.1000...0001 (35 places) would pass as 0.1.
        if value <= 0 or significant_places(value) > decimals:
            raise ExchangeError("EGeneral:Invalid arguments:amount")
        check_digits("amount", value, decimals)
        return value

    def _check_cost(self, pair: PairSpec, volume: Decimal, price: Decimal) -> None:
        """Refuse an order whose cost with fee (quote asset) cannot be represented."""
        cost = _multiply(_multiply(volume, price), _add(Decimal(1), self.fee_rate))
        quote_decimals = self.instruments.decimals(pair.quote)
        rounded = cost.quantize(
            Decimal(1).scaleb(-quote_decimals), rounding=ROUND_UP, context=EXACT_CONTEXT
        )
        check_digits(
            "volume × price",
            rounded,
            quote_decimals,
            what=f"{volume} × {price} = {rounded} {pair.quote} with the fee",
        )

    def _check_totals(
        self, balances: Mapping[WalletKey, Decimal], subject: tuple[str, object]
    ) -> None:
        """Refuse a state where an asset's total (every wallet) cannot be represented."""
        totals: dict[str, Decimal] = {}
        for (asset, _, _), balance in balances.items():
            totals[asset] = _add(totals.get(asset, ZERO), balance)
        for asset, total in totals.items():
            decimals = self.instruments.decimals(asset)
            if total and total.adjusted() + 1 + decimals > MAX_DIGITS:
                name, argument = subject
                raise InvalidAmountError(
                    name,
                    argument,
                    f"it would take the {asset} total to {total:f}, {_beyond(decimals)}",
                )

    @staticmethod
    def _argument(value: object, name: str) -> Decimal:
        try:
            return to_amount(value, name=name)
        except ValueError:  # InvalidAmountError and FloatAmountError are ValueErrors
            raise ExchangeError(f"EGeneral:Invalid arguments:{name}") from None

    def _price(self, value: AmountLike | None, pair: PairSpec) -> Decimal:
        if value is None:
            raise ExchangeError("EGeneral:Invalid arguments:price")
        price = self._argument(value, "price")
        if price <= 0:
            raise ExchangeError("EGeneral:Invalid arguments:price")
        if significant_places(price) > pair.pair_decimals:
            raise ExchangeError(
                f"EOrder:Invalid price:{pair.altname} price can only be specified up to "
                f"{pair.pair_decimals} decimals."
            )
        check_digits("price", price, pair.pair_decimals)
        return price

    def __repr__(self) -> str:
        return (
            f"Account({self.name!r}, wallets={len(self._balances)}, "
            f"open_orders={len(self._open)}, entries={len(self._entries)})"
        )


def _tradable(balances: Mapping[WalletKey, Decimal], asset: str) -> Decimal:
    return sum(
        (v for (a, wt, wid), v in balances.items() if a == asset and wallet_is_tradable(wt, wid)),
        ZERO,
    )


def _check_wallet(wallet_type: str, wallet_id: str) -> None:
    if (wallet_type, wallet_id) == SPOT_WALLET:
        return
    if wallet_type != "earn" or not isinstance(wallet_id, str):
        raise ExchangeError("EGeneral:Invalid arguments:wallet")
    if wallet_id not in EARN_WALLET_SUFFIX:
        raise ExchangeError("EGeneral:Invalid arguments:wallet")
