"""Churn: random activity and random faults of every kind; the exact truth at quiet points.

Issue 10 ("keep it closed"). A :class:`~balance_manager.BalanceManager` with the library's
default options streams from a :class:`~balance_manager.simulator.SimulatedKraken` over
loopback, both on one :class:`~balance_manager.testing.ManualClock`, for a number of rounds.
Each round:

1. **Burst.** 6 to 12 random operations on the account: deposits, withdrawals within free
   funds, limit orders (buy and sell, resting or crossing) on the simulator's seven pairs,
   full and partial fills, cancels and price moves that fill the resting orders they cross,
   with the clock moving 0 to 1 s between them, and now and then a bot's read
   (``get_balance(asset, max_age=...)``). Between them, 2 or 3 fault scenarios drawn from
   a shuffled deck of every scenario (so each comes up every few rounds):

   * every :class:`~balance_manager.simulator.model.faults.FaultKind`: ``ws_drop``; ``ws_silence``
     short (2-3 s, activity after it) and long (12-20 s, beyond ``websocket_timeout``);
     ``ws_lose`` on ``balances`` or ``executions`` (a lost order event is an executions-only
     loss; a later frame of the channel reveals the gap); ``ws_delay`` short (1-5 s) and long
     (15 s); ``ws_malformed``; ``ws_skip_sequence``; ``ws_duplicate``; ``ws_reorder``;
     ``token_reject`` and ``token_expire`` (with what makes the client subscribe again);
     ``http_error``, ``html_page``, ``rate_limit``, ``service_unavailable``,
     ``invalid_nonce``, ``lockout``, ``slow_response`` and ``slow_answer`` (each followed by a bot's
     ``refresh_all_balances()`` every 5 s until a REST call meets it);
   * maintenance (orders refused for a few seconds); ``sim.restart()``; the exchange down
     for 5-20 s with activity meanwhile; the manager restarted (a new process on the same
     history file) while the exchange is down, then the exchange back.

   A fault acts only on an opportunity (a frame, a subscription, a REST call), so after each
   injection activity goes on until it fired (up to ``FIRE_LIMIT``: a reconnect may wait out
   an open breaker); a silence then runs its full length, with activity. A ``ws_lose`` or
   ``ws_reorder`` that fired is followed, once the stream is back, by one more frame of its
   channel: without one, nothing on the connection could reveal the loss.
2. **Tail** (two rounds in three). Faults are cleared and the stream is let come back; then a
   short ``ws_silence`` (2.5-3.5 s, below ``websocket_timeout``) with one operation during it and
   **no later activity**: a deposit or withdrawal (``silent_loss``), or an order cancelled or
   placed (``silent_exec_loss``: only an ``executions`` frame is lost, no ledger entry).
   The clock runs through the silence.
3. **Quiet point.** Operations stop, every fault is cleared, the exchange is online and
   listening. The clock is driven in 0.5 s steps. The round **converges** at the first step
   from which every asset's ``balance``, ``hold_trade`` and ``free`` equal the exchange's
   (harness ``mismatches``), staying equal for ``STABLE`` seconds and at least until
   ``QUIET_MIN``; then ``get_balance(asset, max_age=5)`` of every asset must return the
   exchange's value or raise ``StaleBalanceError``. At every step from ``FRESH_GRACE`` on,
   a value that ``get_balance(asset, max_age=5)`` would return (age at most 5 s, whatever
   its source says) must equal the exchange's: a wrong value presented as fresh is the worst
   bug there is.

Bounds, in clock seconds from the quiet point, from the library's defaults
(``websocket_timeout`` 10, ``rest_api_timeout`` 15, ``rest_poll_interval`` 5):

* ``BOUND`` = 10 + 15 + 5 = **30**: a stream stuck or silent is declared dead within
  ``websocket_timeout`` (or a loss it cannot see is noticed and reconciled, issue 10 item 1);
  the REST read that repairs the values may be a request that was in flight when the faults
  were cleared, answered only at ``rest_api_timeout``; and the next poll comes
  ``rest_poll_interval`` later.
* After ``EGeneral:Temporary lockout`` the client holds private calls back for
  ``LOCKOUT_PROBE_INTERVAL`` (60 s) from the lockout: the bound is that end plus ``BOUND``,
  also in the rounds after the lockout's own while the hold lasts.
* While the circuit breaker is open no REST call leaves: the bound is the moment it lets a
  probe through (``retry_after``, re-read at every step: a failed probe doubles the period)
  plus ``BOUND``.
* ``FRESH_GRACE`` = ``max_age`` + ``websocket_timeout`` = **15**: a value the stream
  delivers is as old as the stream's lag, and a stream lagging (silent) beyond
  ``websocket_timeout`` is declared dead; so once the exchange has been quiet that long,
  anything served as at most 5 s old must be the truth.

While the manager serves stale values after a restart with the exchange down, every value
it serves must still be the last truth it could know (no activity happens between the stop
and the check): a restored balance without its hold overstates ``free``.

A round that fails is watched ``DIAGNOSE`` more clock seconds (does it ever converge, what is
served as fresh), described in the failure message (fault sequence, operations, served
values with source and age, counters), and the manager is then replaced by a fresh one so the
next rounds start clean. The test fails at the end, listing every failed round, and (with
the default number of rounds or more) if a scenario was never drawn or a fault kind never
fired. With ``-s`` it prints rounds, operations, scenarios, faults fired by kind, the worst
and mean time to converge, and one line per round.

Environment: ``BALANCE_MANAGER_CHURN_SEED`` (default 1) seeds everything (the simulator,
the clients' jitter and every choice); ``BALANCE_MANAGER_CHURN_ROUNDS`` (default 12) is
the number of rounds of ``test_churn`` (part of ``make test``, under 20 s of real time when
rounds converge); ``test_churn_long`` runs ``BALANCE_MANAGER_CHURN_LONG_ROUNDS``
(default 200) rounds and is marked ``long`` (run by ``make test-long`` or
``pytest -m long``, left out of ``make test``); ``BALANCE_MANAGER_CHURN_TAILS=0`` leaves
the tails out (to see what else fails while a tail's failure is known). Run with ``-s``::

    .venv/bin/pytest tests/reliability/test_churn.py -q -s -k "not long"
    BALANCE_MANAGER_CHURN_SEED=7 .venv/bin/pytest tests/reliability/test_churn.py -q -s -m long
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from balance_manager import BalanceManager, ServingMode, Source
from balance_manager.config import BalanceManagerConfig
from balance_manager.core.breaker import BreakerState
from balance_manager.exceptions import (
    ExchangeError,
    ProtocolError,
    SourceError,
    StaleBalanceError,
)
from balance_manager.kraken.rest_client import LOCKOUT_PROBE_INTERVAL, KrakenRestClient
from balance_manager.simulator import SimulatedKraken
from balance_manager.simulator.model.faults import Fault, FaultKind
from balance_manager.simulator.model.instruments import DEFAULT_PAIRS
from balance_manager.simulator.model.ledger import Order
from balance_manager.testing import ManualClock

from .harness import Observer, build_manager, mismatches, reliability_config, start_streaming

pytestmark = [pytest.mark.network, pytest.mark.asyncio]

T = TypeVar("T")

CHURN_SEED = int(os.environ.get("BALANCE_MANAGER_CHURN_SEED", "1"))
DEFAULT_ROUNDS = 12
CHURN_ROUNDS = int(os.environ.get("BALANCE_MANAGER_CHURN_ROUNDS", str(DEFAULT_ROUNDS)))
LONG_ROUNDS = int(os.environ.get("BALANCE_MANAGER_CHURN_LONG_ROUNDS", "200"))
#: ``0`` leaves the tails out (to look past a known tail failure at what else fails).
TAILS = os.environ.get("BALANCE_MANAGER_CHURN_TAILS", "1") != "0"

_DEFAULTS = BalanceManagerConfig()
#: The ``max_age`` a bot asks for in the checks.
MAX_AGE = 5.0
#: Clock seconds per step (the harness's step).
STEP = 0.5
#: Convergence bound with REST available (see the module docstring).
BOUND = _DEFAULTS.websocket_timeout + _DEFAULTS.rest_api_timeout + _DEFAULTS.rest_poll_interval
#: From this long after the quiet point, a value served as fresh must be the truth.
FRESH_GRACE = MAX_AGE + _DEFAULTS.websocket_timeout
#: Clock seconds the equality must hold for a round to count as converged.
STABLE = 3.0
#: The shortest quiet period: whatever was in flight on a live stream has arrived by then.
QUIET_MIN = _DEFAULTS.websocket_timeout + STEP
#: Clock seconds a failed round is watched beyond its bound, for the diagnosis.
DIAGNOSE = 30.0
#: Clock seconds the stream is waited for (before a tail, at the end of a quiet period): a
#: reconnect waits out the backoff (up to reconnect_max_delay), a lockout's hold or an open
#: breaker's period. Not a bound: the time it took is reported.
STREAM_LIMIT = 180.0
#: Clock seconds a fault scenario waits (with activity) for its fault to meet an opportunity:
#: an open breaker's doubled period (120 s) plus a reconnect's backoff (30 s).
FIRE_LIMIT = 150.0
#: Clock seconds a bot's call may take before it counts as hung (retries and timeouts included).
CALL_LIMIT = 300.0

CHANNELS = ("balances", "executions")
ASSETS = ("USD", "EUR", "BTC", "ETH", "DOT", "USDT", "SOL")
#: Largest deposit per asset (a random fraction of it is deposited).
DEPOSIT_SCALE = {
    "USD": Decimal(5000),
    "EUR": Decimal(1000),
    "BTC": Decimal("0.5"),
    "ETH": Decimal(5),
    "DOT": Decimal(100),
    "USDT": Decimal(1000),
    "SOL": Decimal(20),
}
OPERATIONS = ("deposit", "withdraw", "order", "fill", "partial_fill", "cancel", "price")
OPERATION_WEIGHTS = (18, 14, 26, 10, 8, 12, 12)

#: Fault scenarios placed in the middle of a burst (activity continues after them).
MID_SCENARIOS = (
    "ws_drop",
    "ws_silence_short",
    "ws_silence_long",
    "ws_lose",
    "ws_delay",
    "ws_delay_long",
    "ws_malformed",
    "ws_skip_sequence",
    "ws_duplicate",
    "ws_reorder",
    "token_reject",
    "token_expire",
    "http_error",
    "html_page",
    "rate_limit",
    "service_unavailable",
    "invalid_nonce",
    "lockout",
    "slow_response",
    "slow_answer",
    "maintenance",
    "sim_restart",
    "exchange_down",
    "manager_restart_down",
)
#: Scenarios that end a burst: a short silence with one operation and nothing after it.
TAIL_SCENARIOS = ("silent_loss", "silent_exec_loss", None)

_REST_SHORTCUTS: dict[str, Callable[[SimulatedKraken, int], Fault]] = {
    "http_error": lambda sim, n: sim.faults.http_error(times=n),
    "html_page": lambda sim, n: sim.faults.html_page(times=n),
    "rate_limit": lambda sim, n: sim.faults.rate_limit(times=n),
    "service_unavailable": lambda sim, n: sim.faults.service_unavailable(times=n),
    "invalid_nonce": lambda sim, n: sim.faults.invalid_nonce(times=n),
}

#: Counters shown in a diagnosis (manager, then WebSocket client).
_MANAGER_COUNTERS = (
    "hold_mismatches",
    "source_inconsistencies",
    "rest_refreshes",
    "rest_failures",
    "fallbacks",
    "recoveries",
    "snapshots",
    "hold_updates",
    "continuity_breaks",
    "reconnects",
)
_WS_COUNTERS = (
    "gaps",
    "resyncs",
    "silence_timeouts",
    "snapshot_timeouts",
    "subscription_failures",
    "duplicates",
    "rejected",
)


@dataclass
class RoundReport:
    """What one round did and how the manager fared.

    Attributes:
        number: 1-based round number.
        scenarios: fault scenarios, in order (the tail last).
        timeline: ``t+seconds what`` lines from the round's start (operations and faults).
        bound: the convergence bound that applied (clock seconds from the quiet point).
        bound_reason: why that bound (``default``, ``lockout``, ``breaker open``).
        converged: clock seconds from the quiet point to convergence, ``None`` if not
            within the bound.
        stream_back: clock seconds from the quiet point until the manager served from the
            WebSocket again (``None``: not during the quiet period).
        failures: what went wrong (empty: the round passed).
    """

    number: int
    scenarios: list[str] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)
    bound: float = BOUND
    bound_reason: str = "default"
    converged: float | None = None
    stream_back: float | None = None
    failures: list[str] = field(default_factory=list)


@dataclass
class ChurnSummary:
    """Totals of a churn run (printed with ``-s``)."""

    rounds: list[RoundReport]
    operations: Counter[str]
    refused: Counter[str]
    scenarios: Counter[str]
    fired: Counter[str]
    reads: int
    real_seconds: float
    clock_seconds: float

    def converge_times(self) -> list[float]:
        """Convergence times of the rounds that converged within their bound."""
        return [r.converged for r in self.rounds if r.converged is not None]

    def text(self, seed: int) -> str:
        """A human-readable summary."""
        times = self.converge_times()
        worst = max(times) if times else float("nan")
        mean = sum(times) / len(times) if times else float("nan")
        by_reason: dict[str, list[float]] = {}
        for report in self.rounds:
            if report.converged is not None:
                by_reason.setdefault(report.bound_reason, []).append(report.converged)
        streams = [r.stream_back for r in self.rounds if r.stream_back is not None]
        failed = [r for r in self.rounds if r.failures]
        lines = [
            f"churn seed={seed}: {len(self.rounds)} rounds, {sum(self.operations.values())} "
            f"operations applied ({sum(self.refused.values())} refused by the exchange), "
            f"{self.reads} bot reads, {sum(self.fired.values())} faults fired, "
            f"{self.real_seconds:.1f} s real, {self.clock_seconds:.0f} clock s",
            "  operations: " + _counts(self.operations),
            "  refused: " + (_counts(self.refused) or "none"),
            "  scenarios: " + _counts(self.scenarios),
            "  faults fired (simulator): " + _counts(self.fired),
            f"  converged: {len(times)}/{len(self.rounds)} rounds; time to converge "
            f"worst {worst:.1f} s, mean {mean:.1f} s (clock, from the quiet point)",
        ]
        for reason, values in sorted(by_reason.items()):
            lines.append(
                f"    bound '{reason}': {len(values)} rounds, worst {max(values):.1f} s, "
                f"mean {sum(values) / len(values):.1f} s"
            )
        if streams:
            lines.append(
                f"  back on the WebSocket: worst {max(streams):.1f} s, "
                f"mean {sum(streams) / len(streams):.1f} s"
            )
        lines.append(f"  failed rounds: {[r.number for r in failed] or 'none'}")
        lines.append("  per round (converged after / bound, clock s from the quiet point):")
        for report in self.rounds:
            converged = "-" if report.converged is None else f"{report.converged:.1f}"
            verdict = "FAIL" if report.failures else "ok"
            lines.append(
                f"    {report.number:3d} {verdict:4s} {converged:>6s} / {report.bound:5.1f} "
                f"{', '.join(report.scenarios)}"
            )
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items()))


class Churn:
    """Runs churn rounds against one simulator, replacing the manager when a round fails.

    Args:
        sim: the running simulator.
        clock: the shared manual clock.
        db: the history file (kept across manager restarts, as a process's would be).
        seed: seeds every choice and the clients' jitter.
    """

    def __init__(self, sim: SimulatedKraken, clock: ManualClock, db: Path, seed: int) -> None:
        self.sim = sim
        self.clock = clock
        self.db = db
        self.seed = seed
        self.rng = random.Random(seed)
        self.operations: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.scenarios: Counter[str] = Counter()
        self.reads = 0
        self._builds = 0
        self._mid_deck: list[str] = []
        self._tail_deck: list[str | None] = []
        self._reveal: list[tuple[Fault, str]] = []
        self._last_change: dict[str, str] = {}
        self._report = RoundReport(0)
        self._round_start = clock.monotonic()
        self._history_mark = 0
        self._baseline: dict[str, Any] = {}
        self.manager: BalanceManager | None = None
        self.observer: Observer | None = None

    # -- the manager -------------------------------------------------------------------

    @property
    def live(self) -> BalanceManager:
        """The manager under test."""
        assert self.manager is not None
        return self.manager

    @property
    def breaker_state(self) -> BreakerState:
        rest = self.live.rest_client
        assert isinstance(rest, KrakenRestClient)
        return rest.breaker.state

    def _breaker_wait(self) -> float:
        """Seconds until the breaker lets a call through (0 when closed)."""
        rest = self.live.rest_client
        assert isinstance(rest, KrakenRestClient)
        if rest.breaker.state is BreakerState.CLOSED:
            return 0.0
        return rest.breaker.retry_after(self.clock.monotonic())

    def _build(self) -> None:
        self._builds += 1
        config = reliability_config(self.db)
        self.manager = build_manager(
            self.sim, self.clock, config, seed=self.seed * 1000 + 2 * self._builds
        )
        self.observer = Observer(self.manager, self.sim, self.clock, record_updates=False)
        self._baseline = self._counters()

    async def start(self) -> None:
        """Build the first manager and wait until it streams."""
        self._build()
        await start_streaming(self.live)

    async def close(self) -> None:
        """Close the manager (and stop watching)."""
        if self.observer is not None:
            self.observer.close()
            self.observer = None
        if self.manager is not None:
            await self.manager.close()
            self.manager = None

    async def restart_manager(self) -> None:
        """A new manager on the same history file, initialised while the clock runs."""
        await self.close()
        self._build()
        await self.call(self.live.initialize(), "initialize")

    # -- time --------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.monotonic() - self._round_start

    def log(self, what: str) -> None:
        self._report.timeline.append(f"t+{self.now():.1f} {what}")

    async def step(self, seconds: float = STEP) -> None:
        """Advance the clock, let loopback I/O run, check the served values' invariants."""
        self.clock.advance(seconds)
        for _ in range(3):
            await asyncio.sleep(0.002)
            for _ in range(4):
                await asyncio.sleep(0)
        assert self.observer is not None
        self.observer.check_served_values()

    async def steps(self, count: int) -> None:
        for _ in range(count):
            await self.step()

    async def drive_until(self, predicate: Callable[[], bool], limit: float) -> bool:
        """Step until ``predicate()`` holds or ``limit`` clock seconds passed."""
        moved = 0.0
        while not predicate():
            if moved >= limit:
                return False
            await self.step()
            moved += STEP
        return True

    async def call(self, awaitable: Awaitable[T], what: str) -> T:
        """Await a bot's call while the clock runs (retries and timeouts sleep on it).

        Raises:
            AssertionError: the call did not end within ``CALL_LIMIT`` clock seconds.
        """
        task = asyncio.ensure_future(awaitable)
        moved = 0.0
        while not task.done():
            for _ in range(2):
                await asyncio.sleep(0.002)
            if task.done():
                break
            if moved >= CALL_LIMIT:
                task.cancel()
                raise AssertionError(f"{what} did not return within {CALL_LIMIT:g} clock s (hung)")
            self.clock.advance(STEP)
            moved += STEP
        return task.result()

    # -- a bot's reads -------------------------------------------------------------------

    async def user_refresh(self) -> None:
        """``refresh_all_balances()`` as a bot calls it; a failure is the source's, not a bug."""
        self.reads += 1
        try:
            await self.call(self.live.refresh_all_balances(), "refresh_all_balances()")
        except (SourceError, ProtocolError) as error:
            self.log(f"read refresh_all_balances() failed: {type(error).__name__}")

    async def user_read(self) -> None:
        """``get_balance(asset, max_age)``: a value that young, or ``StaleBalanceError``."""
        self.reads += 1
        asset = self.rng.choice(sorted(self.sim.balances()))
        max_age = self.rng.choice([1.0, MAX_AGE, 10.0])
        asked_at = self.clock.time()
        try:
            value = await self.call(
                self.live.get_balance(asset, max_age=max_age), f"get_balance({asset})"
            )
        except StaleBalanceError:
            self.log(f"read {asset} max_age={max_age:g}: StaleBalanceError")
            return
        if value is None:
            return
        # max_age is measured from the call: the value was known current no
        # earlier than max_age before it (a slow refresh adds its own duration).
        age = self.live.age_of(value)
        if age is None or age > max_age + (self.clock.time() - asked_at):
            self.fail(
                f"get_balance({asset!r}, max_age={max_age:g}) returned a value {age} s old "
                f"(source {value.source.value})"
            )

    # -- operations on the exchange ----------------------------------------------------------

    def operate(self, kind: str | None = None) -> None:
        """One random operation (or one of ``kind``); refusals by the exchange are counted."""
        name = kind or self.rng.choices(OPERATIONS, OPERATION_WEIGHTS)[0]
        handler = getattr(self, f"_op_{name}")
        before = self._truth()
        try:
            done = handler()
        except ExchangeError as error:
            self.refused[error.code] += 1
            self.log(f"{name} refused: {error.code}")
            return
        if done is not None:
            self.operations[name] += 1
            self.log(done)
            after = self._truth()
            for asset in set(before) | set(after):
                if before.get(asset) != after.get(asset):
                    self._last_change[asset] = f"t+{self.now():.1f} {done}"

    def _truth(self) -> dict[str, tuple[Decimal, Decimal]]:
        """The exchange's (balance, hold) of every asset."""
        holds = self.sim.holds()
        return {a: (b, holds.get(a, Decimal(0))) for a, b in self.sim.balances().items()}

    def _decimals(self, asset: str) -> int:
        return self.sim.exchange.instruments.decimals(asset)

    def _fraction(self, amount: Decimal, low: int, high: int, decimals: int) -> Decimal:
        """``amount`` times a random fraction ``low/1000..high/1000``, cut to ``decimals``."""
        part = amount * Decimal(self.rng.randint(low, high)) / 1000
        return part.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN)

    def _open_orders(self) -> list[Order]:
        return list(self.sim.account().open_orders())

    def _op_deposit(self) -> str | None:
        asset = self.rng.choice(ASSETS)
        amount = self._fraction(DEPOSIT_SCALE[asset], 1, 1000, min(self._decimals(asset), 6))
        if amount <= 0:
            return None
        self.sim.deposit(asset, amount)
        return f"deposit {amount} {asset}"

    def _op_withdraw(self) -> str | None:
        free = {a: v for a, v in self.sim.free().items() if v > 0}
        if not free:
            return None
        asset = self.rng.choice(sorted(free))
        spot = self.sim.wallets().get((asset, "spot", "main"), Decimal(0))
        amount = self._fraction(min(free[asset], spot), 10, 300, self._decimals(asset))
        if amount <= 0:
            return None
        self.sim.withdraw(asset, amount)
        return f"withdraw {amount} {asset}"

    def _op_order(self, *, resting: bool | None = None) -> str | None:
        rng = self.rng
        pair = rng.choice(DEFAULT_PAIRS)
        side = rng.choice(["buy", "sell"])
        market = self.sim.price(pair.symbol)
        crossing = rng.random() < 0.25 if resting is None else not resting
        if side == "buy":
            factor = Decimal("1.01") if crossing else Decimal(rng.randint(500, 950)) / 1000
        else:
            factor = Decimal("0.99") if crossing else Decimal(rng.randint(1050, 2000)) / 1000
        price = (market * factor).quantize(Decimal(1).scaleb(-pair.pair_decimals), ROUND_DOWN)
        free = self.sim.free()
        if side == "sell":
            volume = self._fraction(free.get(pair.base, Decimal(0)), 20, 300, 8)
        else:
            budget = self._fraction(free.get(pair.quote, Decimal(0)), 20, 300, 8)
            volume = (budget / price).quantize(Decimal("1e-8"), ROUND_DOWN)
        volume = max(volume, pair.ordermin)
        order = self.sim.place_order(pair.symbol, side, "limit", volume, price=price)
        state = "resting" if order.is_open else order.status
        return f"order {side} {volume} {pair.symbol} @ {price} ({state}, {order.order_id})"

    def _op_fill(self) -> str | None:
        orders = self._open_orders()
        if not orders:
            return self._op_order()
        order = self.rng.choice(orders)
        self.sim.fill(order.order_id)
        return f"fill {order.order_id} ({order.side} {order.remaining} {order.symbol})"

    def _op_partial_fill(self) -> str | None:
        orders = self._open_orders()
        if not orders:
            return self._op_order()
        order = self.rng.choice(orders)
        volume = self._fraction(order.remaining, 100, 900, 8)
        if not 0 < volume < order.remaining:
            return None
        self.sim.fill(order.order_id, volume)
        return f"partial fill {volume} of {order.order_id} ({order.side} {order.symbol})"

    def _op_cancel(self) -> str | None:
        orders = self._open_orders()
        if not orders:
            return self._op_order(resting=True)
        order = self.rng.choice(orders)
        self.sim.cancel_order(order.order_id)
        return f"cancel {order.order_id} ({order.side} {order.remaining} {order.symbol})"

    def _op_price(self) -> str | None:
        rng = self.rng
        orders = self._open_orders()
        if orders and rng.random() < 0.5:
            order = rng.choice(orders)
            symbol = order.symbol
            assert order.limit_price is not None
            factor = Decimal("0.999") if order.side == "buy" else Decimal("1.001")
            target = order.limit_price * factor
        else:
            symbol = rng.choice(DEFAULT_PAIRS).symbol
            target = self.sim.price(symbol) * Decimal(rng.randint(970, 1030)) / 1000
        trades = self.sim.set_price(symbol, target)
        return f"price {symbol} -> {self.sim.price(symbol)} ({len(trades)} fills)"

    def _op_resting_order(self) -> str | None:
        return self._op_order(resting=True)

    def operate_on(self, channel: str) -> None:
        """An operation that sends a frame on ``channel``: a deposit, or a resting order."""
        self.operate("deposit" if channel == "balances" else "resting_order")

    # -- fault scenarios -------------------------------------------------------------------------

    def _draw_mid(self) -> str:
        if not self._mid_deck:
            self._mid_deck = list(MID_SCENARIOS)
            self.rng.shuffle(self._mid_deck)
        return self._mid_deck.pop()

    def _draw_tail(self) -> str | None:
        if not self._tail_deck:
            self._tail_deck = list(TAIL_SCENARIOS)
            self.rng.shuffle(self._tail_deck)
        return self._tail_deck.pop()

    async def scenario(self, name: str) -> None:
        """Inject one fault scenario (some drive the clock and operate while they last)."""
        sim, rng, faults = self.sim, self.rng, self.sim.faults
        self.scenarios[name] += 1
        self._report.scenarios.append(name)
        self.log(
            f"FAULT {name} (serving {self.live.serving_mode.value}, "
            f"stream {self.live.get_status()['websocket']['state']})"
        )
        fault: Fault | None = None
        rest = False
        if name == "ws_drop":
            fault = faults.drop_websocket(after=rng.randint(0, 2))
        elif name == "ws_silence_short":
            fault = faults.go_silent(seconds=rng.choice([2.0, 2.5, 3.0]))
        elif name == "ws_silence_long":
            fault = faults.go_silent(seconds=rng.choice([12.0, 15.0, 20.0]))
        elif name == "ws_lose":
            channel = rng.choice(CHANNELS)
            fault = faults.lose_frame(channel=channel)
            self._reveal.append((fault, channel))
            self.log(f"  ws_lose on {channel}")
            self.operate_on(channel)
        elif name == "ws_delay":
            only = rng.choice([None, *CHANNELS])
            fault = faults.delay_frames(rng.choice([1.0, 3.0, 5.0]), channel=only)
        elif name == "ws_delay_long":
            fault = faults.delay_frames(15.0)
        elif name == "ws_malformed":
            only = rng.choice([None, *CHANNELS])
            fault = faults.malformed_frame(times=rng.randint(1, 3), channel=only)
        elif name == "ws_skip_sequence":
            fault = faults.skip_sequence(channel=rng.choice(CHANNELS))
        elif name == "ws_duplicate":
            fault = faults.duplicate_frame(times=rng.randint(1, 3), channel=rng.choice(CHANNELS))
        elif name == "ws_reorder":
            channel = rng.choice(CHANNELS)
            fault = faults.reorder_frames(channel=channel)
            self._reveal.append((fault, channel))
            self.log(f"  ws_reorder on {channel}")
        elif name == "token_reject":
            fault = faults.reject_token(times=rng.randint(1, 3))
            faults.drop_websocket()  # the reconnect's subscription meets it
        elif name == "token_expire":
            fault = faults.expire_token()
            faults.skip_sequence(channel="balances")  # the resync's subscription meets it
        elif name in _REST_SHORTCUTS:
            fault, rest = _REST_SHORTCUTS[name](sim, rng.randint(1, 3)), True
        elif name == "lockout":
            fault, rest = faults.lockout(), True
        elif name == "slow_response":
            fault, rest = faults.slow_response(rng.choice([5.0, 20.0])), True
        elif name == "slow_answer":
            fault, rest = faults.slow_answer(rng.choice([2.0, 5.0])), True
        elif name == "maintenance":
            faults.maintenance()
            await self._busy(rng.uniform(2.0, 6.0))
            faults.online()
            self.log("online")
        elif name == "sim_restart":
            await sim.restart()
        elif name == "exchange_down":
            await sim.stop()
            await self._busy(rng.uniform(5.0, 20.0))
            await sim.start()
            self.log("exchange up")
        elif name == "manager_restart_down":
            await self._manager_restart_while_down()
        else:  # pragma: no cover - a typo in the deck
            raise AssertionError(f"unknown scenario {name}")
        if fault is not None:
            await self._until_fired(fault, refresh=rest)

    async def _until_fired(self, fault: Fault, *, refresh: bool) -> None:
        """Keep the account (and, for a REST fault, a bot's refreshes) going until it fires.

        A fault acts only on an opportunity (a frame, a subscription, a REST call): one
        waiting for a reconnect or a closed breaker would otherwise be cleared unfired.
        """
        end = self.clock.monotonic() + FIRE_LIMIT
        next_refresh = self.clock.monotonic()
        while not fault.fired and self.clock.monotonic() < end:
            if refresh and self.clock.monotonic() >= next_refresh:
                await self.user_refresh()
                next_refresh = self.clock.monotonic() + _DEFAULTS.rest_poll_interval
                continue
            if self.rng.random() < 0.3:
                self.operate()
            await self.step()
        if not fault.fired:
            self.log(f"  {fault.kind.value} did not fire within {FIRE_LIMIT:g} s")
        elif fault.kind is FaultKind.WS_SILENCE:
            # A silence lasts its seconds with activity going on (the next settle or quiet
            # point would otherwise cut it short).
            while self.sim.faults.silenced():
                if self.rng.random() < 0.3:
                    self.operate()
                await self.step()
            self.log("  the silence ended")

    async def _busy(self, seconds: float) -> None:
        """Operate now and then for ``seconds`` of clock time."""
        end = self.clock.monotonic() + seconds
        while self.clock.monotonic() < end:
            if self.rng.random() < 0.5:
                self.operate()
            await self.step()

    async def _manager_restart_while_down(self) -> None:
        """Stop the exchange, restart the manager on its history, check what it serves.

        A resting order is placed first, so there is a hold to remember, and the manager
        is given ``BOUND`` to see it: what it serves after the restart is then checked
        against the exchange (unless it never caught up, which the quiet point reports).
        """
        self.operate("resting_order")
        manager = self.live
        knew = await self.drive_until(lambda: not mismatches(manager, self.sim), limit=BOUND)
        await self.sim.stop()
        self.log(f"exchange stopped; manager restarted (it {'knew' if knew else 'lagged'})")
        await self.restart_manager()
        if knew:
            self._check_restored()
        await self.user_read()  # the exchange is down: stale or refused, never older than asked
        await self._busy(self.rng.uniform(2.0, 8.0))
        await self.sim.start()
        self.log("exchange up")

    def _check_restored(self) -> None:
        """What a manager restarted while the exchange is down serves is the last truth."""
        truth, holds = self.sim.balances(), self.sim.holds()
        view = self.live.sync_view().get_all_balances()
        for asset in sorted(set(truth) | set(view)):
            value = view.get(asset)
            if value is None:
                continue  # not served: unknown, which is honest
            want = (truth.get(asset, Decimal(0)), holds.get(asset, Decimal(0)))
            got = (value.balance, value.hold_trade)
            if value.source is not Source.CACHE or got != want:
                self.fail(
                    f"restarted while the exchange is down, {asset} is served as "
                    f"balance {got[0]} hold {got[1]} free {value.free} "
                    f"(source {value.source.value}, age {self.live.age_of(value)}); the exchange "
                    f"had balance {want[0]} hold {want[1]} free {want[0] - want[1]} and nothing "
                    "changed since the manager before the restart had it right"
                )

    async def reveal_losses(self) -> None:
        """A frame on the channel of each fired ``ws_lose``/``ws_reorder`` (unfired ones go).

        The stream is let come back first, so the revealing frame is delivered.
        """
        fired = [(fault, channel) for fault, channel in self._reveal if fault.fired]
        self._reveal = []
        if not fired:
            return
        await self.settle()
        for fault, channel in fired:
            self.log(f"reveal {fault.kind.value} on {channel}")
            self.operate_on(channel)
        await self.step()

    def streaming(self) -> bool:
        """Whether the manager serves from the WebSocket with live holds."""
        manager = self.live
        return manager.serving_mode is ServingMode.WEBSOCKET and bool(
            manager.get_status()["websocket"]["holds_live"]
        )

    async def settle(self) -> None:
        """Clear faults and let the stream come back (before a tail's silence, a reveal)."""
        sim = self.sim
        self.clear_faults()
        sim.faults.online()
        if not sim.running:
            await sim.start()
        await self.drive_until(self.streaming, limit=STREAM_LIMIT)
        self.log(f"settled: serving {self.live.serving_mode.value}")

    async def tail(self, name: str) -> None:
        """A short silence, one operation during it, and no activity after it."""
        await self.settle()
        self.scenarios[name] += 1
        self._report.scenarios.append(name)
        # Longer than the client's silence threshold (QUIET_AFTER, 1.5 s) plus one clock
        # step of delivery slack: a shorter silence cannot be told from the normal
        # spacing of heartbeats, and only the periodic cross-check repairs what it hides.
        seconds = self.rng.choice([2.5, 3.0, 3.5])
        self.log(f"FAULT {name}: ws_silence {seconds:g} s")
        silence = self.sim.faults.go_silent(seconds=seconds)
        if name == "silent_loss":
            free = self.sim.free()
            kind = (
                "withdraw"
                if any(v > 0 for v in free.values()) and self.rng.random() < 0.6
                else "deposit"
            )
            self.operate(kind)
        else:
            if self._open_orders() and self.rng.random() < 0.7:
                self.operate("cancel")
            else:
                self.operate("resting_order")
        if not silence.fired:
            self.log("  (the silence did not fire: nothing was sent)")
        await self.drive_until(lambda: not self.sim.faults.silenced(), limit=seconds + STEP)

    # -- one round -----------------------------------------------------------------------------

    async def run_round(self, number: int) -> RoundReport:
        """Burst, tail, quiet point (see the module docstring)."""
        report = self._report = RoundReport(number)
        self._round_start = self.clock.monotonic()
        self._history_mark = len(self.sim.faults.history)
        self._baseline = self._counters()
        rng = self.rng
        try:
            count = rng.randint(6, 12)
            mids = rng.randint(2, 3)
            at = sorted(rng.sample(range(count), mids))
            for index in range(count):
                while at and at[0] == index:
                    at.pop(0)
                    await self.scenario(self._draw_mid())
                self.operate()
                if rng.random() < 0.15:
                    await self.user_read()
                await self.steps(rng.choice([0, 1, 1, 2]))
            await self.reveal_losses()
            tail = self._draw_tail() if TAILS else None
            if tail is not None:
                await self.tail(tail)
            await self.quiet()
        except AssertionError as error:
            self.fail(f"invariant broken: {error}")
        if report.failures:
            await self.reset()
        return report

    def fail(self, message: str) -> None:
        self._report.failures.append(message)

    def _lockout_end(self) -> float | None:
        """Clock time (from the round's start) when the last lockout's hold ends.

        Any round's lockout, not only this one's: a hold of 60 s outlasts a round that
        converged on the stream, and the next round's REST is still held back by it.
        """
        fired = [f.at for f in self.sim.faults.history if f.kind is FaultKind.LOCKOUT]
        if not fired:
            return None
        return max(fired) + LOCKOUT_PROBE_INTERVAL - self._round_start

    def clear_faults(self) -> None:
        """Clear every fault, noting those that never fired (for the timeline)."""
        unfired = [f.kind.value for f in self.sim.faults.active() if not f.fired]
        if unfired:
            self.log(f"cleared unfired faults {unfired}")
        self.sim.faults.clear()

    async def quiet(self) -> None:
        """Clear everything, stop operating, and demand the truth within the bound."""
        report, sim, clock = self._report, self.sim, self.clock
        self.clear_faults()
        sim.faults.online()
        if not sim.running:
            await sim.start()
        quiet_start = self.now()
        self.log("QUIET")
        start = clock.monotonic()
        lockout_end = self._lockout_end()
        if lockout_end is not None and lockout_end - quiet_start + BOUND > report.bound:
            report.bound = lockout_end - quiet_start + BOUND
            report.bound_reason = "lockout"
        equal_since: float | None = None
        fresh_wrong: dict[tuple[str, str], str] = {}
        diagnosis: str | None = None
        while True:
            await self.step()
            elapsed = clock.monotonic() - start
            wait = self._breaker_wait()
            if wait and elapsed + wait + BOUND > report.bound:
                report.bound = elapsed + wait + BOUND
                report.bound_reason = "breaker open"
            problems = mismatches(self.live, sim)
            if problems:
                equal_since = None
            elif equal_since is None:
                equal_since = elapsed
            streaming = self.streaming()
            if report.stream_back is None and streaming:
                report.stream_back = elapsed
            if elapsed >= FRESH_GRACE:
                for key, sample in self._served_as_fresh_but_wrong(elapsed).items():
                    fresh_wrong.setdefault(key, sample)
            if (
                equal_since is not None
                and elapsed - equal_since >= STABLE
                and elapsed >= QUIET_MIN
                and (streaming or elapsed >= STREAM_LIMIT)
            ):
                break  # converged; the next round starts with the stream back, if it came
            if diagnosis is None and problems and elapsed > report.bound:
                diagnosis = self._diagnose(problems, elapsed)
            if diagnosis is not None and elapsed >= report.bound + DIAGNOSE:
                break
        if equal_since is not None and equal_since <= report.bound:
            report.converged = equal_since
            await self._check_max_age_reads()
        else:
            later = (
                f"it converged {equal_since:.1f} s after the quiet point"
                if equal_since is not None
                else f"still not converged {report.bound + DIAGNOSE:.0f} s after the quiet point"
            )
            self.fail(
                f"not converged within {report.bound:.1f} s ({report.bound_reason}); {later}. "
                f"{diagnosis}"
            )
        for (asset, name), sample in sorted(fresh_wrong.items()):
            self.fail(f"wrong value presented as fresh: {asset}.{name} {sample}")

    def _served_as_fresh_but_wrong(self, elapsed: float) -> dict[tuple[str, str], str]:
        """Values ``get_balance(asset, max_age=MAX_AGE)`` would return that are not the truth."""
        manager = self.live
        truth, holds = self.sim.balances(), self.sim.holds()
        found: dict[tuple[str, str], str] = {}
        for asset, value in manager.sync_view().get_all_balances().items():
            age = manager.age_of(value)
            if age is None or age > MAX_AGE:
                continue  # get_balance(max_age) would refresh or refuse it
            want_balance = truth.get(asset, Decimal(0))
            want_hold = holds.get(asset, Decimal(0))
            for name, got, want in (
                ("balance", value.balance, want_balance),
                ("hold_trade", value.hold_trade, want_hold),
                ("free", value.free, want_balance - want_hold),
            ):
                if got != want:
                    found[(asset, name)] = (
                        f"= {got} (exchange {want}) served with source {value.source.value}, "
                        f"age {age:.1f} s, {elapsed:.1f} s into the quiet period "
                        f"(mode {manager.serving_mode.value})"
                    )
        return found

    async def _check_max_age_reads(self) -> None:
        """After convergence, ``get_balance(max_age)`` gives the truth or refuses."""
        truth, holds = self.sim.balances(), self.sim.holds()
        for asset in sorted(truth):
            self.reads += 1
            try:
                value = await self.call(
                    self.live.get_balance(asset, max_age=MAX_AGE), f"get_balance({asset})"
                )
            except StaleBalanceError:
                continue
            want = (truth[asset], holds.get(asset, Decimal(0)))
            if value is None:
                if want != (Decimal(0), Decimal(0)):
                    self.fail(f"get_balance({asset!r}, max_age=5) returned None; exchange {want}")
                continue
            if (value.balance, value.hold_trade) != want:
                self.fail(
                    f"get_balance({asset!r}, max_age=5) after convergence returned balance "
                    f"{value.balance} hold {value.hold_trade} (source {value.source.value}, age "
                    f"{self.live.age_of(value)}); exchange balance {want[0]} hold {want[1]}"
                )

    # -- diagnosis -------------------------------------------------------------------------------

    def _counters(self) -> dict[str, Any]:
        if self.manager is None:
            return {}
        stats = self.live.get_statistics()
        ws = stats["websocket"]
        values: dict[str, Any] = {name: stats.get(name, 0) for name in _MANAGER_COUNTERS}
        values.update({f"ws.{name}": ws.get(name, 0) for name in _WS_COUNTERS})
        return values

    def _diagnose(self, problems: list[str], elapsed: float) -> str:
        manager = self.live
        view = manager.sync_view().get_all_balances()
        served = []
        for asset in sorted({p.split(".", 1)[0] for p in problems}):
            value = view.get(asset)
            if value is None:
                served.append(f"{asset}: not served")
                continue
            age = manager.age_of(value)
            fresh = age is not None and age <= MAX_AGE
            served.append(
                f"{asset}: balance {value.balance} hold {value.hold_trade} free {value.free} "
                f"source {value.source.value} age {age if age is None else round(age, 1)} "
                f"({'get_balance(max_age=5) returns it as fresh' if fresh else 'refused as stale'}"
                f"; last changed on the exchange at {self._last_change.get(asset, '?')})"
            )
        now = self._counters()
        moved = {
            name: f"{self._baseline.get(name, 0)}->{value}"
            for name, value in now.items()
            if value != self._baseline.get(name, 0)
        }
        status = manager.get_status()
        fired = Counter(f.kind.value for f in self.sim.faults.history[self._history_mark :])
        return (
            f"At {elapsed:.1f} s: mismatches {problems}; served {served}; mode "
            f"{manager.serving_mode.value}, stream {status['websocket']['state']}, holds_live "
            f"{status['websocket']['holds_live']}, breaker {self.breaker_state.value}; counters "
            f"moved this round {moved}; simulator faults fired this round {dict(fired)}"
        )

    async def reset(self) -> None:
        """After a failed round: a fresh manager, so the next rounds start clean."""
        sim = self.sim
        sim.faults.clear()
        sim.faults.online()
        if not sim.running:
            await sim.start()
        await self.close()
        self._build()
        await start_streaming(self.live)
        if not await self.drive_until(lambda: not mismatches(self.live, sim), limit=BOUND):
            raise AssertionError(
                f"a fresh manager does not match the exchange: {mismatches(self.live, sim)}"
            )

    def summary(self, rounds: list[RoundReport], real: float, clock: float) -> ChurnSummary:
        fired = Counter(f.kind.value for f in self.sim.faults.history)
        return ChurnSummary(
            rounds, self.operations, self.refused, self.scenarios, fired, self.reads, real, clock
        )


def failure_report(seed: int, rounds: list[RoundReport]) -> str:
    """Every failed round: what was injected and done, and what went wrong."""
    parts = []
    for report in rounds:
        if not report.failures:
            continue
        parts.append(
            f"--- seed {seed}, round {report.number}: scenarios {report.scenarios}\n"
            + "\n".join(f"  FAIL: {failure}" for failure in report.failures)
            + "\n  timeline:\n"
            + "\n".join(f"    {line}" for line in report.timeline)
        )
    return "\n".join(parts)


async def run_churn(clock: ManualClock, tmp_path: Path, seed: int, rounds: int) -> ChurnSummary:
    """Run ``rounds`` churn rounds and return the summary (the caller asserts)."""
    sim = SimulatedKraken(clock=clock, seed=seed)
    await sim.start()
    churn = Churn(sim, clock, tmp_path / "history.sqlite3", seed)
    reports: list[RoundReport] = []
    real_start, clock_start = time.perf_counter(), clock.monotonic()
    try:
        await churn.start()
        for number in range(1, rounds + 1):
            reports.append(await churn.run_round(number))
    finally:
        await churn.close()
        await sim.stop()
    return churn.summary(reports, time.perf_counter() - real_start, clock.monotonic() - clock_start)


def check_churn(summary: ChurnSummary, seed: int, *, coverage: bool) -> None:
    """Print the summary; fail with every failed round described (and any kind not covered)."""
    print("\n" + summary.text(seed))
    failed = [r for r in summary.rounds if r.failures]
    problems = []
    if failed:
        print(failure_report(seed, summary.rounds))
        problems.append(
            f"{len(failed)} of {len(summary.rounds)} churn rounds failed (seed {seed}):\n"
            + failure_report(seed, summary.rounds)
        )
    if coverage:
        # The test does what it claims: every scenario ran and every fault kind acted.
        unused = set(MID_SCENARIOS) - set(summary.scenarios)
        if unused:
            problems.append(f"scenarios never drawn: {sorted(unused)}")
        missing = {kind.value for kind in FaultKind} - set(summary.fired)
        if missing:
            problems.append(f"fault kinds that never fired: {sorted(missing)}")
    assert not problems, "\n".join(problems)


async def test_churn(clock: ManualClock, tmp_path: Path) -> None:
    """Random operations and faults of every kind; the exact truth at every quiet point."""
    summary = await run_churn(clock, tmp_path, CHURN_SEED, CHURN_ROUNDS)
    check_churn(summary, CHURN_SEED, coverage=CHURN_ROUNDS >= DEFAULT_ROUNDS)


@pytest.mark.long
async def test_churn_long(clock: ManualClock, tmp_path: Path) -> None:
    """Many more churn rounds (``make test-long``, or ``pytest -m long``)."""
    summary = await run_churn(clock, tmp_path, CHURN_SEED, LONG_ROUNDS)
    check_churn(summary, CHURN_SEED, coverage=True)
