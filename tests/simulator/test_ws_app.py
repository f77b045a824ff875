"""The WebSocket v2 endpoint over real loopback: status, subscriptions, streams, heartbeats."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import pytest

from balance_manager.exceptions import InvalidAmountError
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock

from .helpers import KrakenTestClient, WsTestClient

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


async def test_status_is_sent_on_connect(
    sim: SimulatedKraken, session: aiohttp.ClientSession
) -> None:
    """The first frame is a status update with api_version, a big connection_id, system, version."""
    async with session.ws_connect(sim.ws_url) as connection:
        status = await WsTestClient(connection).recv()
    assert status["channel"] == "status"
    assert status["type"] == "update"
    (info,) = status["data"]
    assert info["api_version"] == "v2"
    assert info["system"] == "online"
    assert info["version"] == "2.0.0"
    assert 2**63 <= info["connection_id"] < 2**64


async def test_subscribe_ack_then_snapshot(ws: WsTestClient, token: str) -> None:
    """Subscribing acks with req_id and times, then sends the snapshot with sequence 1."""
    ack = await ws.subscribe("balances", token)
    assert ack["method"] == "subscribe"
    assert ack["result"] == {"channel": "balances", "snapshot": True}
    assert ack["req_id"] == 1
    assert ack["time_in"].endswith("Z")
    assert ack["time_out"] >= ack["time_in"]
    snapshot = await ws.recv()
    assert (snapshot["channel"], snapshot["type"], snapshot["sequence"]) == (
        "balances",
        "snapshot",
        1,
    )
    by_asset = {item["asset"]: item for item in snapshot["data"]}
    assert by_asset["BTC"]["balance"] == Decimal("1.2435")
    assert by_asset["USDT"]["balance"] == Decimal(6000)
    assert {(w["type"], w["id"]) for w in by_asset["USDT"]["wallets"]} == {
        ("spot", "main"),
        ("earn", "liquid"),
    }


async def test_updates_follow_deposits_and_fills_with_sequence(
    sim: SimulatedKraken, ws: WsTestClient, token: str
) -> None:
    """A deposit and a fill stream as updates, one ledger entry each, sequence +1 per message."""
    await ws.subscribe("balances", token)
    await ws.recv()  # snapshot
    sim.deposit("BTC", "0.01")
    deposit = await ws.recv()
    assert (deposit["type"], deposit["sequence"]) == ("update", 2)
    (entry,) = deposit["data"]
    assert entry["type"] == entry["category"] == "deposit"
    assert (entry["asset"], entry["amount"], entry["fee"], entry["balance"]) == (
        "BTC",
        Decimal("0.01"),
        Decimal(0),
        Decimal("1.2535"),
    )
    sim.set_price("BTC/USD", "26000")  # so the sell rests instead of crossing at once
    order = sim.place_order("BTC/USD", "sell", "limit", "0.005", price="26599.9")
    sim.fill(order.order_id)
    btc, usd = await ws.recv(), await ws.recv()
    assert (btc["sequence"], usd["sequence"]) == (3, 4)
    assert btc["data"][0]["ref_id"] == usd["data"][0]["ref_id"]
    assert (btc["data"][0]["amount"], usd["data"][0]["amount"], usd["data"][0]["fee"]) == (
        Decimal("-0.005"),
        Decimal("132.9995"),
        Decimal("0.3458"),
    )
    assert usd["data"][0]["balance"] == Decimal("25435.21") + Decimal("132.9995") - Decimal(
        "0.3458"
    )


async def test_only_representable_amounts_are_taken_and_they_stream_exactly(
    sim: SimulatedKraken, ws: WsTestClient, token: str
) -> None:
    """A 29-digit deposit is refused at the door; the largest representable one streams exactly."""
    await ws.subscribe("balances", token)
    await ws.recv()  # snapshot
    with pytest.raises(InvalidAmountError) as info:
        sim.deposit("USD", "1" + "0" * 28)
    assert info.value.field == "amount"
    top = Decimal("999999999999999999999999.9999")
    sim.deposit("USD", top - sim.balances()["USD"])
    update = await ws.recv()
    assert update["sequence"] == 2  # nothing was sent (or lost) for the refused one
    (entry,) = update["data"]
    assert (entry["asset"], entry["balance"]) == ("USD", top)
    assert sim.balances()["USD"] == top


async def test_snapshot_false_sends_no_snapshot(
    sim: SimulatedKraken, ws: WsTestClient, token: str
) -> None:
    """With snapshot false the first frame after the ack is the first update."""
    await ws.subscribe("balances", token, snapshot=False)
    sim.deposit("ETH", "1")
    update = await ws.recv()
    assert (update["type"], update["sequence"]) == ("update", 1)


async def test_executions_snapshot_and_order_events(
    sim: SimulatedKraken, ws: WsTestClient, token: str
) -> None:
    """executions sends open orders, then pending_new/new/trade/filled/canceled events."""
    resting = sim.place_order("BTC/USD", "sell", "limit", "0.1", price="99000", userref=3)
    await ws.subscribe("executions", token)
    snapshot = await ws.recv()
    assert (snapshot["type"], snapshot["sequence"]) == ("snapshot", 1)
    (open_order,) = snapshot["data"]
    assert open_order["order_id"] == resting.order_id
    assert open_order["limit_price"] == Decimal(99000)
    assert open_order["order_userref"] == 3
    order = sim.place_order("BTC/USD", "buy", "limit", "0.01", price="50000")
    sim.fill(order.order_id)
    sim.cancel_order(resting.order_id)
    frames = [await ws.recv() for _ in range(5)]
    assert [f["sequence"] for f in frames] == [2, 3, 4, 5, 6]
    kinds = [f["data"][0]["exec_type"] for f in frames]
    assert kinds == ["pending_new", "new", "trade", "filled", "canceled"]
    trade = frames[2]["data"][0]
    assert (trade["last_qty"], trade["last_price"], trade["cost"]) == (
        Decimal("0.01"),
        Decimal(50000),
        Decimal(500),
    )
    assert trade["fees"] == [{"asset": "USD", "qty": Decimal("1.3")}]


async def test_heartbeats_when_idle_after_a_subscription(
    clock: ManualClock, ws: WsTestClient, token: str
) -> None:
    """About once a second of silence a heartbeat arrives, once subscribed."""
    await clock.run_for(3.0)
    pong = await ws.request("ping")
    assert pong["method"] == "pong"  # no heartbeat before any subscription
    await ws.subscribe("balances", token)
    await ws.recv()  # snapshot
    await clock.run_for(1.0)
    assert await ws.recv() == {"channel": "heartbeat"}
    await clock.run_for(1.0)
    assert await ws.recv() == {"channel": "heartbeat"}


async def test_ping_answers_pong_with_req_id(ws: WsTestClient) -> None:
    """ping gets pong with the same req_id and both times."""
    await ws.send({"method": "ping", "req_id": 101})
    pong = await ws.recv()
    assert pong["method"] == "pong"
    assert pong["req_id"] == 101
    assert {"time_in", "time_out"} <= set(pong)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"method": "fly"}, "EGeneral:Invalid arguments"),
        ({"method": "subscribe", "params": {"channel": "balances"}}, "EGeneral:Invalid arguments"),
        ({"method": "subscribe", "params": {"channel": "ticker"}}, "EGeneral:Invalid arguments"),
        ({"method": "subscribe", "params": "balances"}, "EGeneral:Invalid arguments"),
        (
            {"method": "subscribe", "params": {"channel": "balances", "token": "nope"}},
            "EAPI:Invalid token",
        ),
        ({"method": "unsubscribe", "params": {"channel": "instrument"}}, "Subscription Not Found"),
        ({"method": "ping", "req_id": "seven"}, "EGeneral:Invalid arguments"),
    ],
)
async def test_bad_requests_get_error_responses(
    ws: WsTestClient, message: dict[str, object], error: str
) -> None:
    """Bad requests are answered with success false and an error string."""
    await ws.send(message)
    reply = await ws.recv()
    assert reply["success"] is False
    assert reply["error"] == error
    assert {"time_in", "time_out"} <= set(reply)


async def test_invalid_json_gets_an_error_response(ws: WsTestClient) -> None:
    """A frame that is not JSON is answered with EGeneral:Invalid arguments."""
    await ws.ws.send_str("{not json")
    reply = await ws.recv()
    assert (reply["success"], reply["error"]) == (False, "EGeneral:Invalid arguments")


async def test_deeply_nested_request_gets_an_error_response(ws: WsTestClient) -> None:
    """A request nested 100,000 levels deep is answered like bad JSON; the connection stays up."""
    await ws.ws.send_str(
        '{"method": "ping", "params": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    )
    reply = await ws.recv()
    assert (reply["success"], reply["error"]) == (False, "EGeneral:Invalid arguments")
    pong = await ws.request("ping")
    assert pong["method"] == "pong"


async def test_double_subscription_is_refused(ws: WsTestClient, token: str) -> None:
    """Subscribing twice to the same channel answers Already subscribed."""
    await ws.subscribe("balances", token)
    await ws.recv()
    reply = await ws.request("subscribe", channel="balances", token=token)
    assert (reply["success"], reply["error"]) == (False, "Already subscribed")


async def test_unsubscribe_stops_updates(
    sim: SimulatedKraken, ws: WsTestClient, token: str
) -> None:
    """After unsubscribing, a deposit sends nothing: the next frame is the pong."""
    await ws.subscribe("balances", token)
    await ws.recv()
    ack = await ws.request("unsubscribe", channel="balances", token=token)
    assert ack["result"] == {"channel": "balances"}
    assert ack["success"] is True
    sim.deposit("BTC", "1")
    assert (await ws.request("ping"))["method"] == "pong"


async def test_unused_token_expires_after_15_minutes(
    clock: ManualClock, ws: WsTestClient, token: str
) -> None:
    """A token not used within 900 s is refused."""
    clock.advance(901.0)
    reply = await ws.request("subscribe", channel="balances", token=token)
    assert (reply["success"], reply["error"]) == (False, "EAPI:Invalid token")


async def test_used_token_stays_valid_on_its_connection(
    clock: ManualClock,
    sim: SimulatedKraken,
    session: aiohttp.ClientSession,
    ws: WsTestClient,
    token: str,
) -> None:
    """Once used, a token keeps working on that connection; a new connection needs a new one."""
    await ws.subscribe("balances", token)
    await ws.recv()
    clock.advance(3600.0)
    await ws.subscribe("executions", token)
    async with session.ws_connect(sim.ws_url) as connection:
        other = WsTestClient(connection)
        await other.recv()  # status
        reply = await other.request("subscribe", channel="balances", token=token)
    assert reply["error"] == "EAPI:Invalid token"


async def test_status_change_is_pushed(sim: SimulatedKraken, ws: WsTestClient) -> None:
    """Entering maintenance pushes a status update with system maintenance."""
    sim.set_status("maintenance")
    status = await ws.recv()
    assert status["channel"] == "status"
    assert status["data"][0]["system"] == "maintenance"


async def test_instrument_channel_gives_precisions(ws: WsTestClient) -> None:
    """The public instrument snapshot lists assets with their ledger precision."""
    await ws.request("subscribe", channel="instrument")
    snapshot = await ws.recv()
    assets = {a["id"]: a for a in snapshot["data"]["assets"]}
    assert assets["BTC"]["precision"] == 10
    assert assets["USD"]["precision"] == 4
    assert any(p["symbol"] == "BTC/USD" for p in snapshot["data"]["pairs"])


async def test_restart_keeps_state_and_port(
    sim: SimulatedKraken,
    session: aiohttp.ClientSession,
    kraken: KrakenTestClient,
    ws: WsTestClient,
) -> None:
    """restart() closes connections (1012), listens on the same port, keeps balances and nonces."""
    port = sim.port
    last_nonce = kraken.nonce()
    await kraken.private("Balance", nonce=last_nonce)
    sim.deposit("BTC", "2")
    await sim.restart()
    closing = await ws.recv_message()
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert sim.port == port
    assert await kraken.private("Balance", nonce=last_nonce) == {"error": ["EAPI:Invalid nonce"]}
    assert (await kraken.private("Balance"))["result"]["XXBT"] == "3.2435000000"
    async with session.ws_connect(sim.ws_url) as connection:
        assert (await WsTestClient(connection).recv())["channel"] == "status"


async def test_ticker_answers_each_pair_then_moves_with_the_market(
    sim: SimulatedKraken, ws: WsTestClient
) -> None:
    """A ticker subscription acks per pair, sends each snapshot, then an update per price move."""
    await ws.send(
        {
            "method": "subscribe",
            "params": {
                "channel": "ticker",
                "symbol": ["BTC/USD", "XBT/USD"],
                "event_trigger": "bbo",
            },
            "req_id": 5,
        }
    )
    ack = await ws.recv()
    assert ack["result"] == {"channel": "ticker", "symbol": "BTC/USD", "snapshot": True}
    assert ack["req_id"] == 5
    snapshot = await ws.recv()
    assert (snapshot["channel"], snapshot["type"]) == ("ticker", "snapshot")
    (item,) = snapshot["data"]
    price = sim.price("BTC/USD")
    assert item["symbol"] == "BTC/USD"
    assert item["last"] == price
    assert (item["bid"] + item["ask"]) / 2 == price
    refused = await ws.recv()
    assert refused["success"] is False
    assert refused["error"] == "Currency pair not supported XBT/USD"
    sim.set_price("ETH/USD", "2000")  # not subscribed: nothing comes
    sim.set_price("BTC/USD", "50000.5")
    update = await ws.recv()
    assert update["type"] == "update"
    assert update["data"][0]["symbol"] == "BTC/USD"
    assert update["data"][0]["last"] == Decimal("50000.5")


async def test_ticker_unsubscribe_stops_updates(sim: SimulatedKraken, ws: WsTestClient) -> None:
    """After unsubscribing a pair, its moves send nothing; a second subscribe is refused."""
    first = await ws.request("subscribe", channel="ticker", symbol=["DOT/USD"], snapshot=False)
    assert first["success"] is True
    again = await ws.request("subscribe", channel="ticker", symbol=["DOT/USD"])
    assert again["error"] == "Already subscribed"
    gone = await ws.request("unsubscribe", channel="ticker", symbol=["DOT/USD"])
    assert gone["result"] == {"channel": "ticker", "symbol": "DOT/USD"}
    sim.set_price("DOT/USD", "8")
    pong = await ws.request("ping")
    assert pong["method"] == "pong"  # the next frame is the pong: no ticker update came
