"""The dashboard's figures: how fast a change reaches a page, and what the API costs.

Run from the repository root::

    python bench/bench_dashboard.py [--quick]

Against the simulator on loopback, real clock, a manager streaming:

* **deposit → page**: seconds from a deposit on the exchange to its ``balance``
  event read by a client of ``/api/stream`` (what a browser's EventSource gets);
  issue 16 asks for the table within a second;
* **burst**: 1,000 deposits at once, read by 3 stream clients: events per second
  delivered to each, and that none was lost;
* **API**: ``/api/balances``, ``/api/status`` and ``/api/history/BTC`` answer times.

Each figure is the median of several rounds with its spread (see ``common.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp

from balance_manager import connect
from balance_manager.dashboard import Dashboard
from balance_manager.simulator import SimulatedKraken
from common import fmt_seconds, print_header, report, stats_of

__all__ = ["main"]


async def next_balance(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """The next ``balance`` event's data from a Server-Sent Events response."""
    event = data = ""
    while True:
        line = (await response.content.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif not line and data:
            if event == "balance":
                parsed: dict[str, Any] = json.loads(data)
                return parsed
            event = data = ""


async def latency_round(
    sim: SimulatedKraken, dashboard: Dashboard, http: aiohttp.ClientSession, count: int
) -> list[float]:
    url = f"{dashboard.url}api/stream?last_event_id={dashboard.journal.last_id}"
    seconds = []
    async with http.get(url) as response:
        for _ in range(count):
            started = time.perf_counter()
            sim.deposit("BTC", "0.001")
            await asyncio.wait_for(next_balance(response), 10)
            seconds.append(time.perf_counter() - started)
    return seconds


async def burst_round(
    sim: SimulatedKraken, dashboard: Dashboard, http: aiohttp.ClientSession, count: int
) -> tuple[float, int]:
    url = f"{dashboard.url}api/stream?last_event_id={dashboard.journal.last_id}"
    responses = [await http.get(url) for _ in range(3)]
    try:
        started = time.perf_counter()
        for n in range(count):
            sim.deposit("ETH" if n % 2 else "DOT", "0.01")

        async def read_all(response: aiohttp.ClientResponse) -> int:
            got = 0
            while got < count:
                await asyncio.wait_for(next_balance(response), 30)
                got += 1
            return got

        received = await asyncio.gather(*(read_all(r) for r in responses))
        elapsed = time.perf_counter() - started
    finally:
        for response in responses:
            response.close()
    return count / elapsed, min(received)


async def api_round(dashboard: Dashboard, http: aiohttp.ClientSession, path: str, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        async with http.get(f"{dashboard.url}{path}") as response:
            await response.read()
            assert response.status == 200
    return (time.perf_counter() - started) / n


async def run(quick: bool) -> None:
    rounds = 3 if quick else 5
    per_round = 20 if quick else 50
    burst = 300 if quick else 1000
    async with connect(simulator=True, simulator_market=False) as manager:
        sim = manager.simulator
        assert sim is not None
        async with Dashboard(manager) as dashboard, aiohttp.ClientSession() as http:
            medians, p95s, worst = [], [], []
            for _ in range(rounds):
                samples = sorted(await latency_round(sim, dashboard, http, per_round))
                medians.append(samples[len(samples) // 2])
                p95s.append(samples[int(len(samples) * 0.95) - 1])
                worst.append(samples[-1])
            m = stats_of(medians)
            report(
                f"deposit → page, median ({per_round} deposits × {rounds} rounds)",
                f"{fmt_seconds(m.median)} ({fmt_seconds(m.low)} .. {fmt_seconds(m.high)})",
                target="< 1 s",
                met=max(worst) < 1.0,
            )
            report("deposit → page, 95th percentile", fmt_seconds(stats_of(p95s).median))
            report("deposit → page, slowest of all", fmt_seconds(max(worst)))

            rates, lost = [], 0
            for _ in range(rounds):
                rate, received = await burst_round(sim, dashboard, http, burst)
                rates.append(rate)
                lost += burst - received
            r = stats_of(rates)
            report(
                f"burst of {burst} deposits, events/s to each of 3 pages",
                f"{r.median:,.0f} ({r.low:,.0f} .. {r.high:,.0f}), lost {lost}",
                target="none lost",
                met=lost == 0,
            )
            for path in ("api/balances", "api/status", "api/history/BTC?hours=1"):
                s = stats_of([await api_round(dashboard, http, path, 50) for _ in range(rounds)])
                report(
                    f"GET /{path}",
                    f"{fmt_seconds(s.median)} ({fmt_seconds(s.low)} .. {fmt_seconds(s.high)})",
                )


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    print_header("dashboard: change → page latency, event burst, API answer times")
    asyncio.run(run(args.quick))


if __name__ == "__main__":
    main()
