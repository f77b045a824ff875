"""Tests of balance_manager.storage.postgres beyond the shared contract, on a real server.

Migrations (from an empty schema, from the previous version, concurrent, failed,
newer), column types, errors that never show a password, and a pool that
survives its connections being killed.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from decimal import Decimal
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

import balance_manager.storage.postgres as postgres_module
from balance_manager.core.models import Source
from balance_manager.exceptions import ConfigError, PersistenceError
from balance_manager.storage.base import StoredRow
from balance_manager.storage.postgres import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    PostgresHistoryStore,
)

T0 = 1_700_000_000.0
ROW = StoredRow("BTC", T0, Decimal("0.12345678"), Source.WEBSOCKET, "L-1")


def with_query(url: str, **parameters: str) -> str:
    """``url`` with ``parameters`` added to its query."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(parameters)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def with_database(url: str, database: str) -> str:
    """``url`` naming another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` in its user part (trust authentication ignores it)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or "postgres"
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}", parts.path, parts.query, ""))


def query(
    url: str, text: str, *parameters: object, schema: str | None = None
) -> list[tuple[object, ...]]:
    """Rows of one query, on a connection of its own; ``{schema}`` is the quoted ``schema``."""
    statement = sql.SQL(text).format(schema=sql.Identifier(schema or "public"))
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(statement, parameters or None)
        return cursor.fetchall() if cursor.description else []


# -- schema and migrations ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_migrating_an_empty_database_creates_the_schema_and_records_the_version(
    postgres_server: str, postgres_schema: str
) -> None:
    """From nothing: the schema, the tables, numeric and timestamptz columns, a version row."""
    async with PostgresHistoryStore(postgres_server, schema=postgres_schema) as store:
        assert await store.schema_version() == SCHEMA_VERSION == 2
        assert await store.integrity_check() is True
    versions = query(
        postgres_server,
        "SELECT version, description FROM {schema}.schema_version ORDER BY 1",
        schema=postgres_schema,
    )
    assert versions == [(1, MIGRATIONS[0].description), (2, MIGRATIONS[1].description)]
    columns = query(
        postgres_server,
        "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s",
        postgres_schema,
    )
    types = {name: kind for name, kind in columns}
    assert types["history.balance"] == "numeric"
    assert types["history.recorded_at"] == "timestamp with time zone"
    assert types["latest.hold_trade"] == "numeric"
    assert types["latest.received_at"] == "timestamp with time zone"
    assert types["portfolio_value.total"] == "numeric"
    assert types["portfolio_value.flows"] == "numeric"
    indexes = {
        row[0]
        for row in query(
            postgres_server,
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s",
            postgres_schema,
        )
    }
    assert {
        "history_ledger",
        "history_by_asset",
        "history_by_time",
        "portfolio_value_by_time",
    } <= indexes


@pytest.mark.asyncio
async def test_a_database_at_the_previous_version_is_migrated_forward_keeping_its_rows(
    postgres_server: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database one version behind the code is migrated forward, rows intact."""
    async with PostgresHistoryStore(postgres_server, schema=postgres_schema) as store:
        await store.append(ROW)
    upgrade = Migration("a note per row", ("ALTER TABLE {schema}.history ADD COLUMN note text",))
    monkeypatch.setattr(postgres_module, "MIGRATIONS", (*MIGRATIONS, upgrade))
    monkeypatch.setattr(postgres_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    async with PostgresHistoryStore(postgres_server, schema=postgres_schema) as store:
        assert await store.schema_version() == SCHEMA_VERSION + 1
        assert await store.load() == [ROW]
        assert await store.append(ROW) == 0  # the ledger guard survived the migration
    versions = query(
        postgres_server,
        "SELECT version FROM {schema}.schema_version ORDER BY 1",
        schema=postgres_schema,
    )
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 2)]
    notes = query(postgres_server, "SELECT note FROM {schema}.history", schema=postgres_schema)
    assert notes == [(None,)]


@pytest.mark.asyncio
async def test_a_failed_migration_changes_nothing(
    postgres_server: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration that fails half-way is rolled back whole: the version stays, the rows too."""
    async with PostgresHistoryStore(postgres_server, schema=postgres_schema) as store:
        await store.append(ROW)
    broken = Migration(
        "broken", ("ALTER TABLE {schema}.history ADD COLUMN half text", "SELECT no_such_column")
    )
    monkeypatch.setattr(postgres_module, "MIGRATIONS", (*MIGRATIONS, broken))
    monkeypatch.setattr(postgres_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    store = PostgresHistoryStore(postgres_server, schema=postgres_schema)
    with pytest.raises(PersistenceError, match="migrate failed"):
        await store.open()
    assert not store.is_open
    monkeypatch.undo()
    async with PostgresHistoryStore(postgres_server, schema=postgres_schema) as store:
        assert await store.schema_version() == SCHEMA_VERSION
        assert await store.load() == [ROW]
    columns = query(
        postgres_server,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'history' AND column_name = 'half'",
        postgres_schema,
    )
    assert columns == []


@pytest.mark.asyncio
async def test_a_newer_schema_is_refused(postgres_server: str, postgres_schema: str) -> None:
    """A database written by a newer version is not touched."""
    async with PostgresHistoryStore(postgres_server, schema=postgres_schema):
        pass
    query(
        postgres_server,
        "INSERT INTO {schema}.schema_version (version, description) VALUES (99, 'from the future')",
        schema=postgres_schema,
    )
    with pytest.raises(PersistenceError, match="schema version 99"):
        await PostgresHistoryStore(postgres_server, schema=postgres_schema).open()


@pytest.mark.asyncio
async def test_stores_opening_together_migrate_once(
    postgres_server: str, postgres_schema: str
) -> None:
    """Several stores opening an empty schema at once all succeed; each version is applied once."""
    stores = [
        PostgresHistoryStore(postgres_server, schema=postgres_schema, account=f"a{n}")
        for n in range(4)
    ]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        for store in stores:
            assert await store.append(ROW) == 1
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    versions = query(
        postgres_server, "SELECT version FROM {schema}.schema_version", schema=postgres_schema
    )
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


# -- writes -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_batch_with_one_bad_row_stores_nothing(
    postgres_server: str, postgres_schema: str
) -> None:
    """A row PostgreSQL refuses (a time beyond timestamptz) fails the whole batch."""
    bad = StoredRow("BTC", 1e300, Decimal(1), Source.REST, "L-2")
    async with PostgresHistoryStore(postgres_server, schema=postgres_schema) as store:
        with pytest.raises(PersistenceError, match="write failed") as caught:
            await store.append_many([ROW, bad])
        assert caught.value.path == store.path
        assert await store.count() == 0
        assert await store.append_many([ROW]) == 1  # still usable


@pytest.mark.asyncio
async def test_a_killed_connection_costs_nothing(
    postgres_server: str, postgres_schema: str
) -> None:
    """When the server ends the pool's connections, the next call gets a fresh one."""
    name = f"bm-test-{postgres_schema}"[:60]
    url = with_query(postgres_server, application_name=name)
    async with PostgresHistoryStore(url, schema=postgres_schema) as store:
        await store.append(ROW)
        killed = query(
            postgres_server,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            name,
        )
        assert killed
        assert all(row[0] for row in killed)
        assert await store.load() == [ROW]


# -- errors never show a password ---------------------------------------------------------------


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.asyncio
async def test_an_unreachable_server_is_a_persistence_error_without_the_password() -> None:
    """Connection refused: PersistenceError naming the URL with its password masked."""
    url = f"postgresql://bot:hunter2-secret@127.0.0.1:{closed_port()}/history?password=qs-secret"
    store = PostgresHistoryStore(url, timeout=0.5)
    with pytest.raises(PersistenceError, match="connect failed") as caught:
        await store.open()
    text = f"{caught.value} {caught.value.path} {store!r} {caught.value.__cause__!r}"
    assert "hunter2-secret" not in text
    assert "qs-secret" not in text
    assert "bot:***@127.0.0.1" in caught.value.path
    assert not store.is_open


@pytest.mark.asyncio
async def test_a_missing_database_is_reported_and_the_password_scrubbed(
    postgres_server: str,
) -> None:
    """The server's own refusal is passed on, with the password scrubbed out."""
    url = with_password(with_database(postgres_server, "no_such_database_bm"), "pw-x9z")
    store = PostgresHistoryStore(url, timeout=2)
    with pytest.raises(PersistenceError, match="no_such_database_bm") as caught:
        await store.open()
    assert "pw-x9z" not in f"{caught.value} {caught.value.path}"


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        ({"url": "mysql://x/y"}, "history_url"),
        ({"url": "postgresql://h/db?bogus_option=1"}, "history_url"),
        ({"schema": 'x"; DROP TABLE y; --'}, "schema"),
        ({"schema": ""}, "schema"),
        ({"max_connections": 0}, "max_connections"),
        ({"timeout": True}, "timeout"),
    ],
)
def test_bad_arguments_are_config_errors_naming_them(
    arguments: dict[str, object], option: str
) -> None:
    """A bad URL, schema name, pool size or timeout is refused when the store is made."""
    given: dict[str, object] = {"url": "postgresql://h/db", **arguments}
    url = given.pop("url")
    with pytest.raises(ConfigError) as caught:
        PostgresHistoryStore(url, **given)  # type: ignore[arg-type]
    assert caught.value.option == option


@pytest.mark.asyncio
async def test_schema_names_are_quoted_identifiers(postgres_server: str) -> None:
    """A schema name with capitals is used as written (quoted), and dropped after."""
    schema = f"Bm_Test_Quoted_{secrets.token_hex(4)}"
    try:
        async with PostgresHistoryStore(postgres_server, schema=schema) as store:
            assert await store.append(ROW) == 1
        found = query(postgres_server, "SELECT 1 FROM pg_namespace WHERE nspname = %s", schema)
        assert found == [(1,)]
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


@pytest.mark.asyncio
async def test_a_driver_message_that_quotes_the_password_is_scrubbed() -> None:
    """Should a driver or server message ever quote the password, it is masked before raising."""
    store = PostgresHistoryStore("postgresql://bot:p%40ss-w0rd@db.invalid/history")

    async def fails() -> None:
        raise psycopg.OperationalError("could not use p@ss-w0rd (or p%40ss-w0rd) here")

    with pytest.raises(PersistenceError) as caught:
        await store._guard(fails(), "read")
    assert "p@ss-w0rd" not in str(caught.value)
    assert "p%40ss-w0rd" not in str(caught.value)
    assert "could not use *** (or ***) here" in str(caught.value)


@pytest.mark.asyncio
async def test_a_row_with_an_unknown_source_is_a_persistence_error_naming_it(
    postgres_server: str, postgres_schema: str
) -> None:
    """A row another program wrote with a source we do not know is refused by name."""
    async with PostgresHistoryStore(postgres_server, schema=postgres_schema) as store:
        await store.append(ROW)
        query(
            postgres_server,
            "INSERT INTO {schema}.history (account, asset, recorded_at, balance, source) "
            "VALUES ('', 'DOGE', now(), 5, 'carrier-pigeon')",
            schema=postgres_schema,
        )
        with pytest.raises(PersistenceError, match="invalid row") as caught:
            await store.load()
        assert "carrier-pigeon" in str(caught.value)
        assert caught.value.path == store.path


def test_the_schema_can_be_named_in_the_url() -> None:
    """?schema=NAME in the URL picks the schema (and never reaches libpq); an argument wins."""
    url = "postgresql://bot@db.invalid/h?sslmode=disable&schema=Trading_1&application_name=x"
    assert PostgresHistoryStore(url).schema == "Trading_1"
    assert PostgresHistoryStore(url, schema="other").schema == "other"
    assert PostgresHistoryStore("postgresql://db.invalid/h").schema == "balance_manager"
    with pytest.raises(ConfigError) as caught:
        PostgresHistoryStore("postgresql://db.invalid/h?schema=no-dashes")
    assert caught.value.option == "schema"


@pytest.mark.asyncio
async def test_a_version_1_database_gains_the_portfolio_table(
    postgres_server: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database written before portfolio values is migrated to version 2, its rows intact."""
    monkeypatch.setattr(postgres_module, "MIGRATIONS", MIGRATIONS[:1])
    monkeypatch.setattr(postgres_module, "SCHEMA_VERSION", 1)
    async with PostgresHistoryStore(postgres_server, schema=postgres_schema) as store:
        await store.append(ROW)
    monkeypatch.undo()
    async with PostgresHistoryStore(postgres_server, schema=postgres_schema) as store:
        assert await store.schema_version() == 2
        assert await store.integrity_check() is True
        assert await store.load() == [ROW]
        assert await store.load_values("USD") == []
