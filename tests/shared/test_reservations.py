"""Reservations in a real Redis: exact, atomic, idempotent, capped, reaped, and failing closed."""

from __future__ import annotations

import asyncio
import random
import time
from decimal import Decimal

import pytest
from tests.shared.conftest import FakeLeader, shared_config

from balance_manager.core.amounts import EXACT_CONTEXT
from balance_manager.core.models import Balance
from balance_manager.exceptions import (
    ExchangeError,
    InsufficientFundsError,
    ReservationCapError,
    ReservationError,
    ReservationLostError,
    SharedStateError,
)
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.keys import AccountKeys
from balance_manager.shared.reservations import Reservations
from balance_manager.shared.testing import free_port

pytestmark = pytest.mark.asyncio

BIG = Decimal("9007199254740993.123456789012345678")  # beyond 2^53, 18 decimals


async def published(shared: SharedRedis, **balances: str) -> FakeLeader:
    """A fake leader that published ``balances`` (all free) as just confirmed."""
    leader = FakeLeader(shared)
    await leader.lead()
    await leader.publish({a: Balance(a, Decimal(v)) for a, v in balances.items()}, reset="test")
    return leader


async def test_reserve_up_to_free_exactly_and_not_a_unit_more(shared: SharedRedis) -> None:
    """Reservations are granted while free minus reserved covers them, to the last digit."""
    await published(shared, USD=str(BIG))
    reservations = Reservations(shared, shared_config())
    almost = EXACT_CONTEXT.subtract(BIG, Decimal("0.000000000000000001"))
    first = await reservations.reserve("USD", almost, owner="a")
    assert first.amount == almost
    with pytest.raises(InsufficientFundsError) as refused:
        await reservations.reserve("USD", "0.000000000000000002", owner="b")
    assert refused.value.available == "0.000000000000000001"
    last = await reservations.reserve("USD", "0.000000000000000001", owner="b")
    listing = await reservations.list()
    assert listing.reserved["USD"] == BIG
    assert listing.available("USD") == 0
    assert set(listing.reservations) == {first.id, last.id}
    assert await reservations.release(first)
    assert not await reservations.release(first)  # idempotent
    assert (await reservations.list()).reserved["USD"] == Decimal("0.000000000000000001")


async def test_an_asset_not_held_has_nothing_to_reserve(shared: SharedRedis) -> None:
    """An asset the account does not hold is refused, with 0 available."""
    await published(shared, USD="10")
    with pytest.raises(InsufficientFundsError, match="only 0 free"):
        await Reservations(shared, shared_config()).reserve("EUR", "1", owner="a")


async def test_reserve_is_idempotent_on_its_id(shared: SharedRedis) -> None:
    """The same id and terms give the same reservation once; other terms are refused."""
    await published(shared, USD="100")
    reservations = Reservations(shared, shared_config())
    one = await reservations.reserve("USD", "60", owner="a", reservation_id="order-1")
    again = await reservations.reserve("USD", "60", owner="a", reservation_id="order-1")
    assert again == one
    assert (await reservations.list()).reserved["USD"] == 60
    with pytest.raises(ReservationError, match="other terms"):
        await reservations.reserve("USD", "61", owner="a", reservation_id="order-1")


async def test_owner_caps_bound_each_owner(shared: SharedRedis) -> None:
    """An owner's cap stops that owner only; removing it lifts it."""
    await published(shared, USD="1000")
    reservations = Reservations(shared, shared_config())
    await reservations.set_cap("a", "USD", "100")
    await reservations.reserve("USD", "70", owner="a")
    with pytest.raises(ReservationCapError, match="at most 100 USD; 70 already"):
        await reservations.reserve("USD", "31", owner="a")
    await reservations.reserve("USD", "500", owner="b")
    assert (await reservations.list()).caps == {("a", "USD"): Decimal(100)}
    await reservations.set_cap("a", "USD", None)
    await reservations.reserve("USD", "31", owner="a")


async def test_uncommitted_reservations_are_reaped_after_their_ttl(shared: SharedRedis) -> None:
    """A reservation never committed frees its funds after its TTL (Redis's clock, real time)."""
    await published(shared, USD="10")
    reservations = Reservations(shared, shared_config())
    short = await reservations.reserve("USD", "10", owner="a", ttl=0.15)
    with pytest.raises(InsufficientFundsError):
        await reservations.reserve("USD", "1", owner="b")
    await asyncio.sleep(0.2)  # real time: the TTL runs on Redis's clock
    await reservations.reserve("USD", "1", owner="b")
    with pytest.raises(ReservationLostError):
        await reservations.commit(short)


async def test_commit_binds_one_client_order_id(shared: SharedRedis) -> None:
    """Commit names the order once; the same order again is fine, another is refused."""
    await published(shared, USD="10")
    reservations = Reservations(shared, shared_config())
    one = await reservations.reserve("USD", "1", owner="a")
    two = await reservations.reserve("USD", "1", owner="a")
    committed = await reservations.commit(one, "cl-1")
    assert committed.committed
    assert committed.client_order_id == "cl-1"
    assert (await reservations.commit(one, "cl-1")).client_order_id == "cl-1"
    with pytest.raises(ReservationError, match="cl-2"):
        await reservations.commit(one, "cl-2")
    with pytest.raises(ReservationError, match="taken"):
        await reservations.commit(two, "cl-1")
    with pytest.raises(ReservationLostError):
        await reservations.commit("no-such-reservation", "cl-3")


async def test_the_leader_settles_a_committed_reservation(shared: SharedRedis) -> None:
    """A publish naming the client order id deletes its reservation in the same script."""
    leader = await published(shared, USD="10")
    reservations = Reservations(shared, shared_config())
    held = await reservations.reserve("USD", "4", owner="a")
    await reservations.commit(held, "cl-9")
    reply = await leader.publish({"USD": Balance("USD", Decimal(10), Decimal(4))}, settle=["cl-9"])
    assert reply[3] == 1
    listing = await reservations.list()
    assert listing.reservations == {}
    assert listing.available("USD") == 6  # the hold, counted once


async def test_stale_free_amounts_fail_closed(shared: SharedRedis) -> None:
    """When no leader confirmed free within shared_stale_after, reserve refuses."""
    leader = FakeLeader(shared)
    await leader.lead()
    await leader.publish(  # the value and the last confirmation are 5 s old
        {"USD": Balance("USD", Decimal(10))}, reset="x", confirmed_age=5.0, value_age=5.0
    )
    reservations = Reservations(shared, shared_config(shared_stale_after=1.0))
    with pytest.raises(SharedStateError, match="not known current"):
        await reservations.reserve("USD", "1", owner="a")


async def test_no_leader_since_redis_started_fails_closed(shared: SharedRedis) -> None:
    """With no generation in Redis (nothing published since it started), reserve refuses."""
    with pytest.raises(SharedStateError, match="no leader"):
        await Reservations(shared, shared_config()).reserve("USD", "1", owner="a")


async def test_redis_unreachable_fails_closed_quickly() -> None:
    """Nobody listening: reserve raises SharedStateError within the timeout, without a password."""
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    shared = SharedRedis(url, AccountKeys("bm", "a"), timeout=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(SharedStateError) as failed:
            await Reservations(shared, shared_config()).reserve("USD", "1", owner="a")
        assert time.monotonic() - started < 3.0
        assert "hunter2" not in str(failed.value)
        assert "unreachable" in str(failed.value)
    finally:
        await shared.close()


async def test_hold_releases_unless_the_order_went_out(shared: SharedRedis) -> None:
    """The context manager releases an uncommitted or refused reservation, keeps a sent one."""
    await published(shared, USD="10")
    reservations = Reservations(shared, shared_config())
    async with reservations.hold("USD", "3", owner="a"):
        assert (await reservations.list()).reserved["USD"] == 3
    assert (await reservations.list()).reserved == {}

    async def refused_order() -> None:
        async with reservations.hold("USD", "3", owner="a") as hold:
            await hold.commit()
            raise ExchangeError("EOrder:Insufficient funds")

    with pytest.raises(ExchangeError):
        await refused_order()
    assert (await reservations.list()).reserved == {}
    async with reservations.hold("USD", "3", owner="a") as hold:
        client_order_id = await hold.commit()
    listing = await reservations.list()
    (kept,) = listing.reservations.values()
    assert kept.client_order_id == client_order_id


async def test_concurrent_reservers_never_exceed_free(shared: SharedRedis) -> None:
    """Many concurrent reservers: the total reserved is the exact sum of successes, within free."""
    await published(shared, USD="1000")
    reservations = Reservations(shared, shared_config())
    rng = random.Random(7)
    amounts = [Decimal(rng.randint(1, 10**8)).scaleb(-6) for _ in range(300)]

    async def one(amount: Decimal) -> Decimal:
        try:
            await reservations.reserve("USD", amount, owner="a")
        except InsufficientFundsError:
            return Decimal(0)
        return amount

    granted = await asyncio.gather(*(one(a) for a in amounts))
    listing = await reservations.list()
    assert listing.reserved["USD"] == sum(granted)
    assert 0 < listing.reserved["USD"] <= 1000
    assert len(listing.reservations) == sum(1 for g in granted if g)
