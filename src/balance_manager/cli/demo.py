"""The live demo (``balance-manager demo``) and the live watch (``balance-manager watch``).

:func:`run_demo` starts the simulated exchange with market activity, a
:class:`~balance_manager.service.manager.BalanceManager` against it (WebSocket + REST,
history in memory, validation on, short timeouts so fallbacks show within
seconds), a small trading bot (:class:`~balance_manager.cli.demo_plan.OrderStrategy`)
that reads free amounts through the manager, and the fault schedule of
:func:`~balance_manager.cli.demo_plan.fault_schedule`. It then checks the
manager's balances, holds and free amounts against the exchange's truth.

:func:`run_watch` shows the same view for any started manager (real Kraken).

Decisions live in :mod:`balance_manager.cli.demo_plan`, drawing in
:mod:`balance_manager.cli.demo_view`; this module is the asyncio glue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from balance_manager.cli.dashboard_command import optional_dashboard
from balance_manager.cli.demo_plan import (
    AlertScript,
    CancelOrder,
    DemoSummary,
    EventLog,
    FaultScheduler,
    FaultStep,
    OrderStrategy,
    PairInfo,
    PlaceOrder,
    ScriptStep,
    alert_script,
    compare_with_exchange,
    consistent_counters,
    fault_schedule,
)
from balance_manager.cli.demo_view import AlertLine, AssetRow, DemoView, Frame
from balance_manager.config import BalanceManagerConfig
from balance_manager.connect import connect
from balance_manager.core.alerts.model import Alert
from balance_manager.core.amounts import ZERO, display_amount
from balance_manager.core.bounds import seconds
from balance_manager.core.freshness import ServingMode
from balance_manager.core.models import BalanceChange
from balance_manager.core.validation.validator import ValidationResult
from balance_manager.exceptions import ExchangeError
from balance_manager.runtime.clock import Clock, SystemClock
from balance_manager.service.manager import BalanceManager
from balance_manager.simulator import SimulatedKraken
from balance_manager.simulator.model.faults import Faults

__all__ = [
    "DEMO_ALERT_ASSET",
    "DEMO_ALERT_THRESHOLD",
    "DEMO_OVERRIDES",
    "DEMO_PAIRS",
    "LOG_LINES",
    "DemoOptions",
    "EventFeed",
    "OrderPort",
    "SimulatorOrderPort",
    "StrategyRunner",
    "apply_fault",
    "apply_script_step",
    "collect_frame",
    "demo_config",
    "run_demo",
    "run_watch",
    "sleep_or_stop",
]

logger = logging.getLogger(__name__)

#: The asset of the demo's low-balance alert (the bot does not trade it), and its threshold.
DEMO_ALERT_ASSET = "EUR"
DEMO_ALERT_THRESHOLD = Decimal(1000)

#: Options the demo sets on top of the user's configuration: short timings so a
#: fallback shows within seconds, history in memory, validation on, and the
#: simulator's "pro" call-counter tier so REST polls are never paced for long; a
#: low-balance alert on EUR (the script drains and refills it) and a stream-down
#: alert short enough for the faults to show it.
DEMO_OVERRIDES: Mapping[str, Any] = {
    "history_db_path": None,
    "enable_validation": True,
    "websocket_timeout": 2.0,
    "websocket_ping_interval": 0.5,
    "reconnect_initial_delay": 0.3,
    "reconnect_max_delay": 2.0,
    "rest_poll_interval": 1.0,
    "rest_api_timeout": 1.0,
    "rest_max_retries": 1,
    "circuit_failure_threshold": 3,
    "circuit_recovery_timeout": 1.0,
    "force_update_interval": 5.0,
    "stale_after": 3.0,
    "kraken_tier": "pro",
    "credentials": None,
    "alerts_enabled": True,
    "alert_low_balance": ((DEMO_ALERT_ASSET, DEMO_ALERT_THRESHOLD),),
    "alert_stream_down_after": 2.5,
    "alert_cooldown": 5.0,
}

#: Event lines kept for the live view; it shows the newest that fit the terminal.
LOG_LINES = 40

#: Pairs the demo's bot trades.
DEMO_PAIRS = ("BTC/USD", "ETH/USD", "DOT/USD")


def demo_config(base: BalanceManagerConfig | None = None) -> BalanceManagerConfig:
    """``base`` (or the defaults) with :data:`DEMO_OVERRIDES` applied."""
    return (base or BalanceManagerConfig(history_db_path=None)).replace(**DEMO_OVERRIDES)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """How a demo run goes.

    Attributes:
        duration: seconds of trading and faults before the final check.
        seed: seeds the simulator, its market and the bot.
        faults: inject the fault schedule.
        dashboard: serve the web dashboard on loopback while the demo runs.
        tick: seconds between two redraws.
        strategy_interval: seconds between two decisions of the bot.
        settle_timeout: most seconds the final check waits for the manager to
            catch up with the exchange once trading has stopped.

    Raises:
        ConfigError: a time is not a number of seconds from 1 ms to a year.
    """

    duration: float = 30.0
    seed: int = 0
    faults: bool = True
    dashboard: bool = True
    tick: float = 0.25
    strategy_interval: float = 0.5
    settle_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in ("duration", "tick", "strategy_interval", "settle_timeout"):
            object.__setattr__(self, name, seconds(name, getattr(self, name)))


async def sleep_or_stop(clock: Clock, seconds: float, stop: asyncio.Event) -> bool:
    """Sleep ``seconds`` on ``clock``, or less if ``stop`` is set; returns whether it was."""
    if stop.is_set():
        return True
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, waiter):
            if not task.done():
                task.cancel()
        await asyncio.gather(sleeper, waiter, return_exceptions=True)
    return stop.is_set()


# -- events into the log ------------------------------------------------------------------


class EventFeed:
    """Turns the manager's callbacks (and log warnings) into event-log lines.

    Args:
        log: where lines are kept.
        view: told about each new line.
        elapsed: seconds since the start of the run.
    """

    def __init__(
        self,
        log: EventLog,
        view: DemoView,
        elapsed: Callable[[], float],
        *,
        decimals: Callable[[str], int | None] | None = None,
    ) -> None:
        self.log = log
        self.view = view
        self.elapsed = elapsed
        self.decimals: Callable[[str], int | None] = decimals or _unknown_decimals
        self._stream: tuple[str, bool] | None = None
        self._issues: frozenset[tuple[str, str, str]] = frozenset()
        self._live_seen = False  # a live source (websocket or rest) has served
        self._fell_back = False  # left the stream since it last served

    def note(self, text: str) -> None:
        """Add one line."""
        self.view.event(self.log.add(self.elapsed(), text))

    def attach(self, manager: BalanceManager) -> None:
        """Register the callbacks on ``manager`` (and show amounts at its assets' decimals)."""
        if self.decimals is _unknown_decimals:
            self.decimals = manager.names.display_decimals
        manager.register_callback("balance_update", self.on_balance_update)
        manager.register_callback("source_changed", self.on_source_changed)
        manager.register_callback("connection_state", self.on_connection_state)
        manager.register_callback("validation_failed", self.on_validation_failed)
        if manager.alerts is not None:
            manager.register_callback("alert_fired", self.on_alert_fired)
            manager.register_callback("alert_resolved", self.on_alert_resolved)
            # Fired while the manager started, before these callbacks existed.
            for alert in manager.alerts.active():
                self.on_alert_fired(alert)

    def on_balance_update(self, change: BalanceChange) -> None:
        """A balance or hold changed (the first value of each asset is not logged)."""
        old, new = change.old, change.new
        if old is None:
            return
        via = f"via {new.source.value}"
        places = self.decimals(new.asset)

        def amount(value: Decimal) -> str:
            return display_amount(value, places)

        if old.balance != new.balance:
            delta = change.delta
            sign = "+" if delta > 0 else ""
            self.note(
                f"{new.asset} balance {amount(old.balance)} → {amount(new.balance)} "
                f"({sign}{amount(delta)}) {via}"
            )
        elif old.hold_trade != new.hold_trade:
            self.note(
                f"{new.asset} held {amount(old.hold_trade)} → {amount(new.hold_trade)}, "
                f"free {amount(new.free)} {via}"
            )

    def on_source_changed(self, payload: Mapping[str, Any]) -> None:
        """The serving source changed: the start, the stream coming up, a fallback, a recovery.

        The manager starts "serving" from ``cache`` with nothing in it (or
        reports no previous source at all): its first move to a live source is
        the start-up, and the stream's first arrival is the stream coming up,
        not a recovery. Only a return to the stream after leaving it is one.
        """
        source, previous = str(payload["source"]), payload.get("previous")
        live = source in ("websocket", "rest")
        if live and not self._live_seen and previous in (None, "cache"):
            why = "start-up: first source up"
        elif previous == "websocket":
            why = f"fallback; was {previous}"
        elif source == "websocket":
            why = f"{'recovered' if self._fell_back else 'stream up'}; was {previous}"
        else:
            why = f"was {previous}"
        if previous == "websocket":
            self._fell_back = True
        if source == "websocket":
            self._fell_back = False
        self._live_seen = self._live_seen or live
        self.note(f"source: serving from {source} ({why})")

    def on_connection_state(self, payload: Mapping[str, Any]) -> None:
        """The stream's state changed (only changes of state or live holds are logged)."""
        key = (str(payload.get("state")), bool(payload.get("holds_live")))
        if key == self._stream:
            return
        self._stream = key
        holds = ", holds live" if key[1] else ""
        reason = payload.get("reason") or ""
        self.note(f"stream: {key[0]}{holds}" + (f" ({reason})" if reason else ""))

    def on_validation_failed(self, result: ValidationResult) -> None:
        """The validator found issues in an incoming value."""
        for issue in result.issues[:2]:
            self.note(f"validation: {issue}")

    def on_alert_fired(self, alert: Alert) -> None:
        """An alert fired."""
        where = f" {alert.asset}" if alert.asset else ""
        self.note(f"alert: {alert.severity.value} {alert.rule}{where}: {alert.message}")

    def on_alert_resolved(self, alert: Alert) -> None:
        """An alert's condition cleared."""
        where = f" {alert.asset}" if alert.asset else ""
        lasted = (alert.resolved_at or alert.fired_at) - alert.fired_at
        self.note(f"alert resolved: {alert.rule}{where} (after {lasted:.1f} s)")

    def validation_report(self, result: ValidationResult) -> None:
        """Log a periodic ``validate_all_balances`` result when its findings change."""
        found = frozenset((i.rule, i.severity.value, i.asset) for i in result.issues)
        if found == self._issues:
            return
        previous, self._issues = self._issues, found
        if not found:
            if previous:
                self.note("validation: every balance is valid again")
            return
        rules: dict[str, list[str]] = {}
        for rule, severity, asset in sorted(found):
            rules.setdefault(f"{severity} {rule}", []).append(asset)
        text = "; ".join(f"{rule} on {', '.join(assets)}" for rule, assets in rules.items())
        self.note(f"validation: {text}")


#: The alert monitor's logger: its lines duplicate the alert events.
_ALERTS_LOGGER = "balance_manager.service.alerts"


class _LogHandler(logging.Handler):
    """Sends the package's warnings to the event log instead of the terminal."""

    def __init__(self, feed: EventFeed) -> None:
        super().__init__(logging.WARNING)
        self.feed = feed

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == _ALERTS_LOGGER:
            return  # alerts reach the log through their callbacks, worded for people
        try:
            self.feed.note(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # a log line must never break the run
            self.handleError(record)


@contextlib.contextmanager
def _warnings_into(feed: EventFeed) -> Iterator[None]:
    package = logging.getLogger("balance_manager")
    handler = _LogHandler(feed)
    package.addHandler(handler)
    try:
        yield
    finally:
        package.removeHandler(handler)


def _unknown_decimals(asset: str) -> int | None:
    """No display decimals known: amounts are shown without noise zeros."""
    return None


# -- the frame -------------------------------------------------------------------------------


async def collect_frame(
    manager: BalanceManager,
    *,
    title: str,
    elapsed: float,
    duration: float | None,
    log: EventLog,
    phase: str | None = None,
    trend_hours: float = 1.0,
) -> Frame:
    """What the view shows now, read from ``manager``."""
    status = manager.get_status()
    stats = manager.get_statistics()
    # The read-only view: drawing must not count as a read (stale_reads, cache hits).
    balances = manager.sync_view().get_all_balances()
    rows = []
    hidden = 0
    for asset, balance in sorted(balances.items()):
        if not (balance.balance or balance.hold_trade or balance.earn):
            hidden += 1
            continue
        trend = await manager.history.analyze_balance_trend(asset, analysis_hours=trend_hours)
        rows.append(
            AssetRow(
                asset=asset,
                balance=balance.balance,
                free=balance.free,
                held=balance.hold_trade,
                source=balance.source.value,
                age=manager.age_of(balance),
                trend=trend.trend_direction if trend is not None else None,
                decimals=manager.names.display_decimals(asset),
            )
        )
    counters = consistent_counters(stats)
    alerts: list[AlertLine] = []
    if manager.alerts is not None:
        now = manager.clock.time()
        for alert in manager.alerts.active():
            where = f" {alert.asset}" if alert.asset else ""
            alerts.append(
                AlertLine(
                    alert.severity.value,
                    f"{alert.rule}{where}: {alert.message} (for {now - alert.fired_at:.0f} s)",
                )
            )
    return Frame(
        title=title,
        elapsed=elapsed,
        duration=duration,
        serving=str(status["source"]),
        stream_state=str(status["websocket"]["state"]),
        holds_live=bool(status["websocket"]["holds_live"]),
        circuit=status["rest"]["circuit_state"],
        rest_error=status["rest"]["last_error"],
        cache_hit_rate=float(status["cache"]["hit_rate_percent"]),
        counters=counters,
        rows=tuple(rows),
        log=tuple(log.lines()),
        phase=phase,
        hidden_assets=hidden,
        alerts=tuple(alerts),
    )


# -- the bot -----------------------------------------------------------------------------------


class OrderPort(Protocol):
    """Where the bot's orders go."""

    def price(self, symbol: str) -> Decimal:
        """The pair's current price."""
        ...

    def place_limit(self, order: PlaceOrder) -> str | None:
        """Place ``order``; returns its id while it rests on the book (``None``: filled)."""
        ...

    def cancel(self, order_id: str) -> None:
        """Cancel an open order."""
        ...

    def is_open(self, order_id: str) -> bool:
        """Whether the order still rests on the book."""
        ...


class SimulatorOrderPort:
    """The bot trades on the simulator directly (as ``AddOrder`` would).

    Orders go to the exchange's own API rather than through REST so that the
    bot never competes with the balance manager for the REST call counter.
    """

    def __init__(self, simulator: SimulatedKraken) -> None:
        self.simulator = simulator

    def price(self, symbol: str) -> Decimal:
        """The simulator's price."""
        return self.simulator.price(symbol)

    def place_limit(self, order: PlaceOrder) -> str | None:
        """Place a limit order on the default account."""
        placed = self.simulator.place_order(
            order.symbol, order.side, "limit", order.volume, price=order.price
        )
        return placed.order_id if placed.is_open else None

    def cancel(self, order_id: str) -> None:
        """Cancel an order of the default account."""
        self.simulator.cancel_order(order_id)

    def is_open(self, order_id: str) -> bool:
        """Whether the order is still open."""
        return self.simulator.account().order(order_id).is_open


class StrategyRunner:
    """Runs the bot: reads free amounts through the manager, trades through a port.

    Args:
        strategy: the decisions.
        port: where orders go.
        manager: the balance manager the bot trusts for free amounts.
        feed: where to report what it does.
    """

    def __init__(
        self, strategy: OrderStrategy, port: OrderPort, manager: BalanceManager, feed: EventFeed
    ) -> None:
        self.strategy = strategy
        self.port = port
        self.manager = manager
        self.feed = feed
        self.open_orders: list[str] = []
        self.placed = 0
        self.cancelled = 0
        self.refused = 0
        self._paused = False

    async def step(self) -> None:
        """One decision and its orders."""
        if self.manager.serving_mode is ServingMode.CACHE:
            # A careful bot does not trade on balances no live source confirms.
            if not self._paused:
                self.feed.note("strategy: paused (balances are not confirmed by any source)")
                self._paused = True
            return
        if self._paused:
            self.feed.note("strategy: resumed")
            self._paused = False
        self.open_orders = [o for o in self.open_orders if self.port.is_open(o)]
        assets = {a for p in self.strategy.pairs for a in (p.base, p.quote)}
        free: dict[str, Decimal] = {}
        for asset in sorted(assets):
            balance = await self.manager.get_balance(asset)
            free[asset] = balance["free"] if balance is not None else ZERO
        prices = {p.symbol: self.port.price(p.symbol) for p in self.strategy.pairs}
        for action in self.strategy.decide(prices, free, self.open_orders):
            self._execute(action)

    def _execute(self, action: PlaceOrder | CancelOrder) -> None:
        try:
            if isinstance(action, CancelOrder):
                self.port.cancel(action.order_id)
                self.open_orders.remove(action.order_id)
                self.cancelled += 1
                self.feed.note(f"strategy: cancelled {action.order_id}")
                return
            order_id = self.port.place_limit(action)
            self.placed += 1
            if order_id is not None:
                self.open_orders.append(order_id)
                self.feed.note(f"strategy: {action.describe()} ({order_id})")
            else:
                self.feed.note(f"strategy: {action.describe()} filled at once")
        except ExchangeError as exc:
            self.refused += 1
            self.feed.note(f"strategy: refused by the exchange: {exc.code}")


def _pairs(simulator: SimulatedKraken) -> list[PairInfo]:
    instruments = simulator.exchange.instruments
    out = []
    for symbol in DEMO_PAIRS:
        spec = instruments.pair(symbol)
        out.append(PairInfo(spec.symbol, spec.base, spec.quote, spec.ordermin, spec.pair_decimals))
    return out


def apply_script_step(
    simulator: SimulatedKraken, step: ScriptStep, drained: dict[str, Decimal]
) -> None:
    """Do ``step`` of the alert script on the simulator (``drained`` remembers the amount)."""
    asset = DEMO_ALERT_ASSET
    if step.action == "drain":
        amount = simulator.free().get(asset, ZERO) - DEMO_ALERT_THRESHOLD / 2
        if amount > 0:
            simulator.withdraw(asset, amount)
            drained[asset] = amount
    else:
        amount = drained.pop(asset, ZERO)
        if amount > 0:
            simulator.deposit(asset, amount)


def apply_fault(faults: Faults, step: FaultStep) -> None:
    """Inject ``step`` into the simulator's fault registry."""
    if step.action == "drop_websocket":
        faults.drop_websocket()
    elif step.action == "silence_websocket":
        faults.go_silent(step.seconds)
    elif step.action == "outage":
        faults.http_error(times=None)
        faults.go_silent(None)
    else:
        faults.clear()


# -- running ---------------------------------------------------------------------------------


class _Run:
    """One live run: the clock origin, the log, the view and the loop."""

    def __init__(
        self, manager: BalanceManager, view: DemoView, clock: Clock, *, title: str, log_lines: int
    ) -> None:
        self.manager = manager
        self.view = view
        self.clock = clock
        self.title = title
        self.log = EventLog(log_lines)
        self.started = clock.monotonic()
        self.feed = EventFeed(self.log, view, self.elapsed)
        self.feed.attach(manager)

    def elapsed(self) -> float:
        return self.clock.monotonic() - self.started

    async def redraw(
        self, *, duration: float | None, phase: str | None, trend_hours: float
    ) -> None:
        frame = await collect_frame(
            self.manager,
            title=self.title,
            elapsed=self.elapsed(),
            duration=duration,
            log=self.log,
            phase=phase,
            trend_hours=trend_hours,
        )
        self.view.update(frame)

    async def validate(self) -> None:
        if self.manager.validator is not None:
            self.feed.validation_report(await self.manager.validate_all_balances())

    async def loop(
        self,
        *,
        duration: float | None,
        stop: asyncio.Event,
        tick: float,
        trend_hours: float,
        on_tick: Callable[[float], Awaitable[str | None]] | None = None,
    ) -> bool:
        """Redraw every ``tick`` until ``duration`` or ``stop``; returns whether stopped."""
        next_validation = 0.0
        while True:
            elapsed = self.elapsed()
            if duration is not None and elapsed >= duration:
                return False
            phase = await on_tick(elapsed) if on_tick is not None else None
            if elapsed >= next_validation:
                await self.validate()
                next_validation = elapsed + 1.0
            await self.redraw(duration=duration, phase=phase, trend_hours=trend_hours)
            if await sleep_or_stop(self.clock, tick, stop):
                return True


async def run_demo(
    options: DemoOptions,
    view: DemoView,
    *,
    config: BalanceManagerConfig | None = None,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
) -> DemoSummary:
    """Run the demo (see module docs) and return its summary.

    Args:
        options: duration, seed, faults...
        view: where frames and events go.
        config: the user's options; :data:`DEMO_OVERRIDES` are applied on top.
        clock: time source (the system clock by default).
        stop: set it to end the run early (Ctrl-C); the final check still runs.

    Raises:
        BalanceManagerError: the manager could not start (any subclass).
    """
    clock = clock or SystemClock()
    stop = stop or asyncio.Event()
    settings = demo_config(config)
    scheduler = FaultScheduler(
        fault_schedule(options.duration, websocket_timeout=settings.websocket_timeout)
        if options.faults
        else []
    )
    simulator = SimulatedKraken(
        seed=options.seed, market=True, clock=clock, tier="pro", market_interval=0.5
    )
    await simulator.start()
    view.start()
    try:
        async with (
            connect(
                simulator.api_key,
                simulator.api_secret,
                config=settings,
                rest_url=simulator.rest_url,
                ws_url=simulator.ws_url,
                clock=clock,
            ) as manager,
            optional_dashboard(manager, options.dashboard) as dashboard,
        ):
            url = f"   dashboard {dashboard.url}" if dashboard is not None else ""
            run = _Run(
                manager,
                view,
                clock,
                title=f"demo (simulator, seed {options.seed}){url}",
                log_lines=LOG_LINES,
            )
            if dashboard is not None:
                run.feed.note(f"dashboard: open {dashboard.url} in a browser while the demo runs")
            runner = StrategyRunner(
                OrderStrategy(_pairs(simulator), random.Random(options.seed)),
                SimulatorOrderPort(simulator),
                manager,
                run.feed,
            )
            with _warnings_into(run.feed):
                summary = await _demo_body(run, runner, scheduler, simulator, options, stop)
    finally:
        view.stop()
        await simulator.stop()
    return summary


async def _demo_body(
    run: _Run,
    runner: StrategyRunner,
    scheduler: FaultScheduler,
    simulator: SimulatedKraken,
    options: DemoOptions,
    stop: asyncio.Event,
) -> DemoSummary:
    next_decision = 0.0
    script = AlertScript(
        alert_script(options.duration, asset=DEMO_ALERT_ASSET, threshold=DEMO_ALERT_THRESHOLD)
    )
    drained: dict[str, Decimal] = {}
    alerts = run.manager.alerts

    async def on_tick(elapsed: float) -> str:
        nonlocal next_decision
        active = alerts is not None and alerts.engine.is_active("low_balance", DEMO_ALERT_ASSET)
        for action in script.due(elapsed, alert_active=active):
            apply_script_step(simulator, action, drained)
            run.feed.note(action.description)
        for step in scheduler.due(elapsed):
            apply_fault(simulator.faults, step)
            run.feed.note(step.description)
        if elapsed >= next_decision:
            await runner.step()
            next_decision = elapsed + options.strategy_interval
        return scheduler.phase

    run.feed.note(f"demo: {options.duration:g} s against {simulator.rest_url}")
    interrupted = await run.loop(
        duration=options.duration, stop=stop, tick=options.tick, trend_hours=1.0, on_tick=on_tick
    )
    elapsed = run.elapsed()
    # Freeze the exchange so the final check compares against a fixed truth.
    await simulator.market.stop()
    simulator.faults.clear()
    run.feed.note(
        "demo: trading stopped, faults cleared; checking the manager against the exchange"
    )
    settle_started = run.clock.monotonic()
    mismatches = compare_with_exchange(
        run.manager.sync_view().get_all_balances(), simulator.balances(), simulator.holds()
    )
    while mismatches and run.clock.monotonic() - settle_started < options.settle_timeout:
        await run.redraw(duration=options.duration, phase="final check", trend_hours=1.0)
        await run.clock.sleep(0.1)
        mismatches = compare_with_exchange(
            run.manager.sync_view().get_all_balances(), simulator.balances(), simulator.holds()
        )
    await run.redraw(duration=options.duration, phase="final check", trend_hours=1.0)
    truth = simulator.balances()
    checked = len(set(truth) | set(run.manager.sync_view().get_all_balances()))
    return DemoSummary(
        elapsed=elapsed,
        statistics=run.manager.get_statistics(),
        faults=len(scheduler.fired),
        orders_placed=runner.placed,
        orders_cancelled=runner.cancelled,
        orders_refused=runner.refused,
        assets_checked=checked,
        mismatches=tuple(mismatches),
        settle_seconds=run.clock.monotonic() - settle_started,
        interrupted=interrupted,
    )


async def run_watch(
    manager: BalanceManager,
    view: DemoView,
    *,
    title: str,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
    tick: float = 0.5,
    trend_hours: float = 24.0,
) -> DemoSummary:
    """Show ``manager`` live until ``duration`` (or ``stop``); returns a summary without check.

    Args:
        manager: a started manager.
        view: where frames and events go.
        title: what is being watched (never a credential).
        duration: seconds to watch (``None``: until ``stop``).
        stop: set it to end the watch.
        tick: seconds between redraws.
        trend_hours: window of the trend arrows.
    """
    stop = stop or asyncio.Event()
    run = _Run(manager, view, manager.clock, title=title, log_lines=LOG_LINES)
    view.start()
    try:
        with _warnings_into(run.feed):
            interrupted = await run.loop(
                duration=duration, stop=stop, tick=tick, trend_hours=trend_hours
            )
    finally:
        view.stop()
    return DemoSummary(
        elapsed=run.elapsed(), statistics=manager.get_statistics(), interrupted=interrupted
    )
