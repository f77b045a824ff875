"""The control endpoint: drive a running simulator from another process (``/_sim/...``).

JSON in, JSON out; amounts travel as strings (JSON numbers are read as exact
decimals too). Every call that acts on an account takes ``"account"`` (a
name, default ``"default"``) or ``"api_key"``.

=======================  ====================================================
request                  effect
=======================  ====================================================
``GET /_sim/state``      status, prices, accounts (wallets, holds, free,
                         open orders), active faults and fired faults
``POST /_sim/faults``    inject: ``{"kind": "ws_drop", "times": 1, "after": 0,
                         "at": null, "seconds": null, "status": null,
                         "endpoint": null, "channel": null}`` → ``{"fault": {...}}``
``DELETE /_sim/faults``  clear every fault (``/_sim/faults/{id}``: one)
``POST /_sim/deposit``   ``{"asset": "BTC", "amount": "0.5"}`` (+ ``wallet_type``,
                         ``wallet_id``)
``POST /_sim/withdraw``  ``{"asset": "USD", "amount": "100", "fee": "0"}``
``POST /_sim/order``     ``{"pair": "BTC/USD", "side": "buy", "type": "limit",
                         "volume": "0.01", "price": "50000"}``
``POST /_sim/cancel``    ``{"order_id": "O..."}``
``POST /_sim/fill``      ``{"order_id": "O...", "volume": "0.005", "price": "..."}``
``POST /_sim/price``     ``{"pair": "BTC/USD", "price": "61000"}``
``POST /_sim/status``    ``{"status": "maintenance"}``
``POST /_sim/expire_tokens``  invalidate every WebSocket token issued so far
=======================  ====================================================

Errors answer HTTP 400 with ``{"error": "..."}`` (an exchange refusal carries
Kraken's string, e.g. ``EFunding:Insufficient funds``; a body that is not JSON or
is nested too deeply says so; an amount the ledger cannot represent, beyond 28
significant digits, names its field). The endpoint has no
authentication: it is meant for loopback use, like the simulator itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import msgspec
from aiohttp import web

from balance_manager.exceptions import BalanceManagerError, ExchangeError
from balance_manager.simulator.model.ledger import Account, LedgerEntry, Order, Trade
from balance_manager.simulator.server.context import SimContext

__all__ = ["CONTROL_PREFIX", "add_control_routes", "describe_state"]

#: Path prefix of the control endpoint.
CONTROL_PREFIX = "/_sim"

_decoder = msgspec.json.Decoder(float_hook=Decimal)
_encoder = msgspec.json.Encoder(decimal_format="string")


class _BadRequest(Exception):
    pass


def _reply(payload: object, status: int = 200) -> web.Response:
    return web.Response(
        body=_encoder.encode(payload), status=status, content_type="application/json"
    )


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        decoded = _decoder.decode(raw or b"{}")
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise _BadRequest("the body is not JSON") from None
    except RecursionError:
        raise _BadRequest("the body is JSON nested too deeply") from None
    if not isinstance(decoded, dict):
        raise _BadRequest("the body must be a JSON object")
    return decoded


def _text(body: dict[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if value is None:
        raise _BadRequest(f"missing field {name!r}")
    if isinstance(value, bool):
        raise _BadRequest(f"field {name!r} must be text")
    return value if isinstance(value, str) else str(value)


def _account(ctx: SimContext, body: dict[str, Any]) -> Account:
    api_key = body.get("api_key")
    if isinstance(api_key, str):
        return ctx.account_for_key(api_key)
    return ctx.exchange.account(_text(body, "account", "default"))


def _plain(value: LedgerEntry | Order | Trade) -> dict[str, Any]:
    """A ledger entry, an order or a trade as JSON-ready fields (every field of the model)."""
    return dataclasses.asdict(value)


def describe_state(ctx: SimContext) -> dict[str, Any]:
    """Everything the control endpoint's ``GET /_sim/state`` shows."""
    keys_by_account: dict[str, list[str]] = {}
    for key, name in ctx.accounts_by_key.items():
        keys_by_account.setdefault(name, []).append(key)
    accounts = {}
    for account in ctx.exchange.accounts():
        accounts[account.name] = {
            "api_keys": keys_by_account.get(account.name, []),
            "balances": account.balances(),
            "holds": account.holds(),
            "free": {asset: account.free(asset) for asset in account.assets()},
            "wallets": [
                {"asset": a, "wallet_type": wt, "wallet_id": wid, "balance": value}
                for (a, wt, wid), value in sorted(account.wallets().items())
            ],
            "open_orders": [_plain(order) for order in account.open_orders()],
            "ledger_entries": len(account.entries),
        }
    return {
        "status": ctx.exchange.status,
        "prices": ctx.exchange.prices(),
        "accounts": accounts,
        "faults": [fault.to_dict() for fault in ctx.faults.active()],
        "fired": [
            {"id": f.fault_id, "kind": f.kind.value, "at": f.at, "where": f.where}
            for f in ctx.faults.history
        ],
        "websocket_connections": len(ctx.connections),
    }


def _routes(ctx: SimContext) -> list[tuple[str, str, Callable[[web.Request], Awaitable[Any]]]]:
    async def state(request: web.Request) -> Any:
        return describe_state(ctx)

    async def inject(request: web.Request) -> Any:
        body = await _body(request)
        options = {
            name: body[name]
            for name in ("times", "after", "at", "seconds", "status", "endpoint", "channel")
            if name in body
        }
        for name in ("at", "seconds"):
            if isinstance(options.get(name), Decimal | int):
                options[name] = float(options[name])
        fault = ctx.faults.inject(_text(body, "kind"), **options)
        return {"fault": fault.to_dict()}

    async def clear(request: web.Request) -> Any:
        fault_id = request.match_info.get("fault_id")
        if fault_id is None:
            ctx.faults.clear()
        elif fault_id.isdigit():
            ctx.faults.clear(int(fault_id))
        else:
            raise _BadRequest("the fault id must be a number")
        return {"faults": [fault.to_dict() for fault in ctx.faults.active()]}

    async def deposit(request: web.Request) -> Any:
        body = await _body(request)
        entries = _account(ctx, body).deposit(
            _text(body, "asset"),
            _text(body, "amount"),
            now=ctx.now(),
            wallet_type=_text(body, "wallet_type", "spot"),
            wallet_id=_text(body, "wallet_id", "main"),
        )
        return {"entries": [_plain(e) for e in entries]}

    async def withdraw(request: web.Request) -> Any:
        body = await _body(request)
        entries = _account(ctx, body).withdraw(
            _text(body, "asset"), _text(body, "amount"), now=ctx.now(), fee=_text(body, "fee", "0")
        )
        return {"entries": [_plain(e) for e in entries]}

    async def order(request: web.Request) -> Any:
        body = await _body(request)
        price = body.get("price")
        placed = ctx.exchange.place_order(
            _account(ctx, body),
            _text(body, "pair"),
            _text(body, "side"),
            _text(body, "type", "limit"),
            _text(body, "volume"),
            now=ctx.now(),
            price=None if price is None else _text(body, "price"),
        )
        return {"order": _plain(placed)}

    async def cancel(request: web.Request) -> Any:
        body = await _body(request)
        canceled = ctx.exchange.cancel_order(
            _account(ctx, body), _text(body, "order_id"), now=ctx.now()
        )
        return {"order": _plain(canceled)}

    async def fill(request: web.Request) -> Any:
        body = await _body(request)
        account = _account(ctx, body)
        target = account.order(_text(body, "order_id"))
        volume = _text(body, "volume", str(target.remaining))
        price = _text(body, "price", str(target.limit_price or ctx.exchange.price(target.symbol)))
        return {"trade": _plain(account.fill(target.order_id, volume, price, now=ctx.now()))}

    async def price(request: web.Request) -> Any:
        body = await _body(request)
        trades = ctx.exchange.set_price(_text(body, "pair"), _text(body, "price"), now=ctx.now())
        return {"trades": [_plain(t) for t in trades]}

    async def status(request: web.Request) -> Any:
        body = await _body(request)
        ctx.exchange.set_status(_text(body, "status"))
        return {"status": ctx.exchange.status}

    async def expire_tokens(request: web.Request) -> Any:
        return {"revoked": ctx.faults.expire_tokens_now()}

    return [
        ("GET", "/state", state),
        ("POST", "/faults", inject),
        ("DELETE", "/faults", clear),
        ("DELETE", "/faults/{fault_id}", clear),
        ("POST", "/deposit", deposit),
        ("POST", "/withdraw", withdraw),
        ("POST", "/order", order),
        ("POST", "/cancel", cancel),
        ("POST", "/fill", fill),
        ("POST", "/price", price),
        ("POST", "/status", status),
        ("POST", "/expire_tokens", expire_tokens),
    ]


def _wrap(
    action: Callable[[web.Request], Awaitable[Any]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            return _reply(await action(request))
        except ExchangeError as exc:
            return _reply({"error": exc.code}, status=400)
        except (_BadRequest, BalanceManagerError, TypeError, ValueError) as exc:
            # TypeError/ValueError: a field of the wrong JSON type ("times": "two").
            return _reply({"error": str(exc)}, status=400)

    return handle


def add_control_routes(app: web.Application, ctx: SimContext) -> None:
    """Add the ``/_sim/...`` routes (see module docs) to ``app``."""
    for method, path, action in _routes(ctx):
        app.router.add_route(method, CONTROL_PREFIX + path, _wrap(action))
