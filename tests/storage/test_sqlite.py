"""Tests for balance_manager.storage.sqlite (the SQLite history store)."""

from __future__ import annotations

import os
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from balance_manager.core.models import Balance, Source
from balance_manager.exceptions import PersistenceError
from balance_manager.storage.sqlite import MIGRATIONS, SCHEMA_VERSION, HistoryStore, StoredRow

T0 = 1_700_000_000.0

ROWS = [
    StoredRow("BTC", T0, Decimal("0.1234567890"), Source.WEBSOCKET, "L-1"),
    StoredRow("USD", T0 + 1, Decimal("1E+3"), Source.REST),
    StoredRow("ETH", T0 + 2, Decimal("123456789012345678.9012345678"), Source.CACHE, "L-2"),
    StoredRow("BTC", T0 + 3, Decimal("-0.00000001"), Source.WEBSOCKET, "L-3"),
]


@pytest.mark.asyncio
async def test_rows_round_trip_exactly(tmp_path: Path) -> None:
    """Every field comes back equal, balances as the exact Decimal text."""
    async with HistoryStore(str(tmp_path / "h.db")) as store:
        assert await store.append_many(ROWS) == len(ROWS)
        loaded = await store.load()
    assert loaded == ROWS
    assert [str(row.balance) for row in loaded] == [str(row.balance) for row in ROWS]


@pytest.mark.asyncio
async def test_rows_survive_a_restart_and_load_filters_by_time(tmp_path: Path) -> None:
    """A reopened file holds the rows; load(since) returns only the newer ones, oldest first."""
    path = str(tmp_path / "state" / "nested" / "h.db")  # parents are created
    async with HistoryStore(path) as store:
        await store.append_many(reversed(ROWS))
    async with HistoryStore(path) as store:
        assert await store.count() == len(ROWS)
        assert [row.timestamp for row in await store.load(since=T0 + 2)] == [T0 + 2, T0 + 3]


@pytest.mark.asyncio
async def test_file_database_runs_wal_with_full_sync_at_the_current_schema(
    tmp_path: Path,
) -> None:
    """journal_mode is WAL, synchronous is FULL (2) and user_version is SCHEMA_VERSION."""
    async with HistoryStore(str(tmp_path / "h.db")) as store:
        assert await store.pragmas() == {
            "journal_mode": "wal",
            "synchronous": 2,
            "user_version": SCHEMA_VERSION,
        }
        assert await store.schema_version() == SCHEMA_VERSION == 4


@pytest.mark.asyncio
async def test_in_memory_database_works() -> None:
    """':memory:' stores and loads rows for the life of the store."""
    async with HistoryStore(":memory:") as store:
        assert await store.append_many(ROWS[:2]) == 2
        assert await store.load() == ROWS[:2]
        assert (await store.pragmas())["journal_mode"] == "memory"


@pytest.mark.asyncio
async def test_duplicate_ledger_ids_are_ignored_across_restarts(tmp_path: Path) -> None:
    """A ledger id is stored once per asset, even when written again after a reopen."""
    path = str(tmp_path / "h.db")
    async with HistoryStore(path) as store:
        assert await store.append_many(ROWS) == 4
    async with HistoryStore(path) as store:
        again = [
            StoredRow("BTC", T0 + 9, Decimal(1), Source.WEBSOCKET, "L-1"),  # duplicate
            StoredRow("USD", T0 + 9, Decimal(1), Source.WEBSOCKET, "L-1"),  # other asset
            StoredRow("USD", T0 + 9, Decimal(2), Source.REST),  # no ledger id: never a duplicate
            StoredRow("USD", T0 + 9, Decimal(2), Source.REST),
        ]
        assert await store.append_many(again) == 3
        assert await store.count() == 7


@pytest.mark.asyncio
async def test_prune_before_deletes_older_rows(tmp_path: Path) -> None:
    """prune_before removes rows strictly older than the cutoff and counts them."""
    async with HistoryStore(str(tmp_path / "h.db")) as store:
        await store.append_many(ROWS)
        assert await store.prune_before(T0 + 2) == 2
        assert [row.timestamp for row in await store.load()] == [T0 + 2, T0 + 3]


@pytest.mark.asyncio
async def test_integrity_check_passes_on_a_healthy_file(tmp_path: Path) -> None:
    """A freshly written database passes SQLite's integrity check."""
    async with HistoryStore(str(tmp_path / "h.db")) as store:
        await store.append_many(ROWS)
        assert await store.integrity_check() is True


@pytest.mark.asyncio
async def test_sqlite_runs_on_one_worker_thread(tmp_path: Path) -> None:
    """The connection lives on a dedicated thread, not the event loop's."""
    store = HistoryStore(str(tmp_path / "h.db"))
    await store.open()
    try:
        workers = [t for t in threading.enumerate() if t.name.startswith("balance-history-db")]
        assert len(workers) == 1
        assert workers[0] is not threading.current_thread()
        await store.open()  # idempotent: no second thread
        assert (
            len([t for t in threading.enumerate() if t.name.startswith("balance-history-db")]) == 1
        )
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_close_is_idempotent_and_a_closed_store_refuses_work(tmp_path: Path) -> None:
    """close() twice is fine; later calls raise PersistenceError naming the path."""
    path = str(tmp_path / "h.db")
    store = HistoryStore(path)
    await store.open()
    await store.close()
    await store.close()
    assert not store.is_open
    with pytest.raises(PersistenceError, match="not open") as caught:
        await store.append_many(ROWS)
    assert caught.value.path == path


# -- failures -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_unopenable_path_raises_persistence_error(tmp_path: Path) -> None:
    """A directory where the file should be gives PersistenceError with the path."""
    store = HistoryStore(str(tmp_path))
    with pytest.raises(PersistenceError) as caught:
        await store.open()
    assert caught.value.path == str(tmp_path)
    assert str(tmp_path) in str(caught.value)
    assert not store.is_open


@pytest.mark.asyncio
async def test_parent_that_is_a_file_raises_persistence_error(tmp_path: Path) -> None:
    """A parent 'directory' that is a file cannot be created: PersistenceError."""
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(PersistenceError):
        await HistoryStore(str(blocker / "h.db")).open()


@pytest.mark.asyncio
async def test_corrupt_file_raises_persistence_error(tmp_path: Path) -> None:
    """A file that is not a database is refused at open."""
    path = tmp_path / "h.db"
    path.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(PersistenceError, match="not a database"):
        await HistoryStore(str(path)).open()


@pytest.mark.asyncio
async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database from a newer schema version is not touched."""
    path = tmp_path / "h.db"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version=99")
    connection.close()
    with pytest.raises(PersistenceError, match="schema version 99"):
        await HistoryStore(str(path)).open()


@pytest.mark.asyncio
async def test_read_only_database_refuses_writes(tmp_path: Path) -> None:
    """A database opened read-only raises PersistenceError on write and still reads."""
    path = tmp_path / "h.db"
    async with HistoryStore(str(path)) as store:
        await store.append_many(ROWS[:1])
    async with HistoryStore(f"file:{path}?mode=ro") as store:
        with pytest.raises(PersistenceError, match="readonly"):
            await store.append_many(ROWS[1:])
        assert await store.load() == ROWS[:1]


def set_modes(path: Path, file_mode: int, directory_mode: int) -> None:
    """Set the permissions of ``path`` and of its directory."""
    path.chmod(file_mode)
    path.parent.chmod(directory_mode)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
@pytest.mark.asyncio
async def test_read_only_file_refuses_writes(tmp_path: Path) -> None:
    """A file without write permission raises PersistenceError, at open or on write."""
    path = tmp_path / "h.db"
    async with HistoryStore(str(path)) as store:
        await store.append_many(ROWS[:1])
    set_modes(path, 0o444, 0o555)
    try:
        with pytest.raises(PersistenceError):
            async with HistoryStore(str(path)) as store:
                await store.append_many(ROWS[1:])
    finally:
        set_modes(path, 0o644, 0o755)


@pytest.mark.asyncio
async def test_full_database_raises_and_keeps_nothing_of_the_batch(tmp_path: Path) -> None:
    """A write past max_bytes fails like a full disk and rolls the whole batch back."""
    async with HistoryStore(str(tmp_path / "h.db"), max_bytes=64 * 1024) as store:
        big = [
            StoredRow("BTC", T0 + i, Decimal(i), Source.REST, f"ledger-{i:0>200}")
            for i in range(2000)
        ]
        with pytest.raises(PersistenceError, match="full"):
            await store.append_many(big)
        assert await store.count() == 0
        assert await store.append_many(ROWS[:1]) == 1  # still usable afterwards


@pytest.mark.asyncio
async def test_accounts_in_one_file_never_see_each_others_rows(tmp_path: Path) -> None:
    """Two accounts writing one file each read, count and prune only their own rows."""
    path = str(tmp_path / "h.db")
    async with HistoryStore(path, account="aaaa") as a, HistoryStore(path, account="bbbb") as b:
        await a.append_many(ROWS[:2])
        await b.append_many([StoredRow("SOL", T0, Decimal(1000), Source.REST, "L-1")])
        assert [row.asset for row in await a.load()] == ["BTC", "USD"]
        assert [row.asset for row in await b.load()] == ["SOL"]
        assert (await a.count(), await b.count()) == (2, 1)
        # The same ledger id is a different entry in another account.
        assert await b.append_many([ROWS[0]]) == 1
        assert await a.prune_before(T0 + 10) == 2
        assert await b.count() == 2
        assert await a.accounts() == ["bbbb"]


@pytest.mark.asyncio
async def test_latest_values_keep_every_amount_per_account(tmp_path: Path) -> None:
    """write() stores each asset's last value, hold included, and load_latest() gives it back."""
    path = str(tmp_path / "h.db")
    usd = Balance(
        asset="USD",
        balance=Decimal("25435.21"),
        hold_trade=Decimal("501.3"),
        earn=Decimal("7"),
        credit=Decimal("100"),
        credit_used=Decimal("1.5"),
        source=Source.WEBSOCKET,
        received_at=T0,
    )
    async with HistoryStore(path, account="aaaa") as store:
        await store.write([], [usd])
        await store.write([], [usd.replace(hold_trade=Decimal(0), received_at=T0 + 1)])
    async with HistoryStore(path, account="aaaa") as store:
        latest = await store.load_latest()
    assert latest == {"USD": usd.replace(hold_trade=Decimal(0), received_at=T0 + 1)}
    async with HistoryStore(path, account="bbbb") as other:
        assert await other.load_latest() == {}


@pytest.mark.asyncio
async def test_a_version_1_file_is_migrated_and_its_unowned_rows_are_not_read(
    tmp_path: Path,
) -> None:
    """Rows written before accounts existed are kept but never read as any account's."""
    path = tmp_path / "h.db"
    connection = sqlite3.connect(path)
    connection.executescript(
        """
        CREATE TABLE history (id INTEGER PRIMARY KEY, asset TEXT NOT NULL,
            timestamp REAL NOT NULL, balance TEXT NOT NULL, source TEXT NOT NULL, ledger_id TEXT);
        CREATE INDEX history_by_time ON history (timestamp);
        CREATE UNIQUE INDEX history_ledger ON history (asset, ledger_id)
            WHERE ledger_id IS NOT NULL;
        INSERT INTO history (asset, timestamp, balance, source, ledger_id)
            VALUES ('BTC', 1.0, '550', 'rest', 'L-1');
        PRAGMA user_version = 1;
        """
    )
    connection.close()
    async with HistoryStore(str(path), account="aaaa") as store:
        assert await store.schema_version() == 4
        assert await store.load() == []
        assert await store.append_many([StoredRow("BTC", 2.0, Decimal(1), Source.REST, "L-1")]) == 1
        assert [row.balance for row in await store.load()] == [Decimal(1)]


@pytest.mark.asyncio
async def test_a_version_2_file_is_migrated_to_3_with_the_per_asset_index(tmp_path: Path) -> None:
    """The previous schema gets history_by_asset; its rows stay and the capped read uses it."""
    path = tmp_path / "h.db"
    connection = sqlite3.connect(path, isolation_level=None)
    for migrate in MIGRATIONS[:2]:
        migrate(connection)
    connection.execute("PRAGMA user_version = 2")
    connection.executemany(
        "INSERT INTO history (asset, timestamp, balance, source, ledger_id, account) "
        "VALUES (?, ?, ?, 'rest', ?, 'aaaa')",
        [("BTC", T0 + n, str(n), f"L-{n}") for n in range(5)],
    )
    connection.close()
    async with HistoryStore(str(path), account="aaaa") as store:
        assert await store.schema_version() == 4
        assert await store.integrity_check() is True
        assert [row.balance for row in await store.load(limit_per_asset=2)] == [3, 4]
    connection = sqlite3.connect(path)
    plan = " ".join(
        str(row[-1])
        for row in connection.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM history WHERE account = 'a' AND asset = 'BTC' "
            "AND timestamp >= 0 ORDER BY timestamp DESC, id DESC LIMIT 5"
        )
    )
    connection.close()
    assert "history_by_asset" in plan
    assert "TEMP B-TREE" not in plan  # read in index order, no sort of the whole asset


@pytest.mark.asyncio
async def test_an_empty_file_is_migrated_to_the_current_version(tmp_path: Path) -> None:
    """A new file goes through every migration, in order, to SCHEMA_VERSION."""
    async with HistoryStore(str(tmp_path / "new.db")) as store:
        assert await store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    connection = sqlite3.connect(tmp_path / "new.db")
    indexes = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    connection.close()
    assert {"history_by_asset", "history_ledger_v2", "history_by_account", "latest"} <= indexes


@pytest.mark.parametrize(("balance", "source"), [("abc", "rest"), ("1.5", "carrier-pigeon")])
@pytest.mark.asyncio
async def test_a_row_that_is_not_valid_is_a_persistence_error_naming_it(
    tmp_path: Path, balance: str, source: str
) -> None:
    """A stored balance that is not a number, or an unknown source, is refused by name."""
    path = tmp_path / "h.db"
    async with HistoryStore(str(path), account="aaaa") as store:
        await store.append_many(ROWS[:1])
    connection = sqlite3.connect(path)
    connection.execute(
        "INSERT INTO history (asset, timestamp, balance, source, account) "
        "VALUES ('DOGE', 5.0, ?, ?, 'aaaa')",
        (balance, source),
    )
    connection.commit()
    connection.close()
    async with HistoryStore(str(path), account="aaaa") as store:
        for read in (store.load(), store.load(limit_per_asset=5), store.load_asset("DOGE")):
            with pytest.raises(PersistenceError, match="invalid row") as caught:
                await read
            assert "DOGE" in str(caught.value)
            assert caught.value.path == str(path)


@pytest.mark.asyncio
async def test_a_version_3_file_gains_the_portfolio_table(tmp_path: Path) -> None:
    """A file written before portfolio values is migrated to version 4, its rows intact."""
    path = tmp_path / "v3.sqlite3"
    connection = sqlite3.connect(path)
    for migrate in MIGRATIONS[:3]:
        migrate(connection)
    connection.execute(
        "INSERT INTO history (asset, timestamp, balance, source, ledger_id, account) "
        "VALUES ('BTC', 1.5, '1.2435', 'rest', NULL, 'acct')"
    )
    connection.execute("PRAGMA user_version = 3")
    connection.commit()
    connection.close()
    async with HistoryStore(str(path), account="acct") as store:
        assert await store.schema_version() == 4
        assert [row.balance for row in await store.load()] == [Decimal("1.2435")]
        assert await store.load_values("USD") == []
