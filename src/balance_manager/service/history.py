"""BalanceHistory: the history of every balance, with trends and persistence.

:class:`BalanceHistory` records every change of every asset's balance in a
compact in-memory :class:`~balance_manager.core.timeline.Timeline`, answers the
usual questions (``get_asset_history``, ``analyze_balance_trend``,
volatility, significant-change detection) from memory, and writes the entries
to an optional :class:`~balance_manager.storage.base.HistoryStore` (SQLite by
default, or PostgreSQL) in batches.

Design points:

* :meth:`BalanceHistory.record` is synchronous and never waits on the disk: it
  is on the hot path of every streamed balance update. Rows for the store are
  queued; :meth:`BalanceHistory.flush` writes the queue in one transaction.
  :meth:`BalanceHistory.run_maintenance` flushes every ``flush_interval``
  seconds and prunes hourly, so an owner only has to start it as a task.
* Persistence failures never stop the history: rows stay queued (bounded,
  oldest dropped and counted beyond ``max_pending``), the error is logged
  once per failure streak and exposed as :attr:`BalanceHistory.last_error`
  and in :meth:`BalanceHistory.get_statistics`, and memory keeps serving.
* A restart reloads at most ``max_entries`` rows per asset, chosen by the
  store's query (never a whole table read to keep its newest part).
* No ledger entry is counted twice: the most recent ``ledger_id_memory``
  ledger ids are remembered (and restored by :meth:`BalanceHistory.load`),
  and the store refuses a ledger id it already holds.
* Like the rest of the asyncio layer, a BalanceHistory belongs to one event
  loop; its synchronous methods never await, so tasks on that loop (trading
  strategies) see each call as atomic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, TypedDict

from balance_manager.config import ACCOUNT_PLACEHOLDER, OPTION_BOUNDS, default_history_path
from balance_manager.core.bounds import HOUR, MIN_SECONDS, Bound, seconds
from balance_manager.core.changes import ChangeDetector
from balance_manager.core.models import Balance
from balance_manager.core.timeline import HistoryEntry, Timeline
from balance_manager.core.trends import (
    TrendAnalysis,
    analyze_float_series,
    analyze_trend,
    float_volatility,
    volatility,
)
from balance_manager.exceptions import ConfigError, PersistenceError
from balance_manager.runtime.clock import Clock, SystemClock
from balance_manager.storage.base import (
    HistoryRow,
    HistoryStore,
    history_store_for,
    is_postgres_url,
)

if TYPE_CHECKING:
    from balance_manager.config import BalanceManagerConfig

__all__ = [
    "ANALYSIS_HOURS",
    "DEFAULT_MAX_PENDING",
    "INLINE_TREND_POINTS",
    "LEDGER_ID_MEMORY",
    "PRUNE_INTERVAL",
    "BalanceHistory",
    "HistoryStatistics",
]

logger = logging.getLogger(__name__)

#: Seconds between two retention prunes in :meth:`BalanceHistory.run_maintenance`.
PRUNE_INTERVAL = 3600.0
#: The windows :meth:`BalanceHistory.analyze_balance_trend` takes, in hours:
#: from 1 ms to the longest ``history_retention_hours`` (nothing older is kept).
ANALYSIS_HOURS = Bound(
    "hours", MIN_SECONDS / HOUR, OPTION_BOUNDS["history_retention_hours"].maximum
)
#: Most rows queued for the store; beyond, the oldest are dropped (and counted).
DEFAULT_MAX_PENDING = 100_000
#: How many recent ledger ids are remembered to refuse replays.
LEDGER_ID_MEMORY = 10_000
#: Trend windows up to this many points are analysed on the event loop (about
#: 5 ms for 10,000 points, see ``bench/bench_history.py``); larger ones run in
#: a worker thread so the loop is not held up.
INLINE_TREND_POINTS = 20_000

_SECONDS_PER_HOUR = 3600.0
_SYSTEM_CLOCK = SystemClock()


class HistoryStatistics(TypedDict):
    """What :meth:`BalanceHistory.get_statistics` reports."""

    entries: int
    """Entries held in memory, all assets."""
    assets: int
    """Assets with at least one entry in memory."""
    recorded: int
    """Entries recorded since start (not counting ones loaded from the store)."""
    skipped_unchanged: int
    """``record`` calls ignored because the balance had not changed."""
    skipped_duplicates: int
    """``record`` calls ignored because their ledger id was already recorded."""
    clamped: int
    """Entries whose out-of-order timestamp was clamped to the previous one."""
    pruned: int
    """Entries removed from memory by retention."""
    persistent: bool
    """Whether a store is attached."""
    pending_writes: int
    """Rows queued for the store."""
    written: int
    """Rows written to the store since start."""
    write_errors: int
    """Failed store operations."""
    dropped: int
    """Queued rows dropped because the queue was full (store unavailable)."""
    bytes_in_memory: int
    """Data bytes of the in-memory timelines (see ``Timeline.nbytes``)."""
    last_error: str | None
    """The last persistence error, or ``None`` once a write succeeds again."""


class BalanceHistory:
    """Balance history of every asset: record, query, analyse, persist.

    Args:
        max_entries: most entries kept in memory per asset (``history_max_entries``).
        retention_hours: entries older than this are pruned (``history_retention_hours``).
        change_absolute: significance threshold, absolute (``change_threshold_absolute``).
        change_percent: significance threshold, percent (``change_threshold_percent``).
        store: where to persist entries; ``None`` keeps history in memory only.
        clock: the time source.
        flush_interval: seconds between batched writes in :meth:`run_maintenance`.
        max_pending: most rows queued for the store.
        ledger_id_memory: how many recent ledger ids are remembered.
        decimals: known ledger decimals per asset (the in-memory amount scale).
        prune_interval: seconds between prunes in :meth:`run_maintenance`.

    Raises:
        ConfigError: an option is out of range.
        FloatAmountError: a threshold is a ``float``.
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        retention_hours: float = 168.0,
        change_absolute: Decimal | int | str = Decimal(0),
        change_percent: Decimal | int | str = Decimal("0.1"),
        store: HistoryStore | None = None,
        clock: Clock = _SYSTEM_CLOCK,
        flush_interval: float = 1.0,
        max_pending: int = DEFAULT_MAX_PENDING,
        ledger_id_memory: int = LEDGER_ID_MEMORY,
        decimals: Mapping[str, int] | None = None,
        prune_interval: float = PRUNE_INTERVAL,
    ) -> None:
        # The configuration's own ranges (a flush every nanosecond is a busy loop).
        retention_hours = float(
            OPTION_BOUNDS["history_retention_hours"].check(
                "history_retention_hours", retention_hours
            )
        )
        flush_interval = float(
            OPTION_BOUNDS["history_flush_interval"].check("history_flush_interval", flush_interval)
        )
        prune_interval = seconds("prune_interval", prune_interval)
        for option, count in (("max_pending", max_pending), ("ledger_id_memory", ledger_id_memory)):
            if not count >= 1:
                raise ConfigError(option, count, "must be a positive int")
        self._timeline = Timeline(max_entries=max_entries, decimals=decimals)
        self._max_entries = max_entries
        self._detector = ChangeDetector(change_absolute, change_percent)
        self._store = store
        self._clock = clock
        self._retention = float(retention_hours) * _SECONDS_PER_HOUR
        self._flush_interval = float(flush_interval)
        self._prune_interval = float(prune_interval)
        self._max_pending = max_pending
        # Plain tuples, in a deque that drops its oldest when full: add() queues a
        # row with one append; _count_drops() counts what the bound let go.
        self._pending: deque[HistoryRow] = deque(maxlen=max_pending)
        self._counted_at = (0, 0)  # (self._recorded, len(self._pending)) when last counted
        self._latest: dict[str, Balance] = {}  # last value per asset, not yet stored
        self._last_known: dict[str, Balance] = {}  # as stored at load
        self._prune_cutoff: float | None = None  # store prune owed by the next flush
        self._ledger_limit = ledger_id_memory
        self._ledger_ids: set[str] = set()
        self._ledger_order: deque[str] = deque()
        self._flush_lock = asyncio.Lock()
        self._closed = False
        self._error_logged = False
        self.persistence_error: PersistenceError | None = None
        """The last persistence error; ``None`` once the store works again."""
        # Counters for get_statistics().
        self._recorded = 0
        self._skipped_unchanged = 0
        self._skipped_duplicates = 0
        self._pruned = 0
        self._written = 0
        self._write_errors = 0
        self._dropped = 0

    @classmethod
    def from_config(
        cls,
        config: BalanceManagerConfig,
        *,
        clock: Clock = _SYSTEM_CLOCK,
        store: HistoryStore | None = None,
        account: str = "",
        simulated: bool = False,
    ) -> BalanceHistory:
        """A history set up from ``config``.

        Args:
            config: the options (``history_*`` and ``change_threshold_*``).
            clock: the time source.
            store: the store to use; by default one is made from
                ``history_url``, else ``history_db_path`` (no store when both
                are ``None``), for ``account``.
            account: the account's fingerprint: ``{account}`` in an SQLite path
                is replaced by it, and the store keeps only its rows.
            simulated: the account is on a simulated exchange: the default path
                is not used (history stays in memory) unless one was set.

        Raises:
            PersistenceError: ``history_url`` names PostgreSQL and psycopg is
                not installed (the ``postgres`` extra).
        """
        location = config.history_url or config.history_db_path
        if store is None and location is not None:
            if simulated and location == default_history_path():
                location = None  # simulated balances have no place in a real history file
            elif not is_postgres_url(location):
                location = location.replace(ACCOUNT_PLACEHOLDER, account or "no-account")
        if store is None and location is not None:
            store = history_store_for(location, account=account)
        return cls(
            max_entries=config.history_max_entries,
            retention_hours=config.history_retention_hours,
            change_absolute=config.change_threshold_absolute,
            change_percent=config.change_threshold_percent,
            store=store,
            clock=clock,
            flush_interval=config.history_flush_interval,
        )

    # -- recording -----------------------------------------------------------------

    def record(self, balance: Balance, *, ledger_id: str | None = None) -> HistoryEntry | None:
        """Record ``balance`` if it changed; return the new entry or ``None``.

        Nothing is recorded when ``ledger_id`` was already recorded (a replayed
        ledger entry) or when the balance equals the asset's last recorded one
        (a snapshot or REST refresh confirming it, or a ledger entry of amount
        zero; its ledger id is still remembered). The entry's timestamp is the
        balance's own (:attr:`Balance.timestamp`), or the clock's time when the
        balance carries none.

        Args:
            balance: the new balance of one asset.
            ledger_id: the exchange's ledger entry id, when the balance comes
                from one (a WebSocket ``balances`` update; docs/kraken.md,
                'Balances updates').

        Returns:
            The entry, whose ``change`` is the exact difference to the previous
            entry, or ``None`` when nothing was recorded.
        """
        if not self.add(balance, ledger_id=ledger_id):
            return None
        timeline = self._timeline.get(balance.asset)
        return timeline.latest() if timeline is not None else None

    def add(self, balance: Balance, *, ledger_id: str | None = None) -> bool:
        """:meth:`record` without building the entry; returns whether it recorded.

        The manager's hot path: every streamed update goes through here.
        """
        if ledger_id is not None:
            ledger_ids = self._ledger_ids
            if ledger_id in ledger_ids:
                self._skipped_duplicates += 1
                return False
            ledger_ids.add(ledger_id)
            order = self._ledger_order
            order.append(ledger_id)
            if len(order) > self._ledger_limit:
                ledger_ids.discard(order.popleft())
        if self._store is not None:
            self._latest[balance.asset] = balance  # every amount, holds included
        amount = balance.balance
        timeline = self._timeline.timeline_for(balance.asset)
        if timeline.last_balance == amount:
            self._skipped_unchanged += 1
            return False
        timestamp = balance.exchange_time
        if timestamp is None:
            timestamp = balance.received_at or self._clock.time()
        timeline.add(timestamp, amount, balance.source)
        self._recorded += 1
        if self._store is not None and not self._closed:
            self._pending.append(
                (balance.asset, timeline.last_timestamp, amount, balance.source, ledger_id)
            )
        return True

    def is_significant(self, old: Decimal | None, new: Decimal) -> bool:
        """Whether ``old`` → ``new`` passes the change thresholds (see ``core.changes``)."""
        return self._detector.is_significant(old, new)

    def set_decimals(self, asset: str, decimals: int) -> None:
        """Tell the ledger decimals of ``asset`` (sets its in-memory amount scale)."""
        self._timeline.set_decimals(asset, decimals)

    # -- queries ---------------------------------------------------------------------

    def get_asset_history(
        self, asset: str, limit: int | None = None, since: float | None = None
    ) -> list[HistoryEntry]:
        """Entries of ``asset``, oldest → newest.

        Args:
            asset: the asset.
            limit: keep only the newest ``limit`` entries.
            since: only entries with ``timestamp >= since`` (Unix seconds).
        """
        timeline = self._timeline.get(asset)
        return timeline.entries(limit=limit, since=since) if timeline is not None else []

    def get_latest(self, asset: str) -> HistoryEntry | None:
        """The newest entry of ``asset``, or ``None``."""
        timeline = self._timeline.get(asset)
        return timeline.latest() if timeline is not None else None

    def last_recorded(self, asset: str) -> tuple[float, Decimal] | None:
        """``(timestamp, balance)`` of the newest entry of ``asset``, or ``None`` (no entry built).

        Changes whenever an entry is recorded: a cheap way to know whether to read more.
        """
        timeline = self._timeline.get(asset)
        if timeline is None or not len(timeline) or timeline.last_balance is None:
            return None
        return timeline.last_timestamp, timeline.last_balance

    def recent_changes(self, asset: str, count: int) -> list[tuple[float, Decimal]]:
        """The newest ``count`` (or fewer) changes of ``asset``: ``(timestamp, exact change)``,
        oldest first. A change is the difference between two entries held, so the first
        value ever recorded (a change from nothing) is never one.
        """
        entries = self.get_asset_history(asset, limit=count + 1)
        return [(entry.timestamp, entry.change) for entry in entries[1:]]

    def assets(self) -> list[str]:
        """Assets with history in memory, sorted."""
        return self._timeline.assets()

    async def analyze_balance_trend(
        self, asset: str, analysis_hours: float = 24
    ) -> TrendAnalysis | None:
        """Trend of ``asset`` over the last ``analysis_hours`` (see ``core.trends``).

        Returns:
            The analysis, or ``None`` with fewer than 2 entries in the window.

        Raises:
            ConfigError: ``analysis_hours`` is not within :data:`ANALYSIS_HOURS`.
        """
        analysis_hours = float(ANALYSIS_HOURS.check("analysis_hours", analysis_hours))
        timeline = self._timeline.get(asset)
        if timeline is None:
            return None
        now = self._clock.time()
        since = now - analysis_hours * _SECONDS_PER_HOUR
        fast = timeline.float_series(since)
        if fast is None:  # empty window, or values only the exact side table holds
            timestamps, balances = timeline.series(since)
            if len(balances) > INLINE_TREND_POINTS:
                return await asyncio.to_thread(
                    analyze_trend,
                    asset,
                    timestamps,
                    balances,
                    analysis_hours=analysis_hours,
                    now=now,
                )
            return analyze_trend(
                asset, timestamps, balances, analysis_hours=analysis_hours, now=now
            )
        times, values, first, last = fast
        if len(values) > INLINE_TREND_POINTS:
            return await asyncio.to_thread(
                analyze_float_series,
                asset,
                times,
                values,
                start_balance=first,
                end_balance=last,
                analysis_hours=analysis_hours,
            )
        return analyze_float_series(
            asset,
            times,
            values,
            start_balance=first,
            end_balance=last,
            analysis_hours=analysis_hours,
        )

    def volatility(self, asset: str, hours: float = 24) -> float | None:
        """Volatility of ``asset`` over the last ``hours`` (see ``core.trends.volatility``).

        Returns:
            The standard deviation of successive relative changes as a fraction,
            or ``None`` with fewer than two measurable changes.

        Raises:
            ConfigError: ``hours`` is not within :data:`ANALYSIS_HOURS`.
        """
        hours = float(ANALYSIS_HOURS.check("hours", hours))
        timeline = self._timeline.get(asset)
        if timeline is None:
            return None
        since = self._clock.time() - hours * _SECONDS_PER_HOUR
        fast = timeline.float_series(since)
        if fast is not None:
            return float_volatility(fast[1])
        return volatility(timeline.series(since)[1])

    # -- persistence -------------------------------------------------------------------

    @property
    def store(self) -> HistoryStore | None:
        """The attached store, if any."""
        return self._store

    @property
    def last_error(self) -> str | None:
        """The last persistence error as text, ``None`` when persistence works."""
        return str(self.persistence_error) if self.persistence_error is not None else None

    async def load(self) -> int:
        """Reload the entries within retention from the store; return how many.

        At most ``max_entries`` per asset (the newest) are read: the store's
        query does the capping. Opens the store when needed. Also restores the
        ledger ids of the loaded rows, so a ledger entry replayed after a
        restart is still refused. Meant
        for start-up: an asset that already has entries in memory keeps them and
        gets none from the store (memory is newer). A persistence error is
        recorded (:attr:`last_error`) rather than raised.
        """
        store = self._store
        if store is None or self._closed:
            return 0
        since = self._clock.time() - self._retention
        try:
            if not store.is_open:
                await store.open()
            rows = await store.load(since, limit_per_asset=self._max_entries)
            self._last_known = await store.load_latest()
        except PersistenceError as exc:
            self._note_error(exc)
            return 0
        in_memory = set(self._timeline.assets())
        loaded = 0
        for row in rows:
            if row.ledger_id is not None and row.ledger_id not in self._ledger_ids:
                self._remember(row.ledger_id)
            if row.asset not in in_memory:  # add(): no entry object built per row
                self._timeline.timeline_for(row.asset).add(row.timestamp, row.balance, row.source)
                loaded += 1
        return loaded

    def last_known(self) -> dict[str, Balance]:
        """The last known value of every asset as stored (read by :meth:`load`).

        Every amount of each value is there, hold included, so what a restart
        shows before any source answers is complete (and marked stale by the
        manager). Empty without a store.
        """
        return dict(self._last_known)

    async def flush(self) -> int:
        """Write the queued rows in one transaction; return how many rows were new.

        Opens the store when needed and carries out a prune owed by
        :meth:`prune`. On a :class:`PersistenceError` the rows stay queued for
        the next flush and the error is recorded (:attr:`last_error`), not raised.
        """
        store = self._store
        if store is None or self._closed:
            return 0
        async with self._flush_lock:
            self._count_drops()
            if not self._pending and not self._latest and self._prune_cutoff is None:
                return 0
            batch = list(self._pending)
            self._pending.clear()
            self._counted_at = (self._recorded, 0)
            latest, self._latest = self._latest, {}
            try:
                if not store.is_open:
                    await store.open()
                # Shielded: if the flushing task is cancelled (shutdown), the rows
                # already taken from the queue are still written, not lost.
                written = await asyncio.shield(store.write(batch, latest.values()))
            except PersistenceError as exc:
                self._requeue(batch)
                self._latest = {**latest, **self._latest}
                self._note_error(exc)
                return 0
            self._written += written
            cutoff = self._prune_cutoff
            if cutoff is not None:
                try:
                    await store.prune_before(cutoff)
                except PersistenceError as exc:
                    self._note_error(exc)
                    return written
                if self._prune_cutoff == cutoff:
                    self._prune_cutoff = None
            self._note_success()
            return written

    def prune(self, now: float | None = None) -> int:
        """Drop entries older than the retention period; return how many left memory.

        The store is pruned to the same cutoff by the next :meth:`flush`.

        Args:
            now: the current time (Unix seconds); the clock's by default.
        """
        cutoff = (self._clock.time() if now is None else now) - self._retention
        removed = self._timeline.prune_before(cutoff)
        self._pruned += removed
        if self._store is not None:
            self._prune_cutoff = max(cutoff, self._prune_cutoff or cutoff)
        return removed

    async def close(self) -> None:
        """Flush what is queued and close the store. Safe to call twice."""
        if self._closed:
            return
        await self.flush()
        self._closed = True
        if self._store is not None:
            try:
                await self._store.close()
            except PersistenceError as exc:
                self._note_error(exc)

    async def run_maintenance(self, stop: asyncio.Event) -> None:
        """Flush every ``flush_interval`` and prune every hour until ``stop`` is set.

        Sleeps with the clock (so tests drive it with ``ManualClock``) and
        flushes once more when ``stop`` is set. Cancelling the task skips that
        last flush; call :meth:`close` for it.
        """
        last_prune = self._clock.monotonic()
        while not stop.is_set():
            await self._sleep_unless(stop, self._flush_interval)
            if stop.is_set():
                break
            await self.flush()
            if self._clock.monotonic() - last_prune >= self._prune_interval:
                last_prune = self._clock.monotonic()
                self.prune()
        await self.flush()

    # -- statistics ------------------------------------------------------------------

    def get_statistics(self) -> HistoryStatistics:
        """Counters and sizes (see :class:`HistoryStatistics`)."""
        queued = self._count_drops()  # first: it brings the drop count up to date
        return {
            "entries": self._timeline.total_entries(),
            "assets": len(self._timeline.assets()),
            "recorded": self._recorded,
            "skipped_unchanged": self._skipped_unchanged,
            "skipped_duplicates": self._skipped_duplicates,
            "clamped": self._timeline.clamped,
            "pruned": self._pruned,
            "persistent": self._store is not None,
            "pending_writes": queued,
            "written": self._written,
            "write_errors": self._write_errors,
            "dropped": self._dropped,
            "bytes_in_memory": self._timeline.nbytes(),
            "last_error": self.last_error,
        }

    def __repr__(self) -> str:
        return (
            f"BalanceHistory(assets={len(self._timeline.assets())}, "
            f"entries={self._timeline.total_entries()}, store={self._store!r})"
        )

    # -- internals ------------------------------------------------------------------

    def _remember(self, ledger_id: str) -> None:
        self._ledger_ids.add(ledger_id)
        self._ledger_order.append(ledger_id)
        if len(self._ledger_order) > self._ledger_limit:
            self._ledger_ids.discard(self._ledger_order.popleft())

    def _requeue(self, batch: list[HistoryRow]) -> None:
        """Put a failed batch back in front of what was queued meanwhile (bounded)."""
        self._count_drops()
        rows = [*batch, *self._pending]
        overflow = len(rows) - self._max_pending
        if overflow > 0:
            del rows[:overflow]
            self._dropped += overflow
        self._pending = deque(rows, maxlen=self._max_pending)
        self._counted_at = (self._recorded, len(rows))

    def _count_drops(self) -> int:
        """Count the rows the full queue let go since last counted; return how many are queued.

        While open with a store, every recorded entry is queued: those recorded
        since the last count, plus the rows queued then, minus the rows queued
        now, were dropped (oldest first, by the queue's bound).
        """
        queued = len(self._pending)
        if self._store is None or self._closed:
            return queued  # nothing is queued any more: nothing more can drop
        recorded, counted = self._counted_at
        self._dropped += counted + (self._recorded - recorded) - queued
        self._counted_at = (self._recorded, queued)
        return queued

    def _note_error(self, exc: PersistenceError) -> None:
        self._write_errors += 1
        self.persistence_error = exc
        if not self._error_logged:
            self._error_logged = True
            logger.warning(
                "balance history persistence failed, serving from memory: %s "
                "(%d rows queued; logged once until it recovers)",
                exc,
                len(self._pending),
            )

    def _note_success(self) -> None:
        if self._error_logged:
            logger.info("balance history persistence recovered")
        self._error_logged = False
        self.persistence_error = None

    async def _sleep_unless(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep ``seconds`` on the clock, or less if ``stop`` is set meanwhile."""
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
            for task in (sleeper, stopper):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
