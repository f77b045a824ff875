"""Recovery benchmark: how fast the manager falls back to REST and comes back to the stream.

Run from the repository root (about 40 s)::

    python bench/bench_recovery.py [--repeats N]

Against the exchange simulator over real loopback sockets, three events:

1. **silence → REST**: the simulator's WebSocket goes silent (no frame at
   all, the connection stays open) and a deposit happens; timed until the
   manager serves the new value with source ``rest``.
2. **fault cleared → stream**: the silence ends; timed until the manager
   serves from a resynced stream again (new connection, fresh token, snapshot).
3. **restart → stream**: the simulator stops for a while (REST and WebSocket
   down), then starts again on the same port; timed from the start until the
   manager serves from a resynced stream.

Twice, in the same run:

* on a :class:`~balance_manager.testing.ManualClock` with the **default
  configuration** (``websocket_timeout`` 10 s, ping every 5 s, reconnect after
  about 1 s, 2 s, then 5-30 s with jitter): figures in *clock seconds*, which
  the configuration decides (the clock is moved in 0.1 s steps, so they are
  exact to 0.1 s);
* on the real clock with a **scaled-down configuration** (timeout 1 s, ping
  every 0.25 s, reconnect 0.1-0.5 s, REST poll 0.5 s): figures in *real
  seconds*, which show what the code adds beyond the configured delays.

Median of the repeats, with the spread.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.freshness import ServingMode
from balance_manager.core.models import Source
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.kraken.ws_client import KrakenWebSocketClient
from balance_manager.runtime.clock import Clock, SystemClock
from balance_manager.service.manager import BalanceManager
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive, wait_until
from common import bench_config, print_header, report, stats_of

__all__ = ["main"]

SCENARIOS = ("silence → REST", "fault cleared → stream", "restart → stream")


@dataclass
class Setting:
    """One way to run the scenarios: a clock, a configuration and how to wait."""

    name: str
    unit: str
    config: BalanceManagerConfig
    heartbeat: float
    downtime: float
    make_clock: Callable[[], Clock]

    async def wait(self, clock: Clock, condition: Callable[[], bool], limit: float) -> float:
        """Seconds (of this setting's kind) until ``condition()`` holds."""
        if isinstance(clock, ManualClock):
            start = clock.monotonic()
            await drive(clock, limit, step=0.1, io_pause=0.002, until=condition)
            if not condition():
                raise TimeoutError(f"not recovered within {limit} clock seconds")
            return clock.monotonic() - start
        started = time.perf_counter()
        await wait_until(condition, within=limit, interval=0.001)
        return time.perf_counter() - started

    async def pass_time(self, clock: Clock, seconds: float) -> None:
        """Let ``seconds`` go by (clock seconds, or real ones)."""
        if isinstance(clock, ManualClock):
            await drive(clock, seconds, step=0.1, io_pause=0.002)
        else:
            await asyncio.sleep(seconds)


MANUAL = Setting(
    name="ManualClock, default configuration",
    unit="clock s",
    config=bench_config(),
    heartbeat=1.0,
    downtime=15.0,
    make_clock=ManualClock,
)
REAL = Setting(
    name="real clock, scaled configuration",
    unit="real s",
    config=bench_config(
        websocket_timeout=1.0,
        websocket_ping_interval=0.25,
        rest_api_timeout=1.0,
        rest_poll_interval=0.5,
        reconnect_initial_delay=0.1,
        reconnect_max_delay=0.5,
        circuit_recovery_timeout=0.5,
    ),
    heartbeat=0.25,
    downtime=1.5,
    make_clock=SystemClock,
)


async def one_run(setting: Setting, seed: int) -> dict[str, float]:
    """The three scenarios once, on a fresh simulator and manager."""
    clock = setting.make_clock()
    config = setting.config
    sim = SimulatedKraken(clock=clock, seed=seed, heartbeat_interval=setting.heartbeat)
    await sim.start()
    rest = KrakenRestClient(
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        base_url=sim.rest_url,
        config=config,
        clock=clock,
        rng=random.Random(seed),
    )
    ws = KrakenWebSocketClient(
        rest_client=rest, url=sim.ws_url, config=config, rng=random.Random(seed + 1)
    )
    manager = BalanceManager(websocket_client=ws, rest_client=rest, config=config, clock=clock)
    view = manager.sync_view()
    figures: dict[str, float] = {}

    def streaming() -> bool:
        return ws.connected and manager.serving_mode is ServingMode.WEBSOCKET

    def serves(asset: str, source: Source) -> Callable[[], bool]:
        def check() -> bool:
            held = view.get_balance(asset)
            return (
                held is not None
                and held.balance == sim.balances()[asset]
                and held.source is source
                and manager.serving_mode.value == source.value
            )

        return check

    limit = 120.0
    try:
        await manager.initialize()
        await setting.wait(clock, streaming, limit)
        await setting.pass_time(clock, 2.0)

        # 1. silence → REST
        sim.faults.go_silent()
        sim.deposit("USD", "3")
        figures[SCENARIOS[0]] = await setting.wait(clock, serves("USD", Source.REST), limit)

        # 2. fault cleared → stream
        sim.faults.clear()
        figures[SCENARIOS[1]] = await setting.wait(clock, streaming, limit)
        sim.deposit("USD", "4")
        await setting.wait(clock, serves("USD", Source.WEBSOCKET), limit)

        # 3. restart → stream
        await sim.stop()
        await setting.pass_time(clock, setting.downtime)
        await sim.start()
        figures[SCENARIOS[2]] = await setting.wait(clock, streaming, limit)
        sim.deposit("USD", "5")
        await setting.wait(clock, serves("USD", Source.WEBSOCKET), limit)
    finally:
        closing: list[Awaitable[None]] = [manager.close()]
        if isinstance(clock, ManualClock):
            # close() waits on the clock for the history task: keep time moving.
            task = asyncio.ensure_future(closing[0])
            await drive(clock, 10.0, step=0.5, io_pause=0.002, until=task.done)
            await task
        else:
            await closing[0]
        await sim.stop()
    return figures


async def run(repeats: int) -> None:
    """Every setting, ``repeats`` runs each (alternating the settings)."""
    results: dict[str, list[dict[str, float]]] = {MANUAL.name: [], REAL.name: []}
    for round_number in range(repeats):
        order = (MANUAL, REAL) if round_number % 2 == 0 else (REAL, MANUAL)
        for setting in order:
            results[setting.name].append(await one_run(setting, seed=100 + round_number))
    for setting in (MANUAL, REAL):
        runs = results[setting.name]
        config = setting.config
        print(
            f"{setting.name}: websocket_timeout {config.websocket_timeout:g} s, "
            f"ping {config.websocket_ping_interval:g} s, reconnect "
            f"{config.reconnect_initial_delay:g}-{config.reconnect_max_delay:g} s, "
            f"REST poll {config.rest_poll_interval:g} s, simulator down "
            f"{setting.downtime:g} s in scenario 3"
        )
        unit = setting.unit

        def seconds(value: float, unit: str = unit) -> str:
            return f"{value:.2f} {unit}"

        for scenario in SCENARIOS:
            report(f"  {scenario}", stats_of([r[scenario] for r in runs]).describe(seconds))


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description="recovery benchmark")
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting (default 3)")
    args = parser.parse_args()
    print_header("recovery: stream silent → REST, simulator back → resynced stream")
    started = time.perf_counter()
    asyncio.run(run(args.repeats))
    print(f"(total {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
