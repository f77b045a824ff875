"""SQLite storage for balance history, driven from asyncio: the embedded default.

:class:`SQLiteHistoryStore` implements the
:class:`~balance_manager.storage.base.HistoryStore` interface on one SQLite
file (``HistoryStore`` here is its older name, kept as an alias).

A ``sqlite3`` connection belongs to the thread that made it, and its calls
block. :class:`SQLiteHistoryStore` therefore owns one dedicated worker thread (a
``ThreadPoolExecutor(max_workers=1)``): the connection is opened, used and
closed there only, and every public method is a coroutine that hands its work
to that thread with ``loop.run_in_executor``. The event loop never blocks on
the disk, and calls are serialised in the order they were made.

Durability: the database runs in WAL mode with ``synchronous=FULL``. WAL lets
readers and the writer proceed together and makes a commit one sequential
append. ``FULL`` makes SQLite fsync the WAL at every commit, so a batch that
:meth:`SQLiteHistoryStore.write` has acknowledged survives not only a killed
process (WAL alone gives that) but also an OS crash or power loss.

Schema (version 4, tracked in ``PRAGMA user_version``)::

    CREATE TABLE history (
        id        INTEGER PRIMARY KEY,   -- insertion order, breaks timestamp ties
        asset     TEXT NOT NULL,
        timestamp REAL NOT NULL,         -- Unix seconds
        balance   TEXT NOT NULL,         -- str(Decimal): exact, never a float
        source    TEXT NOT NULL,         -- Source.value
        ledger_id TEXT,                  -- exchange ledger entry id, if any
        account   TEXT NOT NULL DEFAULT ''   -- the account's fingerprint (v2)
    );
    CREATE INDEX history_by_time ON history (timestamp);
    CREATE INDEX history_by_account ON history (account, timestamp);
    CREATE INDEX history_by_asset ON history (account, asset, timestamp);   -- v3
    CREATE UNIQUE INDEX history_ledger_v2 ON history (account, asset, ledger_id)
        WHERE ledger_id IS NOT NULL;
    CREATE TABLE latest (                -- the last known value of each asset (v2)
        account     TEXT NOT NULL,
        asset       TEXT NOT NULL,
        balance     TEXT NOT NULL,
        hold_trade  TEXT NOT NULL,
        earn        TEXT NOT NULL,
        credit      TEXT NOT NULL,
        credit_used TEXT NOT NULL,
        source      TEXT NOT NULL,
        received_at REAL NOT NULL,
        PRIMARY KEY (account, asset)
    );
    CREATE TABLE portfolio_value (       -- the portfolio's value over time (v4)
        id INTEGER PRIMARY KEY, account TEXT NOT NULL, quote TEXT NOT NULL,
        at REAL NOT NULL, total TEXT NOT NULL, complete INTEGER NOT NULL,
        fresh INTEGER NOT NULL, flows TEXT NOT NULL, flow_count INTEGER NOT NULL,
        unvalued_flows INTEGER NOT NULL
    );
    CREATE INDEX portfolio_value_by_time ON portfolio_value (account, quote, at);

Every row belongs to one account (a fingerprint of its API key, never the key):
a store reads and prunes only its own account's rows, so a file that holds
another account's data is never read as this one's. Rows written by version 1
carry no account and are never read again (whose they were cannot be known).

Rows go in with ``INSERT OR IGNORE``, so the partial unique index makes sure a
ledger entry is stored once, however often it is replayed. ``latest`` keeps
every amount of a value, hold included, so a restart while the exchange is
unreachable shows complete last-known values. Later schema versions are added
to :data:`MIGRATIONS`; :meth:`SQLiteHistoryStore.open` applies the missing ones in
order, each in its own transaction.

Version 4 adds ``portfolio_value``: the portfolio's value over time (one row
per recorded point, per account and quote currency; amounts as exact text), read
back by :meth:`SQLiteHistoryStore.load_values`.

Version 3 adds ``history_by_asset``: the newest rows of one asset are read
straight from that index (newest first, ``LIMIT`` n), so the reload on start
reads at most ``history_max_entries`` rows per asset, and a range read of one
asset touches only that asset's rows. The distinct assets are found by
walking the same index (one lookup per asset, not a scan of the table).

Every ``sqlite3`` or file-system failure (file that cannot be opened,
read-only file, full disk, corrupt database) is raised as
:class:`~balance_manager.exceptions.PersistenceError` naming the path.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from balance_manager.core.models import Balance, Source
from balance_manager.core.value_history import ValuePoint
from balance_manager.exceptions import BalanceManagerError, ConfigError, PersistenceError
from balance_manager.storage.base import HistoryRow, StoredRow

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "HistoryStore",
    "SQLiteHistoryStore",
    "StoredRow",
]

_T = TypeVar("_T")


def _migrate_to_1(connection: sqlite3.Connection) -> None:
    """Version 1: the history table, its time index and the ledger-id guard."""
    connection.execute(
        """
        CREATE TABLE history (
            id        INTEGER PRIMARY KEY,
            asset     TEXT NOT NULL,
            timestamp REAL NOT NULL,
            balance   TEXT NOT NULL,
            source    TEXT NOT NULL,
            ledger_id TEXT
        )
        """
    )
    connection.execute("CREATE INDEX history_by_time ON history (timestamp)")
    connection.execute(
        "CREATE UNIQUE INDEX history_ledger ON history (asset, ledger_id) "
        "WHERE ledger_id IS NOT NULL"
    )


def _migrate_to_2(connection: sqlite3.Connection) -> None:
    """Version 2: rows keyed by account; the ``latest`` table of complete last values."""
    connection.execute("ALTER TABLE history ADD COLUMN account TEXT NOT NULL DEFAULT ''")
    connection.execute("DROP INDEX history_ledger")
    connection.execute(
        "CREATE UNIQUE INDEX history_ledger_v2 ON history (account, asset, ledger_id) "
        "WHERE ledger_id IS NOT NULL"
    )
    connection.execute("CREATE INDEX history_by_account ON history (account, timestamp)")
    connection.execute(
        """
        CREATE TABLE latest (
            account     TEXT NOT NULL,
            asset       TEXT NOT NULL,
            balance     TEXT NOT NULL,
            hold_trade  TEXT NOT NULL,
            earn        TEXT NOT NULL,
            credit      TEXT NOT NULL,
            credit_used TEXT NOT NULL,
            source      TEXT NOT NULL,
            received_at REAL NOT NULL,
            PRIMARY KEY (account, asset)
        )
        """
    )


def _migrate_to_3(connection: sqlite3.Connection) -> None:
    """Version 3: an index per (account, asset, time), for capped reloads and range reads."""
    connection.execute("CREATE INDEX history_by_asset ON history (account, asset, timestamp)")


def _migrate_to_4(connection: sqlite3.Connection) -> None:
    """Version 4: the portfolio's value over time, per account and quote currency."""
    connection.execute(
        """
        CREATE TABLE portfolio_value (
            id             INTEGER PRIMARY KEY,
            account        TEXT NOT NULL,
            quote          TEXT NOT NULL,
            at             REAL NOT NULL,
            total          TEXT NOT NULL,
            complete       INTEGER NOT NULL,
            fresh          INTEGER NOT NULL,
            flows          TEXT NOT NULL,
            flow_count     INTEGER NOT NULL,
            unvalued_flows INTEGER NOT NULL
        )
        """
    )
    connection.execute(
        "CREATE INDEX portfolio_value_by_time ON portfolio_value (account, quote, at)"
    )


#: Schema migrations: ``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _migrate_to_1,
    _migrate_to_2,
    _migrate_to_3,
    _migrate_to_4,
)

#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)

_INSERT = (
    "INSERT OR IGNORE INTO history (asset, timestamp, balance, source, ledger_id, account) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_SELECT = (
    "SELECT asset, timestamp, balance, source, ledger_id, id FROM history "
    "WHERE account = ? AND timestamp >= ? ORDER BY timestamp, id"
)
# The account's assets, walking history_by_asset: one index lookup per asset.
_ASSETS = (
    "WITH RECURSIVE assets(asset) AS ("
    " SELECT (SELECT MIN(asset) FROM history WHERE account = ?1)"
    " UNION ALL"
    " SELECT (SELECT MIN(asset) FROM history WHERE account = ?1 AND asset > assets.asset)"
    " FROM assets WHERE assets.asset IS NOT NULL"
    ") SELECT asset FROM assets WHERE asset IS NOT NULL"
)
# The newest rows of one asset in [since, until), newest first, from history_by_asset.
_SELECT_ASSET = (
    "SELECT asset, timestamp, balance, source, ledger_id, id FROM history "
    "WHERE account = ? AND asset = ? AND timestamp >= ? AND timestamp < ? "
    "ORDER BY timestamp DESC, id DESC LIMIT ?"
)
_UPSERT_LATEST = (
    "INSERT INTO latest (account, asset, balance, hold_trade, earn, credit, credit_used, "
    "source, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (account, asset) DO UPDATE SET balance = excluded.balance, "
    "hold_trade = excluded.hold_trade, earn = excluded.earn, credit = excluded.credit, "
    "credit_used = excluded.credit_used, source = excluded.source, "
    "received_at = excluded.received_at"
)
_SELECT_LATEST = (
    "SELECT asset, balance, hold_trade, earn, credit, credit_used, source, received_at "
    "FROM latest WHERE account = ?"
)


@contextmanager
def _immediate(connection: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (``BEGIN IMMEDIATE``): committed at the end of the block, rolled
    back if it raises (a failed migration keeps its old ``user_version`` too)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


class SQLiteHistoryStore:
    """Balance history in one SQLite file, used from asyncio (a ``HistoryStore``).

    Args:
        path: a file path (parent directories are created), ``":memory:"``, or
            an SQLite ``file:`` URI (e.g. ``file:history.db?mode=ro``).
        max_bytes: optional cap on the database size; writes beyond it fail
            with :class:`PersistenceError` as a full disk would.
        account: the account whose rows this store reads and writes (a
            fingerprint, see the module docstring).

    Call :meth:`open` first and :meth:`close` at the end (or use ``async with
    SQLiteHistoryStore(path) as store:``). Methods called on a store that is not
    open raise :class:`PersistenceError`.
    """

    def __init__(self, path: str, *, max_bytes: int | None = None, account: str = "") -> None:
        self._path = str(path)
        self._max_bytes = max_bytes
        self.account = account
        """The account whose rows this store reads and writes."""
        self._executor: ThreadPoolExecutor | None = None
        # Only ever touched on the worker thread (set there by _open_sync).
        self._connection: sqlite3.Connection | None = None

    @property
    def path(self) -> str:
        """The database path or URI."""
        return self._path

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` succeeded and :meth:`close` has not been called."""
        return self._executor is not None

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        """Open (or create) the database, switch on WAL and bring the schema up to date.

        Does nothing when already open.

        Raises:
            PersistenceError: the file cannot be created, opened or migrated, or
                was written by a newer version of balance-manager.
        """
        if self._executor is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="balance-history-db")
        try:
            await self._submit(executor, self._open_sync, "open")
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor = executor

    async def close(self) -> None:
        """Close the connection and stop the worker thread. Safe to call twice."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await self._submit(executor, self._close_sync, "close")
        finally:
            executor.shutdown(wait=True)

    # -- operations ----------------------------------------------------------------

    async def append(self, row: StoredRow) -> int:
        """Store one row in its own transaction; 1 if it was new, 0 if a duplicate.

        Raises:
            PersistenceError: the write failed.
        """
        return await self.write((row,), ())

    async def append_many(self, rows: Iterable[StoredRow]) -> int:
        """Store ``rows`` in one transaction; return how many were new.

        A row whose ``(asset, ledger_id)`` is already stored is skipped, so the
        result can be lower than ``len(rows)``. Either every row is committed
        (durably, see the module docstring) or none is.

        Raises:
            PersistenceError: the write failed; nothing was stored.
        """
        return await self.write(rows, ())

    async def write(self, rows: Iterable[HistoryRow], latest: Iterable[Balance]) -> int:
        """Store history ``rows`` and the ``latest`` values in one transaction.

        Returns how many history rows were new (see :meth:`append_many`).

        Raises:
            PersistenceError: the write failed; nothing was stored.
        """
        batch, values = list(rows), list(latest)
        if not batch and not values:
            return 0
        # Rows become SQL parameters in the store's thread: nothing per row on the loop.
        return await self._run(self._write_sync, batch, values, what="write")

    async def load_latest(self) -> dict[str, Balance]:
        """The last known value of every asset of this account, every amount included.

        Raises:
            PersistenceError: the read failed or a row is not valid.
        """
        return await self._run(self._latest_sync, what="read")

    async def load(
        self, since: float = float("-inf"), *, limit_per_asset: int | None = None
    ) -> list[StoredRow]:
        """Rows with ``timestamp >= since``, oldest first (ties in insertion order).

        With ``limit_per_asset``, only the newest ``limit_per_asset`` rows of
        each asset, read from the per-asset index (never the whole table).

        Raises:
            PersistenceError: the read failed or a row is not valid.
        """
        if limit_per_asset is None:
            return await self._run(self._load_sync, since, what="read")
        _check_limit("limit_per_asset", limit_per_asset)
        return await self._run(self._load_capped_sync, since, limit_per_asset, what="read")

    async def load_asset(
        self,
        asset: str,
        *,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[StoredRow]:
        """Rows of ``asset`` with ``since <= timestamp < until``, oldest first.

        With ``limit``, the newest ``limit`` of them.

        Raises:
            PersistenceError: the read failed or a row is not valid.
        """
        if limit is not None:
            _check_limit("limit", limit)
        low = float("-inf") if since is None else float(since)
        high = float("inf") if until is None else float(until)
        return await self._run(self._asset_sync, asset, low, high, limit, what="read")

    async def prune_before(self, timestamp: float) -> int:
        """Delete this account's rows older than ``timestamp``; return how many were deleted."""
        return await self._run(self._prune_sync, timestamp, what="prune")

    async def accounts(self) -> list[str]:
        """Every account with rows in this file (fingerprints), sorted."""
        return await self._run(self._accounts_sync, what="read")

    async def count(self) -> int:
        """Number of history rows stored for this account."""
        return await self._run(self._count_sync, what="count")

    async def integrity_check(self) -> bool:
        """Run SQLite's ``PRAGMA integrity_check``; ``True`` when it reports ``ok``."""
        return await self._run(self._integrity_sync, what="integrity check")

    async def schema_version(self) -> int:
        """The database's ``PRAGMA user_version``."""
        return await self._run(self._user_version_sync, what="read schema version")

    async def pragmas(self) -> dict[str, object]:
        """The connection's ``journal_mode``, ``synchronous`` and ``user_version`` settings.

        Expect ``{"journal_mode": "wal", "synchronous": 2, "user_version": SCHEMA_VERSION}``
        for a file (``synchronous`` 2 is FULL; ``:memory:`` reports journal mode ``memory``).
        """
        return await self._run(self._pragmas_sync, what="read settings")

    async def __aenter__(self) -> SQLiteHistoryStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"SQLiteHistoryStore(path={self._path!r}, {state})"

    # -- portfolio value (storage.base.ValueStore) ------------------------------------

    async def append_values(self, quote: str, points: Iterable[ValuePoint]) -> int:
        """Store value points of ``quote`` in one transaction; return how many.

        Raises:
            PersistenceError: the write failed; nothing was stored.
        """
        data = [
            (
                self.account,
                quote,
                p.at,
                str(p.total),
                int(p.complete),
                int(p.fresh),
                str(p.flows),
                p.flow_count,
                p.unvalued_flows,
            )
            for p in points
        ]
        if not data:
            return 0
        return await self._run(self._values_append_sync, data, what="write")

    async def load_values(self, quote: str, since: float = float("-inf")) -> list[ValuePoint]:
        """The points of ``quote`` with ``at >= since``, oldest first.

        Raises:
            PersistenceError: the read failed or a row is not valid.
        """
        return await self._run(self._values_load_sync, quote, since, what="read")

    async def prune_values_before(self, timestamp: float) -> int:
        """Delete this account's points older than ``timestamp``; return how many."""
        return await self._run(self._values_prune_sync, timestamp, what="prune")

    def _values_append_sync(self, data: list[tuple[object, ...]]) -> int:
        connection = self._db()
        with _immediate(connection):
            connection.executemany(
                "INSERT INTO portfolio_value (account, quote, at, total, complete, fresh, "
                "flows, flow_count, unvalued_flows) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                data,
            )
        return len(data)

    def _values_load_sync(self, quote: str, since: float) -> list[ValuePoint]:
        query = (
            "SELECT at, total, complete, fresh, flows, flow_count, unvalued_flows "
            "FROM portfolio_value WHERE account = ? AND quote = ? AND at >= ? ORDER BY at, id"
        )
        points = []
        for at, total, complete, fresh, flows, count, unvalued in self._db().execute(
            query, (self.account, quote, since)
        ):
            try:
                points.append(
                    ValuePoint(
                        float(at),
                        Decimal(total),
                        bool(complete),
                        bool(fresh),
                        Decimal(flows),
                        int(count),
                        int(unvalued),
                    )
                )
            except (InvalidOperation, ValueError, TypeError) as exc:
                raise PersistenceError(
                    f"history database holds an invalid value point ({total!r})", path=self._path
                ) from exc
        return points

    def _values_prune_sync(self, timestamp: float) -> int:
        connection = self._db()
        with _immediate(connection):
            deleted = connection.execute(
                "DELETE FROM portfolio_value WHERE account = ? AND at < ?",
                (self.account, timestamp),
            ).rowcount
        return int(deleted)

    # -- plumbing (event-loop side) --------------------------------------------------

    async def _run(self, function: Callable[..., _T], *args: object, what: str) -> _T:
        executor = self._executor
        if executor is None:
            raise PersistenceError(f"history store is not open (cannot {what})", path=self._path)
        return await self._submit(executor, lambda: function(*args), what)

    async def _submit(
        self, executor: ThreadPoolExecutor, function: Callable[[], _T], what: str
    ) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, function)
        except PersistenceError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise PersistenceError(
                f"history database {what} failed: {exc}", path=self._path, operation=what
            ) from exc

    # -- worker-thread side ----------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise PersistenceError("history store is not open", path=self._path)
        return self._connection

    def _open_sync(self) -> None:
        uri = self._path.startswith("file:")
        target = self._path
        if not uri and self._path not in ("", ":memory:"):
            target = str(Path(self._path).expanduser())
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is
        # exactly one transaction.
        connection = sqlite3.connect(target, isolation_level=None, uri=uri, timeout=5.0)
        try:
            connection.execute("PRAGMA journal_mode=WAL").fetchone()
            connection.execute("PRAGMA synchronous=FULL")
            if self._max_bytes is not None:
                page_size = connection.execute("PRAGMA page_size").fetchone()[0]
                pages = max(1, self._max_bytes // page_size)
                connection.execute(f"PRAGMA max_page_count={int(pages)}")
            self._migrate(connection)
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def _migrate(self, connection: sqlite3.Connection) -> None:
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise PersistenceError(
                f"history database has schema version {version}, newer than "
                f"{SCHEMA_VERSION} (written by a newer balance-manager)",
                path=self._path,
                schema_version=version,
            )
        for target in range(version, SCHEMA_VERSION):
            with _immediate(connection):
                MIGRATIONS[target](connection)
                # user_version lives in the file header and changes within the
                # transaction, so a failed migration leaves the old version.
                connection.execute(f"PRAGMA user_version={target + 1}")

    def _close_sync(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _write_sync(self, rows: Sequence[HistoryRow], latest: Sequence[Balance]) -> int:
        account = self.account
        data = [
            (asset, timestamp, str(balance), source.value, ledger_id, account)
            for asset, timestamp, balance, source, ledger_id in rows
        ]
        values = [
            (
                account,
                value.asset,
                str(value.balance),
                str(value.hold_trade),
                str(value.earn),
                str(value.credit),
                str(value.credit_used),
                value.source.value,
                value.received_at,
            )
            for value in latest
        ]
        return self._append_sync(data, values)

    def _append_sync(
        self, data: Sequence[tuple[object, ...]], values: Sequence[tuple[object, ...]]
    ) -> int:
        connection = self._db()
        with _immediate(connection):
            before = connection.total_changes
            connection.executemany(_INSERT, data)
            added = connection.total_changes - before
            connection.executemany(_UPSERT_LATEST, values)
        return added

    def _latest_sync(self) -> dict[str, Balance]:
        found: dict[str, Balance] = {}
        for row in self._db().execute(_SELECT_LATEST, (self.account,)):
            asset, balance, hold, earn, credit, credit_used, source, received_at = row
            try:
                found[str(asset)] = Balance(
                    asset=str(asset),
                    balance=Decimal(balance),
                    hold_trade=Decimal(hold),
                    earn=Decimal(earn),
                    credit=Decimal(credit),
                    credit_used=Decimal(credit_used),
                    source=Source(source),
                    received_at=float(received_at),
                )
            except (BalanceManagerError, InvalidOperation, ValueError, TypeError) as exc:
                raise PersistenceError(
                    f"history database holds an invalid last value for {asset!r}",
                    path=self._path,
                ) from exc
        return found

    def _load_sync(self, since: float) -> list[StoredRow]:
        return self._rows(self._db().execute(_SELECT, (self.account, since)).fetchall())

    def _asset_sync(
        self, asset: str, since: float, until: float, limit: int | None
    ) -> list[StoredRow]:
        parameters = (self.account, asset, since, until, -1 if limit is None else limit)
        rows = self._rows(self._db().execute(_SELECT_ASSET, parameters).fetchall())
        rows.reverse()  # read newest first, from the index
        return rows

    def _load_capped_sync(self, since: float, limit: int) -> list[StoredRow]:
        connection = self._db()
        assets = [str(row[0]) for row in connection.execute(_ASSETS, (self.account,))]
        keyed: list[tuple[float, int, StoredRow]] = []
        for asset in assets:
            parameters = (self.account, asset, since, float("inf"), limit)
            records = connection.execute(_SELECT_ASSET, parameters).fetchall()
            rows = self._rows(records)
            keyed += [
                (row.timestamp, record[5], row) for record, row in zip(records, rows, strict=True)
            ]
        keyed.sort(key=_time_and_id)  # oldest first across assets, ties in insertion order
        return [row for _, _, row in keyed]

    def _rows(self, records: list[Any]) -> list[StoredRow]:
        """Rows read from the database (asset, timestamp, balance, source, ledger_id, id)."""
        sources = _SOURCES
        try:
            return [
                StoredRow(str(asset), float(timestamp), Decimal(balance), sources[source], ledger)
                for asset, timestamp, balance, source, ledger, _ in records
            ]
        except (InvalidOperation, KeyError, ValueError, TypeError):
            for record in records:  # find the bad row, to name it
                self._row(*record[:5])
            raise  # pragma: no cover - _row raised already

    def _row(
        self, asset: Any, timestamp: Any, balance: Any, source: Any, ledger_id: Any
    ) -> StoredRow:
        """A row read from the database (REAL timestamp, TEXT balance), checked."""
        try:
            return StoredRow(
                str(asset),
                float(timestamp),
                Decimal(balance),
                Source(source),
                None if ledger_id is None else str(ledger_id),
            )
        except (InvalidOperation, ValueError, TypeError) as exc:
            raise PersistenceError(
                f"history database holds an invalid row ({asset!r}, {balance!r}, {source!r})",
                path=self._path,
            ) from exc

    def _prune_sync(self, timestamp: float) -> int:
        connection = self._db()
        with _immediate(connection):
            deleted = connection.execute(
                "DELETE FROM history WHERE account = ? AND timestamp < ?",
                (self.account, timestamp),
            ).rowcount
        return int(deleted)

    def _accounts_sync(self) -> list[str]:
        query = (
            "SELECT account FROM history WHERE account != '' "
            "UNION SELECT account FROM latest ORDER BY 1"
        )
        return [str(row[0]) for row in self._db().execute(query)]

    def _count_sync(self) -> int:
        query = "SELECT COUNT(*) FROM history WHERE account = ?"
        return int(self._db().execute(query, (self.account,)).fetchone()[0])

    def _integrity_sync(self) -> bool:
        try:
            rows = self._db().execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError:
            return False
        return [tuple(row) for row in rows] == [("ok",)]

    def _user_version_sync(self) -> int:
        return int(self._db().execute("PRAGMA user_version").fetchone()[0])

    def _pragmas_sync(self) -> dict[str, object]:
        connection = self._db()
        return {
            name: connection.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "user_version")
        }


_SOURCES = {source.value: source for source in Source}


def _time_and_id(item: tuple[float, int, StoredRow]) -> tuple[float, int]:
    return item[0], item[1]


#: The name of :class:`SQLiteHistoryStore` before the store interface existed.
HistoryStore = SQLiteHistoryStore


def _check_limit(name: str, limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(name, limit, "must be a positive int")
