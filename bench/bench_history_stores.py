"""Benchmark of the history stores: SQLite and PostgreSQL side by side, in one run.

Run from the repository root (about 2 minutes with 1,000,000 rows)::

    python bench/bench_history_stores.py            # 1,000,000 rows
    python bench/bench_history_stores.py --quick    # 100,000 rows

PostgreSQL is the machine's server at 127.0.0.1:5432 (database ``test``) when it
answers, else a throwaway one from the ``pgserver`` package (see
``balance_manager.testing_postgres``); the benchmark works in a schema of its
own, dropped at the end. SQLite is a file in a temporary directory (WAL,
``synchronous=FULL``: every commit is fsync'd). Prints, for each backend:

* rows/s appended one at a time (each row its own transaction, as a store
  written after every update would be) and in batches of 1,000 (one
  transaction each, as ``BalanceHistory.flush`` writes), median of alternating
  repeats with their spread;
* the time to fill the table with the main data set (10 assets, rows 1 s apart);
* range reads of one asset over that table: a 1-hour window and the whole asset;
* the reload on start (``BalanceHistory.load``) of a history keeping
  ``history_max_entries`` = 30,000 per asset (300,000 of the 1,000,000 rows):
  time and Python-heap peak (``tracemalloc``, which does not see libpq's own
  buffers), next to the same reload reading every row within retention and
  dropping the older ones in memory, as it did before it was capped in the query.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from balance_manager.core.models import Balance, Source
from balance_manager.service.history import BalanceHistory
from balance_manager.storage.base import HistoryStore, StoredRow
from balance_manager.storage.postgres import PostgresHistoryStore
from balance_manager.storage.sqlite import SQLiteHistoryStore
from balance_manager.testing import ManualClock
from balance_manager.testing_postgres import postgres_url, scratch_schema
from common import alternate_async, fmt_bytes, fmt_seconds, print_header, report, stats_of

__all__ = ["main"]

T0 = 1_700_000_000.0
ASSETS = 10
KEEP_PER_ASSET_SHARE = 0.3  # history_max_entries = 30 % of each asset's rows
SINGLE_ROWS = 200
BATCH = 1_000
BATCHES = 20
FILL_BATCH = 20_000
REPEATS = 5


def rows_for(asset: str, start: int, count: int, *, ledger: bool = True) -> list[StoredRow]:
    """``count`` rows of ``asset``, 1 s apart from ``T0 + start``, 8-decimal amounts."""
    return [
        StoredRow(
            asset,
            T0 + n,
            Decimal(1_000_000 + n * 7919 % 100_000_000).scaleb(-8),
            Source.WEBSOCKET,
            f"L{asset}-{n}" if ledger else None,
        )
        for n in range(start, start + count)
    ]


class Uncapped:
    """A store as the reload used it before the cap: every row within retention is read."""

    def __init__(self, store: HistoryStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def load(
        self, since: float = float("-inf"), *, limit_per_asset: int | None = None
    ) -> list[StoredRow]:
        """Every row since ``since``; the cap is ignored, as the old reload had none."""
        return await self._store.load(since)


class Backend:
    """One store, its name, and counters that keep each repeat's ledger ids fresh."""

    def __init__(self, name: str, make: Callable[[str], HistoryStore]) -> None:
        self.name = name
        self.make = make
        self.store = make("main")
        self.side = make("side")
        self.offset = 0

    def fresh(self, count: int) -> int:
        """A start index no earlier repeat used."""
        start = self.offset
        self.offset += count
        return start


async def single_appends(backend: Backend) -> float:
    """rows/s, one transaction per row."""
    rows = rows_for("ONE", backend.fresh(SINGLE_ROWS), SINGLE_ROWS)
    started = time.perf_counter()
    for row in rows:
        await backend.side.append(row)
    return SINGLE_ROWS / (time.perf_counter() - started)


async def batched_appends(backend: Backend) -> float:
    """rows/s, batches of BATCH rows plus the latest value, one transaction each."""
    start = backend.fresh(BATCH * BATCHES)
    batches = [rows_for("MANY", start + b * BATCH, BATCH) for b in range(BATCHES)]
    started = time.perf_counter()
    for batch in batches:
        last = batch[-1]
        await backend.side.write(
            batch, [Balance(last.asset, last.balance, received_at=last.timestamp)]
        )
    return BATCH * BATCHES / (time.perf_counter() - started)


async def fill(backend: Backend, per_asset: int) -> float:
    """Write the main data set (ASSETS x per_asset rows); seconds taken."""
    started = time.perf_counter()
    for offset in range(0, per_asset, FILL_BATCH // ASSETS):
        count = min(FILL_BATCH // ASSETS, per_asset - offset)
        batch = [row for a in range(ASSETS) for row in rows_for(f"A{a:02d}", offset, count)]
        await backend.store.append_many(batch)
    return time.perf_counter() - started


async def timed(work: Callable[[], Awaitable[object]]) -> float:
    """Seconds ``work`` takes."""
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def peak_of(work: Callable[[], Awaitable[object]]) -> tuple[float, int]:
    """Seconds and tracemalloc peak bytes of ``work`` (timing slowed by tracing)."""
    gc.collect()
    tracemalloc.start()
    try:
        started = time.perf_counter()
        await work()
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return elapsed, peak


async def run(url: str, schema: str, directory: str, per_asset: int) -> None:
    """Every figure, both backends."""
    path = str(Path(directory) / "history.sqlite3")
    backends = [
        Backend("SQLite", lambda account: SQLiteHistoryStore(path, account=account)),
        Backend(
            "PostgreSQL",
            lambda account: PostgresHistoryStore(url, account=account, schema=schema),
        ),
    ]
    for backend in backends:
        await backend.store.open()
        await backend.side.open()
    total = ASSETS * per_asset
    keep = int(per_asset * KEEP_PER_ASSET_SHARE)
    try:
        print("\n## appends")
        for label, case in (
            ("one row per transaction", single_appends),
            (f"batches of {BATCH:,}", batched_appends),
        ):
            samples = await alternate_async(
                {b.name: (lambda b=b, case=case: case(b)) for b in backends}, REPEATS
            )
            for backend in backends:
                stats = stats_of(samples[backend.name])
                report(
                    f"{backend.name:<10} append, {label}",
                    stats.describe(lambda v: f"{v:,.0f} rows/s"),
                )

        print(f"\n## the table: {total:,} rows ({ASSETS} assets x {per_asset:,}, 1 s apart)")
        for backend in backends:
            seconds = await fill(backend, per_asset)
            report(
                f"{backend.name:<10} fill, batches of {FILL_BATCH:,}",
                f"{fmt_seconds(seconds)} ({total / seconds:,.0f} rows/s)",
            )
        # Planner statistics, as autovacuum would gather them on a table this size.
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(sql.SQL("ANALYZE {}.history").format(sql.Identifier(schema)))

        print(f"\n## range reads of one asset over {total:,} rows")
        middle = T0 + per_asset // 2
        for label, since, until, expected in (
            ("1 h window", middle, middle + 3600, min(3600, per_asset)),
            ("whole asset", None, None, per_asset),
        ):

            def reader(
                backend: Backend,
                since: float | None = since,
                until: float | None = until,
                expected: int = expected,
            ) -> Callable[[], Awaitable[float]]:
                async def read() -> float:
                    started = time.perf_counter()
                    rows = await backend.store.load_asset("A03", since=since, until=until)
                    assert len(rows) == expected, (backend.name, len(rows))
                    return time.perf_counter() - started

                return read

            samples = await alternate_async({b.name: reader(b) for b in backends}, REPEATS)
            for backend in backends:
                report(
                    f"{backend.name:<10} range read, {label} ({expected:,} rows)",
                    stats_of(samples[backend.name]).describe(fmt_seconds),
                )

        print(
            f"\n## reload on start: history_max_entries={keep:,} per asset "
            f"(keeps {keep * ASSETS:,} of {total:,} rows)"
        )
        now = T0 + per_asset
        for backend in backends:

            def reload(capped: bool, backend: Backend = backend) -> Callable[[], Awaitable[None]]:
                async def run() -> None:
                    store = backend.make("main")
                    history = BalanceHistory(
                        clock=ManualClock(now),
                        store=store if capped else Uncapped(store),  # type: ignore[arg-type]
                        max_entries=keep,
                        retention_hours=24 * 365,
                    )
                    await history.load()
                    kept = history.get_statistics()["entries"]
                    assert kept == keep * ASSETS, (backend.name, kept)
                    await history.close()

                return run

            samples = await alternate_async(
                {
                    "capped": lambda: timed(reload(capped=True)),
                    "before": lambda: timed(reload(capped=False)),
                },
                3,
            )
            _, capped_peak = await peak_of(reload(capped=True))
            _, before_peak = await peak_of(reload(capped=False))
            report(
                f"{backend.name:<10} reload, capped in the query ({keep * ASSETS:,} rows read)",
                f"{stats_of(samples['capped']).describe(fmt_seconds)}, "
                f"peak {fmt_bytes(capped_peak)}",
            )
            report(
                f"{backend.name:<10} reload as before, every row read ({total:,})",
                f"{stats_of(samples['before']).describe(fmt_seconds)}, "
                f"peak {fmt_bytes(before_peak)}",
            )
    finally:
        for backend in backends:
            await backend.store.close()
            await backend.side.close()


def main() -> None:
    """Parse the options, find a PostgreSQL, run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    args = parser.parse_args()
    per_asset = 10_000 if args.quick else 100_000
    print_header("history stores: SQLite and PostgreSQL side by side")
    started = time.perf_counter()
    with (
        postgres_url() as url,
        scratch_schema(url, prefix="bm_bench") as schema,
        tempfile.TemporaryDirectory() as directory,
    ):
        asyncio.run(run(url, schema, directory, per_asset))
    print(f"(total {time.perf_counter() - started:.0f} s)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
