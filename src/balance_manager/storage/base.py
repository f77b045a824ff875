"""The history store interface, its row type, and the choice of a backend by location.

:class:`BalanceHistory <balance_manager.service.history.BalanceHistory>` talks
to a :class:`HistoryStore` only. Two backends implement it:

* :class:`~balance_manager.storage.sqlite.SQLiteHistoryStore`: one SQLite file,
  the embedded default, needing nothing beyond the standard library;
* :class:`~balance_manager.storage.postgres.PostgresHistoryStore`: PostgreSQL
  through psycopg 3 (async) with a connection pool (the ``postgres`` extra).

:func:`history_store_for` picks one from a location: a ``postgresql://`` (or
``postgres://``) URL gives PostgreSQL; ``sqlite:PATH`` or a plain path gives
SQLite.

What every backend promises (``tests/storage/test_contract.py`` checks each):

* amounts come back as the exact ``Decimal`` that went in (equal by value:
  ``Decimal("1E+3")`` may come back as ``Decimal("1000")``), 28 significant
  digits, ``1e-18`` and ``1e15`` included; timestamps to the microsecond;
* a row with a ledger id is stored once per ``(account, asset, ledger_id)``
  however often it is written, so replaying a batch after a crash (or
  delivering it twice) writes nothing twice; rows without a ledger id are
  never duplicates of each other;
* a batch (:meth:`HistoryStore.write`) is one transaction: all or nothing;
* reads are oldest first, ties in insertion order; the reload on start
  (:meth:`HistoryStore.load` with ``limit_per_asset``) is capped in the query,
  so a million-row table is never read whole to keep the newest few per asset;
* every row belongs to one account and a store reads, counts and prunes only
  its own account's rows;
* the schema is versioned and :meth:`HistoryStore.open` migrates it forward,
  refusing a database written by a newer version;
* every failure of the backend is a
  :class:`~balance_manager.exceptions.PersistenceError` naming the location,
  never showing a password.

The interface is split so that a single writer can be put between the
histories and the database (several processes sharing one account writing
each ledger entry once): :class:`HistoryWriter` is all a history needs to
write; the reads are in :class:`HistoryStore`. Because :meth:`HistoryWriter.write`
is idempotent on the ledger id, a writer fed from a queue with at-least-once
delivery (acknowledged after the commit) stores every ledger entry exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple, Protocol, Self, TypeAlias, runtime_checkable

from balance_manager.core.models import Balance, Source
from balance_manager.core.value_history import ValuePoint
from balance_manager.credentials import redact_url
from balance_manager.exceptions import PersistenceError

__all__ = [
    "POSTGRES_SCHEMES",
    "SQLITE_PREFIX",
    "HistoryRow",
    "HistoryStore",
    "HistoryWriter",
    "StoredRow",
    "ValueStore",
    "history_store_for",
    "is_postgres_url",
    "sqlite_path",
]

#: URL schemes that select the PostgreSQL backend.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
#: The prefix that names an SQLite file explicitly (``sqlite:PATH``, ``sqlite:///abs/path``).
SQLITE_PREFIX = "sqlite:"


class StoredRow(NamedTuple):
    """One history row as stored.

    Attributes:
        asset: the asset.
        timestamp: Unix seconds (kept to the microsecond).
        balance: the balance, exact.
        source: where the value came from.
        ledger_id: the exchange's ledger entry id, when the value came from one.
    """

    asset: str
    timestamp: float
    balance: Decimal
    source: Source
    ledger_id: str | None = None


#: A history row's fields in :class:`StoredRow`'s order, as a plain tuple: what a
#: history queues for its store (a tuple display costs a fraction of a
#: ``StoredRow(...)`` call, once per recorded update on the event loop). Every
#: :class:`StoredRow` is one.
HistoryRow: TypeAlias = tuple[str, float, Decimal, Source, str | None]


@runtime_checkable
class HistoryWriter(Protocol):
    """What a history needs to persist its rows: open, write a batch, close."""

    account: str
    """The account whose rows this store writes (a fingerprint, never a key)."""

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` succeeded and :meth:`close` has not been called."""
        ...

    @property
    def path(self) -> str:
        """Where the data is, fit for a message: a file path, or a URL without its password."""
        ...

    async def open(self) -> None:
        """Connect (or create) and bring the schema up to date; nothing when already open.

        Raises:
            PersistenceError: the database cannot be reached, created or migrated,
                or was written by a newer version of balance-manager.
        """
        ...

    async def close(self) -> None:
        """Release the connections. Safe to call twice."""
        ...

    async def __aenter__(self) -> Self:
        """:meth:`open`, for ``async with store:``."""
        ...

    async def __aexit__(self, *exc_info: object) -> None:
        """:meth:`close`."""
        ...

    async def write(self, rows: Iterable[HistoryRow], latest: Iterable[Balance]) -> int:
        """Store history ``rows`` and the ``latest`` values in one transaction.

        Returns how many history rows were new (a ledger id already stored
        for the asset is skipped). ``latest`` replaces each asset's last value.

        Raises:
            PersistenceError: the write failed; nothing was stored.
        """
        ...


@runtime_checkable
class HistoryStore(HistoryWriter, Protocol):
    """A history database of one account: write, read, prune, check."""

    async def append(self, row: StoredRow) -> int:
        """Store one row (its own transaction); 1 if it was new, 0 if a duplicate."""
        ...

    async def append_many(self, rows: Iterable[StoredRow]) -> int:
        """Store ``rows`` in one transaction; return how many were new."""
        ...

    async def load(
        self, since: float = float("-inf"), *, limit_per_asset: int | None = None
    ) -> list[StoredRow]:
        """Rows with ``timestamp >= since``, oldest first (ties in insertion order).

        With ``limit_per_asset``, only the newest ``limit_per_asset`` rows of
        each asset, chosen by the database (what a restart reloads).
        """
        ...

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
        ...

    async def load_latest(self) -> dict[str, Balance]:
        """The last known value of every asset of this account, every amount included."""
        ...

    async def prune_before(self, timestamp: float) -> int:
        """Delete this account's rows older than ``timestamp``; return how many."""
        ...

    async def count(self) -> int:
        """Number of history rows stored for this account."""
        ...

    async def accounts(self) -> list[str]:
        """Every account with rows in this database (fingerprints), sorted."""
        ...

    async def integrity_check(self) -> bool:
        """The backend's own consistency check; ``True`` when it finds nothing wrong."""
        ...

    async def schema_version(self) -> int:
        """The schema version of the database."""
        ...


@runtime_checkable
class ValueStore(Protocol):
    """Where a portfolio's value over time is kept (both history stores implement it).

    Points are kept per account and quote currency, amounts exact, times to the
    microsecond; reads are oldest first.
    """

    async def append_values(self, quote: str, points: Iterable[ValuePoint]) -> int:
        """Store value points of ``quote`` in one transaction; return how many."""
        ...

    async def load_values(self, quote: str, since: float = float("-inf")) -> list[ValuePoint]:
        """The points of ``quote`` with ``at >= since``, oldest first."""
        ...

    async def prune_values_before(self, timestamp: float) -> int:
        """Delete this account's points older than ``timestamp``; return how many."""
        ...


def is_postgres_url(location: str) -> bool:
    """Whether ``location`` selects the PostgreSQL backend."""
    return location.startswith(POSTGRES_SCHEMES)


def sqlite_path(location: str) -> str:
    """The SQLite path ``location`` names: ``sqlite:PATH`` or ``sqlite://PATH`` give PATH.

    ``sqlite:///var/lib/history.db`` is ``/var/lib/history.db``;
    ``sqlite::memory:`` is ``:memory:``; anything without the prefix is a path already.
    """
    if not location.lower().startswith(SQLITE_PREFIX):
        return location
    rest = location[len(SQLITE_PREFIX) :]
    return rest[2:] if rest.startswith("//") else rest


def history_store_for(location: str, *, account: str = "") -> HistoryStore:
    """The store ``location`` names, for ``account`` (not opened yet).

    Args:
        location: ``postgresql://user@host:5432/db`` (PostgreSQL, needs the
            ``postgres`` extra), ``sqlite:PATH``, or a file path (SQLite).
        account: the account whose rows the store reads and writes.

    Raises:
        PersistenceError: PostgreSQL is asked for but psycopg is not installed.
    """
    if is_postgres_url(location):
        try:
            from balance_manager.storage.postgres import PostgresHistoryStore
        except ImportError as exc:
            raise PersistenceError(
                "PostgreSQL history needs psycopg: pip install 'balance-manager[postgres]' "
                f"({exc.name or exc} is missing)",
                path=redact_url(location),
            ) from None
        return PostgresHistoryStore(location, account=account)
    from balance_manager.storage.sqlite import SQLiteHistoryStore

    return SQLiteHistoryStore(sqlite_path(location), account=account)
