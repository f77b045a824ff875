"""The live demo's decisions, without I/O: when faults happen, what the bot trades, what to report.

Everything here is plain data and pure functions (time comes in as an
argument, randomness as a ``random.Random``), so the demo's story is unit
tested without a terminal, a socket or a clock:

* :func:`fault_schedule` and :class:`FaultScheduler`: which fault is injected
  at which point of the run (drop the WebSocket, make it silent, take REST
  down too, clear everything);
* :func:`alert_script` and :class:`AlertScript`: a withdrawal that takes an
  asset below its low-balance alert threshold, and the deposit that restores it;
* :class:`OrderStrategy`: a small market-making bot that places limit orders
  near the price and cancels them, so holds and free amounts move;
* :class:`EventLog`: the bounded, timestamped log shown under the tables;
* :func:`compare_with_exchange`: the final check of the manager against the
  exchange's truth, and :class:`DemoSummary` / :func:`format_summary` for the
  closing report.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from balance_manager.core.amounts import ZERO, decimal_places, display_amount, round_to
from balance_manager.core.bounds import seconds
from balance_manager.core.models import Balance

__all__ = [
    "EXIT_INTERRUPTED",
    "SUMMARY_COUNTERS",
    "AlertScript",
    "CancelOrder",
    "DemoSummary",
    "EventLog",
    "FaultAction",
    "FaultScheduler",
    "FaultStep",
    "Mismatch",
    "OrderStrategy",
    "PairInfo",
    "PlaceOrder",
    "ScriptAction",
    "ScriptStep",
    "StrategyAction",
    "alert_script",
    "compare_with_exchange",
    "consistent_counters",
    "exit_code_for",
    "fault_schedule",
    "format_amount",
    "format_summary",
]

#: What a fault step does (see :func:`fault_schedule`).
FaultAction = Literal["drop_websocket", "silence_websocket", "outage", "clear"]

#: Exit code of an interrupted run (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def format_amount(value: Decimal) -> str:
    """``value`` written out exactly as held, without exponent (``0E-10`` → ``0.0000000000``).

    For machine output (``balances --json``); people get
    :func:`~balance_manager.core.amounts.display_amount`.
    """
    return f"{value:f}"


# -- the fault schedule ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaultStep:
    """One scheduled fault.

    Attributes:
        at: seconds after the start of the run.
        action: what to do (``drop_websocket``, ``silence_websocket``, ``outage``, ``clear``).
        description: one line for the event log.
        seconds: how long the fault lasts, for ``silence_websocket`` (``None``: until cleared).
    """

    at: float
    action: FaultAction
    description: str
    seconds: float | None = None


def fault_schedule(duration: float, *, websocket_timeout: float) -> list[FaultStep]:
    """The demo's faults for a run of ``duration`` seconds, in time order.

    * at 25 %: the WebSocket is dropped (TCP abort): the manager falls back to
      REST at once and the stream reconnects by itself;
    * at 40 %: the WebSocket goes silent (socket open, nothing sent) for 10 %
      of the run, but at least ``websocket_timeout + 1`` s, so the watchdog
      notices (the manager serves REST within ``websocket_timeout``); frames
      due during the silence are lost, so the stream needs a reconnection or
      two to come back, which it does before the outage;
    * at 65 %: REST answers HTTP 520 and the WebSocket is silent again: with
      both sources down, held values are served marked ``cache``;
    * at 80 %: every fault is cleared; both sources recover.

    Args:
        duration: length of the run, seconds (> 0).
        websocket_timeout: the manager's ``websocket_timeout``.

    Raises:
        ConfigError: ``duration`` is not a number of seconds from 1 ms to a year.
    """
    duration = seconds("duration", duration)
    # Short enough that the stream is back before the outage at 65 %.
    silence = max(0.10 * duration, websocket_timeout + 1.0)
    return [
        FaultStep(0.25 * duration, "drop_websocket", "fault: WebSocket dropped (TCP abort)"),
        FaultStep(
            0.40 * duration,
            "silence_websocket",
            f"fault: WebSocket silent for {silence:.1f} s (socket left open)",
            seconds=silence,
        ),
        FaultStep(
            0.65 * duration,
            "outage",
            "fault: REST answers HTTP 520 and the WebSocket is silent (both down)",
        ),
        FaultStep(0.80 * duration, "clear", "fault: all faults cleared"),
    ]


class FaultScheduler:
    """Hands out each :class:`FaultStep` once, when its time has come.

    Args:
        steps: the schedule (any order).
    """

    __slots__ = ("_pending", "fired")

    def __init__(self, steps: Iterable[FaultStep]) -> None:
        self._pending: deque[FaultStep] = deque(sorted(steps, key=lambda step: step.at))
        self.fired: list[FaultStep] = []
        """Steps handed out so far, in order."""

    def due(self, elapsed: float) -> list[FaultStep]:
        """Steps whose time is ``<= elapsed`` and that were not handed out yet."""
        out = []
        while self._pending and self._pending[0].at <= elapsed:
            step = self._pending.popleft()
            self.fired.append(step)
            out.append(step)
        return out

    @property
    def phase(self) -> str:
        """What the viewer is watching now: the last step's action, or ``normal``."""
        if not self.fired:
            return "normal"
        last = self.fired[-1].action
        return "recovering" if last == "clear" else last.replace("_", " ")

    @property
    def remaining(self) -> int:
        """Steps not handed out yet."""
        return len(self._pending)


# -- the alert script -------------------------------------------------------------------------

#: What a step of the alert script does.
ScriptAction = Literal["drain", "refill"]


@dataclass(frozen=True, slots=True)
class ScriptStep:
    """One step of the alert script.

    Attributes:
        at: seconds after the start of the run.
        action: ``drain`` (withdraw below the threshold) or ``refill`` (deposit it back).
        description: one line for the event log.
        latest: for ``refill``: it waits for the alert to have fired, until this time.
    """

    at: float
    action: ScriptAction
    description: str
    latest: float | None = None


def alert_script(duration: float, *, asset: str, threshold: Decimal) -> list[ScriptStep]:
    """The demo's low-balance story for a run of ``duration`` seconds, before the first fault.

    * at 5 %: most of ``asset`` is withdrawn, leaving half of ``threshold``:
      the ``low_balance`` alert fires;
    * at 15 %, once the alert has fired (at 22 % at the latest, so a slow
      start cannot push it into the faults at 25 %): the amount is deposited
      back and the alert resolves.

    Raises:
        ConfigError: ``duration`` is not a number of seconds from 1 ms to a year.
    """
    duration = seconds("duration", duration)
    shown = display_amount(threshold)
    return [
        ScriptStep(
            0.05 * duration,
            "drain",
            f"script: withdraw {asset} to below its low-balance alert threshold ({shown})",
        ),
        ScriptStep(
            0.15 * duration,
            "refill",
            f"script: deposit the {asset} back (its alert resolves)",
            latest=0.22 * duration,
        ),
    ]


class AlertScript:
    """Hands out each :class:`ScriptStep` once, when its time (and the alert) has come.

    Args:
        steps: the script (any order).
    """

    __slots__ = ("_pending", "done")

    def __init__(self, steps: Iterable[ScriptStep]) -> None:
        self._pending: deque[ScriptStep] = deque(sorted(steps, key=lambda step: step.at))
        self.done: list[ScriptStep] = []
        """Steps handed out so far, in order."""

    def due(self, elapsed: float, *, alert_active: bool) -> list[ScriptStep]:
        """Steps due at ``elapsed``; a ``refill`` also waits for the alert, until ``latest``."""
        out = []
        while self._pending and self._pending[0].at <= elapsed:
            step = self._pending[0]
            waiting = step.action == "refill" and not alert_active
            if waiting and (step.latest is None or elapsed < step.latest):
                break
            self._pending.popleft()
            self.done.append(step)
            out.append(step)
        return out


# -- the trading strategy -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairInfo:
    """What the strategy needs to know about a pair.

    Attributes:
        symbol: ``BTC/USD``.
        base: ``BTC``.
        quote: ``USD``.
        ordermin: smallest order volume (base units).
        price_decimals: decimals of a price.
    """

    symbol: str
    base: str
    quote: str
    ordermin: Decimal
    price_decimals: int


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Place a limit order."""

    symbol: str
    side: Literal["buy", "sell"]
    volume: Decimal
    price: Decimal

    def describe(self) -> str:
        """``buy 0.0002 BTC/USD @ 59950.0``."""
        return (
            f"{self.side} {display_amount(self.volume)} {self.symbol} "
            f"@ {display_amount(self.price, decimal_places(self.price))}"  # at the pair's tick
        )


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel one of the strategy's open orders."""

    order_id: str


StrategyAction = PlaceOrder | CancelOrder


class OrderStrategy:
    """A small market-making bot: limit orders a few basis points off the price.

    Each :meth:`decide` returns at most one cancel and at most one new order.
    Orders rest near the price, so the market's random walk fills some of
    them (balances move) while the others hold funds until cancelled (holds
    and free amounts move).

    Args:
        pairs: the pairs it trades.
        rng: its source of randomness (seed it for a reproducible run).
        max_open: most orders it keeps open.
        min_offset_bp: nearest distance from the price, basis points.
        max_offset_bp: farthest distance from the price, basis points.
        cancel_probability: chance per decision of cancelling an open order.
        max_lots: largest order, in multiples of the pair's ``ordermin``.
    """

    def __init__(
        self,
        pairs: Sequence[PairInfo],
        rng: random.Random,
        *,
        max_open: int = 4,
        min_offset_bp: int = 2,
        max_offset_bp: int = 25,
        cancel_probability: float = 0.3,
        max_lots: int = 3,
    ) -> None:
        if not pairs:
            raise ValueError("the strategy needs at least one pair")
        if not 0 < min_offset_bp <= max_offset_bp:
            raise ValueError("need 0 < min_offset_bp <= max_offset_bp")
        if max_open < 1 or max_lots < 1:
            raise ValueError("max_open and max_lots must be at least 1")
        self.pairs = tuple(pairs)
        self.rng = rng
        self.max_open = max_open
        self.min_offset_bp = min_offset_bp
        self.max_offset_bp = max_offset_bp
        self.cancel_probability = cancel_probability
        self.max_lots = max_lots

    def decide(
        self,
        prices: Mapping[str, Decimal],
        free: Mapping[str, Decimal],
        open_orders: Sequence[str],
    ) -> list[StrategyAction]:
        """The next actions, given the market and what is free to trade.

        Args:
            prices: symbol → current price (pairs without a price are skipped).
            free: asset → free amount, as the balance manager reports it.
            open_orders: ids of the strategy's orders still open.

        Returns:
            A :class:`CancelOrder` first when one is due, then a
            :class:`PlaceOrder` when an affordable order exists and there is room.
        """
        actions: list[StrategyAction] = []
        still_open = len(open_orders)
        if open_orders and (
            still_open >= self.max_open or self.rng.random() < self.cancel_probability
        ):
            actions.append(CancelOrder(self.rng.choice(list(open_orders))))
            still_open -= 1
        if still_open < self.max_open:
            order = self._new_order(prices, free)
            if order is not None:
                actions.append(order)
        return actions

    def _new_order(
        self, prices: Mapping[str, Decimal], free: Mapping[str, Decimal]
    ) -> PlaceOrder | None:
        pair = self.rng.choice(self.pairs)
        price = prices.get(pair.symbol)
        if price is None or price <= 0:
            return None
        volume = pair.ordermin * self.rng.randint(1, self.max_lots)
        offset = Decimal(self.rng.randint(self.min_offset_bp, self.max_offset_bp)) / 10_000
        first: Literal["buy", "sell"] = self.rng.choice(("buy", "sell"))
        for side in (first, "sell" if first == "buy" else "buy"):
            limit = price * (1 - offset) if side == "buy" else price * (1 + offset)
            limit = round_to(limit, pair.price_decimals, ROUND_HALF_EVEN)
            # Only what the manager says is free: the point of the demo.
            if side == "buy" and volume * limit <= free.get(pair.quote, ZERO):
                return PlaceOrder(pair.symbol, "buy", volume, limit)
            if side == "sell" and volume <= free.get(pair.base, ZERO):
                return PlaceOrder(pair.symbol, "sell", volume, limit)
        return None


# -- the event log ----------------------------------------------------------------------------


class EventLog:
    """The most recent events, each with the run's elapsed time.

    Args:
        maxlen: how many lines are kept (older ones scroll away).
    """

    __slots__ = ("_lines", "total")

    def __init__(self, maxlen: int = 12) -> None:
        self._lines: deque[tuple[float, str]] = deque(maxlen=maxlen)
        self.total = 0
        """Lines added since the start (including those scrolled away)."""

    def add(self, elapsed: float, text: str) -> str:
        """Append ``text`` at ``elapsed`` seconds; returns the formatted line."""
        self._lines.append((elapsed, text))
        self.total += 1
        return self.format(elapsed, text)

    @staticmethod
    def format(elapsed: float, text: str) -> str:
        """``[  12.3s] text``."""
        return f"[{elapsed:6.1f}s] {text}"

    def lines(self) -> list[str]:
        """The kept lines, oldest first, formatted."""
        return [self.format(elapsed, text) for elapsed, text in self._lines]

    def __len__(self) -> int:
        return len(self._lines)


# -- the final check and the summary --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One amount where the manager and the exchange disagree.

    Attributes:
        asset: the asset.
        field: ``balance``, ``hold_trade`` or ``free``.
        manager: the manager's value (``None``: the manager does not hold the asset).
        exchange: the exchange's value.
    """

    asset: str
    field: str
    manager: Decimal | None
    exchange: Decimal

    def __str__(self) -> str:
        # display_amount never rounds, so two different amounts never print alike.
        mine = "missing" if self.manager is None else display_amount(self.manager)
        return (
            f"{self.asset} {self.field}: manager {mine}, exchange {display_amount(self.exchange)}"
        )


def compare_with_exchange(
    balances: Mapping[str, Balance],
    truth: Mapping[str, Decimal],
    holds: Mapping[str, Decimal],
) -> list[Mismatch]:
    """Every difference between the manager's balances and the exchange's truth.

    Args:
        balances: the manager's balances by asset.
        truth: the exchange's tradable balance by asset.
        holds: the exchange's holds by asset (absent: nothing held).

    An asset the manager holds at zero and the exchange does not list is no
    mismatch (Kraken drops emptied assets from its lists).
    """
    mismatches: list[Mismatch] = []
    for asset in sorted(set(balances) | set(truth)):
        held = balances.get(asset)
        balance = truth.get(asset, ZERO)
        hold = holds.get(asset, ZERO)
        if held is None:
            if balance or hold:
                mismatches.append(Mismatch(asset, "balance", None, balance))
            continue
        expected = (("balance", balance), ("hold_trade", hold), ("free", balance - hold))
        for name, value in expected:
            mine: Decimal = getattr(held, name)
            if mine != value:
                mismatches.append(Mismatch(asset, name, mine, value))
    return mismatches


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What a demo (or watch) run did, for the closing report.

    Attributes:
        elapsed: seconds the run lasted.
        statistics: the manager's counters (``BalanceManager.get_statistics()``).
        faults: fault steps injected.
        orders_placed: orders the strategy placed.
        orders_cancelled: orders the strategy cancelled.
        orders_refused: orders the exchange refused.
        assets_checked: assets compared with the exchange (``None``: no check).
        mismatches: differences found by the check.
        settle_seconds: seconds the check waited for the manager to catch up.
        interrupted: the run was stopped by Ctrl-C.
    """

    elapsed: float
    statistics: Mapping[str, object]
    faults: int = 0
    orders_placed: int = 0
    orders_cancelled: int = 0
    orders_refused: int = 0
    assets_checked: int | None = None
    mismatches: tuple[Mismatch, ...] = ()
    settle_seconds: float = 0.0
    interrupted: bool = False


#: The manager's counters shown in the summary, with their labels.
SUMMARY_COUNTERS = (
    ("updates", "balance updates"),
    ("rest_api_calls", "REST calls"),
    ("websocket_messages", "WebSocket messages"),
    ("reconnects", "reconnects"),
    ("fallbacks", "fallbacks"),
    ("recoveries", "recoveries"),
    ("validation_failures", "validation failures"),
    ("callback_errors", "callback errors"),
)


def _count(statistics: Mapping[str, object], name: str) -> int:
    value = statistics.get(name, 0)
    return value if isinstance(value, int) else 0


def consistent_counters(statistics: Mapping[str, object]) -> dict[str, int]:
    """The integer counters of ``statistics``, with ``recoveries`` never above ``fallbacks``.

    A recovery is a return to the stream after a fallback, so there cannot be
    more of them than fallbacks. The manager counts every arrival at the
    stream, including the first one at start-up (nothing → REST → stream),
    which is no recovery: shown as is, ``watch`` would say "recoveries 1" with
    no fallback. Views show this corrected figure.
    """
    counters = {
        name: value
        for name, value in statistics.items()
        if isinstance(value, int) and not isinstance(value, bool)
    }
    if "recoveries" in counters:
        counters["recoveries"] = min(counters["recoveries"], counters.get("fallbacks", 0))
    return counters


def format_summary(summary: DemoSummary) -> list[str]:
    """The closing report as lines of plain text."""
    stats = consistent_counters(summary.statistics)
    how = "interrupted after" if summary.interrupted else "ran for"
    lines = [f"Summary ({how} {summary.elapsed:.1f} s)"]
    width = max(len(label) for _, label in SUMMARY_COUNTERS) + 2
    for name, label in SUMMARY_COUNTERS:
        lines.append(f"  {label + ':':<{width}} {_count(stats, name)}")
    if summary.faults or summary.orders_placed or summary.orders_refused:
        lines.append(f"  {'faults injected:':<{width}} {summary.faults}")
        orders = (
            f"{summary.orders_placed} placed, {summary.orders_cancelled} cancelled, "
            f"{summary.orders_refused} refused"
        )
        lines.append(f"  {'strategy orders:':<{width}} {orders}")
    if summary.assets_checked is not None:
        if summary.mismatches:
            lines.append(
                f"MISMATCH: {len(summary.mismatches)} difference(s) with the exchange "
                f"after waiting {summary.settle_seconds:.1f} s:"
            )
            lines.extend(f"  {mismatch}" for mismatch in summary.mismatches)
        else:
            lines.append(
                f"OK: {summary.assets_checked} assets match the exchange "
                "(balance, hold and free, exact)"
            )
    return lines


def exit_code_for(summary: DemoSummary) -> int:
    """0 when all is well, 1 on a mismatch with the exchange, 130 when interrupted."""
    if summary.mismatches:
        return 1
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return 0
