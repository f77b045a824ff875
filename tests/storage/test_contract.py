"""The history store contract, run against every backend (SQLite and a real PostgreSQL).

What ``storage/base.py`` promises: exact amounts and microsecond times, order,
retention, ledger ids stored once, accounts kept apart, the capped reload,
latest values, and several processes writing one database at once.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from balance_manager.core.models import Balance, Source
from balance_manager.core.value_history import ValuePoint
from balance_manager.exceptions import ConfigError, PersistenceError
from balance_manager.service.history import BalanceHistory
from balance_manager.storage.base import HistoryStore, StoredRow, ValueStore
from balance_manager.testing import ManualClock

from .backends import Backend
from .store_writer import ledger_numbers

T0 = 1_700_000_000.0
WRITER = Path(__file__).with_name("store_writer.py")

#: Amounts at the edges of what a balance can be, each with a time to the microsecond.
EXTREMES = [
    Decimal("1234567890.123456789012345678"),  # 28 significant digits
    Decimal("0.000000000000000001"),  # 1e-18
    Decimal("1E-18"),
    Decimal("1000000000000000"),  # 1e15
    Decimal("1E+15"),
    Decimal("999999999999999.9999999999999"),  # 28 nines, 1e15 scale
    Decimal("-0.00000001"),
    Decimal("0E-10"),
    Decimal("0"),
    Decimal("1.2435000000"),
]


def rows_of(
    asset: str, count: int, *, start: float = T0, ledger: str | None = None
) -> list[StoredRow]:
    """``count`` rows of ``asset``, one a second from ``start``; ledger ids ``<ledger><n>``."""
    return [
        StoredRow(
            asset,
            start + n,
            Decimal(n),
            Source.WEBSOCKET,
            None if ledger is None else f"{ledger}{n}",
        )
        for n in range(count)
    ]


@pytest.mark.asyncio
async def test_extreme_amounts_and_microsecond_times_round_trip_exactly(backend: Backend) -> None:
    """28 significant digits, 1e-18 and 1e15 come back equal; times to the microsecond."""
    rows = [
        StoredRow("BTC", T0 + n + 0.123456, amount, Source.REST, f"L{n}")
        for n, amount in enumerate(EXTREMES)
    ]
    async with backend.store() as store:
        assert await store.append_many(rows) == len(rows)
    async with backend.store() as store:
        loaded = await store.load()
    assert loaded == rows
    for stored, written in zip(loaded, rows, strict=True):
        assert isinstance(stored.balance, Decimal)
        assert stored.balance == written.balance
        assert isinstance(stored.timestamp, float)
        assert stored.timestamp == written.timestamp


@pytest.mark.asyncio
async def test_every_source_and_a_missing_ledger_id_round_trip(backend: Backend) -> None:
    """Each Source and a row without a ledger id come back as written."""
    rows = [
        StoredRow("USD", T0 + n, Decimal(n), source, None if n else "L-0")
        for n, source in enumerate(Source)
    ]
    async with backend.store() as store:
        await store.append_many(rows)
        assert await store.load() == rows


@pytest.mark.asyncio
async def test_rows_come_back_oldest_first_and_ties_in_insertion_order(backend: Backend) -> None:
    """Reads sort by time; rows of one timestamp keep the order they were written in."""
    late = StoredRow("BTC", T0 + 10, Decimal(3), Source.REST, "L3")
    tie_a = StoredRow("BTC", T0 + 5, Decimal(1), Source.REST, "L1")
    tie_b = StoredRow("BTC", T0 + 5, Decimal(2), Source.REST, "L2")
    early = StoredRow("ETH", T0, Decimal(9), Source.REST)
    async with backend.store() as store:
        await store.append_many([late, tie_a])
        await store.append(tie_b)
        await store.append(early)
        assert await store.load() == [early, tie_a, tie_b, late]
        assert await store.load_asset("BTC") == [tie_a, tie_b, late]
        assert await store.load(limit_per_asset=10) == [early, tie_a, tie_b, late]


@pytest.mark.asyncio
async def test_load_since_and_prune_before_keep_the_cutoff_row(backend: Backend) -> None:
    """load(since) includes since; prune_before(t) deletes only rows strictly older than t."""
    rows = rows_of("BTC", 10)
    async with backend.store() as store:
        await store.append_many(rows)
        assert await store.load(T0 + 7) == rows[7:]
        assert await store.prune_before(T0 + 4) == 4
        assert await store.prune_before(T0 + 4) == 0
        assert await store.count() == 6
        assert await store.load() == rows[4:]


@pytest.mark.asyncio
async def test_a_ledger_id_is_stored_once_however_often_it_is_written(backend: Backend) -> None:
    """Replays (same batch twice, a duplicate inside a batch, after a reopen) add nothing."""
    rows = rows_of("BTC", 5, ledger="L")
    async with backend.store() as store:
        assert await store.append_many([*rows, rows[0]]) == 5
        assert await store.append_many(rows) == 0
    async with backend.store() as store:
        assert await store.write(rows, []) == 0
        replayed = StoredRow("BTC", T0 + 99, Decimal(42), Source.REST, "L3")
        assert await store.append(replayed) == 0
        other_asset = StoredRow("ETH", T0 + 99, Decimal(42), Source.REST, "L3")
        assert await store.append(other_asset) == 1
        plain = StoredRow("BTC", T0 + 99, Decimal(7), Source.REST)
        assert await store.append_many([plain, plain]) == 2  # no ledger id: never a duplicate
        assert await store.count() == 8
        assert [row.balance for row in await store.load_asset("BTC")][:5] == [0, 1, 2, 3, 4]


@pytest.mark.asyncio
async def test_accounts_never_see_each_others_rows(backend: Backend) -> None:
    """Two accounts in one database read, count and prune only their own rows."""
    async with backend.store("aaaa") as a, backend.store("bbbb") as b:
        await a.append_many(rows_of("BTC", 3, ledger="L"))
        assert await b.append_many(rows_of("BTC", 2, ledger="L")) == 2  # same ids, other account
        assert (await a.count(), await b.count()) == (3, 2)
        assert await a.prune_before(T0 + 10) == 3
        assert await b.count() == 2
        assert [row.asset for row in await b.load()] == ["BTC", "BTC"]
        assert await a.load_latest() == {}
        assert await a.accounts() == ["bbbb"]


@pytest.mark.asyncio
async def test_portfolio_values_round_trip_exactly_per_account_and_quote(
    backend: Backend,
) -> None:
    """Value points come back exact, oldest first, per account and quote; pruning is by time."""
    points = [
        ValuePoint(T0 + 0.123456, EXTREMES[0], True, True, Decimal(0), 0, 0),
        ValuePoint(
            T0 + 1,
            Decimal("147057.7736363636363636363636363636365"),
            False,
            True,
            Decimal("-1E-18"),
            2,
            1,
        ),
        ValuePoint(T0 + 2, Decimal("0E-10"), True, False, Decimal("1E+15"), 3, 1),
    ]
    async with backend.store("aaaa") as a, backend.store("bbbb") as b:
        assert isinstance(a, ValueStore)
        assert await a.append_values("USD", points) == 3
        assert await a.append_values("EUR", points[:1]) == 1
        assert await a.append_values("USD", []) == 0
        assert await b.load_values("USD") == []
        loaded = await a.load_values("USD")
        assert loaded == points
        assert all(isinstance(p.total, Decimal) and isinstance(p.flows, Decimal) for p in loaded)
        assert await a.load_values("USD", since=T0 + 1) == points[1:]
        assert await a.load_values("EUR") == points[:1]
        assert await a.prune_values_before(T0 + 1.5) == 3  # two of USD, the one of EUR
        assert await a.load_values("USD") == points[2:]
    async with backend.store("aaaa") as again:
        assert isinstance(again, ValueStore)
        assert await again.load_values("USD") == points[2:]  # durable across a reopen


@pytest.mark.asyncio
async def test_latest_values_keep_every_amount_and_are_replaced(backend: Backend) -> None:
    """write() stores each asset's last value, hold and credit included; the newest wins."""
    usd = Balance(
        asset="USD",
        balance=Decimal("25435.21"),
        hold_trade=Decimal("501.3"),
        earn=Decimal("7"),
        credit=Decimal("100"),
        credit_used=Decimal("1.5"),
        source=Source.WEBSOCKET,
        received_at=T0 + 0.25,
    )
    tiny = Balance("DOGE", Decimal("1E-18"), source=Source.REST, received_at=T0)
    async with backend.store("aaaa") as store:
        await store.write([], [usd, tiny])
        await store.write([], [usd.replace(hold_trade=Decimal(0), received_at=T0 + 1)])
    async with backend.store("aaaa") as store:
        latest = await store.load_latest()
    assert latest == {"USD": usd.replace(hold_trade=Decimal(0), received_at=T0 + 1), "DOGE": tiny}
    async with backend.store("bbbb") as other:
        assert await other.load_latest() == {}


@pytest.mark.asyncio
async def test_capped_load_gives_the_newest_rows_of_each_asset(backend: Backend) -> None:
    """load(limit_per_asset=n) keeps the newest n of each asset within since, oldest first."""
    btc = rows_of("BTC", 20, ledger="B")
    eth = rows_of("ETH", 3, start=T0 + 0.5, ledger="E")
    async with backend.store() as store:
        await store.append_many([*btc, *eth])
        capped = await store.load(T0 + 1, limit_per_asset=5)
        assert capped == sorted([*btc[15:], *eth[1:]], key=lambda row: row.timestamp)
        assert await store.load(limit_per_asset=1) == [eth[-1], btc[-1]]
        with pytest.raises(ConfigError, match="limit_per_asset"):
            await store.load(limit_per_asset=0)


@pytest.mark.asyncio
async def test_range_read_of_one_asset(backend: Backend) -> None:
    """load_asset reads [since, until) of one asset, oldest first; limit keeps the newest."""
    async with backend.store() as store:
        await store.append_many([*rows_of("BTC", 10), *rows_of("ETH", 10)])
        window = await store.load_asset("BTC", since=T0 + 2, until=T0 + 6)
        assert [row.timestamp for row in window] == [T0 + 2, T0 + 3, T0 + 4, T0 + 5]
        assert {row.asset for row in window} == {"BTC"}
        newest = await store.load_asset("BTC", until=T0 + 6, limit=2)
        assert [row.timestamp for row in newest] == [T0 + 4, T0 + 5]
        assert await store.load_asset("XRP") == []


@pytest.mark.asyncio
async def test_reload_on_start_is_capped_by_history_max_entries(backend: Backend) -> None:
    """A restarted history reloads the newest history_max_entries per asset, within retention."""
    clock = ManualClock()
    now = clock.time()
    async with backend.store() as store:
        await store.append_many(
            [*rows_of("BTC", 50, start=now - 100, ledger="B"), *rows_of("ETH", 2, start=now - 50)]
        )
        await store.append(StoredRow("XRP", now - 7200, Decimal(1), Source.REST))  # too old
    history = BalanceHistory(clock=clock, store=backend.store(), max_entries=5, retention_hours=1)
    assert await history.load() == 7
    assert [entry.balance for entry in history.get_asset_history("BTC")] == [45, 46, 47, 48, 49]
    assert history.get_asset_history("XRP") == []
    replay = Balance("BTC", Decimal(1), received_at=now)
    assert history.record(replay, ledger_id="B49") is None  # reloaded ledger ids are refused
    await history.close()


def is_open(store: HistoryStore) -> bool:
    """Whether ``store`` is open (a call, so a type checker does not narrow it)."""
    return store.is_open


@pytest.mark.asyncio
async def test_open_is_idempotent_close_twice_is_fine_and_closed_refuses(backend: Backend) -> None:
    """open() twice, close() twice; a closed store raises PersistenceError naming where."""
    store = backend.store()
    await store.open()
    await store.open()
    assert is_open(store)
    assert await store.schema_version() >= 1
    assert await store.integrity_check() is True
    await store.close()
    await store.close()
    assert not is_open(store)
    with pytest.raises(PersistenceError, match="not open") as caught:
        await store.append_many(rows_of("BTC", 1))
    assert caught.value.path == store.path


@pytest.mark.asyncio
async def test_empty_writes_and_reads(backend: Backend) -> None:
    """Nothing to write returns 0; an empty database reads empty everywhere."""
    async with backend.store() as store:
        assert isinstance(store, HistoryStore)
        assert await store.write([], []) == 0
        assert await store.load() == []
        assert await store.load(limit_per_asset=3) == []
        assert await store.load_latest() == {}
        assert await store.count() == 0
        assert await store.accounts() == []
        assert await store.prune_before(T0) == 0


async def migrate(backend: Backend) -> None:
    """Create the database and its schema."""
    async with backend.store():
        pass


async def read_back(backend: Backend) -> tuple[list[StoredRow], bool]:
    """Every row of the test account, and whether the integrity check passes."""
    async with backend.store() as store:
        return await store.load(), await store.integrity_check()


def test_concurrent_writers_in_several_processes_store_each_entry_once(backend: Backend) -> None:
    """Four processes writing overlapping ledger ids at once: every entry stored exactly once."""
    workers, batches, size = 4, 10, 50
    asyncio.run(migrate(backend))  # created and migrated before the race
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                str(WRITER),
                backend.url,
                "acct",
                str(worker),
                str(batches),
                str(size),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(workers)
    ]
    try:
        for process in processes:  # every writer is open before any writes
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "READY"
        outputs = [process.communicate("go\n", timeout=120) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    assert [process.returncode for process in processes] == [0] * workers, outputs
    expected = set()
    for worker in range(workers):
        expected |= set(ledger_numbers(worker, batches, size))
    assert sum(int(out.split()[-1]) for out, _ in outputs) == len(expected)
    rows, healthy = asyncio.run(read_back(backend))
    assert healthy
    ids = [row.ledger_id for row in rows]
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == {f"L{n}" for n in expected}


def writer(backend: Backend, batches: int, size: int) -> subprocess.Popen[str]:
    """A ``store_writer.py`` process of worker 0 on ``backend``, waiting for its go."""
    return subprocess.Popen(
        [sys.executable, str(WRITER), backend.url, "acct", "0", str(batches), str(size)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_writer_killed_mid_run_and_replayed_stores_every_entry_once(backend: Backend) -> None:
    """SIGKILL a writer after some commits; replaying every batch stores each entry exactly once."""
    batches, size = 200, 50  # far more than can commit between the third ACK and the kill
    asyncio.run(migrate(backend))
    first = writer(backend, batches, size)
    try:
        assert first.stdin is not None
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "READY"
        first.stdin.write("go\n")
        first.stdin.flush()
        acknowledged = [first.stdout.readline().strip() for _ in range(3)]
        assert acknowledged == ["ACK 0", "ACK 1", "ACK 2"]
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)
        for stream in (first.stdin, first.stdout, first.stderr):
            if stream is not None:
                stream.close()
    stored_before, _ = asyncio.run(read_back(backend))
    assert len(stored_before) >= 3 * size  # every acknowledged batch survived the kill
    assert len(stored_before) % size == 0  # and no batch is there in part
    assert len(stored_before) < batches * size  # killed mid-run

    replay = writer(backend, batches, size)
    out, err = replay.communicate("go\n", timeout=120)
    assert replay.returncode == 0, err
    assert int(out.split()[-1]) == batches * size - len(stored_before)  # only the missing ones
    rows, healthy = asyncio.run(read_back(backend))
    assert healthy
    ids = [row.ledger_id for row in rows]
    assert len(ids) == len(set(ids)) == batches * size
