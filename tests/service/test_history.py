"""Tests of service.history (BalanceHistory: record, query, trends, persistence)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import balance_manager.service.history as history_module
from balance_manager.config import BalanceManagerConfig
from balance_manager.core.models import Balance, Source
from balance_manager.exceptions import ConfigError, PersistenceError
from balance_manager.service.history import BalanceHistory
from balance_manager.storage.base import HistoryRow
from balance_manager.storage.sqlite import HistoryStore, StoredRow
from balance_manager.testing import ManualClock


class FakeStore(HistoryStore):
    """An in-memory HistoryStore without a thread, which can be told to fail."""

    def __init__(self) -> None:
        super().__init__(":fake:")
        self.rows: list[StoredRow] = []
        self.latest: dict[str, Balance] = {}
        self.fail: PersistenceError | None = None
        self.limits: list[int | None] = []  # limit_per_asset of each load()
        self.opened = False
        self.closed = False

    @property
    def is_open(self) -> bool:
        return self.opened and not self.closed

    async def open(self) -> None:
        self._maybe_fail()
        self.opened = True

    async def close(self) -> None:
        self.closed = True

    async def write(self, rows: Iterable[HistoryRow], latest: Iterable[Balance]) -> int:
        self._maybe_fail()
        known = {(row.asset, row.ledger_id) for row in self.rows if row.ledger_id}
        given = [StoredRow(*row) for row in rows]
        new = [row for row in given if not row.ledger_id or (row.asset, row.ledger_id) not in known]
        self.rows.extend(new)
        self.latest.update({value.asset: value for value in latest})
        return len(new)

    async def load_latest(self) -> dict[str, Balance]:
        self._maybe_fail()
        return dict(self.latest)

    async def load(
        self, since: float = float("-inf"), *, limit_per_asset: int | None = None
    ) -> list[StoredRow]:
        self._maybe_fail()
        self.limits.append(limit_per_asset)
        rows = sorted(
            (row for row in self.rows if row.timestamp >= since), key=lambda r: r.timestamp
        )
        if limit_per_asset is not None:  # the newest limit_per_asset of each asset
            newer: dict[str, int] = {}
            kept = []
            for row in reversed(rows):
                newer[row.asset] = newer.get(row.asset, 0) + 1
                if newer[row.asset] <= limit_per_asset:
                    kept.append(row)
            rows = kept[::-1]
        return rows

    async def prune_before(self, timestamp: float) -> int:
        self._maybe_fail()
        before = len(self.rows)
        self.rows = [row for row in self.rows if row.timestamp >= timestamp]
        return before - len(self.rows)

    def _maybe_fail(self) -> None:
        if self.fail is not None:
            raise self.fail


def usdt(amount: str, clock: ManualClock, source: Source = Source.WEBSOCKET) -> Balance:
    """A USDT balance received now."""
    return Balance("USDT", Decimal(amount), source=source, received_at=clock.time())


# -- recording ----------------------------------------------------------------------------


def test_record_returns_the_entry_with_its_exact_change(clock: ManualClock) -> None:
    """record() appends a changed balance and reports the difference to the previous one."""
    history = BalanceHistory(clock=clock)
    first = history.record(usdt("100.10", clock))
    clock.advance(5)
    second = history.record(usdt("99.95", clock, Source.REST))
    assert first is not None
    assert second is not None
    assert (first.balance, first.change) == (Decimal("100.10"), Decimal("100.10"))
    assert (second.balance, second.change, second.source) == (
        Decimal("99.95"),
        Decimal("-0.15"),
        Source.REST,
    )
    assert second.timestamp == clock.time()


def test_unchanged_balance_is_not_recorded(clock: ManualClock) -> None:
    """A value equal to the last recorded one (e.g. a snapshot) adds nothing."""
    history = BalanceHistory(clock=clock)
    history.record(usdt("5", clock))
    assert history.record(usdt("5.000", clock, Source.REST)) is None
    assert len(history.get_asset_history("USDT")) == 1
    assert history.get_statistics()["skipped_unchanged"] == 1


def test_a_ledger_id_is_counted_once(clock: ManualClock) -> None:
    """A replayed ledger entry is refused even when the balance moved in between."""
    history = BalanceHistory(clock=clock)
    assert history.record(usdt("10", clock), ledger_id="L1") is not None
    assert history.record(usdt("12", clock), ledger_id="L2") is not None
    assert history.record(usdt("10", clock), ledger_id="L1") is None
    assert [e.balance for e in history.get_asset_history("USDT")] == [10, 12]
    assert history.get_statistics()["skipped_duplicates"] == 1


def test_zero_amount_ledger_entry_creates_no_entry_and_no_duplicate(clock: ManualClock) -> None:
    """A ledger entry that leaves the balance unchanged is remembered but not recorded."""
    history = BalanceHistory(clock=clock)
    history.record(usdt("10", clock), ledger_id="L1")
    assert history.record(usdt("10", clock), ledger_id="L0-fee-free") is None
    assert history.record(usdt("10", clock), ledger_id="L0-fee-free") is None
    statistics = history.get_statistics()
    assert (statistics["entries"], statistics["skipped_duplicates"]) == (1, 1)


def test_ledger_id_memory_is_bounded(clock: ManualClock) -> None:
    """Only the most recent ledger ids are remembered."""
    history = BalanceHistory(clock=clock, ledger_id_memory=2)
    for number, amount in enumerate(["1", "2", "3"]):
        history.record(usdt(amount, clock), ledger_id=f"L{number}")
    assert history.record(usdt("4", clock), ledger_id="L0") is not None  # forgotten
    assert history.record(usdt("5", clock), ledger_id="L2") is None  # still remembered


def test_balance_without_timestamp_is_stamped_with_the_clock(clock: ManualClock) -> None:
    """A Balance with no exchange or receive time gets the clock's time."""
    history = BalanceHistory(clock=clock)
    entry = history.record(Balance("BTC", Decimal(1)))
    assert entry is not None
    assert entry.timestamp == clock.time()


def test_is_significant_uses_the_configured_thresholds(clock: ManualClock) -> None:
    """is_significant applies change_absolute and change_percent."""
    history = BalanceHistory(clock=clock, change_absolute=Decimal(1), change_percent=Decimal(1))
    assert not history.is_significant(Decimal(1000), Decimal(1005))  # 0.5 %
    assert history.is_significant(Decimal(1000), Decimal(1010))
    assert not history.is_significant(Decimal(0), Decimal("0.5"))  # below absolute


def test_bad_options_are_refused(clock: ManualClock) -> None:
    """Non-positive retention or flush interval raise ConfigError naming the option."""
    with pytest.raises(ConfigError, match="history_retention_hours"):
        BalanceHistory(clock=clock, retention_hours=0)
    with pytest.raises(ConfigError, match="history_flush_interval"):
        BalanceHistory(clock=clock, flush_interval=-1)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"flush_interval": 1e-9}, "history_flush_interval"),
        ({"flush_interval": Decimal("sNaN")}, "history_flush_interval"),
        ({"retention_hours": 10**400}, "history_retention_hours"),
        ({"retention_hours": Decimal("sNaN")}, "history_retention_hours"),
        ({"prune_interval": 1e-9}, "prune_interval"),
    ],
    ids=["flush-1ns", "flush-sNaN", "retention-1e400", "retention-sNaN", "prune-1ns"],
)
def test_absurd_durations_are_refused_by_name(
    clock: ManualClock, kwargs: dict[str, Any], option: str
) -> None:
    """A flush every nanosecond, a signaling NaN or 10**400 hours is a ConfigError naming it."""
    with pytest.raises(ConfigError) as info:
        BalanceHistory(clock=clock, **kwargs)
    assert info.value.option == option


# -- queries ------------------------------------------------------------------------------


def test_asset_history_limit_since_latest_and_assets(clock: ManualClock) -> None:
    """get_asset_history honours limit and since; get_latest and assets() agree."""
    history = BalanceHistory(clock=clock)
    start = clock.time()
    for amount in range(1, 21):
        history.record(usdt(str(amount), clock))
        clock.advance(60)
    history.record(Balance("BTC", Decimal("0.5"), received_at=clock.time()))
    assert [e.balance for e in history.get_asset_history("USDT", limit=3)] == [18, 19, 20]
    recent = history.get_asset_history("USDT", since=start + 15 * 60)
    assert [e.balance for e in recent] == [16, 17, 18, 19, 20]
    latest = history.get_latest("USDT")
    assert latest is not None
    assert latest.balance == 20
    assert history.assets() == ["BTC", "USDT"]
    assert history.get_asset_history("DOGE") == []
    assert history.get_latest("DOGE") is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "hours", [10**400, Decimal("sNaN"), 1e300, 0, "24"], ids=["1e400", "sNaN", "1e300", "0", "text"]
)
async def test_absurd_analysis_windows_are_refused_by_name(
    clock: ManualClock, hours: object
) -> None:
    """analysis_hours must be a number of hours between 1 ms and the longest retention."""
    history = BalanceHistory(clock=clock)
    history.record(usdt("1", clock))
    with pytest.raises(ConfigError) as info:
        await history.analyze_balance_trend("USDT", analysis_hours=hours)  # type: ignore[arg-type]
    assert info.value.option == "analysis_hours"


@pytest.mark.parametrize(
    "hours", [10**400, Decimal("sNaN"), -1, "24"], ids=["1e400", "sNaN", "negative", "text"]
)
def test_absurd_volatility_windows_are_refused_by_name(clock: ManualClock, hours: object) -> None:
    """volatility(hours=...) takes the same windows as analyze_balance_trend."""
    history = BalanceHistory(clock=clock)
    history.record(usdt("1", clock))
    with pytest.raises(ConfigError) as info:
        history.volatility("USDT", hours=hours)  # type: ignore[arg-type]  # bad on purpose
    assert info.value.option == "hours"


@pytest.mark.asyncio
@pytest.mark.parametrize("asset", [["USDT"], {"USDT": 1}, None], ids=["list", "dict", "None"])
async def test_queries_for_names_that_are_not_text_find_nothing(
    clock: ManualClock, asset: object
) -> None:
    """History queries with an unhashable or non-str asset find nothing instead of a TypeError."""
    history = BalanceHistory(clock=clock)
    history.record(usdt("1", clock))
    assert history.get_asset_history(asset) == []  # type: ignore[arg-type]
    assert history.get_latest(asset) is None  # type: ignore[arg-type]
    assert history.volatility(asset) is None  # type: ignore[arg-type]
    assert await history.analyze_balance_trend(asset) is None  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_seed_trend_and_history_usage(clock: ManualClock) -> None:
    """The seed's analyze_balance_trend / get_asset_history calls work as written."""
    history = BalanceHistory(clock=clock)
    for step in range(48):
        history.record(usdt(f"{1000 + 10 * step}.5", clock))
        clock.advance(1800)
    trend = await history.analyze_balance_trend("USDT", analysis_hours=24)
    assert trend is not None
    assert (trend.trend_direction, trend.points) == ("increasing", 48)
    assert trend.trend_strength == pytest.approx(1.0)
    assert trend.slope_per_hour == pytest.approx(20.0)
    entries = history.get_asset_history("USDT", limit=10)
    assert [str(e.balance) for e in entries][-1] == "1470.5"
    assert all(isinstance(e.timestamp, float) for e in entries)


@pytest.mark.asyncio
async def test_trend_is_none_without_enough_points(clock: ManualClock) -> None:
    """An unknown asset, or one point in the window, gives no trend."""
    history = BalanceHistory(clock=clock)
    assert await history.analyze_balance_trend("USDT") is None
    history.record(usdt("1", clock))
    assert await history.analyze_balance_trend("USDT") is None
    with pytest.raises(ConfigError, match="analysis_hours"):
        await history.analyze_balance_trend("USDT", analysis_hours=0)


@pytest.mark.asyncio
async def test_trend_paths_agree(clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inline, worker-thread and exact-side-table paths give the same trend."""
    history = BalanceHistory(clock=clock)
    for amount in ["5", "7.25", "6", "9.125", "11"]:
        history.record(usdt(amount, clock))
        clock.advance(600)
    inline = await history.analyze_balance_trend("USDT", 1)
    monkeypatch.setattr(history_module, "INLINE_TREND_POINTS", 2)
    threaded = await history.analyze_balance_trend("USDT", 1)
    assert inline is not None
    assert inline == threaded
    assert inline.trend_direction == "increasing"
    # A value the int64 column cannot hold switches to the exact Decimal path.
    history.record(usdt("1e30", clock))
    clock.advance(600)
    exact = await history.analyze_balance_trend("USDT", 1)
    monkeypatch.setattr(history_module, "INLINE_TREND_POINTS", 20_000)
    assert exact == await history.analyze_balance_trend("USDT", 1)
    assert exact is not None
    assert exact.end_balance == Decimal("1e30")


def test_volatility_over_recent_hours(clock: ManualClock) -> None:
    """volatility() measures the recorded changes in the window against its mean balance."""
    history = BalanceHistory(clock=clock)
    for amount in ["100", "110", "99"]:
        history.record(usdt(amount, clock))
        clock.advance(60)
    assert history.volatility("USDT", hours=1) == pytest.approx((2 * 10.5**2) ** 0.5 / 103)
    assert history.volatility("BTC") is None
    history.record(usdt("1e40", clock))  # exact-path value
    assert history.volatility("USDT", hours=1) is not None


# -- persistence ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_flush_load_and_duplicate_ledger_id_after_restart(
    clock: ManualClock, tmp_path: Path
) -> None:
    """Flushed entries reload after a restart, with their ledger ids still refused."""
    path = str(tmp_path / "history.sqlite3")
    history = BalanceHistory(clock=clock, store=HistoryStore(path))
    history.record(usdt("10", clock), ledger_id="L1")
    clock.advance(1)
    history.record(usdt("12.5", clock), ledger_id="L2")
    assert history.get_statistics()["pending_writes"] == 2
    assert await history.flush() == 2
    assert await history.flush() == 0
    statistics = history.get_statistics()
    assert (statistics["written"], statistics["pending_writes"]) == (2, 0)
    await history.close()

    again = BalanceHistory(clock=clock, store=HistoryStore(path))
    assert await again.load() == 2
    assert [(e.balance, e.change) for e in again.get_asset_history("USDT")] == [
        (Decimal(10), Decimal(10)),
        (Decimal("12.5"), Decimal("2.5")),
    ]
    assert again.record(usdt("99", clock), ledger_id="L1") is None
    assert again.record(usdt("12.5", clock)) is None  # same as the reloaded last value
    await again.close()


@pytest.mark.asyncio
async def test_load_keeps_assets_already_in_memory(clock: ManualClock) -> None:
    """Stored rows do not overwrite an asset recorded before load()."""
    store = FakeStore()
    store.rows = [
        StoredRow("USDT", clock.time() - 10, Decimal(1), Source.REST, "L9"),
        StoredRow("BTC", clock.time() - 10, Decimal(2), Source.REST),
    ]
    history = BalanceHistory(clock=clock, store=store)
    history.record(usdt("50", clock))
    assert await history.load() == 1
    assert [e.balance for e in history.get_asset_history("USDT")] == [50]
    assert [e.balance for e in history.get_asset_history("BTC")] == [2]
    assert history.record(usdt("51", clock), ledger_id="L9") is None


@pytest.mark.asyncio
async def test_load_skips_rows_beyond_retention(clock: ManualClock) -> None:
    """Only rows within the retention period are reloaded."""
    store = FakeStore()
    store.rows = [
        StoredRow("USDT", clock.time() - 7200, Decimal(1), Source.REST),
        StoredRow("USDT", clock.time() - 60, Decimal(2), Source.REST),
    ]
    history = BalanceHistory(clock=clock, store=store, retention_hours=1)
    assert await history.load() == 1


@pytest.mark.asyncio
async def test_load_asks_the_store_for_at_most_max_entries_per_asset(
    clock: ManualClock, tmp_path: Path
) -> None:
    """The reload is capped in the store's query: max_entries newest rows per asset, no more."""
    store = FakeStore()
    store.rows = [
        StoredRow(asset, clock.time() - 100 + n, Decimal(n), Source.REST)
        for n in range(10)
        for asset in ("BTC", "USDT")
    ]
    history = BalanceHistory(clock=clock, store=store, max_entries=3)
    assert await history.load() == 6
    assert store.limits == [3]
    assert [e.balance for e in history.get_asset_history("BTC")] == [7, 8, 9]

    path = str(tmp_path / "history.sqlite3")
    async with HistoryStore(path) as sqlite_store:
        await sqlite_store.append_many(store.rows)
    again = BalanceHistory(clock=clock, store=HistoryStore(path), max_entries=3)
    assert await again.load() == 6
    assert [e.balance for e in again.get_asset_history("USDT")] == [7, 8, 9]
    await again.close()


@pytest.mark.asyncio
async def test_prune_applies_retention_in_memory_then_in_the_store(clock: ManualClock) -> None:
    """prune() drops old entries from memory now and from the store at the next flush."""
    store = FakeStore()
    history = BalanceHistory(clock=clock, store=store, retention_hours=1)
    history.record(usdt("1", clock))
    clock.advance(3000)
    history.record(usdt("2", clock))
    await history.flush()
    clock.advance(1000)  # the first entry is now 4000 s old
    assert history.prune() == 1
    assert [e.balance for e in history.get_asset_history("USDT")] == [2]
    assert len(store.rows) == 2
    await history.flush()
    assert [row.balance for row in store.rows] == [Decimal(2)]
    assert history.get_statistics()["pruned"] == 1


@pytest.mark.asyncio
async def test_read_only_store_keeps_history_serving_from_memory(
    clock: ManualClock, tmp_path: Path
) -> None:
    """A store that refuses writes leaves rows queued and records the error; reads still work."""
    path = tmp_path / "h.db"
    async with HistoryStore(str(path)):
        pass  # create the file
    history = BalanceHistory(clock=clock, store=HistoryStore(f"file:{path}?mode=ro"))
    history.record(usdt("7", clock))
    assert await history.flush() == 0
    statistics = history.get_statistics()
    assert statistics["pending_writes"] == 1
    assert statistics["write_errors"] == 1
    assert statistics["last_error"] is not None
    assert "readonly" in statistics["last_error"]
    assert isinstance(history.persistence_error, PersistenceError)
    assert [e.balance for e in history.get_asset_history("USDT")] == [7]
    await history.close()


@pytest.mark.asyncio
async def test_failures_are_logged_once_and_recovery_clears_the_error(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A failure streak logs one warning; the next successful flush writes everything queued."""
    store = FakeStore()
    store.fail = PersistenceError("disk full", path="/data/h.db")
    history = BalanceHistory(clock=clock, store=store)
    with caplog.at_level(logging.INFO, logger="balance_manager.service.history"):
        history.record(usdt("1", clock))
        assert await history.flush() == 0
        history.record(usdt("2", clock))
        assert await history.flush() == 0
        assert history.last_error == "disk full (/data/h.db)"
        store.fail = None
        assert await history.flush() == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "recovered" in caplog.records[-1].getMessage()
    assert history.get_statistics()["last_error"] is None
    assert [row.balance for row in store.rows] == [Decimal(1), Decimal(2)]


@pytest.mark.asyncio
async def test_pending_queue_is_bounded_and_counts_drops(clock: ManualClock) -> None:
    """With the store down, only the newest max_pending rows are kept."""
    store = FakeStore()
    store.fail = PersistenceError("down")
    history = BalanceHistory(clock=clock, store=store, max_pending=3)
    for amount in range(1, 6):
        history.record(usdt(str(amount), clock))
    await history.flush()
    history.record(usdt("6", clock))
    statistics = history.get_statistics()
    assert (statistics["pending_writes"], statistics["dropped"]) == (3, 3)
    store.fail = None
    await history.flush()
    assert [row.balance for row in store.rows] == [Decimal(4), Decimal(5), Decimal(6)]


@pytest.mark.asyncio
async def test_dropped_rows_are_counted_once_across_reads_flushes_and_close(
    clock: ManualClock,
) -> None:
    """The bounded queue's drops are counted exactly, however often statistics are read."""
    store = FakeStore()
    store.fail = PersistenceError("down")
    history = BalanceHistory(clock=clock, store=store, max_pending=2)
    for amount in range(1, 4):
        history.record(usdt(str(amount), clock))
    assert history.get_statistics()["dropped"] == 1
    assert history.get_statistics()["dropped"] == 1  # reading again counts nothing twice
    await history.flush()  # fails: the rows stay queued
    for amount in range(4, 6):
        history.record(usdt(str(amount), clock))
    statistics = history.get_statistics()
    assert (statistics["pending_writes"], statistics["dropped"]) == (2, 3)
    store.fail = None
    await history.close()
    history.record(usdt("6", clock))  # recorded in memory only, never queued
    statistics = history.get_statistics()
    assert (statistics["pending_writes"], statistics["dropped"]) == (0, 3)
    assert [row.balance for row in store.rows] == [Decimal(4), Decimal(5)]


@pytest.mark.asyncio
async def test_close_flushes_and_is_idempotent(clock: ManualClock) -> None:
    """close() writes what is queued, closes the store, and can be called again."""
    store = FakeStore()
    history = BalanceHistory(clock=clock, store=store)
    history.record(usdt("3", clock))
    await history.close()
    await history.close()
    assert store.closed
    assert len(store.rows) == 1
    assert history.record(usdt("4", clock)) is not None  # memory still serves
    assert history.get_statistics()["pending_writes"] == 0


# -- maintenance ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_maintenance_flushes_every_interval_and_once_more_on_stop(
    clock: ManualClock,
) -> None:
    """run_maintenance writes queued rows each flush_interval and at stop."""
    store = FakeStore()
    history = BalanceHistory(clock=clock, store=store, flush_interval=2.0)
    stop = asyncio.Event()
    task = asyncio.create_task(history.run_maintenance(stop))
    history.record(usdt("1", clock))
    await clock.run_for(1.0)
    assert store.rows == []  # not yet due
    await clock.run_for(1.0)
    assert len(store.rows) == 1
    history.record(usdt("2", clock))
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert len(store.rows) == 2


@pytest.mark.asyncio
async def test_maintenance_prunes_every_prune_interval(clock: ManualClock) -> None:
    """Entries past retention leave memory at the next hourly prune."""
    history = BalanceHistory(
        clock=clock, store=FakeStore(), retention_hours=0.5, flush_interval=60.0
    )
    history.record(usdt("1", clock))
    stop = asyncio.Event()
    task = asyncio.create_task(history.run_maintenance(stop))
    await clock.run_for(3540.0)
    assert len(history.get_asset_history("USDT")) == 1  # no prune before the hour
    await clock.run_for(60.0)
    assert history.get_asset_history("USDT") == []
    stop.set()
    await asyncio.wait_for(task, timeout=5)


# -- configuration ------------------------------------------------------------------------------


def test_from_config_builds_a_store_only_when_a_path_is_set(
    clock: ManualClock, tmp_path: Path
) -> None:
    """history_db_path=None means memory only; a path gives a HistoryStore on it."""
    memory_only = BalanceHistory.from_config(
        BalanceManagerConfig(history_db_path=None, history_max_entries=5), clock=clock
    )
    assert memory_only.store is None
    for amount in range(10):
        memory_only.record(usdt(str(amount), clock))
    assert len(memory_only.get_asset_history("USDT")) == 5
    path = str(tmp_path / "h.db")
    persistent = BalanceHistory.from_config(BalanceManagerConfig(history_db_path=path), clock=clock)
    assert persistent.store is not None
    assert persistent.store.path == path
    assert persistent.get_statistics()["persistent"] is True


def test_from_config_history_url_picks_the_backend(clock: ManualClock, tmp_path: Path) -> None:
    """history_url replaces history_db_path: sqlite: gives SQLite, postgresql:// PostgreSQL."""
    from balance_manager.storage.postgres import PostgresHistoryStore
    from balance_manager.storage.sqlite import SQLiteHistoryStore

    path = tmp_path / "{account}" / "h.db"
    sqlite = BalanceHistory.from_config(
        BalanceManagerConfig(history_db_path=None, history_url=f"sqlite:{path}"),
        clock=clock,
        account="abcd",
    )
    assert isinstance(sqlite.store, SQLiteHistoryStore)
    assert sqlite.store.path == str(tmp_path / "abcd" / "h.db")
    url = "postgresql://bot:hunter2@db.invalid:5432/history"
    postgres = BalanceHistory.from_config(
        BalanceManagerConfig(history_url=url), clock=clock, account="abcd"
    )
    assert isinstance(postgres.store, PostgresHistoryStore)
    assert postgres.store.account == "abcd"
    assert "hunter2" not in postgres.store.path
    assert "hunter2" not in repr(postgres)
