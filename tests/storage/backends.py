"""The history backends the store tests run against, as values tests can pass around."""

from __future__ import annotations

from dataclasses import dataclass

from balance_manager.storage.base import HistoryStore, history_store_for

__all__ = ["Backend"]


@dataclass(frozen=True)
class Backend:
    """One history backend at one location: makes stores on it for any account.

    Attributes:
        name: ``sqlite`` or ``postgres``.
        location: the SQLite file, or the PostgreSQL server's URL.
        schema: the PostgreSQL schema of this test (``None`` for SQLite).
    """

    name: str
    location: str
    schema: str | None = None

    @property
    def url(self) -> str:
        """What ``history_url`` (or ``history --db``) would say for this database."""
        if self.schema is None:
            return f"sqlite:{self.location}"
        separator = "&" if "?" in self.location else "?"
        return f"{self.location}{separator}schema={self.schema}"

    def store(self, account: str = "acct") -> HistoryStore:
        """A new (unopened) store of ``account`` on this backend's database."""
        return history_store_for(self.url, account=account)
