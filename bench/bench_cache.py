"""Benchmark of BalanceCache: ns per hit and per put, bytes per cached Balance.

Run: ``python bench/bench_cache.py`` (about 20 s). It prints the command, then:

* ns/op of ``get`` on a held key (a hit) and of ``put`` (replacing a held key,
  and adding a new key that evicts the least recently used one), median of
  several repeats, with ``time.monotonic`` as the cache's time source;
* bytes per cached Balance over 100,000 entries, measured with tracemalloc,
  median of several runs: the whole cost (the Balance object with its
  Decimal, asset name and receive time, plus the cache's own structures), and
  the cache's share alone. Each Balance is distinct and realistic: a
  10-decimal Decimal balance, 1 in 10 with a hold (the others share ``ZERO``),
  its own ``received_at``, and a put time of its own, 1 µs after the previous
  one (a put takes about that long, so this is a burst such as a snapshot).
* the same cost for ``cachetools.TLRUCache`` when cachetools is importable
  (it is not a dependency; the figure explains why, see docs/cache.md).

Speed and memory targets are printed, never asserted.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import itertools
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from balance_manager.core.amounts import ZERO
from balance_manager.core.cache import BalanceCache
from balance_manager.core.models import Balance, Source

ENTRIES = 100_000
MEMORY_RUNS = 3
SPEED_REPEATS = 5
SPEED_OPS = 200_000
TARGET_BYTES = 300


def make_balances(count: int) -> list[Balance]:
    """``count`` distinct, realistic balances (asset names distinct, as cache keys must be)."""
    balances = []
    for i in range(count):
        hold = Decimal(f"0.{(i * 7919) % 10**8:08d}") if i % 10 == 0 else ZERO
        balances.append(
            Balance(
                asset=f"A{i:05d}",
                balance=Decimal(f"{i % 100_000}.{(i * 104_729) % 10**10:010d}"),
                hold_trade=hold,
                source=Source.WEBSOCKET,
                received_at=1_700_000_000.0 + i * 0.001,
            )
        )
    return balances


class Ticker:
    """A time source that moves 1 µs per call, so no two puts share an expiry time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def measure_memory(fill: Callable[[list[Balance]], object]) -> tuple[float, float]:
    """(whole bytes per entry, cache-only bytes per entry) for one run of ``fill``."""
    tracemalloc.start()
    try:
        base = traced()
        balances = make_balances(ENTRIES)
        with_balances = traced() - base - sys.getsizeof(balances)
        holder = fill(balances)
        del balances
        whole = traced() - base
        del holder
    finally:
        tracemalloc.stop()
    return whole / ENTRIES, (whole - with_balances) / ENTRIES


def fill_balance_cache(balances: list[Balance]) -> object:
    cache: BalanceCache[Balance] = BalanceCache(ENTRIES, 300.0, time=Ticker())
    for balance in balances:
        cache.put(balance.asset, balance)
    assert len(cache) == ENTRIES
    return cache


def fill_tlru_cache(balances: list[Balance]) -> object:
    cachetools = importlib.import_module("cachetools")  # optional, only for the comparison
    ticker = Ticker()
    cache: Any = cachetools.TLRUCache(
        maxsize=ENTRIES, ttu=lambda key, value, now: now + 300.0, timer=ticker
    )
    for balance in balances:
        cache[balance.asset] = balance
    assert len(cache) == ENTRIES
    return cache


def median_memory(fill: Callable[[list[Balance]], object]) -> tuple[float, float]:
    runs = [measure_memory(fill) for _ in range(MEMORY_RUNS)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def ns_per_op(op: Callable[[], object]) -> float:
    """Median over repeats of the time per call of ``op``, loop overhead subtracted."""
    results = []
    for _ in range(SPEED_REPEATS):
        loop = itertools.repeat(None, SPEED_OPS)
        start = time.perf_counter_ns()
        for _ in loop:
            op()
        elapsed = time.perf_counter_ns() - start
        loop = itertools.repeat(None, SPEED_OPS)
        start = time.perf_counter_ns()
        for _ in loop:
            pass
        empty = time.perf_counter_ns() - start
        results.append((elapsed - empty) / SPEED_OPS)
    return statistics.median(results)


def speed() -> dict[str, float]:
    balances = make_balances(3_000)
    cache: BalanceCache[Balance] = BalanceCache(1000, 300.0, time=time.monotonic)
    for balance in balances[:1000]:
        cache.put(balance.asset, balance)
    held = balances[500]
    get = cache.get
    put = cache.put
    key = held.asset
    results = {"get (hit)": ns_per_op(lambda: get(key))}
    results["get (miss)"] = ns_per_op(lambda: get("ABSENT"))
    results["put (replace held key)"] = ns_per_op(lambda: put(key, held))
    # 2,000 keys cycled through a 1,000-entry cache: each key comes back after
    # it was evicted, so every put adds a new key and evicts one.
    fresh = itertools.cycle(balances[1000:])

    def put_new() -> None:
        balance = next(fresh)
        put(balance.asset, balance)

    results["put (new key, evicts LRU)"] = ns_per_op(put_new) - ns_per_op(lambda: next(fresh))
    return results


def main() -> None:
    print(f"$ python {' '.join(sys.argv)}")
    print(f"Python {sys.version.split()[0]}, {ENTRIES:,} entries for memory\n")
    for name, value in speed().items():
        print(f"{name:<28} {value:8.0f} ns/op  (median of {SPEED_REPEATS} x {SPEED_OPS:,})")
    whole, own = median_memory(fill_balance_cache)
    print()
    print(f"BalanceCache: {whole:6.1f} bytes per cached Balance, Balance included")
    print(f"              {own:6.1f} bytes of it are the cache's own structures")
    print(f"              {whole - own:6.1f} bytes are the Balance itself (struct, Decimal, name)")
    print(f"              target <= {TARGET_BYTES} bytes (median of {MEMORY_RUNS} runs)")
    if importlib.util.find_spec("cachetools") is None:
        print("\ncachetools.TLRUCache: not installed, comparison skipped")
    else:
        tl_whole, tl_own = median_memory(fill_tlru_cache)
        print(f"\ncachetools.TLRUCache: {tl_whole:6.1f} bytes per cached Balance")
        print(f"                      {tl_own:6.1f} bytes of it are the cache's own structures")


if __name__ == "__main__":
    main()
