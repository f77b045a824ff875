"""The /_sim control endpoint, used by other processes to drive a running simulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from balance_manager.simulator import SimulatedKraken

from .helpers import KrakenTestClient

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


async def control(
    session: aiohttp.ClientSession, sim: SimulatedKraken, verb: str, path: str, body: Any = None
) -> tuple[int, Any]:
    """Call the control endpoint; returns (status, decoded JSON)."""
    async with session.request(verb, sim.control_url + path, json=body) as response:
        return response.status, await response.json()


async def test_state_shows_accounts_balances_and_status(
    sim: SimulatedKraken, session: aiohttp.ClientSession
) -> None:
    """GET /_sim/state lists the status, prices and each account's balances as strings."""
    status, state = await control(session, sim, "GET", "/state")
    assert status == 200
    assert state["status"] == "online"
    default = state["accounts"]["default"]
    assert default["api_keys"] == [sim.api_key]
    assert Decimal(default["balances"]["BTC"]) == Decimal("1.2435")
    assert "secret" not in str(state).lower()


async def test_deposit_withdraw_and_refusal(
    sim: SimulatedKraken, session: aiohttp.ClientSession
) -> None:
    """Deposits and withdrawals change the ledger; an overdraft answers 400 with Kraken's error."""
    status, reply = await control(session, sim, "POST", "/deposit", {"asset": "ETH", "amount": "2"})
    assert status == 200
    assert reply["entries"][0]["type"] == "deposit"
    assert sim.balances()["ETH"] == Decimal("14.5")
    await control(session, sim, "POST", "/withdraw", {"asset": "ETH", "amount": "0.5"})
    assert sim.balances()["ETH"] == Decimal(14)
    status, reply = await control(
        session, sim, "POST", "/withdraw", {"asset": "ETH", "amount": "100"}
    )
    assert (status, reply) == (400, {"error": "EFunding:Insufficient funds"})


async def test_orders_fills_and_prices(
    sim: SimulatedKraken, session: aiohttp.ClientSession
) -> None:
    """Orders placed through the endpoint rest, fill on demand or when the price crosses."""
    _, placed = await control(
        session,
        sim,
        "POST",
        "/order",
        {"pair": "BTC/USD", "side": "buy", "type": "limit", "volume": "0.01", "price": "50000"},
    )
    order_id = placed["order"]["order_id"]
    assert sim.holds()["USD"] > 0
    partial = {"order_id": order_id, "volume": "0.004"}
    _, filled = await control(session, sim, "POST", "/fill", partial)
    assert Decimal(filled["trade"]["qty"]) == Decimal("0.004")
    _, moved = await control(session, sim, "POST", "/price", {"pair": "BTC/USD", "price": "49000"})
    assert len(moved["trades"]) == 1
    assert sim.holds() == {}


async def test_faults_can_be_injected_and_cleared(
    sim: SimulatedKraken, session: aiohttp.ClientSession, kraken: KrakenTestClient
) -> None:
    """POST /_sim/faults injects a fault that REST then shows; DELETE clears it."""
    status, reply = await control(
        session, sim, "POST", "/faults", {"kind": "rate_limit", "times": None}
    )
    assert status == 200
    assert reply["fault"]["kind"] == "rate_limit"
    assert (await kraken.private("Balance"))["error"] == ["EAPI:Rate limit exceeded"]
    await control(session, sim, "DELETE", f"/faults/{reply['fault']['id']}")
    assert (await kraken.private("Balance"))["error"] == []
    status, reply = await control(session, sim, "POST", "/faults", {"kind": "meteor"})
    assert status == 400
    assert "unknown fault" in reply["error"]


async def test_status_and_token_expiry(
    sim: SimulatedKraken, session: aiohttp.ClientSession, kraken: KrakenTestClient
) -> None:
    """The endpoint sets the system status and expires every WebSocket token."""
    await control(session, sim, "POST", "/status", {"status": "cancel_only"})
    assert sim.status == "cancel_only"
    await kraken.token()
    _, reply = await control(session, sim, "POST", "/expire_tokens")
    assert reply == {"revoked": 1}


async def test_bad_bodies_answer_400(sim: SimulatedKraken, session: aiohttp.ClientSession) -> None:
    """Non-JSON bodies and missing fields answer 400 with an explanation."""
    async with session.post(sim.control_url + "/deposit", data=b"{") as response:
        assert response.status == 400
    status, reply = await control(session, sim, "POST", "/deposit", {"asset": "BTC"})
    assert status == 400
    assert "amount" in reply["error"]
    status, _ = await control(session, sim, "POST", "/faults", {"kind": "rate_limit", "times": "2"})
    assert status == 400


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        b'{"asset": "BTC", "amount": ' + DEEP + b"}",
        b'{"x": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001,
    ],
    ids=["array", "field", "objects"],
)
async def test_deeply_nested_json_answers_400(
    sim: SimulatedKraken, session: aiohttp.ClientSession, body: bytes
) -> None:
    """JSON nested 100,000 levels deep answers 400 with an explanation, never 500."""
    async with session.post(sim.control_url + "/deposit", data=body) as response:
        assert response.status == 400
        reply = await response.json()
    assert "nested too deeply" in reply["error"]
    status, _ = await control(session, sim, "GET", "/state")
    assert status == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/deposit", {"asset": "USD", "amount": "1" + "0" * 28}, "amount"),
        ("/deposit", {"asset": "USD", "amount": "12345678901234567890123456789"}, "amount"),
        ("/withdraw", {"asset": "USD", "amount": "1", "fee": "1e30"}, "fee"),
        ("/price", {"pair": "BTC/USD", "price": "1e40"}, "price"),
        (
            "/order",
            {"pair": "BTC/USD", "side": "buy", "volume": "100000000000000000", "price": "1e7"},
            "volume × price",
        ),
    ],
    ids=["deposit-1e28", "deposit-29-digits", "fee", "price", "order-cost"],
)
async def test_amounts_beyond_28_digits_answer_400_naming_the_field(
    sim: SimulatedKraken, session: aiohttp.ClientSession, path: str, body: Any, field: str
) -> None:
    """What the simulator cannot represent answers 400 naming the field, and changes nothing."""
    before = sim.balances(), sim.price("BTC/USD"), sim.ledger()
    status, reply = await control(session, sim, "POST", path, body)
    assert status == 400
    assert reply["error"].startswith(f"{field}=")
    assert "28 significant digits" in reply["error"]
    assert (sim.balances(), sim.price("BTC/USD"), sim.ledger()) == before
