"""The simulator's REST API: Kraken's public and private methods under ``/0/``.

Public (``GET``, also ``POST``): ``Time``, ``Assets`` (query ``asset``,
``aclass``), ``AssetPairs`` (query ``pair``), ``SystemStatus``, ``Ticker``
(query ``pair``). Private (``POST``, signed): ``Balance``,
``BalanceEx``, ``TradeBalance``, ``GetWebSocketsToken``, ``AddOrder``,
``CancelOrder``, ``OpenOrders``.

Answers use Kraken's envelope ``{"error": [...], "result": ...}`` with HTTP 200
even for API errors, legacy asset keys (``XXBT``, ``ZUSD``) and amounts as
strings at each asset's decimals (``"1.2435000000"``, ``"25435.2100"``); see
docs/kraken.md, 'REST envelope and HTTP status' and 'REST endpoints we call'.
An unknown method gets HTTP 404 with ``EGeneral:Unknown method``.

Before anything else each request is offered to the REST faults (HTTP 5xx,
HTML pages, injected error strings, slow answers; see :mod:`.faults`). In
``maintenance`` every private call answers ``EService:Unavailable``
(docs/kraken.md, 'Maintenance and cancel_only').
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web

from balance_manager.core.amounts import ZERO
from balance_manager.exceptions import ExchangeError, InvalidAmountError
from balance_manager.kraken.protocol.rest import encode_envelope, format_amount
from balance_manager.kraken.protocol.timefmt import format_rfc1123, format_rfc3339
from balance_manager.simulator.model.faults import REST_ERROR_CODES, REST_KINDS, FaultKind
from balance_manager.simulator.model.ledger import Account, Order
from balance_manager.simulator.server.context import SimContext

__all__ = [
    "CLOUDFLARE_520_BODY",
    "MAINTENANCE_HTML",
    "PRIVATE_METHODS",
    "PUBLIC_METHODS",
    "add_rest_routes",
    "rest_balances",
]

logger = logging.getLogger(__name__)

#: What Cloudflare answers when the origin fails (the ``http_error`` fault).
CLOUDFLARE_520_BODY = (
    "<!DOCTYPE html>\n<html><head><title>api.kraken.com | 520: Web server is returning an "
    "unknown error</title></head><body><h1>Web server is returning an unknown error</h1>"
    "<p>Error code 520</p><p>Cloudflare Ray ID: 0000000000000000</p></body></html>\n"
)
#: An HTML page where JSON was expected (the ``html_page`` fault; seen during maintenance).
MAINTENANCE_HTML = (
    "<!DOCTYPE html>\n<html><head><title>Kraken | Maintenance</title></head><body>"
    "<h1>Kraken is down for scheduled maintenance</h1>"
    "<p>We will be back shortly.</p></body></html>\n"
)

Handler = Callable[[SimContext, str, Account, Mapping[str, str]], Any]
PublicHandler = Callable[[SimContext, Mapping[str, str]], Any]


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def _error(*codes: str) -> web.Response:
    return _json(encode_envelope(errors=list(codes)))


# -- public methods ----------------------------------------------------------------


def _time(ctx: SimContext, query: Mapping[str, str]) -> dict[str, Any]:
    now = ctx.now()
    return {"unixtime": int(now), "rfc1123": format_rfc1123(now)}


def _system_status(ctx: SimContext, query: Mapping[str, str]) -> dict[str, Any]:
    return {"status": ctx.exchange.status, "timestamp": format_rfc3339(ctx.now(), fraction=False)}


def _assets(ctx: SimContext, query: Mapping[str, str]) -> dict[str, Any]:
    aclass = query.get("aclass", "currency")
    if aclass != "currency":
        return {}
    instruments = ctx.exchange.instruments
    wanted = [name for name in query.get("asset", "").split(",") if name]
    if wanted:
        specs = []
        for name in wanted:
            if not instruments.has_asset(name):
                raise ExchangeError("EQuery:Unknown asset")
            specs.append(instruments.asset(name))
    else:
        specs = list(instruments.assets)
    return {
        spec.rest_key: {
            "aclass": "currency",
            "altname": spec.altname,
            "decimals": spec.decimals,
            "display_decimals": spec.display_decimals,
            "collateral_value": 1,
            "status": "enabled",
        }
        for spec in specs
    }


def _asset_pairs(ctx: SimContext, query: Mapping[str, str]) -> dict[str, Any]:
    instruments = ctx.exchange.instruments
    wanted = [name for name in query.get("pair", "").split(",") if name]
    pairs = [instruments.pair(name) for name in wanted] if wanted else list(instruments.pairs)
    result = {}
    for pair in pairs:
        base = instruments.asset(pair.base)
        quote = instruments.asset(pair.quote)
        result[pair.rest_name] = {
            "altname": pair.altname,
            "wsname": pair.wsname,
            "aclass_base": "currency",
            "base": base.rest_key,
            "aclass_quote": "currency",
            "quote": quote.rest_key,
            "lot": "unit",
            "cost_decimals": pair.cost_decimals,
            "pair_decimals": pair.pair_decimals,
            "lot_decimals": pair.lot_decimals,
            "lot_multiplier": 1,
            "leverage_buy": [],
            "leverage_sell": [],
            "fees": [[0, 0.26]],
            "fees_maker": [[0, 0.16]],
            "fee_volume_currency": "ZUSD",
            "margin_call": 80,
            "margin_stop": 40,
            "ordermin": f"{pair.ordermin:f}",
            "costmin": f"{pair.costmin:f}",
            "tick_size": f"{pair.tick_size:f}",
            "status": "online",
        }
    return result


def _ticker(ctx: SimContext, query: Mapping[str, str]) -> dict[str, Any]:
    instruments = ctx.exchange.instruments
    wanted = [name for name in query.get("pair", "").split(",") if name]
    pairs = [instruments.pair(name) for name in wanted] if wanted else list(instruments.pairs)
    result = {}
    for pair in pairs:
        price = ctx.exchange.price(pair.symbol)
        bid, ask = ctx.exchange.quote(pair.symbol)
        result[pair.rest_name] = {
            "a": [f"{ask:f}", "1", "1.000"],
            "b": [f"{bid:f}", "1", "1.000"],
            "c": [f"{price:f}", "0.00100000"],
        }
    return result


#: Public methods by name.
PUBLIC_METHODS: dict[str, PublicHandler] = {
    "Time": _time,
    "SystemStatus": _system_status,
    "Assets": _assets,
    "AssetPairs": _asset_pairs,
    "Ticker": _ticker,
}


# -- private methods ----------------------------------------------------------------


def rest_balances(ctx: SimContext, account: Account) -> dict[str, tuple[Decimal, Decimal, int]]:
    """Per REST key: ``(balance, hold_trade, decimals)``; earn wallets under suffixed keys."""
    instruments = ctx.exchange.instruments
    holds = account.holds()
    rows: dict[str, tuple[Decimal, Decimal, int]] = {}
    for (asset, wallet_type, wallet_id), value in sorted(account.wallets().items()):
        key = instruments.rest_key(asset, wallet_type, wallet_id)
        decimals = instruments.decimals(asset)
        hold = holds.get(asset, ZERO) if wallet_type == "spot" else ZERO
        before, held, _ = rows.get(key, (ZERO, ZERO, decimals))
        rows[key] = (before + value, held + hold, decimals)
    return rows


def _balance(
    ctx: SimContext, api_key: str, account: Account, fields: Mapping[str, str]
) -> dict[str, str]:
    return {
        key: format_amount(value, decimals)
        for key, (value, _, decimals) in rest_balances(ctx, account).items()
    }


def _balance_ex(
    ctx: SimContext, api_key: str, account: Account, fields: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    return {
        key: {
            "balance": format_amount(value, decimals),
            "hold_trade": format_amount(hold, decimals),
        }
        for key, (value, hold, decimals) in rest_balances(ctx, account).items()
    }


def _trade_balance(
    ctx: SimContext, api_key: str, account: Account, fields: Mapping[str, str]
) -> dict[str, str]:
    instruments = ctx.exchange.instruments
    quote = instruments.asset(fields.get("asset", "ZUSD"))
    total = ZERO
    for asset in account.assets():
        total += account.tradable(asset) * _rate(ctx, asset, quote.name)
    open_value = sum(
        (order.remaining * (order.limit_price or ZERO) for order in account.open_orders()),
        ZERO,
    )
    text = format_amount(total, quote.decimals)
    zero = format_amount(ZERO, quote.decimals)
    return {
        "eb": text,
        "tb": text,
        "m": zero,
        "n": zero,
        "c": zero,
        "v": zero,
        "e": text,
        "mf": text,
        "uv": format_amount(open_value, quote.decimals),
    }


def _rate(ctx: SimContext, asset: str, quote: str) -> Decimal:
    """Price of one ``asset`` in ``quote`` from a direct or inverse pair (0 if none)."""
    if asset == quote:
        return Decimal(1)
    for pair in ctx.exchange.instruments.pairs:
        if pair.base == asset and pair.quote == quote:
            return ctx.exchange.price(pair.symbol)
        if pair.base == quote and pair.quote == asset:
            return 1 / ctx.exchange.price(pair.symbol)
    return ZERO


def _token(
    ctx: SimContext, api_key: str, account: Account, fields: Mapping[str, str]
) -> dict[str, Any]:
    token = ctx.auth.issue_token(api_key, ctx.monotonic())
    return {"token": token, "expires": int(ctx.auth.token_ttl)}


def _describe(order: Order, altname: str) -> str:
    price = "market" if order.limit_price is None else f"limit {order.limit_price:f}"
    return f"{order.side} {order.order_qty:.8f} {altname} @ {price}"


def _add_order(
    ctx: SimContext, api_key: str, account: Account, fields: Mapping[str, str]
) -> dict[str, Any]:
    for required in ("pair", "type", "ordertype", "volume"):
        if not fields.get(required):
            raise ExchangeError(f"EGeneral:Invalid arguments:{required}")
    pair = ctx.exchange.instruments.pair(fields["pair"])
    userref = fields.get("userref")
    if userref is not None and not userref.lstrip("-").isdigit():
        raise ExchangeError("EGeneral:Invalid arguments:userref")
    if fields.get("validate", "").lower() in ("true", "1"):
        price = fields.get("price", "")
        where = "market" if fields["ordertype"] == "market" else f"limit {price}"
        return {"descr": {"order": f"{fields['type']} {fields['volume']} {pair.altname} @ {where}"}}
    order = ctx.exchange.place_order(
        account,
        pair.symbol,
        fields["type"],
        fields["ordertype"],
        fields["volume"],
        now=ctx.now(),
        price=fields.get("price"),
        userref=int(userref) if userref is not None else None,
        cl_ord_id=fields.get("cl_ord_id"),
    )
    return {"descr": {"order": _describe(order, pair.altname)}, "txid": [order.order_id]}


def _cancel_order(
    ctx: SimContext, api_key: str, account: Account, fields: Mapping[str, str]
) -> dict[str, Any]:
    txid = fields.get("txid", "")
    if not txid:
        raise ExchangeError("EGeneral:Invalid arguments:txid")
    ctx.exchange.cancel_order(account, txid, now=ctx.now())
    return {"count": 1}


def _open_orders(
    ctx: SimContext, api_key: str, account: Account, fields: Mapping[str, str]
) -> dict[str, Any]:
    instruments = ctx.exchange.instruments
    result = {}
    for order in account.open_orders():
        pair = instruments.pair(order.symbol)
        quote_decimals = instruments.decimals(pair.quote)
        result[order.order_id] = {
            "refid": None,
            "userref": order.userref,
            "cl_ord_id": order.cl_ord_id,
            "status": "open",
            "opentm": round(order.created, 4),
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": pair.altname,
                "type": order.side,
                "ordertype": order.order_type,
                "price": f"{order.limit_price or ZERO:f}",
                "price2": "0",
                "leverage": "none",
                "order": _describe(order, pair.altname),
                "close": "",
            },
            "vol": f"{order.order_qty:.8f}",
            "vol_exec": f"{order.cum_qty:.8f}",
            "cost": format_amount(order.cum_cost, quote_decimals),
            "fee": format_amount(order.fee_paid, quote_decimals),
            "price": format_amount(order.avg_price, pair.pair_decimals),
            "stopprice": "0.00000",
            "limitprice": "0.00000",
            "misc": "",
            "oflags": "fciq",
        }
    return {"open": result}


#: Private methods by name.
PRIVATE_METHODS: dict[str, Handler] = {
    "Balance": _balance,
    "BalanceEx": _balance_ex,
    "TradeBalance": _trade_balance,
    "GetWebSocketsToken": _token,
    "AddOrder": _add_order,
    "CancelOrder": _cancel_order,
    "OpenOrders": _open_orders,
}


# -- the handlers --------------------------------------------------------------------


_SLOW = frozenset({FaultKind.SLOW_RESPONSE})
_LATE = frozenset({FaultKind.SLOW_ANSWER})
_ANSWERING = REST_KINDS - _SLOW - _LATE


async def _answer_late(
    ctx: SimContext, method: str, answer: Awaitable[web.Response]
) -> web.Response:
    """``answer``, computed now and delivered after any ``slow_answer`` fault's seconds."""
    late = ctx.faults.take(_LATE, endpoint=method, limit=1)
    response = await answer
    for fault in late:
        await ctx.clock.sleep(fault.seconds or 0.0)
    return response


async def _apply_faults(ctx: SimContext, method: str) -> web.Response | None:
    """A response forced by a fault, or ``None`` (after any injected delay).

    A request may be slowed and then answered by one fault; further faults wait
    for later requests (each fault that fires acts).
    """
    for slow in ctx.faults.take(_SLOW, endpoint=method, limit=1):
        await ctx.clock.sleep(slow.seconds or 0.0)
    for fault in ctx.faults.take(_ANSWERING, endpoint=method, limit=1):
        if fault.kind is FaultKind.HTTP_ERROR:
            return web.Response(
                text=CLOUDFLARE_520_BODY, status=fault.status or 520, content_type="text/html"
            )
        elif fault.kind is FaultKind.HTML_PAGE:
            return web.Response(
                text=MAINTENANCE_HTML, status=fault.status or 200, content_type="text/html"
            )
        else:
            return _error(REST_ERROR_CODES[fault.kind])
    return None


def _public_handler(ctx: SimContext) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        handler = PUBLIC_METHODS.get(method)
        if handler is None:
            return _json(encode_envelope(errors=["EGeneral:Unknown method"]), status=404)
        for listener in ctx.on_request:
            listener(method)
        return await _answer_late(ctx, method, answer(request, method, handler))

    async def answer(request: web.Request, method: str, handler: PublicHandler) -> web.Response:
        forced = await _apply_faults(ctx, method)
        if forced is not None:
            return forced
        query: dict[str, str] = dict(request.query)
        if request.method == "POST":
            query.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        try:
            return _json(encode_envelope(handler(ctx, query)))
        except ExchangeError as exc:
            return _error(exc.code)

    return handle


def _private_handler(ctx: SimContext) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        handler = PRIVATE_METHODS.get(method)
        if handler is None:
            return _json(encode_envelope(errors=["EGeneral:Unknown method"]), status=404)
        body = await request.read()
        for listener in ctx.on_request:
            listener(method)
        return await _answer_late(ctx, method, answer(request, method, handler, body))

    async def answer(
        request: web.Request, method: str, handler: Handler, body: bytes
    ) -> web.Response:
        forced = await _apply_faults(ctx, method)
        if forced is not None:
            return forced
        if request.method != "POST":
            return _error("EGeneral:Invalid arguments")
        if ctx.exchange.status == "maintenance":
            return _error("EService:Unavailable")
        try:
            api_key, fields = ctx.auth.authenticate(
                method,
                request.path,
                request.headers,
                body,
                now=ctx.monotonic(),
                content_type=request.headers.get("Content-Type", ""),
            )
            account = ctx.account_for_key(api_key)
            return _json(encode_envelope(handler(ctx, api_key, account, fields)))
        except ExchangeError as exc:
            logger.debug("%s refused: %s", method, exc.code)
            return _error(exc.code)
        except InvalidAmountError as exc:
            # Beyond what the ledger represents: Kraken's answer to a bad argument
            # (``volume × price`` is the volume's fault as much as the price's).
            logger.debug("%s refused: %s", method, exc)
            return _error(f"EGeneral:Invalid arguments:{exc.field.split()[0]}")

    return handle


def add_rest_routes(app: web.Application, ctx: SimContext) -> None:
    """Route ``/0/public/{method}`` and ``/0/private/{method}`` to the simulator."""
    app.router.add_route("*", "/0/public/{method}", _public_handler(ctx))
    app.router.add_route("*", "/0/private/{method}", _private_handler(ctx))
