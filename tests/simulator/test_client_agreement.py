"""Client and simulator agree: the client's builders, decoders and hold rule read the simulator.

The simulator encodes with the client's own schema (``kraken/ws_messages.py``,
``kraken/rest.py``); these tests close the loop over real loopback: requests
built by ``kraken.rest`` authenticate, every REST result decodes with the
client's decoders, every WebSocket frame decodes with ``decode_message``, and
the holds the client derives from ``executions`` equal the simulator's.
"""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import msgspec
import pytest

from balance_manager.exceptions import RateLimitedError, TransportError
from balance_manager.kraken.protocol import rest
from balance_manager.kraken.protocol.assets import AssetNames, fold_rest_balances
from balance_manager.kraken.protocol.holds import OpenOrderBook
from balance_manager.kraken.protocol.signing import NonceSource
from balance_manager.kraken.protocol.ws_messages import (
    BalancesSnapshotMessage,
    BalancesUpdateMessage,
    ExecutionsMessage,
    HeartbeatMessage,
    MethodResponse,
    PongMessage,
    StatusMessage,
    decode_message,
    ping_request,
    subscribe_request,
)
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock

from .helpers import WsTestClient

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


async def call(
    session: aiohttp.ClientSession,
    sim: SimulatedKraken,
    method: str,
    params: dict[str, object] | None = None,
    *,
    nonces: NonceSource,
    encoding: str = "form",
) -> msgspec.Raw:
    """A private call built and read by the client library."""
    prepared = rest.build_private_request(
        method,
        params,
        nonce=nonces(),
        credentials=sim.credentials,
        encoding="json" if encoding == "json" else "form",
    )
    async with session.post(
        prepared.url(sim.rest_url), data=prepared.body, headers=prepared.headers
    ) as response:
        body = await response.read()
        return rest.parse_envelope(
            body, method=method, status=response.status, content_type=response.content_type
        )


async def test_client_requests_and_decoders_read_the_simulator(
    sim: SimulatedKraken, session: aiohttp.ClientSession
) -> None:
    """Every private result decodes with the client's decoders and matches the truth."""
    nonces = NonceSource()
    sim.place_order("BTC/USD", "sell", "limit", "0.5", price="99000")
    balances = rest.decode_balance_ex(await call(session, sim, "BalanceEx", nonces=nonces))
    folded = fold_rest_balances(balances, AssetNames())
    for asset, amount in sim.balances().items():
        assert folded[asset].balance == amount
    assert folded["BTC"].hold_trade == sim.holds()["BTC"]
    plain = rest.decode_balance(await call(session, sim, "Balance", nonces=nonces, encoding="json"))
    assert plain["XXBT"].balance == Decimal("1.2435")
    token = rest.decode_ws_token(await call(session, sim, "GetWebSocketsToken", nonces=nonces))
    assert token.expires == 900
    trade_balance = await call(session, sim, "TradeBalance", nonces=nonces)
    assert rest.decode_trade_balance(trade_balance).eb > 0
    open_orders = rest.decode_open_orders(await call(session, sim, "OpenOrders", nonces=nonces))
    (order,) = open_orders.values()
    assert (order.vol, order.descr.price) == (Decimal("0.5"), Decimal(99000))
    added = rest.decode_add_order(
        await call(
            session,
            sim,
            "AddOrder",
            {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "1", "price": "10"},
            nonces=nonces,
        )
    )
    canceled = rest.decode_cancel_order(
        await call(session, sim, "CancelOrder", {"txid": added.txid[0]}, nonces=nonces)
    )
    assert canceled.count == 1


async def test_client_reads_public_results(
    sim: SimulatedKraken, session: aiohttp.ClientSession
) -> None:
    """Assets, Time and SystemStatus decode with the client's decoders."""

    async def public(method: str, query: dict[str, object] | None = None) -> msgspec.Raw:
        prepared = rest.build_public_request(method, query)
        async with session.get(prepared.url(sim.rest_url), headers=prepared.headers) as response:
            return rest.parse_envelope(await response.read(), method=method, status=response.status)

    assets = rest.decode_assets(await public("Assets", {"asset": ["XBT", "USD"]}))
    names = AssetNames()
    names.update_from_assets({key: msgspec.structs.asdict(a) for key, a in assets.items()})
    assert names.decimals("BTC") == 10
    assert rest.decode_time(await public("Time")).unixtime == int(sim.clock.time())
    assert rest.decode_system_status(await public("SystemStatus")).online


async def test_client_maps_fault_responses_to_its_errors(
    sim: SimulatedKraken, session: aiohttp.ClientSession
) -> None:
    """The client turns an injected rate limit and a Cloudflare 520 into its own error types."""
    nonces = NonceSource()
    sim.faults.rate_limit()
    with pytest.raises(RateLimitedError):
        await call(session, sim, "Balance", nonces=nonces)
    sim.faults.http_error()
    with pytest.raises(TransportError) as info:
        await call(session, sim, "Balance", nonces=nonces)
    assert info.value.status == 520


async def test_every_frame_decodes_and_client_holds_match(
    clock: ManualClock, sim: SimulatedKraken, session: aiohttp.ClientSession, token: str
) -> None:
    """Every kind of frame decodes with decode_message; the client's holds equal the truth."""
    book = OpenOrderBook()
    async with session.ws_connect(sim.ws_url) as connection:
        ws = WsTestClient(connection)

        async def next_message() -> object:
            return decode_message(await ws.recv_text())

        assert isinstance(await next_message(), StatusMessage)
        for channel in ("balances", "executions"):
            await connection.send_bytes(subscribe_request(channel, token=token, req_id=5))
            ack = await next_message()
            assert isinstance(ack, MethodResponse)
            assert ack.success
            assert ack.req_id == 5
            snapshot = await next_message()
            assert isinstance(snapshot, BalancesSnapshotMessage | ExecutionsMessage)
            if isinstance(snapshot, ExecutionsMessage):
                book.apply(snapshot)
        sim.set_price("BTC/USD", "60000")
        resting = sim.place_order("BTC/USD", "buy", "limit", "0.03", price="59000.5")
        sim.place_order("ETH/USD", "sell", "limit", "1.5", price="3500")
        sim.fill(resting.order_id, "0.01")
        sim.deposit("DOT", "5")
        # pending_new + new twice, two ledger legs and a trade event, one deposit.
        for _ in range(8):
            message = await next_message()
            if isinstance(message, ExecutionsMessage):
                book.apply(message)
            assert isinstance(message, ExecutionsMessage | BalancesUpdateMessage)
        assert book.holds() == sim.holds()
        await connection.send_bytes(ping_request(9))
        pong = await next_message()
        assert isinstance(pong, PongMessage)
        assert pong.req_id == 9
        await clock.run_for(1.0)
        assert isinstance(await next_message(), HeartbeatMessage)


async def test_update_balance_is_previous_plus_amount_minus_fee(
    sim: SimulatedKraken, ws: WsTestClient, token: str
) -> None:
    """Decoded updates satisfy balance == previous + amount - fee, wallet by wallet."""
    await ws.subscribe("balances", token)
    snapshot = decode_message(await ws.recv_text())
    assert isinstance(snapshot, BalancesSnapshotMessage)
    wallets = {
        (item.asset, w.type, w.id): w.balance for item in snapshot.data for w in item.wallets
    }
    sim.withdraw("USDT", "5500")  # more than spot: 500 moves from the liquid earn wallet first
    for _ in range(3):
        update = decode_message(await ws.recv_text())
        assert isinstance(update, BalancesUpdateMessage)
        (entry,) = update.data
        key = (entry.asset, entry.wallet_type, entry.wallet_id)
        assert wallets[key] + entry.amount - entry.fee == entry.balance
        wallets[key] = entry.balance
    assert wallets[("USDT", "spot", "main")] == 0
    assert wallets[("USDT", "earn", "liquid")] == Decimal(500)
