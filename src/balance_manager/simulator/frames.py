"""The simulator's WebSocket v2 frames, in the shapes of Kraken's documented examples.

Each builder returns the frame's bytes. Field names and order follow the
fixtures in ``shared/kraken/fixtures`` (``ws_status.json``,
``ws_balances_snapshot.json``, ``ws_balances_update_*.json``,
``ws_executions_update_trade.json``, ``ws_pong.json``...); amounts are JSON
numbers written from their ``Decimal`` digits (PROTOCOL.md §8.6).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from balance_manager.simulator.instruments import Instruments
from balance_manager.simulator.ledger import Account, LedgerEntry, Order, OrderEvent
from balance_manager.simulator.wire import encode_json, rfc3339, wire_number, wire_numbers

__all__ = [
    "HEARTBEAT_FRAME",
    "MALFORMED_FRAME",
    "balances_snapshot_frame",
    "balances_update_frame",
    "execution_item",
    "executions_frame",
    "instrument_snapshot_frame",
    "open_order_item",
    "pong_frame",
    "response_frame",
    "status_frame",
]

#: The heartbeat frame (fixture ``ws_heartbeat.json``).
HEARTBEAT_FRAME = b'{"channel":"heartbeat"}'
#: What the ``ws_malformed`` fault sends: a frame cut short, not valid JSON.
MALFORMED_FRAME = b'{"channel":"balances","type":"update","data":[{"ledger_id":"L'


def status_frame(connection_id: int, system: str) -> bytes:
    """The ``status`` update sent on connect and on every status change (§8.8)."""
    info = {
        "api_version": "v2",
        "connection_id": connection_id,
        "system": system,
        "version": "2.0.0",
    }
    return encode_json({"channel": "status", "data": [info], "type": "update"})


def response_frame(
    method: str | None,
    *,
    success: bool,
    time_in: float,
    time_out: float,
    req_id: int | None = None,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> bytes:
    """The answer to a request (§8.1): an acknowledgement or ``success: false`` with ``error``."""
    message: dict[str, Any] = {}
    if error is not None:
        message["error"] = error
    if method is not None:
        message["method"] = method
    if result is not None:
        message["result"] = dict(result)
    message["success"] = success
    message["time_in"] = rfc3339(time_in)
    message["time_out"] = rfc3339(time_out)
    if req_id is not None:
        message["req_id"] = req_id
    return encode_json(message)


def pong_frame(req_id: int | None, time_in: float, time_out: float) -> bytes:
    """The answer to ``ping`` (fixture ``ws_pong.json``)."""
    message: dict[str, Any] = {"method": "pong"}
    if req_id is not None:
        message["req_id"] = req_id
    message["time_in"] = rfc3339(time_in)
    message["time_out"] = rfc3339(time_out)
    return encode_json(message)


def balances_snapshot_frame(account: Account, sequence: int) -> bytes:
    """Every asset of ``account`` with its wallets (§8.3); ``balance`` is the all-wallet total."""
    by_asset: dict[str, list[tuple[str, str, Decimal]]] = {}
    for (asset, wallet_type, wallet_id), value in account.wallets().items():
        by_asset.setdefault(asset, []).append((wallet_type, wallet_id, value))
    data = []
    for asset in sorted(by_asset):
        # Spot first, then earn wallets by id, as in the documented snapshot.
        wallets = sorted(by_asset[asset], key=lambda w: (w[0] != "spot", w[1]))
        data.append(
            {
                "asset": asset,
                "asset_class": "currency",
                "balance": wire_number(sum((w[2] for w in wallets), Decimal(0))),
                "wallets": [
                    {"type": wt, "id": wid, "balance": wire_number(value)}
                    for wt, wid, value in wallets
                ],
            }
        )
    return encode_json(
        {"channel": "balances", "data": data, "type": "snapshot", "sequence": sequence}
    )


def balances_update_frame(entry: LedgerEntry, sequence: int) -> bytes:
    """One ledger entry as a ``balances`` update (§8.4); ``balance`` is the wallet's."""
    item: dict[str, Any] = {
        "ledger_id": entry.ledger_id,
        "ref_id": entry.ref_id,
        "timestamp": rfc3339(entry.timestamp),
        "type": entry.type,
    }
    if entry.subtype is not None:
        item["subtype"] = entry.subtype
    item.update(
        {
            "asset": entry.asset,
            "asset_class": "currency",
            "category": entry.category,
            "wallet_type": entry.wallet_type,
            "wallet_id": entry.wallet_id,
            "amount": wire_number(entry.amount),
            "fee": wire_number(entry.fee),
            "balance": wire_number(entry.balance),
        }
    )
    return encode_json(
        {"channel": "balances", "type": "update", "data": [item], "sequence": sequence}
    )


def _order_fields(order: Order) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "symbol": order.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "order_qty": order.order_qty,
    }
    if order.limit_price is not None:
        fields["limit_price"] = order.limit_price
    fields["time_in_force"] = "GTC"
    if order.userref is not None:
        fields["order_userref"] = order.userref
    return fields


def _fee_usd(event: OrderEvent, fee: Decimal, instruments: Instruments) -> Decimal | None:
    pair = instruments.pair(event.order.symbol)
    return fee if pair.quote == "USD" else None


def execution_item(event: OrderEvent, instruments: Instruments) -> dict[str, Any]:
    """One ``executions`` item for an order event (fixture ``ws_executions_update_trade.json``)."""
    order = event.order
    item: dict[str, Any] = {"order_id": order.order_id}
    if event.exec_type == "pending_new":
        item.update(exec_type="pending_new", order_status="pending_new", **_order_fields(order))
    elif event.exec_type == "new":
        item.update(exec_type="new", order_status="new")
    elif event.exec_type == "trade" and event.trade is not None:
        trade = event.trade
        if order.userref is not None:
            item["order_userref"] = order.userref
        item.update(
            exec_id=trade.exec_id,
            exec_type="trade",
            trade_id=trade.trade_id,
            symbol=order.symbol,
            side=order.side,
            last_qty=trade.qty,
            last_price=trade.price,
            liquidity_ind=trade.liquidity,
            cost=trade.cost,
            order_type=order.order_type,
        )
        item["timestamp"] = rfc3339(event.timestamp)
        item.update(
            order_status=order.status,
            cum_qty=order.cum_qty,
            cum_cost=order.cum_cost,
            avg_price=order.avg_price,
        )
        usd = _fee_usd(event, trade.fee, instruments)
        if usd is not None:
            item["fee_usd_equiv"] = usd
        item["fees"] = [{"asset": trade.fee_asset, "qty": wire_number(trade.fee)}]
    elif event.exec_type == "filled":
        item.update(
            exec_type="filled",
            order_status="filled",
            symbol=order.symbol,
            side=order.side,
            order_qty=order.order_qty,
            cum_qty=order.cum_qty,
            cum_cost=order.cum_cost,
            avg_price=order.avg_price,
        )
        usd = _fee_usd(event, order.fee_paid, instruments)
        if usd is not None:
            item["fee_usd_equiv"] = usd
    else:  # canceled
        item.update(exec_type="canceled", order_status="canceled", cum_qty=order.cum_qty)
        if event.reason is not None:
            item["reason"] = event.reason
    item.setdefault("timestamp", rfc3339(event.timestamp))
    return wire_numbers(item)


def open_order_item(order: Order) -> dict[str, Any]:
    """One open order of an ``executions`` snapshot (its current state)."""
    item: dict[str, Any] = {
        "order_id": order.order_id,
        "exec_type": "new",
        "order_status": order.status,
        **_order_fields(order),
        "cum_qty": order.cum_qty,
        "cum_cost": order.cum_cost,
        "avg_price": order.avg_price,
        "timestamp": rfc3339(order.created),
    }
    return wire_numbers(item)


def executions_frame(kind: str, items: Iterable[Mapping[str, Any]], sequence: int) -> bytes:
    """An ``executions`` snapshot or update."""
    return encode_json(
        {"channel": "executions", "type": kind, "data": list(items), "sequence": sequence}
    )


def instrument_snapshot_frame(instruments: Instruments) -> bytes:
    """The public ``instrument`` snapshot: v2 asset names, precisions and pairs (§7.2)."""
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
