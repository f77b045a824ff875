"""Tests of balance_manager.storage.base: choosing a backend by location."""

from __future__ import annotations

import sys

import pytest

from balance_manager.exceptions import PersistenceError
from balance_manager.storage.base import (
    HistoryStore,
    HistoryWriter,
    history_store_for,
    is_postgres_url,
    sqlite_path,
)
from balance_manager.storage.postgres import PostgresHistoryStore
from balance_manager.storage.sqlite import SQLiteHistoryStore


@pytest.mark.parametrize(
    ("location", "path"),
    [
        ("/var/lib/bm/history.db", "/var/lib/bm/history.db"),
        ("history.db", "history.db"),
        ("sqlite:history.db", "history.db"),
        ("sqlite:/var/lib/bm/history.db", "/var/lib/bm/history.db"),
        ("sqlite:///var/lib/bm/history.db", "/var/lib/bm/history.db"),
        ("SQLite::memory:", ":memory:"),
        (":memory:", ":memory:"),
    ],
)
def test_sqlite_locations_name_a_path(location: str, path: str) -> None:
    """A path, sqlite:PATH and sqlite://PATH all name the same SQLite file."""
    assert not is_postgres_url(location)
    assert sqlite_path(location) == path
    store = history_store_for(location, account="abcd")
    assert isinstance(store, SQLiteHistoryStore)
    assert (store.path, store.account) == (path, "abcd")


@pytest.mark.parametrize("url", ["postgresql://bot@db:5432/history", "postgres://db/history"])
def test_postgres_urls_select_postgres(url: str) -> None:
    """postgresql:// and postgres:// give the PostgreSQL store."""
    assert is_postgres_url(url)
    store = history_store_for(url, account="abcd")
    assert isinstance(store, PostgresHistoryStore)
    assert store.account == "abcd"


def test_both_backends_implement_the_interface() -> None:
    """The stores are HistoryStores (and so HistoryWriters), checked at run time."""
    for store in (SQLiteHistoryStore(":memory:"), PostgresHistoryStore("postgresql://db/h")):
        assert isinstance(store, HistoryStore)
        assert isinstance(store, HistoryWriter)


def test_postgres_without_psycopg_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Asking for PostgreSQL without the postgres extra is a PersistenceError saying what to do."""
    monkeypatch.setitem(sys.modules, "balance_manager.storage.postgres", None)
    with pytest.raises(PersistenceError, match=r"balance-manager\[postgres\]") as caught:
        history_store_for("postgresql://bot:hunter2@db/history")
    assert "hunter2" not in str(caught.value)
    assert caught.value.path == "postgresql://bot:***@db/history"
