"""Funds held by open orders, derived live from the ``executions`` channel.

The ``balances`` channel says how much of each asset there is, never how much
is reserved by open orders (docs/kraken.md, 'Balances snapshot').
:class:`OpenOrderBook` follows the order events of ``executions`` and keeps, per
asset, the sum of :func:`hold_for_order` over the open orders:

* a **buy** holds ``remaining_qty * limit_price * (1 + fee_rate)`` of the quote
  asset (the order's cost plus the largest fee it can be charged);
* a **sell** holds ``remaining_qty`` of the base asset;
* ``remaining_qty = order_qty - cum_qty``; a filled, canceled or expired order
  holds nothing.

Holds are rounded **up** to the asset's ledger decimals: a hold may be
overstated by less than one unit of the last digit, never understated, so
``free`` is never too high. The simulator computes its holds with the same
:func:`hold_for_order`, so the two agree by construction; against the real
exchange the manager reconciles with REST ``BalanceEx.hold_trade``
(docs/kraken.md, 'BalanceEx').

Orders whose hold cannot be known are *flagged*, not guessed: a buy without a
limit price (``market``, ``stop-loss``, ``trailing-stop``...: the price is only
known when it fills), or an order first seen in a trade event without its
quantity. Their asset is listed by :meth:`OpenOrderBook.uncertain_assets`; the
manager takes that asset's hold from REST instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, Decimal

from balance_manager.core.amounts import ZERO, round_to
from balance_manager.kraken.protocol.assets import AssetNames
from balance_manager.kraken.protocol.ws_messages import Execution, ExecutionsMessage

__all__ = [
    "CLOSED_STATUSES",
    "DEFAULT_FEE_RATE",
    "OpenOrderBook",
    "TrackedOrder",
    "hold_for_order",
    "holds_from_orders",
    "split_symbol",
]

#: Kraken's highest spot taker fee for the lowest volume tier (0.26 %): the
#: largest fee an order can be charged without volume discounts, so the hold
#: covers it.
DEFAULT_FEE_RATE = Decimal("0.0026")

#: Order statuses (and exec types) after which an order holds nothing.
CLOSED_STATUSES = frozenset({"filled", "canceled", "expired"})

_ONE = Decimal(1)


def split_symbol(symbol: str) -> tuple[str, str]:
    """``(base, quote)`` of a v2 pair: ``"BTC/USD"`` → ``("BTC", "USD")``.

    Raises:
        ValueError: ``symbol`` is not ``BASE/QUOTE``.
    """
    base, slash, quote = symbol.partition("/")
    if not slash or not base or not quote or "/" in quote:
        raise ValueError(f"not a BASE/QUOTE pair: {symbol!r}")
    return base, quote


def _round_up(value: Decimal, decimals: int | None) -> Decimal:
    if decimals is None:
        return value  # exact, so never understated either
    return round_to(value, decimals, ROUND_CEILING)


def hold_for_order(
    side: str,
    order_type: str | None,
    remaining_qty: Decimal,
    limit_price: Decimal | None,
    fee_rate: Decimal = DEFAULT_FEE_RATE,
    quote_decimals: int | None = None,
    *,
    base_decimals: int | None = None,
) -> Decimal | None:
    """What one open order holds, in the asset it holds (see the module docs).

    Args:
        side: ``buy`` (holds quote) or ``sell`` (holds base).
        order_type: ``limit``, ``market``...; informative only, the rule is
            "a buy needs a limit price".
        remaining_qty: ``order_qty - cum_qty``.
        limit_price: the limit price, or ``None`` for unpriced orders.
        fee_rate: the fee to reserve on a buy, as a fraction (``0.0026``).
        quote_decimals: ledger decimals of the quote asset (buy holds are
            rounded up to them); ``None`` keeps the exact product.
        base_decimals: ledger decimals of the base asset (sell holds).

    Returns:
        The hold, or ``None`` when it cannot be known (a buy without a price).

    Raises:
        ValueError: ``side`` is neither ``buy`` nor ``sell``.
    """
    del order_type  # the hold depends on the price being known, not on the type's name
    if remaining_qty <= 0:
        return ZERO
    if side == "sell":
        return _round_up(remaining_qty, base_decimals)
    if side != "buy":
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if limit_price is None or limit_price <= 0:
        return None
    return _round_up(remaining_qty * limit_price * (_ONE + fee_rate), quote_decimals)


@dataclass(frozen=True, slots=True)
class TrackedOrder:
    """What the book knows of one open order.

    Attributes:
        order_id: Kraken's order id.
        symbol: ``BTC/USD`` (``None`` until an event names it).
        side: ``buy`` or ``sell`` (``None`` until known).
        order_type: ``limit``, ``market``...
        order_qty: quantity ordered (base), if known.
        cum_qty: quantity filled so far.
        limit_price: limit price, if the order has one.
        status: last ``order_status`` seen.
        hold_asset: the asset held (quote for buys, base for sells), if known.
        hold: the amount held, or ``None`` when it cannot be known.
        cl_ord_id: the client order id the order was placed with, if any.
    """

    order_id: str
    symbol: str | None = None
    side: str | None = None
    order_type: str | None = None
    order_qty: Decimal | None = None
    cum_qty: Decimal = ZERO
    limit_price: Decimal | None = None
    status: str | None = None
    hold_asset: str | None = None
    hold: Decimal | None = None
    cl_ord_id: str | None = None

    @property
    def remaining_qty(self) -> Decimal | None:
        """``order_qty - cum_qty`` (never below 0), if the quantity is known."""
        if self.order_qty is None:
            return None
        remaining = self.order_qty - self.cum_qty
        return remaining if remaining > 0 else ZERO


class OpenOrderBook:
    """Open orders from ``executions`` messages, and the holds they imply.

    Args:
        fee_rate: fee reserved on buys (default :data:`DEFAULT_FEE_RATE`).
        asset_decimals: ledger decimals of a v2 asset name, or ``None`` if
            unknown (then holds are kept exact). Defaults to the built-in
            :class:`~balance_manager.kraken.protocol.assets.AssetNames` table.

    Feed every ``executions`` message to :meth:`apply`; read :meth:`holds`.
    """

    __slots__ = ("_closed", "_decimals", "_fee_rate", "_orders", "_totals", "_uncertain")

    def __init__(
        self,
        *,
        fee_rate: Decimal = DEFAULT_FEE_RATE,
        asset_decimals: Callable[[str], int | None] | None = None,
    ) -> None:
        self._fee_rate = fee_rate
        self._decimals = asset_decimals if asset_decimals is not None else AssetNames().decimals
        self._orders: dict[str, TrackedOrder] = {}
        # Sum of known holds per asset, and the orders whose hold is unknown per
        # asset. Kept incrementally (Decimal sums are exact, so no drift).
        self._totals: dict[str, Decimal] = {}
        self._uncertain: dict[str, set[str]] = {}
        # Client order ids of orders closed since the last take_closed().
        self._closed: set[str] = set()

    # -- reading ---------------------------------------------------------------

    def holds(self) -> dict[str, Decimal]:
        """Known hold per asset (assets holding nothing are left out)."""
        return dict(self._totals)

    def hold(self, asset: str) -> Decimal:
        """Known hold of one asset (0 when none)."""
        return self._totals.get(asset, ZERO)

    def orders(self) -> dict[str, TrackedOrder]:
        """The open orders by id (a copy)."""
        return dict(self._orders)

    def client_orders(self) -> frozenset[str]:
        """Client order ids of the open orders whose hold is known and counted in :meth:`holds`.

        An order on an asset listed by :meth:`uncertain_assets` is left out: that
        asset's hold comes from REST, not from these orders.
        """
        uncertain = self.uncertain_assets()
        return frozenset(
            order.cl_ord_id
            for order in self._orders.values()
            if order.cl_ord_id is not None
            and order.hold is not None
            and order.hold_asset not in uncertain
        )

    def take_closed(self) -> frozenset[str]:
        """Client order ids of the orders closed since the last call (then forgotten)."""
        closed, self._closed = frozenset(self._closed), set()
        return closed

    @property
    def has_closed(self) -> bool:
        """Whether orders with a client order id closed since :meth:`take_closed`."""
        return bool(self._closed)

    def uncertain_assets(self) -> frozenset[str]:
        """Assets with at least one open order whose hold is unknown (see module docs)."""
        return frozenset(asset for asset, ids in self._uncertain.items() if ids)

    def __len__(self) -> int:
        return len(self._orders)

    def __repr__(self) -> str:
        return f"OpenOrderBook({len(self._orders)} open orders, holds={self.holds()!r})"

    # -- feeding ---------------------------------------------------------------

    def clear(self) -> None:
        """Forget every order (a snapshot follows, or the stream was lost)."""
        self._orders.clear()
        self._totals.clear()
        self._uncertain.clear()
        self._closed.clear()

    def apply(self, message: ExecutionsMessage) -> set[str]:
        """Apply one ``executions`` message; return the assets whose hold changed.

        A snapshot replaces the book (it lists every open order). Trade items of
        a snapshot (``snap_trades``) describe past fills and are skipped; order
        items are merged. An update merges each item into its order. An asset
        counts as changed when its known hold or its "uncertain" flag differs
        from before the message.
        """
        before = dict(self._totals)
        before_uncertain = self.uncertain_assets()
        if message.type == "snapshot":
            self.clear()
            for item in message.data:
                if item.exec_type != "trade":
                    self._merge(item)
        else:
            for item in message.data:
                self._merge(item)
        after_uncertain = self.uncertain_assets()
        changed = {
            asset
            for asset in before.keys() | self._totals.keys()
            if before.get(asset, ZERO) != self._totals.get(asset, ZERO)
        }
        return changed | (before_uncertain ^ after_uncertain)

    def _merge(self, item: Execution) -> None:
        old = self._orders.get(item.order_id)
        order = old if old is not None else TrackedOrder(order_id=item.order_id)
        status = item.order_status
        if status is None and item.exec_type in CLOSED_STATUSES:
            status = item.exec_type
        cum_qty = order.cum_qty
        if item.cum_qty is not None and item.cum_qty > cum_qty:
            # cum_qty only grows; an older event arriving late must not lower it.
            cum_qty = item.cum_qty
        order = replace(
            order,
            symbol=item.symbol or order.symbol,
            side=item.side or order.side,
            order_type=item.order_type or order.order_type,
            order_qty=item.order_qty if item.order_qty is not None else order.order_qty,
            cum_qty=cum_qty,
            limit_price=item.limit_price if item.limit_price is not None else order.limit_price,
            status=status or order.status,
            cl_ord_id=item.cl_ord_id or order.cl_ord_id,
        )
        if old is not None:
            self._contribute(old, -1)
        if status in CLOSED_STATUSES:
            self._orders.pop(order.order_id, None)
            if order.cl_ord_id is not None:
                self._closed.add(order.cl_ord_id)
            return
        order = self._with_hold(order)
        self._orders[order.order_id] = order
        self._contribute(order, +1)

    def _with_hold(self, order: TrackedOrder) -> TrackedOrder:
        if order.symbol is None or order.side is None:
            return replace(order, hold_asset=None, hold=None)
        try:
            base, quote = split_symbol(order.symbol)
        except ValueError:
            return replace(order, hold_asset=None, hold=None)
        asset = quote if order.side == "buy" else base
        remaining = order.remaining_qty
        if remaining is None or order.side not in ("buy", "sell"):
            return replace(order, hold_asset=asset, hold=None)
        hold = hold_for_order(
            order.side,
            order.order_type,
            remaining,
            order.limit_price,
            self._fee_rate,
            self._decimals(quote),
            base_decimals=self._decimals(base),
        )
        return replace(order, hold_asset=asset, hold=hold)

    def _contribute(self, order: TrackedOrder, sign: int) -> None:
        """Add (``sign=+1``) or remove (``-1``) one order's hold from the totals."""
        asset = order.hold_asset
        if asset is None:
            return
        if order.hold is None:
            ids = self._uncertain.setdefault(asset, set())
            if sign > 0:
                ids.add(order.order_id)
            else:
                ids.discard(order.order_id)
            return
        total = self._totals.get(asset, ZERO) + (order.hold if sign > 0 else -order.hold)
        if total:
            self._totals[asset] = total
        else:
            self._totals.pop(asset, None)


def holds_from_orders(
    orders: Mapping[str, TrackedOrder],
) -> dict[str, Decimal]:
    """Recompute per-asset holds from scratch (a check for the incremental totals)."""
    totals: dict[str, Decimal] = {}
    for order in orders.values():
        if order.hold_asset is not None and order.hold is not None and order.hold:
            totals[order.hold_asset] = totals.get(order.hold_asset, ZERO) + order.hold
    return totals
