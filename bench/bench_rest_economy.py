"""REST economy: REST calls in a simulated hour, streaming vs a poller of the same freshness.

Run from the repository root (about 30 s)::

    python bench/bench_rest_economy.py [--minutes N]

An hour of account activity (one deposit per second, rotating over the
simulator's assets) is played on a :class:`~balance_manager.testing.ManualClock`
against the exchange simulator over real loopback sockets, twice, in the same
process:

* **streaming** (this library's design, default configuration): the manager
  follows the WebSocket stream; REST is only used at start-up and for the
  periodic cross-check (``force_update_interval``, 600 s);
* **polling** (the reference): a REST-only manager polling ``BalanceEx`` every
  second, the interval that keeps the *same freshness*. Freshness is the
  worst-case staleness of a held value: with one change per second, a poller
  must call at least once a second to hold every value (anything slower misses
  values and is staler); the stream delivers each change in milliseconds
  (measured and printed), so polling every second is still the generous side.
  The poller runs on Kraken's ``pro`` tier (counter decay 1/s): on the default
  ``starter`` tier (decay 0.33/s) one call per second is not even allowed.

Printed: REST calls of each design during the hour (excluding start-up, and
with it), the reduction, the stream's delivery latency (real seconds) and the
poller's measured worst staleness (clock seconds), and a check that both
designs end with the exchange's balances. The seed promises 90 % fewer calls;
the aim is 99 % or more.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from decimal import Decimal

from balance_manager.core.freshness import ServingMode
from balance_manager.core.models import BalanceChange
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.kraken.ws_client import KrakenWebSocketClient
from balance_manager.service.manager import BalanceManager
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive, wait_until
from common import bench_config, fmt_seconds, print_header, report, stats_of

__all__ = ["main"]

PROMISED = 90.0
AIM = 99.0
ASSETS = ("BTC", "ETH", "USD", "USDT", "EUR", "DOT")
AMOUNTS = {"BTC": "0.0001", "ETH": "0.001", "USD": "1.25", "USDT": "1.5", "EUR": "2", "DOT": "0.1"}


async def play_hour(*, streaming: bool, seconds: int) -> dict[str, object]:
    """One simulated hour of one deposit per second; REST calls and freshness figures."""
    clock = ManualClock()
    tier = "starter" if streaming else "pro"
    config = bench_config(kraken_tier=tier, rest_poll_interval=5.0 if streaming else 1.0)
    async with SimulatedKraken(clock=clock, seed=5, tier=tier) as sim:
        rest = KrakenRestClient(
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            base_url=sim.rest_url,
            config=config,
            clock=clock,
            rng=random.Random(1),
        )
        ws = (
            KrakenWebSocketClient(rest_client=rest, url=sim.ws_url, rng=random.Random(2))
            if streaming
            else None
        )
        manager = BalanceManager(websocket_client=ws, rest_client=rest, config=config, clock=clock)
        delivered = asyncio.Event()

        async def on_update(change: BalanceChange) -> None:
            if change.kind == "update":
                delivered.set()

        manager.register_callback("balance_update", on_update)
        async with manager:
            if streaming:
                await wait_until(lambda: manager.serving_mode is ServingMode.WEBSOCKET)
            start_calls = Counter(sim.rest_calls)
            latencies: list[float] = []
            staleness: list[float] = []
            pending: dict[str, tuple[Decimal, float]] = {}
            for second in range(seconds):
                asset = ASSETS[second % len(ASSETS)]
                delivered.clear()
                sim.deposit(asset, AMOUNTS[asset])
                pending[asset] = (sim.balances()[asset], clock.time())
                if streaming:
                    started = time.perf_counter()
                    await asyncio.wait_for(delivered.wait(), timeout=10.0)
                    latencies.append(time.perf_counter() - started)
                # Real pause after the clock moves: lets a due poll's request and
                # answer cross the loopback before the next check.
                await drive(clock, 1.0, step=1.0, io_pause=0.001 if streaming else 0.004)
                # The poller's staleness: clock seconds from a change until held.
                for name, (wanted, changed_at) in list(pending.items()):
                    held = manager.sync_view().get_balance(name)
                    if held is not None and held.balance == wanted:
                        staleness.append(clock.time() - changed_at)
                        del pending[name]
            await drive(clock, 2.0, step=1.0, io_pause=0.002)
            calls = Counter(sim.rest_calls)
            calls.subtract(start_calls)
            final = {a: b.balance for a, b in manager.sync_view().get_all_balances().items()}
            truth = sim.balances()
            matches = all(final.get(asset) == value for asset, value in truth.items())
            source = manager.serving_mode.value
    return {
        "hour_calls": sum(calls.values()),
        "by_method": {k: v for k, v in calls.items() if v},
        "startup_calls": sum(start_calls.values()),
        "latencies": latencies,
        "staleness": staleness,
        "matches": matches,
        "source": source,
    }


async def run(seconds: int) -> None:
    """Both designs, then the comparison."""
    ours = await play_hour(streaming=True, seconds=seconds)
    poller = await play_hour(streaming=False, seconds=seconds)
    our_calls = int(str(ours["hour_calls"]))
    poll_calls = int(str(poller["hour_calls"]))
    computed = seconds  # one call per second keeps one-second freshness
    latencies = list(ours["latencies"])  # type: ignore[call-overload]  # list[float] inside
    staleness = list(poller["staleness"])  # type: ignore[call-overload]  # list[float] inside
    report(
        f"streaming: REST calls during {seconds:,} s (one deposit per second)",
        f"{our_calls} {ours['by_method']} (+{ours['startup_calls']} at start-up); "
        f"serving from {ours['source']}; ends equal to the exchange: {ours['matches']}",
    )
    if latencies:
        delivery = stats_of(latencies)
        report(
            "  stream delivery, deposit → manager callback (real time, loopback)",
            f"median {fmt_seconds(delivery.median)}, worst {fmt_seconds(delivery.high)}",
        )
    report(
        "polling every 1 s (same freshness, pro tier): REST calls during the same time",
        f"{poll_calls} {poller['by_method']} (+{poller['startup_calls']} at start-up); "
        f"computed: {computed}; ends equal to the exchange: {poller['matches']}",
    )
    if staleness:
        report(
            "  poller's staleness of a change (clock seconds)",
            f"median {stats_of(staleness).median:.2f} s, worst {max(staleness):.2f} s "
            "(checked once per clock second)",
        )
    reference = max(poll_calls, 1)
    reduction = 100.0 * (1.0 - our_calls / reference)
    report(
        "REST calls saved by streaming, vs the measured poller",
        f"{reduction:.2f} % fewer ({our_calls} vs {poll_calls}; ratio {our_calls / reference:.4f})",
        target=f">= {PROMISED:g} % (seed), aim >= {AIM:g} %",
        met=reduction >= AIM,
    )
    report(
        "REST calls saved by streaming, vs the computed 1 call/s",
        f"{100.0 * (1.0 - our_calls / computed):.2f} % fewer ({our_calls} vs {computed})",
    )


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description="REST economy benchmark")
    parser.add_argument("--minutes", type=int, default=60, help="simulated minutes (default 60)")
    args = parser.parse_args()
    print_header("REST economy: a simulated hour, streaming vs polling")
    started = time.perf_counter()
    asyncio.run(run(args.minutes * 60))
    print(f"(total {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
