"""The original specification's integration example, against the simulator, with faults.

Run it with ``python -m examples.integration_example``. It shows, step
by step and with the API it describes, what its "Testing" section lists:

* WebSocket V2 integration (``get_balance("USDT")["free"]``, ``get_all_balances()``);
* real-time balance updates (``register_callback("balance_update" / "balance_change")``),
  holds following open orders;
* validation (``validator.validate_single_balance``, ``validate_all_balances()``)
  and history tracking (``history.get_asset_history``, ``analyze_balance_trend``);
* REST API fallback (the WebSocket goes silent);
* error handling and recovery (REST fails too: values are served marked
  ``cache``; then everything recovers), with ``get_status()``,
  ``get_statistics()`` and ``cache.get_statistics()``.

Every step checks its own outcome against the exchange's truth. The exit code
is 0 only if every check passed; the run takes about ten seconds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import TextIO, TypeVar

from balance_manager.cli.demo_plan import compare_with_exchange
from balance_manager.config import BalanceManagerConfig
from balance_manager.core.freshness import ServingMode
from balance_manager.core.models import BalanceChange
from balance_manager.exceptions import StaleBalanceError
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.kraken.ws_client import KrakenWebSocketClient
from balance_manager.runtime.clock import Clock, SystemClock
from balance_manager.service.manager import BalanceManager
from balance_manager.simulator import SimulatedKraken

__all__ = ["EXAMPLE_CONFIG", "Checks", "MissingValueError", "eventually", "main", "run_example"]

#: Short timings so that each fallback and recovery shows within a second or two.
EXAMPLE_CONFIG = BalanceManagerConfig(
    history_db_path=None,
    enable_validation=True,
    websocket_timeout=1.5,
    websocket_ping_interval=0.5,
    reconnect_initial_delay=0.2,
    reconnect_max_delay=1.0,
    rest_poll_interval=0.5,
    rest_api_timeout=1.0,
    rest_max_retries=0,
    circuit_failure_threshold=3,
    circuit_recovery_timeout=1.0,
    kraken_tier="pro",
)

#: Longest wait for any one expected outcome (real seconds).
WAIT = 8.0

T = TypeVar("T")


class MissingValueError(Exception):
    """A value a step needs is missing: the step cannot go on."""


def _present(value: T | None, what: str) -> T:
    if value is None:
        raise MissingValueError(f"{what} is available")
    return value


class Checks:
    """Prints steps and checks, and remembers whether every check passed.

    Args:
        out: where to print.
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.passed = 0
        self.failed: list[str] = []
        self._step = 0

    def step(self, title: str) -> None:
        """Start a step."""
        self._step += 1
        print(f"\nStep {self._step}: {title}", file=self.out)

    def say(self, text: str) -> None:
        """Explain what happens."""
        print(f"    {text}", file=self.out)

    def check(self, what: str, ok: bool) -> bool:
        """Record one outcome; returns ``ok``."""
        mark = "ok  " if ok else "FAIL"
        print(f"  [{mark}] {what}", file=self.out)
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
        return ok

    @property
    def all_passed(self) -> bool:
        """Whether no check failed (and at least one ran)."""
        return self.passed > 0 and not self.failed


async def eventually(
    predicate: Callable[[], bool], clock: Clock, *, within: float = WAIT, every: float = 0.05
) -> bool:
    """Whether ``predicate()`` becomes true within ``within`` seconds of ``clock``."""
    deadline = clock.monotonic() + within
    while not predicate():
        if clock.monotonic() >= deadline:
            return False
        await clock.sleep(every)
    return True


async def run_example(out: TextIO, *, seed: int = 7, clock: Clock | None = None) -> bool:
    """Run every step against a fresh simulator; returns whether every check passed.

    Args:
        out: where the steps and checks are written.
        seed: the simulator's seed.
        clock: the clock of the simulator and the manager (real by default; a test
            passes a ``ManualClock`` and drives it, so the run takes no real time).
    """
    checks = Checks(out)
    clock = clock or SystemClock()
    # market=False: only this example moves the account, so every change is expected.
    async with SimulatedKraken(seed=seed, market=False, clock=clock, tier="pro") as sim:
        config = EXAMPLE_CONFIG.replace(rest_url=sim.rest_url, ws_url=sim.ws_url)
        rest_client = KrakenRestClient(
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            base_url=sim.rest_url,
            config=config,
            clock=clock,
            rng=random.Random(seed),
        )
        websocket_client = KrakenWebSocketClient(
            rest_client, sim.ws_url, config=config, rng=random.Random(seed + 1)
        )
        # The constructor and lifecycle of the original specification.
        balance_manager = BalanceManager(
            websocket_client=websocket_client, rest_client=rest_client, config=config, clock=clock
        )
        await balance_manager.initialize()
        try:
            await _steps(checks, balance_manager, sim, clock)
        except MissingValueError as exc:
            checks.check(str(exc), False)
        finally:
            await balance_manager.close()
    verdict = "every check passed" if checks.all_passed else f"{len(checks.failed)} check(s) failed"
    print(f"\n{checks.passed} passed, {len(checks.failed)} failed: {verdict}", file=out)
    return checks.all_passed


async def _steps(
    checks: Checks, balance_manager: BalanceManager, sim: SimulatedKraken, clock: Clock
) -> None:
    def mode() -> ServingMode:
        return balance_manager.serving_mode

    def held(asset: str) -> Decimal | None:
        value = balance_manager.sync_view().get_balance(asset)
        return value.balance if value is not None else None

    def hold(asset: str) -> Decimal | None:
        value = balance_manager.sync_view().get_balance(asset)
        return value.hold_trade if value is not None else None

    # 1 -------------------------------------------------------------------------------
    checks.step("WebSocket V2 integration")
    streaming = await eventually(
        lambda: (
            mode() is ServingMode.WEBSOCKET
            and balance_manager.get_status()["websocket"]["holds_live"]
        ),
        clock,
    )
    status = balance_manager.get_status()
    checks.say(f"WebSocket connected: {status['websocket']['connected']}")
    checks.check("the manager streams balances and holds over WebSocket v2", streaming)
    usdt_balance = _present(await balance_manager.get_balance("USDT"), "the USDT balance")
    checks.say(f"USDT Balance: {usdt_balance['free']}")
    checks.check("USDT free equals the exchange's", usdt_balance["free"] == sim.free()["USDT"])
    all_balances = await balance_manager.get_all_balances()
    for asset, data in all_balances.items():
        checks.say(f"{asset}: {data['balance']} (free: {data['free']})")
    checks.check(
        "get_all_balances() equals the exchange's balances",
        {a: d["balance"] for a, d in all_balances.items()} == sim.balances(),
    )

    # 2 -------------------------------------------------------------------------------
    checks.step("Real-time balance updates (callbacks)")
    updates: list[BalanceChange] = []
    changes: list[BalanceChange] = []

    async def on_balance_update(balance_data: BalanceChange) -> None:
        updates.append(balance_data)

    async def on_balance_change(balance_data: BalanceChange) -> None:
        changes.append(balance_data)

    balance_manager.register_callback("balance_update", on_balance_update)
    balance_manager.register_callback("balance_change", on_balance_change)
    sim.deposit("BTC", "0.25")
    checks.say("deposited 0.25 BTC on the exchange")
    arrived = await eventually(lambda: held("BTC") == sim.balances()["BTC"], clock)
    checks.check(f"the deposit shows up: BTC = {held('BTC')}", arrived)
    btc_updates = [u for u in updates if u["asset"] == "BTC"]
    checks.check(
        "balance_update called with the new BTC balance, via websocket",
        bool(btc_updates)
        and btc_updates[-1]["balance"] == sim.balances()["BTC"]
        and btc_updates[-1]["source"] == "websocket",
    )
    checks.check(
        "balance_change called (a 20 % move is significant)",
        any(c["asset"] == "BTC" for c in changes),
    )

    # 3 -------------------------------------------------------------------------------
    checks.step("Holds follow open orders")
    order = sim.place_order("BTC/USD", "buy", "limit", "0.01", price="30000")
    checks.say(f"placed a limit buy of 0.01 BTC at 30000 USD ({order.order_id})")
    holding = await eventually(lambda: hold("USD") == sim.holds().get("USD"), clock)
    usd = _present(await balance_manager.get_balance("USD"), "the USD balance")
    checks.say(f"USD balance {usd['balance']}, held {usd['hold_trade']}, free {usd['free']}")
    checks.check(
        "USD hold and free match the exchange",
        holding and usd["free"] == sim.free()["USD"],
    )
    sim.cancel_order(order.order_id)
    released = await eventually(lambda: not hold("USD"), clock)
    checks.check("cancelling the order releases the hold", released)

    # 4 -------------------------------------------------------------------------------
    checks.step("Validation")
    validator = _present(balance_manager.validator, "the validator")
    usdt_balance = _present(await balance_manager.get_balance("USDT"), "the USDT balance")
    validation = validator.validate_single_balance(
        "USDT", usdt_balance["balance"], usdt_balance["hold_trade"]
    )
    checks.check("validate_single_balance accepts the live USDT balance", validation.is_valid)
    bad = validator.validate_single_balance("BTC", "1", "2")
    for issue in bad.issues:
        checks.say(f"- {issue.message}")
    checks.check(
        "a hold above the balance is refused (hold_exceeds_balance)",
        not bad.is_valid and any(i.rule == "hold_exceeds_balance" for i in bad.issues),
    )
    validation_result = await balance_manager.validate_all_balances()
    checks.check(
        f"validate_all_balances(): {validation_result.checked} balances, no error",
        validation_result.is_valid,
    )

    # 5 -------------------------------------------------------------------------------
    checks.step("History tracking and trend analysis")
    history = balance_manager.history.get_asset_history("BTC", limit=10)
    for entry in history:
        checks.say(f"BTC: {entry.balance} at {entry.timestamp:.3f} ({entry.source.value})")
    checks.check(
        "the history's newest BTC entry is the exchange's balance",
        bool(history) and history[-1].balance == sim.balances()["BTC"],
    )
    trend = await balance_manager.history.analyze_balance_trend("BTC", analysis_hours=1)
    if trend is not None:
        checks.say(f"BTC trend: {trend.trend_direction} (strength: {trend.trend_strength:.2f})")
    checks.check(
        "the BTC trend is increasing", trend is not None and trend.trend_direction == "increasing"
    )

    # 6 -------------------------------------------------------------------------------
    checks.step("REST API fallback (the WebSocket goes silent)")
    sim.faults.go_silent()
    checks.say("the exchange's WebSocket stops sending anything (the socket stays open)")
    fell_back = await eventually(lambda: mode() is ServingMode.REST, clock)
    checks.check("the manager serves from REST within websocket_timeout", fell_back)
    sim.deposit("ETH", "1")
    checks.say("deposited 1 ETH while the WebSocket is silent")
    polled = await eventually(lambda: held("ETH") == sim.balances()["ETH"], clock)
    eth = await balance_manager.get_balance("ETH")
    checks.check(
        "the deposit shows up through REST polling",
        polled and eth is not None and eth["source"] == "rest",
    )

    # 7 -------------------------------------------------------------------------------
    checks.step("Error handling: REST fails too")
    sim.faults.http_error(times=None)
    checks.say("the exchange's REST API now answers HTTP 520 as well")
    stale = await eventually(lambda: mode() is ServingMode.CACHE, clock)
    btc = await balance_manager.get_balance("BTC")
    checks.check(
        "the last known values are still served, marked 'cache'",
        stale and btc is not None and btc["source"] == "cache",
    )
    try:
        await balance_manager.get_balance("BTC", max_age=0.5)
        refused = False
    except StaleBalanceError as exc:
        checks.say(f"get_balance('BTC', max_age=0.5) -> StaleBalanceError: {exc}")
        refused = True
    checks.check("a caller that needs fresh data gets an error, not a stale value", refused)

    # 8 -------------------------------------------------------------------------------
    checks.step("Recovery")
    sim.faults.clear()
    checks.say("all faults cleared")
    recovered = await eventually(lambda: mode() is ServingMode.WEBSOCKET, clock)
    checks.check("the manager streams over WebSocket again", recovered)
    sim.deposit("USDT", "10")
    checks.say("deposited 10 USDT")
    streamed = await eventually(lambda: held("USDT") == sim.balances()["USDT"], clock)
    usdt_now = await balance_manager.get_balance("USDT")
    checks.check(
        "the deposit arrives over WebSocket",
        streamed and usdt_now is not None and usdt_now["source"] == "websocket",
    )
    converged = await eventually(
        lambda: (
            not compare_with_exchange(
                balance_manager.sync_view().get_all_balances(), sim.balances(), sim.holds()
            )
        ),
        clock,
    )
    checks.check("every balance, hold and free amount equals the exchange's", converged)

    # 9 -------------------------------------------------------------------------------
    checks.step("Status and statistics")
    status = balance_manager.get_status()
    stats = balance_manager.get_statistics()
    cache_stats = balance_manager.cache.get_statistics()
    checks.say(f"WebSocket connected: {status['websocket']['connected']}")
    checks.say(f"Cache hit rate: {status['cache']['hit_rate_percent']:.1f}%")
    checks.say(f"Tracked assets: {status['tracked_assets']}")
    checks.say(f"Total API calls: {stats['rest_api_calls']}")
    checks.say(f"Validation failures: {stats['validation_failures']}")
    checks.say(
        f"Fallbacks: {stats['fallbacks']}, recoveries: {stats['recoveries']}, "
        f"reconnects: {stats['reconnects']}"
    )
    checks.say(
        f"cache.get_statistics(): {cache_stats['hits']} hits, {cache_stats['misses']} misses"
    )
    checks.check(
        "the statistics record the fallbacks and recoveries",
        stats["fallbacks"] >= 1 and stats["recoveries"] == stats["fallbacks"],
    )
    checks.check("no callback failed", stats["callback_errors"] == 0)


def main(argv: list[str] | None = None) -> int:
    """Run the example; returns 0 if every check passed, 1 otherwise (130 on Ctrl-C)."""
    del argv  # no options
    # The manager's warnings (a failed REST poll...) are part of the story.
    logging.basicConfig(level=logging.WARNING, format="    (log) %(levelname)s: %(message)s")
    try:
        ok = asyncio.run(run_example(sys.stdout))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
