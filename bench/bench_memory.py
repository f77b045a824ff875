"""Memory benchmark: bytes per history entry and per cached balance, and RSS under a long stream.

Run from the repository root (about 90 s)::

    python bench/bench_memory.py [--quick]

What it measures:

1. **Bytes per history entry**: ``tracemalloc`` around ``BalanceHistory.record``
   of 100,000 streamed balances across 30 assets (everything the history
   allocates, not only its columns), median of several runs. Reference, in the
   same run: the same values kept the plain way, a list of
   ``(timestamp, Decimal)`` tuples per asset. Target (foundation issue): <= 64 B.
2. **Bytes per cached balance**, ``Balance`` included: ``bench_cache.py``'s
   measurement (100,000 distinct balances in a ``BalanceCache``), median of
   several runs; the ``Balance`` alone is the reference (what holding the value
   costs anyway). Target: <= 300 B.
3. **Resident memory (RSS) of a manager over 1,000,000 updates across 1,000
   assets**, fed as WebSocket frames through the whole path, printed at
   250k / 500k / 750k / 1M updates. The configured limits bound it:
   ``cache_max_size`` 1,000 entries, ``history_max_entries`` 200 per asset (so
   the history is full from 200,000 updates on), 10,000 remembered ledger ids.
   From 250k on, RSS should stay flat: the growth from 250k to 1M is printed.

Targets are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import time
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal

import bench_cache
import bench_history
from balance_manager.kraken.protocol import ws_messages as wsm
from balance_manager.kraken.protocol.timefmt import format_rfc3339
from balance_manager.service.history import BalanceHistory
from balance_manager.testing import ManualClock
from common import (
    T0,
    bench_config,
    feed_like_the_client,
    fmt_bytes,
    print_header,
    report,
    rss_bytes,
    stats_of,
    streaming_manager,
)

__all__ = ["main"]

HISTORY_TARGET = 64.0
CACHE_TARGET = 300.0
HISTORY_ENTRIES = 100_000
RSS_UPDATES = 1_000_000
RSS_ASSETS = 1_000
RSS_HISTORY_PER_ASSET = 200
RUNS = 5


# ---------------------------------------------------------------------------
# 1. History entries
# ---------------------------------------------------------------------------


def history_bytes_per_entry() -> tuple[float, float]:
    """(BalanceHistory bytes/entry, plain-tuples bytes/entry) for one run each."""
    balances = bench_history.make_balances(HISTORY_ENTRIES)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        history = BalanceHistory(clock=ManualClock(T0), max_entries=HISTORY_ENTRIES)
        for balance in balances:
            history.record(balance)
        gc.collect()
        ours = tracemalloc.get_traced_memory()[0] - before
        entries = history.get_statistics()["entries"]
        del history
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        plain: dict[str, list[tuple[float, Decimal]]] = {}
        last: dict[str, Decimal] = {}
        for balance in balances:
            if last.get(balance.asset) != balance.balance:  # same "changed only" rule
                # A fresh Decimal per entry, as a decoded value would be (the
                # generated balances may share objects).
                value = Decimal(balance.balance)
                plain.setdefault(balance.asset, []).append((balance.timestamp, value))
                last[balance.asset] = value
        gc.collect()
        reference = tracemalloc.get_traced_memory()[0] - before
        plain_entries = sum(len(v) for v in plain.values())
    finally:
        tracemalloc.stop()
    return ours / entries, reference / plain_entries


def bench_history_memory(runs: int) -> None:
    """Figure 1."""
    samples = [history_bytes_per_entry() for _ in range(runs)]
    ours = stats_of([s[0] for s in samples])
    plain = stats_of([s[1] for s in samples])
    ratio = stats_of([s[0] / s[1] for s in samples])
    report(
        f"history: bytes per entry ({HISTORY_ENTRIES:,} entries, 30 assets, tracemalloc)",
        ours.describe(fmt_bytes),
        target=f"<= {HISTORY_TARGET:g} B",
        met=ours.median <= HISTORY_TARGET,
    )
    report("  reference: list of (timestamp, Decimal) tuples per asset", plain.describe(fmt_bytes))
    report("  ratio (per run)", ratio.describe(lambda v: f"{v:.2f}x"))


# ---------------------------------------------------------------------------
# 2. Cached balances
# ---------------------------------------------------------------------------


def bench_cache_memory(runs: int) -> None:
    """Figure 2, with bench_cache.py's measurement."""
    samples = [bench_cache.measure_memory(bench_cache.fill_balance_cache) for _ in range(runs)]
    whole = stats_of([s[0] for s in samples])
    value_only = stats_of([s[0] - s[1] for s in samples])
    report(
        f"cache: bytes per cached Balance, Balance included ({bench_cache.ENTRIES:,} entries)",
        whole.describe(fmt_bytes),
        target=f"<= {CACHE_TARGET:g} B",
        met=whole.median <= CACHE_TARGET,
    )
    report("  reference: the Balance alone (struct, Decimal, name)", value_only.describe(fmt_bytes))
    report(
        "  the cache's own structures",
        stats_of([s[1] for s in samples]).describe(fmt_bytes),
    )


# ---------------------------------------------------------------------------
# 3. RSS over a long stream
# ---------------------------------------------------------------------------


def _asset(number: int) -> str:
    return f"T{number:03d}"


def _kraken_like_id(number: int, salt: int) -> str:
    """A distinct id per ``number`` shaped like Kraken's (``ABCDEF-GHIJK-LMNOPQ``)."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    value = number * 1_000_003 + salt
    text = []
    for _ in range(17):
        value, rest = divmod(value, 36)
        text.append(digits[rest])
    chars = "".join(text)
    return f"{chars[:6]}-{chars[6:11]}-{chars[11:]}"


def _amount(units: int) -> str:
    """``units`` of 1e-8 as a JSON number with 8 decimals."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**8)
    return f"{sign}{whole}.{fraction:08d}"


def _start_levels(assets: int) -> list[int]:
    rng = random.Random(11)
    return [rng.randrange(10**10, 10**13) for _ in range(assets)]


def many_asset_snapshot(assets: int) -> bytes:
    """A ``balances`` snapshot of ``assets`` assets (the stream's starting point)."""
    levels = _start_levels(assets)
    items = []
    for number, level in enumerate(levels):
        amount = Decimal(_amount(level))
        wallet = wsm.WalletBalance(type="spot", id="main", balance=amount)
        items.append(
            wsm.AssetBalance(
                asset=_asset(number), asset_class="currency", balance=amount, wallets=(wallet,)
            )
        )
    return wsm.encode_balances_snapshot(items, 1)


def many_asset_updates(count: int, assets: int, *, batch: int) -> Iterator[list[bytes]]:
    """``count`` distinct update frames across ``assets`` assets, ``batch`` at a time.

    Built from a text template (1,000,000 frames through the struct encoder
    would take longer than the benchmark itself); same shape as Kraken's
    (docs/kraken.md, 'Balances updates'), continuity-exact, distinct ids.
    """
    rng = random.Random(12)
    levels = _start_levels(assets)
    template = (
        '{"channel":"balances","type":"update","data":[{"ledger_id":"%s","ref_id":"%s",'
        '"timestamp":"%s","type":"%s","asset":"%s","asset_class":"currency",'
        '"category":"%s","wallet_type":"spot","wallet_id":"main","amount":%s,'
        '"fee":0.0,"balance":%s}],"sequence":%d}'
    )
    frames: list[bytes] = []
    for i in range(count):
        number = rng.randrange(assets)
        units = rng.randrange(1, 10**9)
        if levels[number] > 2 * units and rng.random() < 0.5:
            units = -units
        levels[number] += units
        kind = "deposit" if units > 0 else "withdrawal"
        frames.append(
            (
                template
                % (
                    _kraken_like_id(i, 1),
                    _kraken_like_id(i, 2),
                    format_rfc3339(T0 + i * 0.001),
                    kind,
                    _asset(number),
                    kind,
                    _amount(units),
                    _amount(levels[number]),
                    i + 2,
                )
            ).encode()
        )
        if len(frames) == batch:
            yield frames
            frames = []
    if frames:
        yield frames


async def bench_rss(updates: int) -> None:
    """Figure 3."""
    checkpoints = {updates // 4 * k for k in range(1, 5)}
    gc.collect()
    baseline = rss_bytes()
    config = bench_config(history_max_entries=RSS_HISTORY_PER_ASSET, cache_max_size=RSS_ASSETS)
    manager, client = await streaming_manager(config, snapshot=many_asset_snapshot(RSS_ASSETS))

    async def on_update(change: object) -> None:
        del change

    manager.register_callback("balance_update", on_update)
    gc.collect()
    built = rss_bytes()
    report(
        "RSS: process before the manager / after building it with 1,000 assets",
        f"{fmt_bytes(baseline)} / {fmt_bytes(built)}",
    )
    fed = 0
    readings: dict[int, int] = {}
    start = time.perf_counter()
    for frames in many_asset_updates(updates, RSS_ASSETS, batch=10_000):
        await feed_like_the_client(client, frames)
        fed += len(frames)
        if fed in checkpoints:
            del frames
            gc.collect()
            readings[fed] = rss_bytes()
            stats = manager.get_statistics()
            report(
                f"RSS after {fed:>9,} updates",
                f"{fmt_bytes(readings[fed])} "
                f"(history {stats['history']['entries']:,} entries, "
                f"cache {stats['cache']['size']:,} entries, "
                f"{fed / (time.perf_counter() - start):,.0f} updates/s incl. frame generation)",
            )
    applied = manager.get_statistics()["ledger_updates"]
    if applied != updates:
        raise RuntimeError(f"{applied} of {updates} updates applied")
    first, last = min(readings), max(readings)
    growth = readings[last] - readings[first]
    bound = RSS_ASSETS * RSS_HISTORY_PER_ASSET
    report(
        f"RSS growth from {first:,} to {last:,} updates",
        f"{fmt_bytes(growth)} ({growth / (last - first):.2f} B per further update)",
        target="flat: bounded by cache_max_size, history_max_entries, ledger-id memory",
        met=growth <= 0.02 * readings[first],
    )
    print(
        f"  (limits: cache {RSS_ASSETS:,} entries, history {RSS_HISTORY_PER_ASSET} per asset "
        f"= {bound:,} entries, full from {bound:,} updates on)"
    )


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description="memory benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer runs, 400,000 updates")
    args = parser.parse_args()
    print_header("memory: history entries, cached balances, RSS under a long stream")
    started = time.perf_counter()
    runs = 3 if args.quick else RUNS
    bench_history_memory(runs)
    bench_cache_memory(runs)
    asyncio.run(bench_rss(400_000 if args.quick else RSS_UPDATES))
    print(f"(total {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
