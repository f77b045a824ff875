"""Redis going back to an older copy of its data: a restart from its RDB snapshot, a restore.

A Redis with persistence that is killed comes back with what its last snapshot
held (a failover to a lagging replica does the same): the generation is still
there, but balances, confirmations and reservations are older than the last
writes. These tests run a real ``redis-server`` with RDB persistence: ``SAVE``,
change things, SIGKILL, restart from the file (or put back, on a running Redis,
a copy of the account's keys taken earlier with DUMP: the same loss without a
new process). The state must never pass for current: nothing is reserved
against it, followers never serve it as fresh, and reservations are void
(``ReservationLostError``) rather than silently lost or brought back.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from tests.shared.conftest import FakeLeader, kraken_sources, shared_config

from balance_manager.core.models import Balance, Source
from balance_manager.exceptions import (
    InsufficientFundsError,
    ReservationLostError,
    SharedStateError,
    StaleBalanceError,
)
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.follower import SharedFollower
from balance_manager.shared.keys import AccountKeys
from balance_manager.shared.leader import SharedLeader
from balance_manager.shared.reservations import Reservations
from balance_manager.shared.testing import RedisServer
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import RecordingCallbacks, wait_until

pytestmark = pytest.mark.asyncio

RICH = "25435.21"  # free USD when the snapshot is taken
POOR = "100"  # free USD after a withdrawal the snapshot does not hold


def usd(amount: str) -> dict[str, Balance]:
    return {"USD": Balance("USD", Decimal(amount), source=Source.WEBSOCKET)}


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A Redis of its own that snapshots to disk and comes back from its snapshot."""
    with RedisServer(persistent=True) as redis_server:
        yield redis_server


@pytest.fixture
def keys() -> AccountKeys:
    return AccountKeys(f"bmtest-{uuid.uuid4().hex[:12]}", "acct")


@pytest_asyncio.fixture
async def raw(server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A plain client (SAVE, DUMP, RESTORE, reading keys)."""
    client = aioredis.Redis.from_url(server.url, decode_responses=False)
    yield client
    await client.aclose()


async def restart_from_snapshot(server: RedisServer) -> None:
    """SIGKILL Redis and start it again: it loads its last snapshot."""
    server.kill()
    await asyncio.to_thread(server.start)


async def dump(raw: aioredis.Redis, keys: AccountKeys) -> dict[str, tuple[bytes, int] | None]:
    """A copy of every key of the account (value and TTL), as a backup would hold it."""
    copy: dict[str, tuple[bytes, int] | None] = {}
    for key in keys.all():
        value = await raw.dump(key)
        copy[key] = None if value is None else (value, max(0, await raw.pttl(key)))
    return copy


async def restore(raw: aioredis.Redis, copy: dict[str, tuple[bytes, int] | None]) -> None:
    """Put the account's keys back as they were in ``copy`` (same Redis process)."""
    for key, saved in copy.items():
        if saved is None:
            await raw.delete(key)
        else:
            await raw.restore(key, saved[1], saved[0], replace=True)


async def eventually(predicate: Callable[[], Awaitable[bool]], *, within: float = 10.0) -> None:
    """Return once the async ``predicate()`` is true; fail after ``within`` real seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        if loop.time() >= deadline:
            raise TimeoutError(f"condition not met within {within:g} s: {predicate!r}")
        await asyncio.sleep(0.01)


def fresh_usd(follower: SharedFollower) -> Decimal | None:
    """The follower's USD balance if it serves it as fresh, else ``None``."""
    value = follower.sync_view().get_balance("USD")
    return None if value is None or value.source is Source.CACHE else value.balance


async def text_of(raw: aioredis.Redis, coro: Any) -> str | None:
    value = await coro
    return None if value is None else value.decode()


async def test_nothing_is_reserved_against_an_older_snapshot_and_its_reservations_are_void(
    server: RedisServer, raw: aioredis.Redis, keys: AccountKeys
) -> None:
    """Right after a restart from an older snapshot (no leader write yet), reserve is
    refused; reservations of either side of the snapshot are void; a leader that
    leads again republishes and reservations go by its values."""
    config = shared_config(shared_stale_after=60.0)  # the snapshot's times look current
    leader = FakeLeader(SharedRedis(server.url, keys))
    reservations = Reservations(SharedRedis(server.url, keys), config)
    try:
        await leader.lead()
        await leader.publish(usd(RICH), reset="start")
        early = await reservations.reserve("USD", "10", owner="a")
        await raw.save()  # the persistence point
        await leader.publish(usd(POOR))  # a withdrawal: only 100 USD left
        late = await reservations.commit(await reservations.reserve("USD", "50", owner="b"))
        with pytest.raises(InsufficientFundsError):
            await reservations.reserve("USD", "5000", owner="c")

        await restart_from_snapshot(server)
        assert await text_of(raw, raw.hget(keys.key("free"), "USD")) == RICH  # the older copy

        with pytest.raises(SharedStateError, match="restarted"):
            await reservations.reserve("USD", "5000", owner="c")
        with pytest.raises(SharedStateError):  # and still, until a leader republished
            await reservations.reserve("USD", "1", owner="c")
        with pytest.raises(ReservationLostError):
            await reservations.commit(early)  # from before the snapshot: void
        with pytest.raises(ReservationLostError):
            await reservations.commit(late.id, late.client_order_id)  # after it: lost
        listing = await reservations.list()
        assert listing.reservations == {}
        assert listing.free == {}  # the older copy's free amounts are not shown either

        # The leader's next write is refused: it must lead again, under a new generation.
        refused = await leader.try_publish(usd(POOR))
        assert refused[0] != "OK"
        old_generation = leader.generation
        reply = await leader.lead()
        assert leader.generation != old_generation
        assert int(str(reply[4])) == 1  # fresh: reservations void
        assert "restarted" in str(reply[6])
        await leader.publish(usd(POOR), reset="republish")
        with pytest.raises(InsufficientFundsError):
            await reservations.reserve("USD", "5000", owner="c")
        assert (await reservations.reserve("USD", "60", owner="c")).amount == 60
    finally:
        await reservations.redis.close()
        await leader.shared.close()


async def test_followers_never_serve_an_older_snapshot_as_fresh(
    server: RedisServer, raw: aioredis.Redis, keys: AccountKeys
) -> None:
    """A follower running across the restart keeps what it had (never the older copy);
    one started after it serves the older copy as cache only, and max_age refuses it;
    both are told of the new generation and follow the republished values."""
    config = shared_config(shared_stale_after=60.0)
    leader = FakeLeader(SharedRedis(server.url, keys))
    across = SharedFollower(SharedRedis(server.url, keys, timeout=0.5), config)
    after: SharedFollower | None = None
    calls = RecordingCallbacks()
    try:
        await leader.lead()
        await leader.publish(usd(RICH), reset="start")
        await across.initialize()
        across.register_callback("connection_state", calls.recorder("connection_state"))
        await raw.save()
        await leader.publish(usd(POOR))
        await wait_until(lambda: across.sync_view().get_balance("USD").balance == Decimal(POOR))  # type: ignore[union-attr]
        resyncs = across.get_status()["resyncs"]

        await restart_from_snapshot(server)
        await wait_until(
            lambda: (
                across.get_status()["resyncs"] > resyncs and across.get_status()["redis_connected"]
            ),
            within=10.0,
        )
        kept = await across.get_balance("USD")
        assert kept is not None
        assert kept.balance == Decimal(POOR)  # its own latest value, not the snapshot's

        after = SharedFollower(SharedRedis(server.url, keys, timeout=0.5), config)
        await after.initialize()
        older = await after.get_balance("USD")
        assert older is not None
        assert older.balance == Decimal(RICH)
        assert older.source is Source.CACHE  # shown, never as fresh
        assert after.get_status()["source"] == "cache"
        with pytest.raises(StaleBalanceError):
            await after.get_balance("USD", max_age=30.0)

        assert (await leader.try_publish(usd(POOR)))[0] == "ROLLEDBACK"
        await leader.lead()
        await leader.publish(usd(POOR), reset="republish")
        for follower in (across, after):
            await wait_until(lambda f=follower: fresh_usd(f) == Decimal(POOR), within=5.0)
            fresh = await follower.get_balance("USD", max_age=30.0)
            assert fresh is not None
            assert fresh.balance == Decimal(POOR)
            assert fresh.source is Source.WEBSOCKET
        await across.drain_callbacks()
        assert any(c["state"] == "reset" for c in calls["connection_state"])
    finally:
        await across.close()
        if after is not None:
            await after.close()
        await leader.shared.close()


async def test_a_follower_reloads_when_the_sequence_goes_back(
    server: RedisServer, raw: aioredis.Redis, keys: AccountKeys
) -> None:
    """New entries numbered as old ones (the stream went back to an older copy and a
    writer that does not carry its sequence number went on) make the follower reload
    rather than skip them as already applied."""
    config = shared_config(shared_stale_after=60.0)
    leader = FakeLeader(SharedRedis(server.url, keys))
    follower = SharedFollower(SharedRedis(server.url, keys, timeout=0.5), config)
    try:
        await leader.lead()
        await leader.publish(usd(RICH), reset="start")
        copy = await dump(raw, keys)
        await follower.initialize()
        for amount in ("200", "150", POOR):
            await leader.publish(usd(amount))
        await wait_until(lambda: follower.sync_view().get_balance("USD").balance == Decimal(POOR))  # type: ignore[union-attr]
        await restore(raw, copy)
        leader.seq = 0  # writes as a leader that does not carry its sequence number
        await leader.publish(usd("42"))
        await wait_until(
            lambda: follower.sync_view().get_balance("USD").balance == Decimal(42),  # type: ignore[union-attr]
            within=5.0,
        )
    finally:
        await follower.close()
        await leader.shared.close()


async def test_a_failover_to_a_lagging_replica_is_refused_and_voided(keys: AccountKeys) -> None:
    """A replica promoted before it received the last writes: nothing is reserved
    against it, a follower on it takes nothing as current, and its reservations
    are void; the leader's write to it is refused as rolled back."""
    config = shared_config(shared_stale_after=60.0)
    with RedisServer() as primary, RedisServer() as replica:
        replica_client = aioredis.Redis.from_url(replica.url, decode_responses=True)
        leader = FakeLeader(SharedRedis(primary.url, keys))
        on_primary = Reservations(SharedRedis(primary.url, keys), config)
        on_replica = Reservations(SharedRedis(replica.url, keys), config)
        follower: SharedFollower | None = None
        try:
            await replica_client.replicaof("127.0.0.1", primary.port)
            await leader.lead()
            await leader.publish(usd(RICH), reset="start")
            held = await on_primary.reserve("USD", "10", owner="a")

            async def caught_up() -> bool:
                return bool(await replica_client.hexists(keys.key("reservations"), held.id))

            await eventually(caught_up)
            await replica_client.replicaof("NO", "ONE")  # promoted: later writes miss it
            await leader.publish(usd(POOR))
            assert await replica_client.hget(keys.key("free"), "USD") == RICH

            # The deployment fails over: everybody now talks to the promoted replica.
            follower = SharedFollower(SharedRedis(replica.url, keys, timeout=0.5), config)
            await follower.initialize()
            value = await follower.get_balance("USD")
            assert value is not None
            assert value.source is Source.CACHE
            with pytest.raises(SharedStateError, match="failed over"):
                await on_replica.reserve("USD", "5000", owner="c")
            with pytest.raises(ReservationLostError):
                await on_replica.commit(held)
            await leader.shared.close()
            leader.shared = SharedRedis(replica.url, keys)
            assert (await leader.try_publish(usd(POOR)))[0] != "OK"
            reply = await leader.lead()
            assert int(str(reply[4])) == 1
            await leader.publish(usd(POOR), reset="republish")
            with pytest.raises(InsufficientFundsError):
                await on_replica.reserve("USD", "5000", owner="c")
            await wait_until(lambda: fresh_usd(follower) == Decimal(POOR), within=5.0)  # type: ignore[arg-type]
        finally:
            if follower is not None:
                await follower.close()
            await on_primary.redis.close()
            await on_replica.redis.close()
            await leader.shared.close()
            await replica_client.aclose()


async def test_a_data_set_of_an_earlier_leader_version_is_not_trusted_until_one_leads(
    server: RedisServer, raw: aioredis.Redis, keys: AccountKeys
) -> None:
    """A leader of an earlier version records no run_id: reserve is refused and a
    follower takes nothing as current (nothing can tell a restart), without voiding
    at every call (no churn of leaders); a leader of this version voids it once."""
    config = shared_config(shared_stale_after=60.0)
    leader = FakeLeader(SharedRedis(server.url, keys))
    reservations = Reservations(SharedRedis(server.url, keys), config)
    follower = SharedFollower(SharedRedis(server.url, keys, timeout=0.5), config)
    try:
        await leader.lead()
        await leader.publish(usd(RICH), reset="start")
        held = await reservations.reserve("USD", "10", owner="a")
        await raw.hdel(keys.key("meta"), "run")  # as an earlier version's acquisition left it
        with pytest.raises(SharedStateError, match="earlier version"):
            await reservations.reserve("USD", "1", owner="a")
        assert await raw.exists(keys.key("gen")) == 1  # not voided by a client
        assert held.id in (await reservations.list()).reservations
        await follower.initialize()
        value = await follower.get_balance("USD")
        assert value is not None
        assert value.source is Source.CACHE
        reply = await leader.lead()  # this version's acquisition: voided once
        assert int(str(reply[4])) == 1
        await leader.publish(usd(RICH), reset="republish")
        with pytest.raises(ReservationLostError):
            await reservations.commit(held)
        assert (await reservations.reserve("USD", "1", owner="a")).amount == 1
    finally:
        await follower.close()
        await reservations.redis.close()
        await leader.shared.close()


class Running:
    """A leader candidate running in a task."""

    def __init__(self, leader: SharedLeader) -> None:
        self.leader = leader
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(leader.run(self.stop))

    async def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.task, 15)
        await self.leader.redis.close()


@pytest.mark.network
@pytest.mark.parametrize("how", ["restart", "restore"])
async def test_a_leader_detects_the_rollback_voids_and_republishes(
    how: str, server: RedisServer, raw: aioredis.Redis, keys: AccountKeys, sim: SimulatedKraken
) -> None:
    """The real leader, follower and reservations on the simulator. After the rollback
    (a restart from the RDB snapshot, or the account's keys put back as they were on
    the same Redis process), the leader's next write is refused as rolled back: no
    beat ever confirms the older copy, nothing is reserved against it, a follower
    never serves it as fresh, every reservation is void, and the leader leads again
    under a new generation with the exchange's values."""
    config = shared_config(
        lease_ttl=10.0,
        shared_stale_after=3.0,
        reservation_ttl=120.0,
        reservation_settle_timeout=120.0,
    )
    leader = Running(
        SharedLeader(SharedRedis(server.url, keys), kraken_sources(sim, config), config)
    )
    follower = SharedFollower(SharedRedis(server.url, keys, timeout=0.5), config)
    reservations = Reservations(SharedRedis(server.url, keys), config)
    served: list[Balance] = []
    sampling = True

    async def sample() -> None:
        while sampling:
            value = follower.sync_view().get_balance("USD")
            if value is not None:
                served.append(value)
            await asyncio.sleep(0.005)

    async def published_free() -> Decimal | None:
        value = await text_of(raw, raw.hget(keys.key("free"), "USD"))
        return None if value is None else Decimal(value)

    sampler: asyncio.Task[None] | None = None
    try:
        await asyncio.wait_for(leader.leader.leading.wait(), 15)
        rich = sim.free()["USD"]
        assert rich > 6000
        early = await reservations.commit(await reservations.reserve("USD", "10", owner="a"))
        await follower.initialize()
        generation = leader.leader.generation
        copy = await dump(raw, keys) if how == "restore" else None
        if how == "restart":
            await raw.save()
        sim.withdraw("USD", rich - Decimal(POOR))
        poor = sim.free()["USD"]

        async def poor_published() -> bool:
            return await published_free() == poor

        await eventually(poor_published)
        late = await reservations.commit(await reservations.reserve("USD", "50", owner="b"))
        await wait_until(lambda: follower.sync_view().get_balance("USD").free == poor)  # type: ignore[union-attr]
        sampler = asyncio.create_task(sample())

        if how == "restart":
            await restart_from_snapshot(server)
        else:
            assert copy is not None
            await restore(raw, copy)
        assert await published_free() == rich  # Redis holds the older copy
        seconds, micros = await raw.time()
        rolled_back_at = int(seconds) * 1000 + int(micros) // 1000

        async def voided_or_confirmed() -> bool:
            if await text_of(raw, raw.get(keys.key("gen"))) != generation:
                return True
            confirmed = await text_of(raw, raw.hget(keys.key("meta"), "confirmed"))
            return confirmed is not None and int(confirmed) > rolled_back_at

        await eventually(voided_or_confirmed)  # the leader's next write (beats: 0.75 s)
        with pytest.raises((SharedStateError, InsufficientFundsError)):
            await reservations.reserve("USD", "5000", owner="c")

        await wait_until(
            lambda: leader.leader.leading.is_set() and leader.leader.generation != generation,
            within=20.0,
        )
        await eventually(poor_published)
        with pytest.raises(InsufficientFundsError):
            await reservations.reserve("USD", "5000", owner="c")
        for lost in (early, late):
            with pytest.raises(ReservationLostError):
                await reservations.commit(lost.id, lost.client_order_id)
        await wait_until(
            lambda: (
                follower.get_status()["generation"] == leader.leader.generation
                and follower.sync_view().get_balance("USD").source is Source.WEBSOCKET
            ),  # type: ignore[union-attr]
            within=10.0,
        )
        sampling = False
        await sampler
        fresh = [v for v in served if v.source is not Source.CACHE]
        assert fresh
        assert {v.free for v in fresh} == {poor}  # never the older copy as fresh
    finally:
        sampling = False
        if sampler is not None:
            await sampler
        await follower.close()
        await reservations.redis.close()
        await leader.close()
