"""Each WebSocket and token fault behaves as named, over real loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock

from .helpers import KrakenTestClient, WsTestClient

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def streaming(ws: WsTestClient, token: str) -> AsyncIterator[WsTestClient]:
    """A connection subscribed to balances, snapshot already read."""
    await ws.subscribe("balances", token)
    snapshot = await ws.recv()
    assert snapshot["sequence"] == 1
    yield ws


async def test_drop_closes_abruptly(sim: SimulatedKraken, streaming: WsTestClient) -> None:
    """ws_drop closes the TCP connection without a close frame; the update never arrives."""
    sim.faults.drop_websocket(channel="balances")
    sim.deposit("BTC", "1")
    message = await streaming.recv_message()
    assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert streaming.ws.close_code in (None, 1006)


async def test_silence_sends_nothing_until_cleared(
    clock: ManualClock, sim: SimulatedKraken, streaming: WsTestClient
) -> None:
    """While silent no update or heartbeat goes out; once cleared, frames flow again."""
    fault = sim.faults.go_silent()
    sim.deposit("BTC", "1")  # fires the silence: this update is lost
    await clock.run_for(3.0)  # three heartbeats fall due while silent: none is sent
    sim.faults.clear(fault)
    await streaming.send({"method": "ping", "req_id": 9})
    assert (await streaming.recv())["method"] == "pong"  # no heartbeat or update before it
    sim.deposit("BTC", "1")
    update = await streaming.recv()
    assert update["sequence"] == 3  # the silenced update used sequence 2


async def test_lose_loses_one_frame_and_heartbeats_go_on(
    clock: ManualClock, sim: SimulatedKraken, streaming: WsTestClient
) -> None:
    """ws_lose loses one update in flight; heartbeats go on; the next update shows the gap."""
    sim.faults.lose_frame()
    sim.deposit("BTC", "1")  # lost: it used sequence 2
    await clock.run_for(1.0)
    assert await streaming.recv() == {"channel": "heartbeat"}
    sim.deposit("BTC", "1")
    assert (await streaming.recv())["sequence"] == 3


async def test_lose_on_a_channel_spares_the_others(
    sim: SimulatedKraken, ws: WsTestClient, token: str
) -> None:
    """ws_lose on executions loses that channel's next frame only; balances flow untouched."""
    await ws.subscribe("balances", token)
    assert (await ws.recv())["sequence"] == 1
    await ws.subscribe("executions", token)
    assert (await ws.recv())["sequence"] == 1
    sim.faults.lose_frame(channel="executions")
    sim.deposit("USD", "1")  # a balances frame: not an opportunity for the fault
    assert (await ws.recv())["sequence"] == 2
    sim.place_order("BTC/USD", "sell", "limit", "0.01", price="90000")  # pending_new, new
    frame = await ws.recv()
    assert (frame["channel"], frame["sequence"]) == ("executions", 3)  # pending_new was lost
    assert frame["data"][0]["exec_type"] == "new"
    assert [fired.kind.value for fired in sim.faults.history] == ["ws_lose"]


async def test_delay_holds_frames_on_the_clock(
    clock: ManualClock, session: aiohttp.ClientSession, kraken: KrakenTestClient
) -> None:
    """ws_delay holds the frame until the clock has advanced by its seconds."""
    async with SimulatedKraken(clock=clock, heartbeat_interval=100.0) as sim:
        kraken.sim = sim
        kraken.api_key, kraken.api_secret = sim.api_key, sim.api_secret
        token = await kraken.token()
        async with session.ws_connect(sim.ws_url) as connection:
            ws = WsTestClient(connection)
            await ws.recv()
            await ws.subscribe("balances", token)
            await ws.recv()
            sim.faults.delay_frames(5.0, channel="balances")
            start = clock.monotonic()
            sim.deposit("BTC", "1")
            await clock.run_for(0.0)
            assert clock.next_deadline() == start + 5.0  # the writer waits on the clock
            await clock.run_for(5.0)
            update = await ws.recv()
            assert update["sequence"] == 2


async def test_malformed_frame_comes_before_the_real_one(
    sim: SimulatedKraken, streaming: WsTestClient
) -> None:
    """ws_malformed sends invalid JSON, then the update itself."""
    sim.faults.malformed_frame(channel="balances")
    sim.deposit("BTC", "1")
    garbage = await streaming.recv_text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(garbage)
    assert (await streaming.recv())["sequence"] == 2


async def test_skip_sequence_leaves_a_gap(sim: SimulatedKraken, streaming: WsTestClient) -> None:
    """ws_skip_sequence makes the next update's sequence jump by two."""
    sim.faults.skip_sequence()
    sim.deposit("BTC", "1")
    sim.deposit("BTC", "1")
    assert [(await streaming.recv())["sequence"] for _ in range(2)] == [3, 4]


async def test_duplicate_sends_the_frame_twice(
    sim: SimulatedKraken, streaming: WsTestClient
) -> None:
    """ws_duplicate delivers the same update twice."""
    sim.faults.duplicate_frame()
    sim.deposit("BTC", "1")
    first, second = await streaming.recv(), await streaming.recv()
    assert first == second
    assert first["sequence"] == 2


async def test_reorder_swaps_two_frames(sim: SimulatedKraken, streaming: WsTestClient) -> None:
    """ws_reorder sends the next update after the one that follows it."""
    sim.faults.reorder_frames()
    sim.deposit("BTC", "1")
    sim.deposit("ETH", "1")
    assert [(await streaming.recv())["sequence"] for _ in range(2)] == [3, 2]


async def test_reject_token_fails_one_subscription(
    sim: SimulatedKraken, ws: WsTestClient, token: str
) -> None:
    """token_reject fails the next subscription only; the same token then works."""
    sim.faults.reject_token()
    reply = await ws.request("subscribe", channel="balances", token=token)
    assert (reply["success"], reply["error"]) == (False, "EAPI:Invalid token")
    await ws.subscribe("balances", token)


async def test_expire_token_invalidates_issued_tokens(
    sim: SimulatedKraken, ws: WsTestClient, kraken: KrakenTestClient, token: str
) -> None:
    """token_expire fails the subscription and the token stays invalid; a new token works."""
    sim.faults.expire_token()
    for _ in range(2):
        reply = await ws.request("subscribe", channel="balances", token=token)
        assert reply["error"] == "EAPI:Invalid token"
    await ws.subscribe("balances", await kraken.token())


async def test_expire_tokens_now_stops_resubscription(
    sim: SimulatedKraken, streaming: WsTestClient, token: str
) -> None:
    """Tokens expired at once cannot be used again, even on their connection."""
    assert sim.faults.expire_tokens_now() == 1
    await streaming.request("unsubscribe", channel="balances", token=token)
    reply = await streaming.request("subscribe", channel="balances", token=token)
    assert reply["error"] == "EAPI:Invalid token"


async def test_fault_after_n_messages(sim: SimulatedKraken, streaming: WsTestClient) -> None:
    """A fault with after=2 hits the third balances frame."""
    sim.faults.duplicate_frame(after=2)
    for _ in range(3):
        sim.deposit("BTC", "1")
    sequences = [(await streaming.recv())["sequence"] for _ in range(4)]
    assert sequences == [2, 3, 4, 4]


async def test_seeded_random_plan_is_survivable(
    sim: SimulatedKraken, streaming: WsTestClient
) -> None:
    """A random plan of frame faults injects the same faults for the same seed."""
    kinds = [f.kind for f in sim.faults.random_plan(9, 5)]
    sim.faults.clear()
    assert [f.kind for f in sim.faults.random_plan(9, 5)] == kinds
