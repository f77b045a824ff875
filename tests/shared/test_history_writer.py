"""The shared-mode history writer: a consumer group, ack after commit, a dead writer's batch
claimed by the next one, every ledger entry stored exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from tests.shared.conftest import FakeLeader

from balance_manager.core.models import Balance, Source
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.history_writer import GROUP, HistoryWriter
from balance_manager.storage.sqlite import HistoryStore

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[HistoryStore]:
    history = HistoryStore(str(tmp_path / "history.sqlite3"), account="acct")
    await history.open()
    yield history
    await history.close()


async def publish_entries(
    shared: SharedRedis, count: int, *, start: int = 0, leader: FakeLeader | None = None
) -> FakeLeader:
    """A leader publishing ``count`` BTC values from ledger entries L<start>..; each twice."""
    if leader is None:
        leader = FakeLeader(shared)
        await leader.lead()
    for n in range(start, start + count):
        value = Balance("BTC", Decimal(n).scaleb(-8), source=Source.WEBSOCKET, received_at=1e9 + n)
        for _ in range(2):  # a second leader seeing the entry again adds nothing
            await leader.publish({"BTC": value}, ledger_ids={"BTC": f"L{n}"})
    return leader


async def stored_ledger_ids(store: HistoryStore) -> list[str]:
    return [row.ledger_id for row in await store.load() if row.ledger_id]


async def test_each_ledger_entry_is_written_once_and_acknowledged(
    shared: SharedRedis, store: HistoryStore
) -> None:
    """Rows reach the store once per ledger entry; everything read is acknowledged."""
    await publish_entries(shared, 30)
    writer = HistoryWriter(shared, store, consumer="w1", batch=7)
    while await writer.step():
        pass
    ids = await stored_ledger_ids(store)
    assert sorted(ids) == sorted(f"L{n}" for n in range(30))
    pending = await shared.client.xpending(shared.keys.key("ledger"), GROUP)
    assert pending["pending"] == 0
    assert (await store.load_latest())["BTC"].balance == Decimal(29).scaleb(-8)


async def test_a_dead_writers_batch_is_finished_by_the_next(
    shared: SharedRedis, store: HistoryStore
) -> None:
    """A writer that read a batch and died (before or after writing) leaves it pending;
    another claims it after claim_idle and stores every ledger entry exactly once."""
    leader = await publish_entries(shared, 20)
    dead = HistoryWriter(shared, store, consumer="dead", batch=10)
    await dead.ensure_group()
    stream = shared.keys.key("ledger")
    # Died after reading, before writing: 10 rows pending with it.
    await shared.client.xreadgroup(GROUP, "dead", {stream: ">"}, count=10)
    # Died after writing, before acknowledging: 10 more rows, written, pending.
    reply = await shared.client.xreadgroup(GROUP, "dead", {stream: ">"}, count=10)
    rows, latest = HistoryWriter._rows(reply[0][1])
    await store.write(rows, latest.values())
    assert (await shared.client.xpending(stream, GROUP))["pending"] == 20
    await publish_entries(shared, 5, start=20, leader=leader)
    heir = HistoryWriter(shared, store, consumer="heir", claim_idle=0.05, block=0.05)
    await asyncio.sleep(0.1)  # the dead writer's rows idle past claim_idle (Redis's clock)
    while await heir.step():
        pass
    ids = await stored_ledger_ids(store)
    assert len(ids) == len(set(ids)) == 25
    assert (await shared.client.xpending(stream, GROUP))["pending"] == 0
