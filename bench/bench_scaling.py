"""Scaling benchmark: per-operation costs as accounts and history grow (issue 13).

Run from the repository root (about 60 s; ``--full`` adds the 1,000,000-entry cases of
the side table and the reload, a few minutes more)::

    python bench/bench_scaling.py
    python bench/bench_scaling.py --full
    python bench/bench_scaling.py --history-sizes 1000,10000 --timed 200   # an older build

Each row is one operation measured at growing sizes, in the same run; the last
column is the cost at the largest size over the cost at the smallest, so
super-linear growth shows at a glance (flat is about 1x; noise on this shared
machine moves single figures by up to ~1.5x). The rows are the regression
benchmarks of the super-linear cases issue 13 found:

* **ingest per update at 10 / 100 / 1,000 / 10,000 assets**: the manager's sink
  (``Balance``, store, cache, validation, history, change detection, an event) fed
  ``StreamLedgerUpdate`` events round-robin over the assets, with the default
  ``cache_max_size`` (1,000): beyond it every write used to evict (+1.3 µs);
  the cache's evictions are printed;
* **history add at 1k / 100k / 1M entries** (``history_max_entries`` = the size,
  the timeline full, so every add drops the oldest): values that fit the int64
  column; values kept in the exact side table (``AssetTimeline._drop`` used to scan
  the whole side table per drop: 81 µs at 10k); values needing a scale the column
  cannot take (``_try_rescale`` used to scan the column and fail on every add:
  418 µs at 10k). The side-table rows stop at 100k unless ``--full``;
* **a 10,000-asset snapshot**: the one loop step that decodes and applies it (target:
  none longer than 10 ms), beside what bounds any split of it: the frame's decode alone
  (bare msgspec and ``decode_message``) and the session's share (``KrakenSession.feed``,
  decode included); and the whole manager's bytes per tracked asset at 10,000
  assets (client session, store, cache, history; ``tracemalloc``; target <= 1,000 B);
* **reload on start**: an SQLite file of 1k / 100k (/ 1M with ``--full``) rows over 10
  assets, reloaded with ``history_max_entries`` at 30 % of them (the newest rows of
  each asset are read, never the whole table): seconds and rows per second.

Targets are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

import msgspec

from balance_manager.core.models import Source
from balance_manager.core.sources import StreamLedgerUpdate
from balance_manager.core.timeline import AssetTimeline
from balance_manager.kraken.protocol import ws_messages as wsm
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.service.history import BalanceHistory
from balance_manager.service.manager import BalanceManager
from balance_manager.storage.base import StoredRow
from balance_manager.storage.sqlite import HistoryStore
from balance_manager.testing import ManualClock
from common import (
    BENCH_SECRET,
    bench_config,
    fmt_bytes,
    fmt_seconds,
    print_header,
    report,
    stats_of,
    streaming_manager,
)

__all__ = ["main"]

T0 = 1_700_000_000.0
#: Largest over smallest size at or below which a row reads as flat.
FLAT = 2.0


def print_row(label: str, sizes: Sequence[str], costs: Sequence[float]) -> None:
    """One scaling row: the cost at each size and the largest over the smallest."""
    cells = "  ".join(
        f"{size}: {fmt_seconds(cost):>10}" for size, cost in zip(sizes, costs, strict=True)
    )
    growth = costs[-1] / costs[0]
    report(
        f"  {label:<44} {cells}",
        f"{growth:.2f}x largest/smallest",
        target=f"<= {FLAT:g}x (flat)",
        met=growth <= FLAT,
    )


# ---------------------------------------------------------------------------
# Ingest per update, by number of assets
# ---------------------------------------------------------------------------


def ledger_events(assets: int, count: int, round_: int) -> list[StreamLedgerUpdate]:
    """``count`` distinct updates round-robin over ``assets`` assets (each +1 unit)."""
    events = []
    for i in range(count):
        level = round_ * count + i
        events.append(
            StreamLedgerUpdate(
                f"A{i % assets:05d}",
                Decimal(level + 1).scaleb(-4),
                Decimal(0),
                Decimal(1).scaleb(-4),
                Decimal(0),
                f"L{round_}-{i}",
                "R",
                "deposit",
                T0 + level * 0.001,
                T0 + level * 0.001,
            )
        )
    return events


async def _noop(payload: object) -> None:
    del payload


async def ingest_cost(assets: int, updates: int) -> tuple[float, int]:
    """Seconds per update through the manager's sink, and the cache's evictions."""
    clock = ManualClock()
    config = bench_config()
    rest = KrakenRestClient(
        api_key="bench-key",
        api_secret=BENCH_SECRET,
        base_url="http://127.0.0.1:9",
        config=config,
        clock=clock,
    )
    manager = BalanceManager(rest_client=rest, config=config, clock=clock)
    manager.register_callback("balance_update", _noop)
    sink = manager._on_stream_event  # the stream client's sink (no socket here)
    for event in ledger_events(assets, max(assets, 1000), 0):  # every asset held once
        sink(event)
    await manager.drain_callbacks()
    events = ledger_events(assets, updates, 1)
    gc.collect()
    start = time.perf_counter()
    for event in events:
        sink(event)
    await manager.drain_callbacks()
    elapsed = time.perf_counter() - start
    evictions = manager.cache.get_statistics()["evictions"]
    await manager.close()
    return elapsed / updates, evictions


async def bench_assets(repeats: int) -> None:
    """The manager's per-update cost at 10, 100, 1,000 and 10,000 assets."""
    sizes = (10, 100, 1_000, 10_000)
    costs = []
    evictions = []
    for assets in sizes:
        samples = []
        for _ in range(repeats):
            cost, evicted = await ingest_cost(assets, 30_000)
            samples.append(cost)
        costs.append(stats_of(samples).median)
        evictions.append(evicted)
    print_row("ingest per update (manager sink, every rule on)", [f"{s:,}" for s in sizes], costs)
    print(
        f"    cache evictions during the timed updates: {dict(zip(sizes, evictions, strict=True))}"
    )


# ---------------------------------------------------------------------------
# 10,000 assets: the longest loop step of a snapshot, bytes per tracked asset
# ---------------------------------------------------------------------------

WIDE = 10_000
SNAPSHOT_STEP_TARGET = 0.010  # seconds: no single loop step longer (issue 13)
BYTES_PER_ASSET_TARGET = 1_000.0


def wide_snapshot(assets: int, bump: int) -> bytes:
    """A ``balances`` snapshot of ``assets`` assets (``W00000``...), each moved by ``bump``."""
    items = []
    for number in range(assets):
        value = Decimal(10**8 + number * 7 + bump).scaleb(-8)
        wallet = wsm.WalletBalance(type="spot", id="main", balance=value)
        items.append(
            wsm.AssetBalance(
                asset=f"W{number:05d}", asset_class="currency", balance=value, wallets=(wallet,)
            )
        )
    return wsm.encode_balances_snapshot(items, 1)


async def bench_wide(repeats: int) -> None:
    """A 10,000-asset snapshot's loop step, and the whole manager's bytes per asset.

    The manager runs on a manual clock: a set-up slowed by ``tracemalloc`` must not read as
    a silence of the stream (which would start a resync).
    """
    steps = []
    parts: dict[str, list[float]] = {"bare": [], "decode": [], "session": []}
    bare_decode = msgspec.json.Decoder(float_hook=Decimal).decode
    for round_ in range(repeats):
        manager, client = await streaming_manager(
            snapshot=wide_snapshot(WIDE, 0), clock=ManualClock()
        )
        frame = wide_snapshot(WIDE, round_ + 1)  # every asset changes
        # What no split of the step can go below: the frame's decode alone (msgspec
        # holds the GIL: a worker thread would block the loop as long), bare and ours.
        for name, decode in (("bare", bare_decode), ("decode", wsm.decode_message)):
            gc.collect()
            start = time.perf_counter()
            decode(frame)
            parts[name].append(time.perf_counter() - start)
        gc.collect()
        start = time.perf_counter()
        client._receive(frame)  # one read-loop step: decode, session, manager, all in one go
        steps.append(time.perf_counter() - start)
        await manager.close()
        # The session's share alone (decode included), on a twin that has no manager.
        twin_manager, twin = await streaming_manager(
            snapshot=wide_snapshot(WIDE, 0), clock=ManualClock()
        )
        gc.collect()
        start = time.perf_counter()
        twin.session.feed(frame, twin.clock.time())
        parts["session"].append(time.perf_counter() - start)
        await twin_manager.close()
    step = stats_of(steps)
    report(
        f"{WIDE:,}-asset snapshot, the loop step that applies it",
        step.describe(fmt_seconds),
        target=f"no single loop step > {fmt_seconds(SNAPSHOT_STEP_TARGET)}",
        met=step.median <= SNAPSHOT_STEP_TARGET,
    )
    for name, label in (
        ("bare", "its frame's bare decode alone (msgspec, numbers to Decimal)"),
        ("decode", "its frame's decode_message alone"),
        ("session", "its frame through KrakenSession.feed (decode included)"),
    ):
        report(f"  {label}", stats_of(parts[name]).describe(fmt_seconds))
    sizes = []
    for _ in range(repeats):
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        manager, client = await streaming_manager(
            snapshot=wide_snapshot(WIDE, 0), clock=ManualClock()
        )
        client._receive(wide_snapshot(WIDE, 1))  # a second value (and history entry) each
        gc.collect()
        sizes.append((tracemalloc.get_traced_memory()[0] - before) / WIDE)
        tracemalloc.stop()
        await manager.close()
    size = stats_of(sizes)
    report(
        f"whole manager (client, store, cache, history), bytes per tracked asset at {WIDE:,}",
        size.describe(fmt_bytes),
        target=f"<= {BYTES_PER_ASSET_TARGET:,.0f} B",
        met=size.median <= BYTES_PER_ASSET_TARGET,
    )


# ---------------------------------------------------------------------------
# History add, by number of entries
# ---------------------------------------------------------------------------


def add_cost(
    size: int, values: Callable[[int], Decimal], first: Decimal | None, timed: int
) -> float:
    """Seconds per ``AssetTimeline.add`` into a full timeline of ``size`` entries."""
    timeline = AssetTimeline("BENCH", max_entries=size)
    add = timeline.add
    websocket = Source.WEBSOCKET
    if first is not None:
        add(T0, first, websocket)
    for i in range(size):
        add(T0 + i, values(i), websocket)
    timed = min(size, timed)
    gc.collect()
    start = time.perf_counter()
    for i in range(size, size + timed):
        add(T0 + i, values(i), websocket)
    return (time.perf_counter() - start) / timed


def bench_history_add(
    repeats: int, full: bool, timed: int, only: tuple[int, ...] | None = None
) -> None:
    """``AssetTimeline.add`` at 1k, 100k and 1M entries, for the three kinds of value."""
    big = Decimal(9 * 10**18)
    cases: tuple[tuple[str, Callable[[int], Decimal], Decimal | None, tuple[int, ...]], ...] = (
        (
            "history add, int64 column",
            lambda i: Decimal(i).scaleb(-8),
            None,
            (1_000, 100_000, 1_000_000),
        ),
        (
            "history add, exact side table (every drop)",
            lambda i: Decimal(10**30 + i),
            None,
            (1_000, 100_000, 1_000_000) if full else (1_000, 10_000, 100_000),
        ),
        (
            "history add, rescale refused (scale too big)",
            lambda i: Decimal(i) + Decimal("0.5"),
            big,
            (1_000, 100_000, 1_000_000) if full else (1_000, 10_000, 100_000),
        ),
    )
    for label, values, first, sizes in cases:
        sizes = only or sizes
        costs = [
            stats_of([add_cost(size, values, first, timed) for _ in range(repeats)]).median
            for size in sizes
        ]
        print_row(label, [f"{s:,}" for s in sizes], costs)


# ---------------------------------------------------------------------------
# Reload on start, by rows in the file
# ---------------------------------------------------------------------------


async def reload_cost(rows: int, directory: Path) -> float:
    """Seconds to reload a fresh SQLite file of ``rows`` rows (10 assets), keeping 30 %."""
    path = directory / f"reload-{rows}.sqlite"
    store = HistoryStore(str(path), account="bench")
    await store.open()
    per_asset = rows // 10
    batch = []
    for i in range(per_asset):
        for asset in range(10):
            batch.append(
                StoredRow(
                    f"A{asset}", T0 + i, Decimal(i).scaleb(-8), Source.WEBSOCKET, f"L{asset}-{i}"
                )
            )
        if len(batch) >= 20_000:
            await store.append_many(batch)
            batch = []
    if batch:
        await store.append_many(batch)
    await store.close()
    clock = ManualClock(start=T0 + per_asset)
    history = BalanceHistory(
        max_entries=max(1, per_asset * 3 // 10),
        store=HistoryStore(str(path), account="bench"),
        clock=clock,
    )
    start = time.perf_counter()
    loaded = await history.load()
    elapsed = time.perf_counter() - start
    await history.close()
    path.unlink()
    if loaded != 10 * max(1, per_asset * 3 // 10):
        raise RuntimeError(f"reloaded {loaded} rows of {rows}")
    return elapsed


async def bench_reload(full: bool) -> None:
    """Reload cost at 1k, 100k (and 1M) rows, per row in the file (30 % kept)."""
    sizes = (1_000, 100_000, 1_000_000) if full else (1_000, 10_000, 100_000)
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as directory:
        seconds = [await reload_cost(rows, Path(directory)) for rows in sizes]
    for rows, value in zip(sizes, seconds, strict=True):
        print(f"    reload of {rows:,} rows (30 % kept): {fmt_seconds(value)}")
    print_row(
        "reload on start, per row in the file",
        [f"{s:,}" for s in sizes],
        [value / rows for value, rows in zip(seconds, sizes, strict=True)],
    )


async def run(args: argparse.Namespace) -> None:
    """Every part in order."""
    repeats = 3
    print("scaling, cost per operation at each size (median of 3); last column: largest/smallest")
    only = (
        tuple(int(size) for size in args.history_sizes.split(",")) if args.history_sizes else None
    )
    if not only:
        await bench_assets(repeats)
        await bench_wide(repeats)
    bench_history_add(repeats, args.full, args.timed, only)
    if not only:
        await bench_reload(args.full)


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--full", action="store_true", help="also the 1,000,000-entry cases")
    parser.add_argument("--timed", type=int, default=20_000, help="timed adds per history case")
    parser.add_argument(
        "--history-sizes",
        help="only the history rows, at these sizes (e.g. 1000,10000: to measure an older build)",
    )
    args = parser.parse_args()
    print_header("scaling: per-operation costs as assets and history grow")
    started = time.perf_counter()
    asyncio.run(run(args))
    print(f"(total {time.perf_counter() - started:.1f} s)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
