"""The simulator's WebSocket v2 frames, built with the client library's own schema.

Frames are encoded by :mod:`balance_manager.kraken.protocol.ws_messages` (the structs
and encoders the client decodes with), so the simulator cannot drift from the
client's idea of the protocol. Field values follow Kraken's example messages,
kept in ``tests/kraken/protocol/fixtures`` (``ws_status.json``, ``ws_balances_snapshot.json``,
``ws_balances_update_*.json``, ``ws_executions_update_trade.json``,
``ws_pong.json``); amounts are JSON numbers with every significant digit
(docs/kraken.md, 'Numbers'), written as :func:`~balance_manager.simulator.model.wire.plain`
decimals (``0.005``, ``0.0``, ``500``).

Two frames have no encoder there and are built here: the public
``instrument`` snapshot, and the error answer to a frame that has no
``method`` (not JSON, say), which Kraken cannot echo a method for.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from balance_manager.kraken.protocol import ws_messages as wsm
from balance_manager.kraken.protocol.ticker import encode_ticker
from balance_manager.kraken.protocol.timefmt import format_rfc3339
from balance_manager.simulator.model.instruments import Instruments
from balance_manager.simulator.model.ledger import Account, LedgerEntry, Order, OrderEvent
from balance_manager.simulator.model.wire import encode_json, plain, wire_number, wire_numbers

__all__ = [
    "HEARTBEAT_FRAME",
    "MALFORMED_FRAME",
    "anonymous_error_frame",
    "balances_snapshot_frame",
    "balances_update_frame",
    "execution_item",
    "executions_frame",
    "instrument_snapshot_frame",
    "open_order_item",
    "pong_frame",
    "response_frame",
    "status_frame",
    "ticker_frame",
]

#: The heartbeat frame (fixture ``ws_heartbeat.json``).
HEARTBEAT_FRAME = wsm.encode_heartbeat()
#: What the ``ws_malformed`` fault sends: a frame cut short, not valid JSON.
MALFORMED_FRAME = b'{"channel":"balances","type":"update","data":[{"ledger_id":"L'


def status_frame(connection_id: int, system: str) -> bytes:
    """The ``status`` update sent on connect and on every status change."""
    return wsm.encode_status(connection_id=connection_id, system=system)


def response_frame(
    method: str,
    *,
    success: bool,
    time_in: float,
    time_out: float,
    req_id: int | None = None,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> bytes:
    """The answer to a request: an acknowledgement or ``success: false`` with ``error``."""
    return wsm.encode_method_response(
        method,
        success=success,
        result=result,
        error=error,
        req_id=req_id,
        time_in=time_in,
        time_out=time_out,
    )


def anonymous_error_frame(error: str, *, time_in: float, time_out: float) -> bytes:
    """The error answer to a frame without a readable ``method`` (not JSON, wrong shape)."""
    return encode_json(
        {
            "error": error,
            "success": False,
            "time_in": format_rfc3339(time_in),
            "time_out": format_rfc3339(time_out),
        }
    )


def pong_frame(req_id: int | None, time_in: float, time_out: float) -> bytes:
    """The answer to ``ping`` (fixture ``ws_pong.json``)."""
    return wsm.encode_pong(req_id, time_in, time_out)


def balances_snapshot_frame(account: Account, sequence: int) -> bytes:
    """Every asset of ``account`` with its wallets; ``balance`` is the all-wallet total."""
    by_asset: dict[str, list[tuple[str, str, Decimal]]] = {}
    for (asset, wallet_type, wallet_id), value in account.wallets().items():
        by_asset.setdefault(asset, []).append((wallet_type, wallet_id, value))
    assets = []
    for asset in sorted(by_asset):
        # Spot first, then earn wallets by id, as in the documented snapshot.
        wallets = sorted(by_asset[asset], key=lambda w: (w[0] != "spot", w[1]))
        assets.append(
            wsm.AssetBalance(
                asset=asset,
                asset_class="currency",
                balance=plain(sum((w[2] for w in wallets), Decimal(0))),
                wallets=tuple(
                    wsm.WalletBalance(type=wt, id=wid, balance=plain(value))
                    for wt, wid, value in wallets
                ),
            )
        )
    return wsm.encode_balances_snapshot(assets, sequence)


def balances_update_frame(entry: LedgerEntry, sequence: int) -> bytes:
    """One ledger entry as a ``balances`` update; ``balance`` is the wallet's."""
    item = wsm.LedgerEntry(
        ledger_id=entry.ledger_id,
        ref_id=entry.ref_id,
        timestamp=format_rfc3339(entry.timestamp),
        type=entry.type,
        asset=entry.asset,
        asset_class="currency",
        category=entry.category,
        wallet_type=entry.wallet_type,
        wallet_id=entry.wallet_id,
        amount=plain(entry.amount),
        fee=plain(entry.fee),
        balance=plain(entry.balance),
        subtype=entry.subtype,
    )
    return wsm.encode_balances_update([item], sequence)


def _usd(order: Order, fee: Decimal, instruments: Instruments) -> Decimal | None:
    """The fee in USD when the quote is USD (the simulator converts nothing else)."""
    return plain(fee) if instruments.pair(order.symbol).quote == "USD" else None


def execution_item(event: OrderEvent, instruments: Instruments) -> wsm.Execution:
    """One ``executions`` item for an order event (fixture ``ws_executions_update_trade.json``)."""
    order = event.order
    when = format_rfc3339(event.timestamp)
    if event.exec_type == "pending_new":
        return wsm.Execution(
            order_id=order.order_id,
            exec_type="pending_new",
            order_status="pending_new",
            order_userref=order.userref,
            cl_ord_id=order.cl_ord_id,
            symbol=order.symbol,
            side=order.side,
            order_type=order.order_type,
            order_qty=plain(order.order_qty),
            limit_price=None if order.limit_price is None else plain(order.limit_price),
            time_in_force="GTC",
            timestamp=when,
        )
    if event.exec_type == "trade" and event.trade is not None:
        trade = event.trade
        return wsm.Execution(
            order_id=order.order_id,
            order_userref=order.userref,
            cl_ord_id=order.cl_ord_id,
            exec_id=trade.exec_id,
            exec_type="trade",
            trade_id=trade.trade_id,
            symbol=order.symbol,
            side=order.side,
            last_qty=plain(trade.qty),
            last_price=plain(trade.price),
            liquidity_ind=trade.liquidity,
            cost=plain(trade.cost),
            order_type=order.order_type,
            timestamp=when,
            order_status=order.status,
            cum_qty=plain(order.cum_qty),
            cum_cost=plain(order.cum_cost),
            avg_price=plain(order.avg_price),
            fee_usd_equiv=_usd(order, trade.fee, instruments),
            fees=(wsm.ExecutionFee(asset=trade.fee_asset, qty=plain(trade.fee)),),
        )
    if event.exec_type == "filled":
        return wsm.Execution(
            order_id=order.order_id,
            exec_type="filled",
            order_status="filled",
            cl_ord_id=order.cl_ord_id,
            symbol=order.symbol,
            side=order.side,
            order_qty=plain(order.order_qty),
            cum_qty=plain(order.cum_qty),
            cum_cost=plain(order.cum_cost),
            avg_price=plain(order.avg_price),
            fee_usd_equiv=_usd(order, order.fee_paid, instruments),
            timestamp=when,
        )
    if event.exec_type == "canceled":
        return wsm.Execution(
            order_id=order.order_id,
            exec_type="canceled",
            order_status="canceled",
            cl_ord_id=order.cl_ord_id,
            cum_qty=plain(order.cum_qty),
            reason=event.reason,
            timestamp=when,
        )
    return wsm.Execution(
        order_id=order.order_id, exec_type="new", order_status="new", timestamp=when
    )


def open_order_item(order: Order) -> wsm.Execution:
    """One open order of an ``executions`` snapshot (its current state)."""
    return wsm.Execution(
        order_id=order.order_id,
        exec_type="new",
        order_status=order.status,
        order_userref=order.userref,
        cl_ord_id=order.cl_ord_id,
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        order_qty=plain(order.order_qty),
        limit_price=None if order.limit_price is None else plain(order.limit_price),
        time_in_force="GTC",
        cum_qty=plain(order.cum_qty),
        cum_cost=plain(order.cum_cost),
        avg_price=plain(order.avg_price),
        timestamp=format_rfc3339(order.created),
    )


def executions_frame(kind: str, items: list[wsm.Execution], sequence: int) -> bytes:
    """An ``executions`` snapshot or update."""
    return wsm.encode_executions("snapshot" if kind == "snapshot" else "update", items, sequence)


def instrument_snapshot_frame(instruments: Instruments) -> bytes:
    """The public ``instrument`` snapshot: v2 asset names, precisions and pairs."""
    assets = [
        {
            "id": spec.name,
            "status": "enabled",
            "precision": spec.decimals,
            "precision_display": spec.display_decimals,
            "borrowable": False,
            "collateral_value": wire_number(Decimal(1)),
        }
        for spec in instruments.assets
    ]
    pairs = [
        wire_numbers(
            {
                "symbol": pair.symbol,
                "base": pair.base,
                "quote": pair.quote,
                "status": "online",
                "qty_precision": pair.lot_decimals,
                "qty_increment": Decimal(1).scaleb(-pair.lot_decimals),
                "price_precision": pair.pair_decimals,
                "cost_precision": pair.cost_decimals,
                "marginable": False,
                "has_index": True,
                "cost_min": pair.costmin,
                "tick_size": pair.tick_size,
                "price_increment": pair.tick_size,
                "qty_min": pair.ordermin,
            }
        )
        for pair in instruments.pairs
    ]
    return encode_json(
        {"channel": "instrument", "type": "snapshot", "data": {"assets": assets, "pairs": pairs}}
    )


def ticker_frame(
    kind: Literal["snapshot", "update"],
    symbol: str,
    *,
    bid: Decimal,
    ask: Decimal,
    last: Decimal,
    now: float,
) -> bytes:
    """A public ``ticker`` frame of one pair (docs/kraken.md, 'The ticker channel')."""
    return encode_ticker(kind, symbol, bid=bid, ask=ask, last=last, timestamp=now)
