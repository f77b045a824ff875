"""Benchmark the balance history: append cost, memory per entry, trends, flush rate.

Run from the repository root::

    python bench/bench_history.py

Prints, each as the median of several runs:

* ``record`` cost in ns per call, for realistic streamed balances (30 assets,
  8-10 decimals), without and with ledger ids, and with a store attached;
* bytes per history entry, measured with ``tracemalloc`` over 100,000 entries
  across 30 assets (everything the history allocates, not just the columns);
* trend analysis time on 10,000 points, through ``analyze_balance_trend`` and
  through the pure ``analyze_trend`` on ``Decimal`` input;
* flush throughput in rows/s to a temporary SQLite file (WAL, synchronous=FULL),
  in one large batch and in batches of 100 (one fsync'd commit each).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from balance_manager.core.models import Balance, Source
from balance_manager.core.trends import analyze_trend
from balance_manager.service.history import BalanceHistory
from balance_manager.storage.sqlite import HistoryStore
from balance_manager.testing import ManualClock

__all__ = ["main"]

ASSETS = 30
ENTRIES = 100_000
RUNS = 5
T0 = 1_700_000_000.0


def make_balances(count: int, *, assets: int = ASSETS, seed: int = 1) -> list[Balance]:
    """``count`` streamed balances: a random walk per asset at 8-10 decimals, 0.1 s apart."""
    rng = random.Random(seed)
    names = [f"A{i:02d}" for i in range(assets)]
    decimals = {name: 8 + i % 3 for i, name in enumerate(names)}
    level = {name: Decimal(rng.randint(10**3, 10**7)) for name in names}
    out = []
    for i in range(count):
        name = names[i % assets]
        places = decimals[name]
        step = Decimal(rng.randint(-(10**places), 10**places)).scaleb(-places)
        level[name] = abs(level[name] + step)
        out.append(Balance(name, level[name], source=Source.WEBSOCKET, received_at=T0 + i * 0.1))
    return out


def median_of(runs: int, measure: Callable[[], float]) -> float:
    """Median of ``runs`` calls of ``measure``."""
    return statistics.median(measure() for _ in range(runs))


def bench_record(balances: list[Balance]) -> None:
    """ns per record() call: memory only, with ledger ids, and queueing for a store."""
    ledger_ids = [f"L{i:07d}-ABCDE-FGHIJK" for i in range(len(balances))]

    def plain() -> float:
        history = BalanceHistory(clock=ManualClock(T0))
        record = history.record
        start = time.perf_counter_ns()
        for balance in balances:
            record(balance)
        return (time.perf_counter_ns() - start) / len(balances)

    def with_ids() -> float:
        history = BalanceHistory(clock=ManualClock(T0))
        record = history.record
        start = time.perf_counter_ns()
        for balance, ledger_id in zip(balances, ledger_ids, strict=True):
            record(balance, ledger_id=ledger_id)
        return (time.perf_counter_ns() - start) / len(balances)

    def with_store() -> float:
        history = BalanceHistory(clock=ManualClock(T0), store=HistoryStore(":memory:"))
        record = history.record
        start = time.perf_counter_ns()
        for balance, ledger_id in zip(balances, ledger_ids, strict=True):
            record(balance, ledger_id=ledger_id)
        return (time.perf_counter_ns() - start) / len(balances)

    print(f"record, memory only:              {median_of(RUNS, plain):8.0f} ns/op")
    print(f"record, with ledger ids:          {median_of(RUNS, with_ids):8.0f} ns/op")
    print(f"record, ledger ids + store queue: {median_of(RUNS, with_store):8.0f} ns/op")


def bench_memory(balances: list[Balance]) -> None:
    """Bytes per entry that the history allocates, by tracemalloc."""

    def traced(max_entries: int) -> tuple[float, float, int]:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            history = BalanceHistory(clock=ManualClock(T0), max_entries=max_entries)
            for balance in balances:
                history.record(balance)
            used = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        entries = history.get_statistics()["entries"]
        return used / entries, history.get_statistics()["bytes_in_memory"] / entries, entries

    samples = [traced(10_000) for _ in range(RUNS)]
    per_entry = statistics.median(sample[0] for sample in samples)
    columns = statistics.median(sample[1] for sample in samples)
    entries = samples[0][2]
    print(
        f"memory, {entries} entries / {ASSETS} assets: {per_entry:6.1f} B/entry "
        f"(tracemalloc; column data alone {columns:.1f} B/entry)"
    )
    bounded = [traced(1_000) for _ in range(RUNS)]
    print(
        f"memory, bounded at 1000/asset ({bounded[0][2]} kept of {len(balances)}): "
        f"{statistics.median(s[0] for s in bounded):6.1f} B/entry (incl. compaction slack)"
    )

    ledger_ids = [f"L{i:07d}-ABCDE-FGHIJK" for i in range(len(balances))]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        history = BalanceHistory(clock=ManualClock(T0))
        for balance, ledger_id in zip(balances, ledger_ids, strict=True):
            history.record(balance, ledger_id=ledger_id)
        with_ids = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    print(
        f"memory, same with ledger ids: {with_ids / 1e6:.2f} MB total "
        f"(the last 10,000 ids are kept: a fixed ~{(with_ids - per_entry * entries) / 1e6:.2f} MB)"
    )


async def bench_trend() -> None:
    """Time to analyse a 10,000-point window."""
    clock = ManualClock(T0)
    history = BalanceHistory(clock=clock)
    rng = random.Random(3)
    level = Decimal("25000.12345678")
    for _ in range(10_000):
        level += Decimal(rng.randint(-(10**8), 10**8)).scaleb(-8)
        history.record(Balance("USDT", level, received_at=clock.time()))
        clock.advance(5)

    async def through_history() -> float:
        start = time.perf_counter()
        trend = await history.analyze_balance_trend("USDT", analysis_hours=24)
        elapsed = time.perf_counter() - start
        assert trend is not None
        assert trend.points == 10_000
        return elapsed * 1e3

    timings = [await through_history() for _ in range(20)]
    timeline = history._timeline.get("USDT")  # the bench may look inside
    assert timeline is not None
    stamps, balances = timeline.series()
    now = clock.time()

    def pure() -> float:
        start = time.perf_counter()
        analyze_trend("USDT", stamps, balances, analysis_hours=24, now=now)
        return (time.perf_counter() - start) * 1e3

    print(f"trend, 10,000 points, analyze_balance_trend: {statistics.median(timings):6.2f} ms")
    print(f"trend, 10,000 points, analyze_trend(Decimal): {median_of(20, pure):6.2f} ms")


async def bench_flush(balances: list[Balance]) -> None:
    """Rows per second written by flush() to a temporary SQLite file."""
    with tempfile.TemporaryDirectory() as directory:
        for label, batch in (("one batch of 50,000", 50_000), ("batches of 100", 100)):
            rates = []
            for run in range(3):
                path = str(Path(directory) / f"history-{batch}-{run}.sqlite3")
                history = BalanceHistory(clock=ManualClock(T0), store=HistoryStore(path))
                rows = balances[:50_000] if batch > 100 else balances[:5_000]
                await history.flush()  # opens the store outside the timing
                written = 0
                start = time.perf_counter()
                for offset in range(0, len(rows), batch):
                    for balance in rows[offset : offset + batch]:
                        history.record(balance)
                    written += await history.flush()
                rates.append(written / (time.perf_counter() - start))
                await history.close()
            print(f"flush, {label}: {statistics.median(rates):10,.0f} rows/s")


def main() -> None:
    """Run every benchmark and print the figures."""
    print(f"$ python bench/bench_history.py   (Python {sys.version.split()[0]})")
    started = time.perf_counter()
    balances = make_balances(ENTRIES)
    bench_record(balances)
    bench_memory(balances)
    asyncio.run(bench_trend())
    asyncio.run(bench_flush(balances))
    print(f"(total {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
