"""The REST API over real loopback: shapes, authentication errors, limits, faults."""

from __future__ import annotations

import asyncio
import base64
import json
from decimal import Decimal

import aiohttp
import pytest

from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock

from .helpers import WAIT, KrakenTestClient

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


async def test_balance_lists_legacy_keys_with_asset_decimals(kraken: KrakenTestClient) -> None:
    """Balance maps REST keys to strings at each asset's decimals, earn under .F."""
    reply = await kraken.private("Balance")
    assert reply["error"] == []
    result = reply["result"]
    assert result["XXBT"] == "1.2435000000"
    assert result["ZUSD"] == "25435.2100"
    assert result["USDT"] == "5000.00000000"
    assert result["USDT.F"] == "1000.00000000"
    assert all(isinstance(value, str) for value in result.values())


async def test_balance_ex_reports_holds_of_open_orders(
    sim: SimulatedKraken, kraken: KrakenTestClient
) -> None:
    """BalanceEx gives balance and hold_trade strings; an open order shows as a hold."""
    sim.place_order("BTC/USD", "sell", "limit", "0.8423", price="90000")
    result = (await kraken.private("BalanceEx"))["result"]
    assert result["XXBT"] == {"balance": "1.2435000000", "hold_trade": "0.8423000000"}
    assert result["ZUSD"] == {"balance": "25435.2100", "hold_trade": "0.0000"}


async def test_json_bodies_are_accepted(kraken: KrakenTestClient) -> None:
    """A private call with a JSON body (nonce as a string) authenticates like a form body."""
    reply = await kraken.private("Balance", json_body=True)
    assert reply["error"] == []


async def test_deeply_nested_json_body_gives_invalid_arguments(
    sim: SimulatedKraken, session: aiohttp.ClientSession
) -> None:
    """A JSON body nested 100,000 levels deep is refused as Kraken refuses bad bodies, not 500."""
    body = b'{"nonce": "1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    headers = {"API-Key": sim.api_key, "API-Sign": "x", "Content-Type": "application/json"}
    async with session.post(
        sim.rest_url + "/0/private/Balance", data=body, headers=headers
    ) as response:
        assert response.status == 200
        assert await response.json() == {"error": ["EGeneral:Invalid arguments"]}


async def test_unknown_key_gives_invalid_key(kraken: KrakenTestClient) -> None:
    """An unknown API-Key answers EAPI:Invalid key with HTTP 200."""
    reply = await kraken.private("Balance", api_key="not-a-key")
    assert reply == {"error": ["EAPI:Invalid key"]}


async def test_wrong_secret_gives_invalid_signature(kraken: KrakenTestClient) -> None:
    """A request signed with another secret answers EAPI:Invalid signature."""
    other = base64.b64encode(bytes(range(64))).decode()
    reply = await kraken.private("Balance", api_secret=other)
    assert reply == {"error": ["EAPI:Invalid signature"]}


async def test_stale_nonce_gives_invalid_nonce(kraken: KrakenTestClient) -> None:
    """Reusing a nonce answers EAPI:Invalid nonce."""
    assert (await kraken.private("Balance", nonce=5))["error"] == []
    assert await kraken.private("Balance", nonce=5) == {"error": ["EAPI:Invalid nonce"]}


async def test_repeated_failures_lock_out_then_recover(
    clock: ManualClock, kraken: KrakenTestClient
) -> None:
    """Five bad signatures lock the key out; after the lockout period it works again."""
    for _ in range(5):
        await kraken.private("Balance", signature="AAAA")
    assert await kraken.private("Balance") == {"error": ["EGeneral:Temporary lockout"]}
    clock.advance(900.0)
    assert (await kraken.private("Balance"))["error"] == []


async def test_rate_limit_after_a_burst_then_recovery(
    clock: ManualClock, kraken: KrakenTestClient
) -> None:
    """Sixteen instant calls exceed the starter counter; after its decay a call passes again."""
    replies = [await kraken.private("BalanceEx") for _ in range(16)]
    assert all(r["error"] == [] for r in replies[:15])
    assert replies[15] == {"error": ["EAPI:Rate limit exceeded"]}
    clock.advance(1.0)
    assert (await kraken.private("BalanceEx"))["error"] == ["EAPI:Rate limit exceeded"]
    clock.advance(2.1)
    assert (await kraken.private("BalanceEx"))["error"] == []


async def test_token_has_krakens_shape(kraken: KrakenTestClient) -> None:
    """GetWebSocketsToken answers a token and expires 900."""
    result = (await kraken.private("GetWebSocketsToken"))["result"]
    assert result["expires"] == 900
    assert len(result["token"]) == 43


async def test_public_endpoints(sim: SimulatedKraken, kraken: KrakenTestClient) -> None:
    """Time, SystemStatus, Assets and AssetPairs answer Kraken's shapes."""
    time_result = (await kraken.public("Time"))["result"]
    assert time_result["unixtime"] == int(sim.clock.time())
    assert (await kraken.public("SystemStatus"))["result"]["status"] == "online"
    assets = (await kraken.public("Assets", asset="XBT,ZUSD"))["result"]
    assert assets["XXBT"]["decimals"] == 10
    assert assets["ZUSD"]["altname"] == "USD"
    assert await kraken.public("Assets", asset="NOPE") == {"error": ["EQuery:Unknown asset"]}
    pairs = (await kraken.public("AssetPairs", pair="XBTUSD"))["result"]
    assert pairs["XXBTZUSD"]["wsname"] == "XBT/USD"
    assert pairs["XXBTZUSD"]["base"] == "XXBT"


async def test_unknown_method_is_404(kraken: KrakenTestClient) -> None:
    """An unknown method answers HTTP 404 with EGeneral:Unknown method."""
    status, _, text = await kraken.private_raw("Teleport")
    assert status == 404
    assert json.loads(text) == {"error": ["EGeneral:Unknown method"]}


async def test_add_order_open_orders_and_cancel(
    sim: SimulatedKraken, kraken: KrakenTestClient
) -> None:
    """AddOrder returns a txid that OpenOrders lists and CancelOrder removes."""
    params = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01"}
    added = await kraken.private("AddOrder", {**params, "price": "50000"})
    (txid,) = added["result"]["txid"]
    assert added["result"]["descr"]["order"] == "buy 0.01000000 XBTUSD @ limit 50000"
    open_orders = (await kraken.private("OpenOrders"))["result"]["open"]
    assert open_orders[txid]["vol"] == "0.01000000"
    assert open_orders[txid]["descr"]["pair"] == "XBTUSD"
    assert sim.holds()["USD"] == Decimal("501.3000")
    assert (await kraken.private("CancelOrder", {"txid": txid}))["result"] == {"count": 1}
    assert sim.holds() == {}
    assert await kraken.private("CancelOrder", {"txid": txid}) == {
        "error": ["EOrder:Unknown order"]
    }


@pytest.mark.parametrize(
    ("volume", "price", "error"),
    [
        ("1e20", "50000", "EGeneral:Invalid arguments:volume"),
        ("1", "1e30", "EGeneral:Invalid arguments:price"),
        ("100000000000000000", "10000000", "EGeneral:Invalid arguments:volume"),
        ("1", "50000", "EGeneral:Invalid arguments:userref"),
    ],
    ids=["volume", "price", "cost", "userref"],
)
async def test_add_order_beyond_what_the_simulator_represents(
    sim: SimulatedKraken, kraken: KrakenTestClient, volume: str, price: str, error: str
) -> None:
    """Volumes, prices and costs beyond 28 digits (or a userref beyond 32 bits) answer Kraken's
    invalid-argument error, never HTTP 500, and change nothing."""
    before = sim.balances()
    params = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": volume}
    if error.endswith("userref"):
        params["userref"] = str(2**40)
    reply = await kraken.private("AddOrder", {**params, "price": price})
    assert reply == {"error": [error]}
    assert sim.balances() == before
    assert sim.holds() == {}


async def test_add_order_refusals(kraken: KrakenTestClient) -> None:
    """Bad or unaffordable orders answer Kraken's error strings."""
    base = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "50000"}
    assert (await kraken.private("AddOrder", {**base, "volume": "100"}))["error"] == [
        "EOrder:Insufficient funds"
    ]
    assert (await kraken.private("AddOrder", {**base, "pair": "FOOBAR", "volume": "1"}))[
        "error"
    ] == ["EQuery:Unknown asset pair"]
    assert (await kraken.private("AddOrder", {"pair": "XBTUSD"}))["error"] == [
        "EGeneral:Invalid arguments:type"
    ]


async def test_trade_balance_values_the_account_in_usd(kraken: KrakenTestClient) -> None:
    """TradeBalance answers string fields including eb and tb."""
    result = (await kraken.private("TradeBalance"))["result"]
    assert Decimal(result["eb"]) > Decimal(25435)
    assert result["eb"] == result["tb"]


# -- faults -------------------------------------------------------------------------------


async def test_http_error_fault_answers_a_cloudflare_page(
    sim: SimulatedKraken, kraken: KrakenTestClient
) -> None:
    """http_error answers HTTP 520 with an HTML body, once."""
    sim.faults.http_error()
    status, content_type, text = await kraken.private_raw("Balance")
    assert (status, content_type) == (520, "text/html")
    assert "520" in text
    assert (await kraken.private("Balance"))["error"] == []


async def test_html_page_fault_answers_html_with_200(
    sim: SimulatedKraken, kraken: KrakenTestClient
) -> None:
    """html_page answers an HTML page where JSON was expected."""
    sim.faults.html_page(endpoint="BalanceEx")
    status, content_type, text = await kraken.private_raw("BalanceEx")
    assert (status, content_type) == (200, "text/html")
    assert text.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("inject", "code"),
    [
        ("rate_limit", "EAPI:Rate limit exceeded"),
        ("service_unavailable", "EService:Unavailable"),
        ("invalid_nonce", "EAPI:Invalid nonce"),
        ("lockout", "EGeneral:Temporary lockout"),
    ],
)
async def test_error_faults_answer_their_error_strings(
    sim: SimulatedKraken, kraken: KrakenTestClient, inject: str, code: str
) -> None:
    """Each injected error kind answers its Kraken string, then normal service resumes."""
    getattr(sim.faults, inject)()
    assert await kraken.private("Balance") == {"error": [code]}
    assert (await kraken.private("Balance"))["error"] == []


async def test_slow_response_waits_on_the_clock(
    clock: ManualClock, sim: SimulatedKraken, kraken: KrakenTestClient
) -> None:
    """slow_response holds the answer until the clock has advanced by its seconds."""
    sim.faults.slow_response(30.0)
    arrived = asyncio.Event()
    sim.on_request(lambda method: arrived.set())
    call = asyncio.create_task(kraken.private("Balance"))
    await asyncio.wait_for(arrived.wait(), WAIT)
    assert sim.rest_calls["Balance"] == 1
    await clock.run_for(29.0)
    assert not call.done()
    await clock.run_for(1.0)
    reply = await asyncio.wait_for(call, WAIT)
    assert reply["error"] == []


async def test_maintenance_makes_private_calls_unavailable(
    sim: SimulatedKraken, kraken: KrakenTestClient
) -> None:
    """In maintenance SystemStatus says so and private calls answer EService:Unavailable."""
    sim.faults.maintenance()
    assert (await kraken.public("SystemStatus"))["result"]["status"] == "maintenance"
    assert await kraken.private("Balance") == {"error": ["EService:Unavailable"]}
    sim.faults.online()
    assert (await kraken.private("Balance"))["error"] == []


async def test_second_account_sees_only_its_own_balances(
    sim: SimulatedKraken, session: aiohttp.ClientSession
) -> None:
    """An added account has its own key, secret and balances."""
    credentials = sim.add_account("bot2", balances={"ETH": "3"})
    client = KrakenTestClient(sim, session)
    client.api_key = credentials.api_key
    client.api_secret = credentials.api_secret.reveal()
    result = (await client.private("Balance"))["result"]
    assert result == {"XETH": "3.0000000000"}
