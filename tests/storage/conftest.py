"""Fixtures of the store tests: each history backend, on a real database.

``backend`` is parametrised over SQLite (a file in the test's temporary
directory) and PostgreSQL (a schema of its own in a real server, dropped when
the test ends: see ``balance_manager.testing_postgres`` for which server).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from balance_manager.storage.base import HistoryStore
from balance_manager.storage.postgres import PostgresHistoryStore
from balance_manager.storage.sqlite import SQLiteHistoryStore
from balance_manager.testing_postgres import postgres_url, scratch_schema


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a real PostgreSQL server for the whole test run."""
    with postgres_url() as url:
        yield url


@pytest.fixture
def postgres_schema(postgres_server: str) -> Iterator[str]:
    """A schema of this test's own in that server, dropped when the test ends."""
    with scratch_schema(postgres_server) as schema:
        yield schema


@dataclass(frozen=True)
class Backend:
    """One history backend at one location: makes stores on it for any account."""

    name: str
    location: str
    """A file path (SQLite) or a URL (PostgreSQL)."""
    schema: str | None = None
    """The PostgreSQL schema, for PostgreSQL."""

    def store(self, account: str = "acct") -> HistoryStore:
        """A new (unopened) store of ``account`` on this backend's database."""
        if self.schema is None:
            return SQLiteHistoryStore(self.location, account=account)
        return PostgresHistoryStore(self.location, account=account, schema=self.schema)

    def writer_arguments(self) -> list[str]:
        """How ``store_writer.py`` reaches this database."""
        return [self.location, self.schema or ""]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each backend in turn, on a database of this test's own."""
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "history.sqlite3"))
    schema: str = request.getfixturevalue("postgres_schema")
    url: str = request.getfixturevalue("postgres_server")
    return Backend("postgres", url, schema)
