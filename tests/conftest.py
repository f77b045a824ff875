"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.storage.backends import Backend

from balance_manager.testing import ManualClock
from balance_manager.testing_postgres import postgres_url, scratch_schema


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting at a fixed, known time."""
    return ManualClock()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a real PostgreSQL server for the whole test run (see testing_postgres)."""
    with postgres_url() as url:
        yield url


@pytest.fixture
def postgres_schema(postgres_server: str) -> Iterator[str]:
    """A schema of this test's own in that server, dropped when the test ends."""
    with scratch_schema(postgres_server) as schema:
        yield schema


@pytest.fixture(params=["sqlite", "postgres"])
def history_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each history backend in turn, on a database of this test's own."""
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "history.sqlite3"))
    schema: str = request.getfixturevalue("postgres_schema")
    url: str = request.getfixturevalue("postgres_server")
    return Backend("postgres", url, schema)
