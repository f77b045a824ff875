"""PostgreSQL storage for balance history: psycopg 3 (async) with a connection pool.

:class:`PostgresHistoryStore` implements the
:class:`~balance_manager.storage.base.HistoryStore` interface on a PostgreSQL
database the user already runs, for history shared by several processes or
machines, or kept for months. It needs the ``postgres`` extra
(``pip install 'balance-manager[postgres]'``: psycopg with its bundled libpq,
and psycopg_pool).

Every call borrows a connection from a :class:`psycopg_pool.AsyncConnectionPool`
(checked before use, so a server restart costs one failed call at most, never
a stuck store), runs one transaction and gives it back. Nothing blocks the
event loop: psycopg's async connections wait on the socket with asyncio.

Schema (version 2, in the ``balance_manager`` schema by default; every name
below is qualified by it)::

    CREATE TABLE schema_version (
        version     integer PRIMARY KEY,     -- one row per migration applied
        description text NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE history (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- insertion order
        account     text NOT NULL,           -- the account's fingerprint, never its key
        asset       text NOT NULL,
        recorded_at timestamptz NOT NULL,    -- to the microsecond
        balance     numeric NOT NULL,        -- exact, any precision
        source      text NOT NULL,           -- websocket | rest | cache
        ledger_id   text                     -- the exchange's ledger entry id, if any
    );
    CREATE UNIQUE INDEX history_ledger ON history (account, asset, ledger_id)
        WHERE ledger_id IS NOT NULL;
    CREATE INDEX history_by_asset ON history (account, asset, recorded_at, id);
    CREATE INDEX history_by_time ON history (account, recorded_at);
    CREATE TABLE latest (
        account text, asset text,  balance numeric NOT NULL, hold_trade numeric NOT NULL,
        earn numeric NOT NULL, credit numeric NOT NULL, credit_used numeric NOT NULL,
        source text NOT NULL, received_at timestamptz NOT NULL,
        PRIMARY KEY (account, asset)
    );
    CREATE TABLE portfolio_value (           -- version 2: the portfolio's value over time
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account text NOT NULL,
        quote text NOT NULL, recorded_at timestamptz NOT NULL, total numeric NOT NULL,
        complete boolean NOT NULL, fresh boolean NOT NULL, flows numeric NOT NULL,
        flow_count integer NOT NULL, unvalued_flows integer NOT NULL
    );
    CREATE INDEX portfolio_value_by_time ON portfolio_value (account, quote, recorded_at, id);

Rows go in with one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO
NOTHING`` per batch: one statement, however large the batch, and the partial
unique index stores a ledger entry once however often it is written (by this
process after a crash, or by another one). Times travel as Unix seconds
(``to_timestamp`` in, ``extract(epoch ...)`` out), so no time zone is ever
involved. A transaction that PostgreSQL aborts because of a deadlock or a
serialization failure (concurrent writers) is retried a few times.

Migrations: :data:`MIGRATIONS` holds the statements of each version;
:meth:`PostgresHistoryStore.open` applies the missing ones in order, each in
its own transaction holding an advisory lock, so processes starting together
migrate once. The ``schema_version`` table records each version applied; a
database at a newer version than this code knows is refused.

Every psycopg or pool failure is raised as
:class:`~balance_manager.exceptions.PersistenceError` naming the URL without
its password (and with the password scrubbed from the server's message).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from balance_manager.core.models import Balance, Source
from balance_manager.core.value_history import ValuePoint
from balance_manager.credentials import redact_url
from balance_manager.exceptions import BalanceManagerError, ConfigError, PersistenceError
from balance_manager.storage.base import HistoryRow, StoredRow

__all__ = [
    "DEFAULT_SCHEMA",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "PostgresHistoryStore",
]

_T = TypeVar("_T")

#: The PostgreSQL schema (namespace) the tables live in unless told otherwise.
DEFAULT_SCHEMA = "balance_manager"
#: How often a transaction aborted by a deadlock or serialization failure is tried.
TRANSACTION_ATTEMPTS = 5

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class Migration(NamedTuple):
    """One schema version: what it is and the statements that make it.

    Each statement is SQL text where ``{schema}`` stands for the store's schema.
    """

    description: str
    statements: tuple[str, ...]


#: Schema migrations: ``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "history rows per account with a ledger-id guard; latest values",
        (
            """
            CREATE TABLE {schema}.history (
                id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                account     text NOT NULL,
                asset       text NOT NULL,
                recorded_at timestamptz NOT NULL,
                balance     numeric NOT NULL,
                source      text NOT NULL,
                ledger_id   text
            )
            """,
            "CREATE UNIQUE INDEX history_ledger ON {schema}.history (account, asset, ledger_id) "
            "WHERE ledger_id IS NOT NULL",
            "CREATE INDEX history_by_asset ON {schema}.history (account, asset, recorded_at, id)",
            "CREATE INDEX history_by_time ON {schema}.history (account, recorded_at)",
            """
            CREATE TABLE {schema}.latest (
                account     text NOT NULL,
                asset       text NOT NULL,
                balance     numeric NOT NULL,
                hold_trade  numeric NOT NULL,
                earn        numeric NOT NULL,
                credit      numeric NOT NULL,
                credit_used numeric NOT NULL,
                source      text NOT NULL,
                received_at timestamptz NOT NULL,
                PRIMARY KEY (account, asset)
            )
            """,
        ),
    ),
    Migration(
        "the portfolio's value over time, per account and quote currency",
        (
            """
            CREATE TABLE {schema}.portfolio_value (
                id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                account        text NOT NULL,
                quote          text NOT NULL,
                recorded_at    timestamptz NOT NULL,
                total          numeric NOT NULL,
                complete       boolean NOT NULL,
                fresh          boolean NOT NULL,
                flows          numeric NOT NULL,
                flow_count     integer NOT NULL,
                unvalued_flows integer NOT NULL
            )
            """,
            "CREATE INDEX portfolio_value_by_time "
            "ON {schema}.portfolio_value (account, quote, recorded_at, id)",
        ),
    ),
)

#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS {schema}.schema_version (
    version     integer PRIMARY KEY,
    description text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""

_INSERT = """
INSERT INTO {schema}.history (account, asset, recorded_at, balance, source, ledger_id)
SELECT %(account)s, r.asset, to_timestamp(r.at), r.balance, r.source, r.ledger_id
FROM unnest(%(assets)s::text[], %(times)s::float8[], %(balances)s::numeric[],
            %(sources)s::text[], %(ledger_ids)s::text[])
     WITH ORDINALITY AS r(asset, at, balance, source, ledger_id, n)
ORDER BY r.n
ON CONFLICT DO NOTHING
"""
_UPSERT_LATEST = """
INSERT INTO {schema}.latest AS l (account, asset, balance, hold_trade, earn, credit,
                                  credit_used, source, received_at)
SELECT %(account)s, v.asset, v.balance, v.hold_trade, v.earn, v.credit, v.credit_used,
       v.source, to_timestamp(v.received_at)
FROM unnest(%(assets)s::text[], %(balances)s::numeric[], %(holds)s::numeric[],
            %(earns)s::numeric[], %(credits)s::numeric[], %(credits_used)s::numeric[],
            %(sources)s::text[], %(received)s::float8[])
     AS v(asset, balance, hold_trade, earn, credit, credit_used, source, received_at)
ON CONFLICT (account, asset) DO UPDATE SET
    balance = excluded.balance, hold_trade = excluded.hold_trade, earn = excluded.earn,
    credit = excluded.credit, credit_used = excluded.credit_used, source = excluded.source,
    received_at = excluded.received_at
"""
_SELECT = (
    "SELECT asset, extract(epoch FROM recorded_at)::float8, balance, source, ledger_id "
    "FROM {schema}.history "
    "WHERE account = %(account)s AND recorded_at >= to_timestamp(%(since)s) "
    "ORDER BY recorded_at, id"
)
_SELECT_ALL = (
    "SELECT asset, extract(epoch FROM recorded_at)::float8, balance, source, ledger_id "
    "FROM {schema}.history WHERE account = %(account)s "
    "ORDER BY recorded_at, id"
)
# The account's assets by walking history_by_asset (one index probe per asset), then
# the newest `limit` rows of each, read backwards from the same index.
_SELECT_CAPPED = """
WITH RECURSIVE assets(asset) AS (
    (SELECT asset FROM {schema}.history WHERE account = %(account)s ORDER BY asset LIMIT 1)
    UNION ALL
    SELECT (SELECT h.asset FROM {schema}.history h
            WHERE h.account = %(account)s AND h.asset > assets.asset
            ORDER BY h.asset LIMIT 1)
    FROM assets WHERE assets.asset IS NOT NULL
)
SELECT asset, extract(epoch FROM recorded_at)::float8, balance, source, ledger_id FROM (
    SELECT r.* FROM assets CROSS JOIN LATERAL (
        SELECT h.* FROM {schema}.history h
        WHERE h.account = %(account)s AND h.asset = assets.asset
          AND h.recorded_at >= to_timestamp(%(since)s)
        ORDER BY h.recorded_at DESC, h.id DESC
        LIMIT %(limit)s
    ) r
    WHERE assets.asset IS NOT NULL
) newest
ORDER BY recorded_at, id
"""
_SELECT_ASSET = """
SELECT asset, extract(epoch FROM recorded_at)::float8, balance, source, ledger_id FROM (
    SELECT * FROM {schema}.history
    WHERE account = %(account)s AND asset = %(asset)s
      AND recorded_at >= to_timestamp(%(since)s) AND recorded_at < to_timestamp(%(until)s)
    ORDER BY recorded_at DESC, id DESC
    LIMIT %(limit)s
) newest
ORDER BY recorded_at, id
"""
_SELECT_LATEST = (
    "SELECT asset, balance, hold_trade, earn, credit, credit_used, source, "
    "extract(epoch FROM received_at)::float8 FROM {schema}.latest WHERE account = %(account)s"
)
_PRUNE = (
    "DELETE FROM {schema}.history "
    "WHERE account = %(account)s AND recorded_at < to_timestamp(%(before)s)"
)
_COUNT = "SELECT count(*) FROM {schema}.history WHERE account = %(account)s"
_VALUES_INSERT = (
    "INSERT INTO {schema}.portfolio_value (account, quote, recorded_at, total, complete, fresh, "
    "flows, flow_count, unvalued_flows) "
    "SELECT %(account)s, %(quote)s, to_timestamp(t), total, complete, fresh, flows, n, u "
    "FROM unnest(%(times)s::float8[], %(totals)s::numeric[], %(completes)s::boolean[], "
    "%(freshes)s::boolean[], %(flows)s::numeric[], %(counts)s::integer[], "
    "%(unvalued)s::integer[]) AS p(t, total, complete, fresh, flows, n, u)"
)
_VALUES_SELECT = (
    "SELECT extract(epoch FROM recorded_at)::float8, total, complete, fresh, flows, "
    "flow_count, unvalued_flows FROM {schema}.portfolio_value "
    "WHERE account = %(account)s AND quote = %(quote)s AND recorded_at >= to_timestamp(%(since)s) "
    "ORDER BY recorded_at, id"
)
_VALUES_PRUNE = (
    "DELETE FROM {schema}.portfolio_value "
    "WHERE account = %(account)s AND recorded_at < to_timestamp(%(before)s)"
)
_ACCOUNTS = """
WITH RECURSIVE accounts(account) AS (
    (SELECT account FROM {schema}.history ORDER BY account LIMIT 1)
    UNION ALL
    SELECT (SELECT h.account FROM {schema}.history h WHERE h.account > accounts.account
            ORDER BY h.account LIMIT 1)
    FROM accounts WHERE accounts.account IS NOT NULL
)
SELECT account FROM accounts WHERE account IS NOT NULL AND account <> ''
UNION SELECT account FROM {schema}.latest WHERE account <> ''
ORDER BY 1
"""
_VERSION = "SELECT coalesce(max(version), 0) FROM {schema}.schema_version"
_INDEXES = """
SELECT count(*), count(*) FILTER (WHERE NOT (i.indisvalid AND i.indisready))
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
"""
#: Indexes of the schema: version 1's three primary keys, the ledger guard and two lookups;
#: version 2's primary key of ``portfolio_value`` and its time index.
_EXPECTED_INDEXES = 8


class PostgresHistoryStore:
    """Balance history in a PostgreSQL database, used from asyncio (a ``HistoryStore``).

    Args:
        url: a ``postgresql://`` (or ``postgres://``) URL, as libpq reads it
            (``postgresql://user:password@host:5432/database?sslmode=require``;
            a Unix socket with ``?host=/path/to/dir``). Prefer keeping the
            password out of it (``PGPASSWORD`` or ``~/.pgpass``); it is never shown.
        account: the account whose rows this store reads and writes (a fingerprint).
        schema: the PostgreSQL schema of the tables, created when missing; by
            default the URL's ``schema`` query parameter (ours, taken out
            before the URL reaches libpq), else ``balance_manager``.
        max_connections: most pooled connections (1 to 100).
        timeout: seconds to wait for a connection (at open, and from the pool).

    Call :meth:`open` first and :meth:`close` at the end (or ``async with``).
    Methods called on a store that is not open raise :class:`PersistenceError`.

    Raises:
        ConfigError: ``url``, ``schema``, ``max_connections`` or ``timeout`` is not valid.
    """

    def __init__(
        self,
        url: str,
        *,
        account: str = "",
        schema: str | None = None,
        max_connections: int = 4,
        timeout: float = 10.0,
    ) -> None:
        shown = redact_url(url) if isinstance(url, str) else url
        if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("history_url", shown, "must be a postgresql:// URL")
        url, in_url = _take_schema(url)
        schema = schema if schema is not None else in_url or DEFAULT_SCHEMA
        try:
            conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            raise ConfigError("history_url", shown, "is not a valid PostgreSQL URL") from None
        if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
            raise ConfigError(
                "schema", schema, "must be a name of letters, digits and _ (at most 63)"
            )
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise ConfigError("max_connections", max_connections, "must be an int")
        if not 1 <= max_connections <= 100:
            raise ConfigError("max_connections", max_connections, "must be from 1 to 100")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ConfigError("timeout", timeout, "must be a number of seconds")
        if not 0.01 <= timeout <= 3600:
            raise ConfigError("timeout", timeout, "must be from 0.01 to 3600 seconds")
        self._url = url
        self._shown = str(shown)
        self._secrets = _passwords(url)
        self.account = account
        """The account whose rows this store reads and writes."""
        self.schema = schema
        """The PostgreSQL schema that holds the tables."""
        self._max_connections = max_connections
        self._timeout = float(timeout)
        self._pool: AsyncConnectionPool | None = None
        self._queries: dict[str, sql.Composed] = {}

    @property
    def path(self) -> str:
        """The database URL, its password masked."""
        return self._shown

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` succeeded and :meth:`close` has not been called."""
        return self._pool is not None

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create the schema when missing and bring it up to date.

        Does nothing when already open.

        Raises:
            PersistenceError: the server cannot be reached or refuses us, the
                schema cannot be created or migrated, or it was written by a
                newer version of balance-manager.
        """
        if self._pool is not None:
            return
        params = conninfo_to_dict(self._url)
        extra: dict[str, Any] = {}
        if "application_name" not in params:
            extra["application_name"] = "balance-manager"
        # One connection first, alone: a server that refuses us says why at once,
        # rather than a pool retrying until its timeout.
        probe: dict[str, Any] = dict(extra)
        if "connect_timeout" not in params:
            probe["connect_timeout"] = max(2, math.ceil(self._timeout))  # libpq: whole seconds
        connection = await self._guard(
            psycopg.AsyncConnection.connect(self._url, **probe), "connect"
        )
        await connection.close()
        pool = AsyncConnectionPool(
            self._url,
            kwargs=extra,
            min_size=1,
            max_size=self._max_connections,
            open=False,
            timeout=self._timeout,
            check=AsyncConnectionPool.check_connection,
            name="balance-history",
        )
        try:
            await self._guard(pool.open(wait=True, timeout=self._timeout), "connect")
            await self._guard(self._migrate(pool), "migrate")
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        """Close every pooled connection. Safe to call twice."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await self._guard(pool.close(), "close")

    async def __aenter__(self) -> PostgresHistoryStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"PostgresHistoryStore(url={self._shown!r}, schema={self.schema!r}, {state})"

    # -- writes -------------------------------------------------------------------

    async def append(self, row: StoredRow) -> int:
        """Store one row in its own transaction; 1 if it was new, 0 if a duplicate."""
        return await self.write((row,), ())

    async def append_many(self, rows: Iterable[StoredRow]) -> int:
        """Store ``rows`` in one transaction; return how many were new."""
        return await self.write(rows, ())

    async def write(self, rows: Iterable[HistoryRow], latest: Iterable[Balance]) -> int:
        """Store history ``rows`` and the ``latest`` values in one transaction.

        Returns how many history rows were new (a ledger id already stored for
        the asset is skipped).

        Raises:
            PersistenceError: the write failed; nothing was stored.
        """
        batch = list(rows)
        # Sorted by asset: concurrent writers lock the latest rows in one order.
        values = sorted(latest, key=lambda value: value.asset)
        if not batch and not values:
            return 0
        history = {
            "account": self.account,
            "assets": [row[0] for row in batch],
            "times": [float(row[1]) for row in batch],
            "balances": [row[2] for row in batch],
            "sources": [row[3].value for row in batch],
            "ledger_ids": [row[4] for row in batch],
        }
        last = {
            "account": self.account,
            "assets": [value.asset for value in values],
            "balances": [value.balance for value in values],
            "holds": [value.hold_trade for value in values],
            "earns": [value.earn for value in values],
            "credits": [value.credit for value in values],
            "credits_used": [value.credit_used for value in values],
            "sources": [value.source.value for value in values],
            "received": [float(value.received_at) for value in values],
        }

        async def transaction(connection: psycopg.AsyncConnection[Any]) -> int:
            added = 0
            if batch:
                cursor = await connection.execute(self._sql(_INSERT), history)
                added = max(0, cursor.rowcount)
            if values:
                await connection.execute(self._sql(_UPSERT_LATEST), last)
            return added

        return await self._transaction(transaction, "write")

    async def prune_before(self, timestamp: float) -> int:
        """Delete this account's rows older than ``timestamp``; return how many."""

        async def transaction(connection: psycopg.AsyncConnection[Any]) -> int:
            parameters = {"account": self.account, "before": float(timestamp)}
            cursor = await connection.execute(self._sql(_PRUNE), parameters)
            return max(0, cursor.rowcount)

        return await self._transaction(transaction, "prune")

    # -- portfolio value (storage.base.ValueStore) -----------------------------------

    async def append_values(self, quote: str, points: Iterable[ValuePoint]) -> int:
        """Store value points of ``quote`` in one transaction; return how many.

        Raises:
            PersistenceError: the write failed; nothing was stored.
        """
        batch = list(points)
        if not batch:
            return 0
        parameters = {
            "account": self.account,
            "quote": quote,
            "times": [float(p.at) for p in batch],
            "totals": [p.total for p in batch],
            "completes": [p.complete for p in batch],
            "freshes": [p.fresh for p in batch],
            "flows": [p.flows for p in batch],
            "counts": [p.flow_count for p in batch],
            "unvalued": [p.unvalued_flows for p in batch],
        }

        async def transaction(connection: psycopg.AsyncConnection[Any]) -> int:
            await connection.execute(self._sql(_VALUES_INSERT), parameters)
            return len(batch)

        return await self._transaction(transaction, "write")

    async def load_values(self, quote: str, since: float = float("-inf")) -> list[ValuePoint]:
        """The points of ``quote`` with ``at >= since``, oldest first."""
        parameters = {"account": self.account, "quote": quote, "since": float(since)}
        records = await self._fetch(_VALUES_SELECT, parameters, "read")
        return [
            ValuePoint(at, total, complete, fresh, flows, count, unvalued)
            for at, total, complete, fresh, flows, count, unvalued in records
        ]

    async def prune_values_before(self, timestamp: float) -> int:
        """Delete this account's points older than ``timestamp``; return how many."""

        async def transaction(connection: psycopg.AsyncConnection[Any]) -> int:
            parameters = {"account": self.account, "before": float(timestamp)}
            cursor = await connection.execute(self._sql(_VALUES_PRUNE), parameters)
            return max(0, cursor.rowcount)

        return await self._transaction(transaction, "prune")

    # -- reads --------------------------------------------------------------------

    async def load(
        self, since: float = float("-inf"), *, limit_per_asset: int | None = None
    ) -> list[StoredRow]:
        """Rows with ``timestamp >= since``, oldest first (ties in insertion order).

        With ``limit_per_asset``, only the newest ``limit_per_asset`` rows of
        each asset, chosen in the query from the per-asset index.
        """
        parameters: dict[str, Any] = {"account": self.account, "since": float(since)}
        if limit_per_asset is not None:
            parameters["limit"] = _positive("limit_per_asset", limit_per_asset)
            query = _SELECT_CAPPED
        else:
            query = _SELECT_ALL if since == float("-inf") else _SELECT
        return await self._rows(query, parameters)

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
        """
        parameters = {
            "account": self.account,
            "asset": asset,
            "since": float("-inf") if since is None else float(since),
            "until": float("inf") if until is None else float(until),
            "limit": None if limit is None else _positive("limit", limit),
        }
        return await self._rows(_SELECT_ASSET, parameters)

    async def load_latest(self) -> dict[str, Balance]:
        """The last known value of every asset of this account, every amount included.

        Raises:
            PersistenceError: the read failed or a row is not valid.
        """
        records = await self._fetch(_SELECT_LATEST, {"account": self.account}, "read")
        found: dict[str, Balance] = {}
        for asset, balance, hold, earn, credit, credit_used, source, received_at in records:
            try:
                found[str(asset)] = Balance(
                    asset=str(asset),
                    balance=balance,
                    hold_trade=hold,
                    earn=earn,
                    credit=credit,
                    credit_used=credit_used,
                    source=Source(source),
                    received_at=float(received_at),
                )
            except (BalanceManagerError, ValueError, TypeError) as exc:
                raise PersistenceError(
                    f"history database holds an invalid last value for {asset!r}",
                    path=self._shown,
                ) from exc
        return found

    async def count(self) -> int:
        """Number of history rows stored for this account."""
        records = await self._fetch(_COUNT, {"account": self.account}, "count")
        return int(records[0][0])

    async def accounts(self) -> list[str]:
        """Every account with rows in this schema (fingerprints), sorted."""
        records = await self._fetch(_ACCOUNTS, {}, "read")
        return [str(record[0]) for record in records]

    async def schema_version(self) -> int:
        """The highest version recorded in the ``schema_version`` table."""
        records = await self._fetch(_VERSION, {}, "read schema version")
        return int(records[0][0])

    async def integrity_check(self) -> bool:
        """``True`` when the schema is at :data:`SCHEMA_VERSION` and every index is valid.

        PostgreSQL checks its own pages (with data checksums when the cluster
        has them); what can go wrong with this store's part is an index left
        invalid (a failed build) or a schema not fully migrated.
        """
        if await self.schema_version() != SCHEMA_VERSION:
            return False
        records = await self._fetch(_INDEXES, {"schema": self.schema}, "integrity check")
        total, invalid = records[0]
        return int(invalid) == 0 and int(total) == _EXPECTED_INDEXES

    # -- plumbing -------------------------------------------------------------------

    def _sql(self, template: str) -> sql.Composed:
        """``template`` with ``{schema}`` bound to the quoted schema name (cached)."""
        query = self._queries.get(template)
        if query is None:
            query = sql.SQL(template).format(schema=sql.Identifier(self.schema))
            self._queries[template] = query
        return query

    async def _rows(self, template: str, parameters: dict[str, Any]) -> list[StoredRow]:
        records = await self._fetch(template, parameters, "read")
        sources = _SOURCES
        try:
            # The columns are typed: text, float8, numeric (a Decimal), text, text.
            return [
                StoredRow(asset, timestamp, balance, sources[source], ledger_id)
                for asset, timestamp, balance, source, ledger_id in records
            ]
        except KeyError:
            bad = next(record for record in records if record[3] not in sources)
            raise PersistenceError(
                f"history database holds an invalid row ({bad[0]!r}, {bad[2]!r}, {bad[3]!r})",
                path=self._shown,
            ) from None

    async def _fetch(
        self, template: str, parameters: dict[str, Any], what: str
    ) -> list[tuple[Any, ...]]:
        async def read(connection: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            # Binary results: numeric arrives as its exact digits, float8 as its 8 bytes.
            cursor = connection.cursor(binary=True)
            await cursor.execute(self._sql(template), parameters)
            return await cursor.fetchall()

        return await self._transaction(read, what)

    async def _transaction(
        self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[_T]], what: str
    ) -> _T:
        """Run ``work`` in one transaction, retried when PostgreSQL aborts it for a conflict."""
        pool = self._pool
        if pool is None:
            raise PersistenceError(f"history store is not open (cannot {what})", path=self._shown)

        async def attempt() -> _T:
            for remaining in range(TRANSACTION_ATTEMPTS - 1, -1, -1):
                try:
                    async with pool.connection() as connection, connection.transaction():
                        return await work(connection)
                except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                    if not remaining:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover

        return await self._guard(attempt(), what)

    async def _guard(self, work: Awaitable[_T], what: str) -> _T:
        """Await ``work``; a psycopg or OS failure becomes a PersistenceError without secrets."""
        try:
            return await work
        except PersistenceError:
            raise
        except (psycopg.Error, OSError) as exc:
            text = " ".join(str(exc).split()) or type(exc).__name__  # libpq writes two lines
            message = _scrub(text, self._secrets)
            raise PersistenceError(
                f"history database {what} failed: {message}", path=self._shown, operation=what
            ) from None

    async def _migrate(self, pool: AsyncConnectionPool) -> None:
        """Apply the missing migrations, one transaction each, under an advisory lock."""
        lock = _lock_key(self.schema)
        async with pool.connection() as connection:
            while True:
                async with connection.transaction():
                    await connection.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
                    cursor = await connection.execute(
                        "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
                    )
                    if await cursor.fetchone() is None:
                        await connection.execute(
                            sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema))
                        )
                    await connection.execute(self._sql(_VERSION_TABLE))
                    cursor = await connection.execute(self._sql(_VERSION))
                    record = await cursor.fetchone()
                    version = int(record[0]) if record is not None else 0
                    if version > SCHEMA_VERSION:
                        raise PersistenceError(
                            f"history database has schema version {version}, newer than "
                            f"{SCHEMA_VERSION} (written by a newer balance-manager)",
                            path=self._shown,
                            schema_version=version,
                        )
                    if version == SCHEMA_VERSION:
                        return
                    migration = MIGRATIONS[version]
                    for statement in migration.statements:
                        await connection.execute(self._sql(statement))
                    await connection.execute(
                        self._sql(
                            "INSERT INTO {schema}.schema_version (version, description) "
                            "VALUES (%s, %s)"
                        ),
                        (version + 1, migration.description),
                    )


def _take_schema(url: str) -> tuple[str, str | None]:
    """``url`` without its ``schema=`` query parameter, and that parameter's value."""
    base, mark, query = url.partition("?")
    if not mark:
        return url, None
    kept, schema = [], None
    for part in query.split("&"):
        if part.startswith("schema="):
            schema = unquote(part[len("schema=") :])
        elif part:
            kept.append(part)
    return (f"{base}?{'&'.join(kept)}" if kept else base), schema


_SOURCES = {source.value: source for source in Source}


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(name, value, "must be a positive int")
    return value


def _lock_key(schema: str) -> int:
    """The advisory lock that serialises migrations of ``schema`` (a signed 64-bit key)."""
    digest = hashlib.sha256(f"balance-manager migrate {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _passwords(url: str) -> tuple[str, ...]:
    """The passwords written in ``url`` (user part and query), to scrub from messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ()
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() in {"password", "sslpassword"}]
    return tuple({secret for raw in found for secret in (raw, unquote(raw)) if secret})


def _scrub(message: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, "***")
    return message
