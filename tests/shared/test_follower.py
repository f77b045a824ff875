"""The follower against a real Redis: freshness on Redis's clock, gaps, and Redis losing its data.

Staleness runs on Redis's clock, which is real time: these tests use a bound
of a few hundred milliseconds and wait on conditions, never longer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from tests.shared.conftest import FakeLeader, shared_config

from balance_manager.core.models import Balance, Source
from balance_manager.exceptions import ReservationLostError, SharedStateError, StaleBalanceError
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.follower import SharedFollower
from balance_manager.shared.keys import AccountKeys
from balance_manager.shared.reservations import Reservations
from balance_manager.shared.testing import RedisServer
from balance_manager.testing import RecordingCallbacks, wait_until

pytestmark = pytest.mark.asyncio

STALE_AFTER = 0.3


def usd(amount: str, hold: str = "0") -> dict[str, Balance]:
    return {"USD": Balance("USD", Decimal(amount), Decimal(hold), Source.WEBSOCKET)}


@pytest_asyncio.fixture
async def follower(redis_url: str, keys: AccountKeys) -> AsyncIterator[SharedFollower]:
    follower = SharedFollower(
        SharedRedis(redis_url, keys, timeout=0.5), shared_config(shared_stale_after=STALE_AFTER)
    )
    yield follower
    await follower.close()


async def test_fresh_while_confirmed_then_stale_never_served_fresh(
    shared: SharedRedis, follower: SharedFollower
) -> None:
    """Values are served with their source while confirmed within the bound, then as cache."""
    leader = FakeLeader(shared)
    await leader.lead()
    await leader.publish(usd("100"), reset="start")
    await follower.initialize()
    value = await follower.get_balance("usd")
    assert value is not None
    assert value.source is Source.WEBSOCKET
    assert follower.get_status()["source"] == "websocket"
    # No beat any more: past the bound the value is stale, and max_age refuses it.
    await wait_until(
        lambda: follower.sync_view().get_balance("USD").source is Source.CACHE,  # type: ignore[union-attr]
        within=2.0,
    )
    age = follower.age_of(follower.sync_view().get_balance("USD"))
    assert age is not None
    assert age > STALE_AFTER
    with pytest.raises(StaleBalanceError, match="USD"):
        await follower.get_balance("USD", max_age=0.1)
    assert follower.get_status()["source"] == "cache"
    # A beat confirms it again, through the stream.
    await leader.publish()
    await wait_until(lambda: follower.get_status()["source"] == "websocket", within=2.0)
    assert (await follower.get_balance("USD", max_age=0.2)) is not None


async def test_updates_arrive_in_order_as_events(
    shared: SharedRedis, follower: SharedFollower
) -> None:
    """Each published value reaches callbacks as a balance_update, in order, exact."""
    leader = FakeLeader(shared)
    await leader.lead()
    await leader.publish(usd("100"), reset="start")
    await follower.initialize()
    calls = RecordingCallbacks()
    follower.register_callback("balance_update", calls.recorder("balance_update"))
    for amount in ("99.5", "99.25", "1E+2"):
        await leader.publish(usd(amount))
    await wait_until(lambda: len(calls["balance_update"]) == 3)
    await follower.drain_callbacks()
    assert [c.balance for c in calls["balance_update"]] == [
        Decimal("99.5"),
        Decimal("99.25"),
        Decimal(100),
    ]
    assert calls["balance_update"][0].old_balance == Decimal(100)


async def test_a_gap_in_the_stream_makes_the_follower_reload(
    shared: SharedRedis, follower: SharedFollower, keys: AccountKeys
) -> None:
    """Entries lost to trimming (a sequence gap) are replaced by a reload of the whole state."""
    leader = FakeLeader(shared)
    await leader.lead()
    await leader.publish(usd("100"), reset="start")
    await follower.initialize()
    before = follower.get_status()["resyncs"]
    await shared.client.hincrby(keys.key("meta"), "seq", 5)  # as if 5 entries were trimmed
    await leader.publish(usd("42"))
    await wait_until(lambda: follower.get_status()["resyncs"] > before)
    value = follower.sync_view().get_balance("USD")
    assert value is not None
    assert value.balance == 42


async def test_redis_restarted_without_its_data() -> None:
    """Redis dies: reserves fail closed, reads are marked stale; it comes back empty: a new
    generation is detected, followers are told and reload, old reservations are void."""
    with RedisServer() as server:
        keys = AccountKeys("bmtest-restart", "acct")
        config = shared_config(shared_stale_after=STALE_AFTER)
        leader = FakeLeader(SharedRedis(server.url, keys, timeout=0.3))
        follower = SharedFollower(SharedRedis(server.url, keys, timeout=0.3), config)
        reservations = Reservations(SharedRedis(server.url, keys, timeout=0.3), config)
        calls = RecordingCallbacks()
        try:
            await leader.lead()
            await leader.publish(usd("100"), reset="start")
            await follower.initialize()
            follower.register_callback("connection_state", calls.recorder("connection_state"))
            held = await reservations.reserve("USD", "10", owner="a")

            server.kill()
            with pytest.raises(SharedStateError):
                await reservations.reserve("USD", "1", owner="a")
            await wait_until(lambda: not follower.get_status()["redis_connected"], within=3.0)
            # Meanwhile the mirror serves, and never as fresh past the bound.
            await wait_until(lambda: follower.get_status()["source"] == "cache", within=2.0)
            stale = follower.sync_view().get_balance("USD")
            assert stale is not None
            assert stale.source is Source.CACHE
            assert stale.balance == 100

            server.start()  # same port, no data
            await leader.lead()  # a leader takes the lease in the new data set
            await leader.publish(usd("90"), reset="republish")
            await wait_until(
                lambda: any(c["state"] == "reset" for c in calls["connection_state"]), within=5.0
            )
            await wait_until(lambda: follower.get_status()["source"] == "websocket", within=5.0)
            fresh = await follower.get_balance("USD")
            assert fresh is not None
            assert fresh.balance == 90
            with pytest.raises(ReservationLostError):
                await reservations.commit(held)
            assert (await reservations.list()).reservations == {}
        finally:
            await follower.close()
            await reservations.redis.close()
            await leader.shared.close()
