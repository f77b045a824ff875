"""The leader and its followers against the simulator and a real Redis (real time, short lease)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from tests.shared.conftest import delete_namespace, kraken_sources, shared_config

from balance_manager.core.models import Source
from balance_manager.exceptions import InsufficientFundsError, ReservationLostError
from balance_manager.service.manager import BalanceManager
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.follower import SharedFollower
from balance_manager.shared.keys import AccountKeys
from balance_manager.shared.leader import SharedLeader
from balance_manager.shared.lease import LeaseState
from balance_manager.shared.reservations import Reservations
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import RecordingCallbacks, wait_until

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


class Running:
    """A leader candidate running in a task."""

    def __init__(self, leader: SharedLeader) -> None:
        self.leader = leader
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(leader.run(self.stop))

    async def close(self) -> None:
        self.stop.set()
        if not self.task.done():
            await asyncio.wait_for(self.task, 10)
        await self.leader.redis.close()

    async def kill(self) -> None:
        """End the task without resigning (the lease must run out), as a crash would."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest_asyncio.fixture
async def deployment(
    redis_url: str, keys: AccountKeys, namespace: str, sim: SimulatedKraken
) -> AsyncIterator[tuple[Running, SharedFollower, Reservations]]:
    """A leading leader, a follower and a reservations client on one simulated account."""
    config = shared_config()
    leader = Running(
        SharedLeader(SharedRedis(redis_url, keys), kraken_sources(sim, config), config)
    )
    follower = SharedFollower(SharedRedis(redis_url, keys), config)
    reservations = Reservations(SharedRedis(redis_url, keys), config)
    try:
        await asyncio.wait_for(leader.leader.leading.wait(), 10)
        await follower.initialize()
        yield leader, follower, reservations
    finally:
        await follower.close()
        await reservations.redis.close()
        await leader.close()
        await delete_namespace(redis_url, namespace)


def same_as_exchange(follower: SharedFollower, sim: SimulatedKraken) -> bool:
    """Whether the follower's balances and holds are exactly the simulator's."""
    view = follower.sync_view().get_all_balances()
    holds = sim.holds()
    return {a: b.balance for a, b in view.items() if b.balance} == {
        a: v for a, v in sim.balances().items() if v
    } and all(view[a].hold_trade == holds.get(a, Decimal(0)) for a in view)


async def test_followers_see_the_exchange_exactly_and_live(
    deployment, sim: SimulatedKraken
) -> None:
    """A follower mirrors every balance exactly, fresh, and hears a deposit as an event."""
    _, follower, _ = deployment
    calls = RecordingCallbacks()
    follower.register_callback("balance_update", calls.recorder("balance_update"))
    await wait_until(lambda: same_as_exchange(follower, sim))
    btc = await follower.get_balance("btc")
    assert btc is not None
    assert btc.source is Source.WEBSOCKET
    sim.deposit("BTC", "0.00000001")
    await wait_until(lambda: same_as_exchange(follower, sim))
    await follower.drain_callbacks()
    change = calls["balance_update"][-1]
    assert change.asset == "BTC"
    assert change.delta == Decimal("0.00000001")
    assert change.ledger_id is not None
    assert follower.get_status()["source"] == "websocket"
    assert (await follower.get_balance("BTC", max_age=1.0)) is not None


async def test_a_reservation_is_settled_by_its_orders_hold_in_one_step(
    deployment, sim: SimulatedKraken
) -> None:
    """Reserve, commit, order: its hold replaces the reservation, never both or neither."""
    _, follower, reservations = deployment
    await wait_until(lambda: same_as_exchange(follower, sim))
    free_usd = sim.free()["USD"]
    with pytest.raises(InsufficientFundsError) as refused:
        await reservations.reserve("USD", free_usd + Decimal("0.0001"), owner="a")
    assert Decimal(refused.value.available) == free_usd
    reservation = await reservations.reserve("USD", "2006", owner="a")
    listing = await reservations.list()
    assert listing.available("USD") == free_usd - Decimal(2006)
    committed = await reservations.commit(reservation)
    assert committed.client_order_id is not None
    hold = Decimal("0.1") * Decimal(20000) * Decimal("1.0026")
    sim.place_order(
        "BTC/USD", "buy", "limit", "0.1", price="20000", cl_ord_id=committed.client_order_id
    )
    seen: set[Decimal] = set()
    for _ in range(2000):
        listing = await reservations.list()
        seen.add(listing.available("USD"))
        if committed.id not in listing.reservations:
            break
    else:
        pytest.fail("the reservation was never settled")
    # Before: free - reservation; after: free - hold. Never both, never neither.
    assert seen <= {free_usd - Decimal(2006), free_usd - hold}
    assert listing.available("USD") == free_usd - hold
    assert listing.reserved.get("USD", Decimal(0)) == 0
    await wait_until(lambda: same_as_exchange(follower, sim))
    with pytest.raises(ReservationLostError):
        await reservations.commit(committed.id, "another")


async def test_a_new_candidate_takes_over_within_the_lease(
    deployment, redis_url: str, keys: AccountKeys, sim: SimulatedKraken
) -> None:
    """When the leader stops, a waiting candidate leads within TTL + a snapshot; followers go on."""
    leader, follower, _ = deployment
    config = shared_config()
    second = Running(
        SharedLeader(SharedRedis(redis_url, keys), kraken_sources(sim, config), config)
    )
    try:
        await asyncio.sleep(0.3)
        assert second.leader.timer.state is LeaseState.CANDIDATE
        first_epoch = leader.leader.timer.epoch
        loop = asyncio.get_running_loop()
        await leader.kill()
        started = loop.time()
        await asyncio.wait_for(second.leader.leading.wait(), 10)
        took = loop.time() - started
        assert took < config.lease_ttl + 2.0
        assert second.leader.timer.epoch == (first_epoch or 0) + 1
        sim.deposit("USD", "1.5")
        await wait_until(lambda: same_as_exchange(follower, sim))
        await wait_until(lambda: follower.get_status()["leader_epoch"] == second.leader.timer.epoch)
    finally:
        await second.close()


async def test_a_leader_whose_lease_was_taken_is_fenced_and_stops(
    deployment, redis_url: str, keys: AccountKeys, sim: SimulatedKraken
) -> None:
    """A write with an old epoch is refused; the old leader stops and closes its exchange client."""
    leader, follower, _ = deployment
    old = leader.leader
    manager = old.manager
    assert manager is not None
    client = SharedRedis(redis_url, keys)
    try:
        # Another process takes the lease behind the leader's back (as after a long pause).
        await client.client.set(keys.key("lease"), "999:thief", px=60_000)
        sim.deposit("BTC", "1")  # the next publish is refused
        await wait_until(lambda: old.timer.state is not LeaseState.LEADING, within=5)
        await wait_until(lambda: old.manager is None, within=5)
        assert manager.get_status()["initialized"] is False  # closed, exchange clients released
        assert "lease" in (old.get_status()["last_error"] or "")
        # Nothing of the refused write reached Redis.
        await asyncio.sleep(0.2)
        btc = follower.sync_view().get_balance("BTC")
        assert btc is not None
        assert btc.balance == sim.balances()["BTC"] - 1
        await client.client.delete(keys.key("lease"))
    finally:
        await client.close()


async def test_while_leading_runs_beside_each_term_and_ends_before_the_manager_closes(
    redis_url: str, keys: AccountKeys, namespace: str, sim: SimulatedKraken
) -> None:
    """Entered with the term's manager before ``leading``; exited while that manager is open."""
    seen: list[tuple[str, bool, bool]] = []

    @contextlib.asynccontextmanager
    async def beside(manager: BalanceManager) -> AsyncIterator[None]:
        seen.append(("enter", leader.leading.is_set(), manager.get_status()["initialized"]))
        yield
        seen.append(("exit", leader.leading.is_set(), manager.get_status()["initialized"]))

    config = shared_config()
    leader = SharedLeader(
        SharedRedis(redis_url, keys), kraken_sources(sim, config), config, while_leading=beside
    )
    running = Running(leader)
    try:
        await asyncio.wait_for(leader.leading.wait(), 10)
        assert seen == [("enter", False, True)]
    finally:
        await running.close()
        await delete_namespace(redis_url, namespace)
    assert seen == [("enter", False, True), ("exit", False, True)]


async def test_a_failing_while_leading_never_ends_the_term(
    redis_url: str, keys: AccountKeys, namespace: str, sim: SimulatedKraken
) -> None:
    """A hook that cannot start (say, its port is taken) is logged; the candidate leads on."""

    def broken(manager: BalanceManager) -> contextlib.AbstractAsyncContextManager[object]:
        raise OSError("address already in use")

    config = shared_config()
    leader = SharedLeader(
        SharedRedis(redis_url, keys), kraken_sources(sim, config), config, while_leading=broken
    )
    running = Running(leader)
    try:
        await asyncio.wait_for(leader.leading.wait(), 10)
        assert leader.timer.state is LeaseState.LEADING
        assert leader.manager is not None
    finally:
        await running.close()
        await delete_namespace(redis_url, namespace)
