"""Portfolio value over time, and profit and loss over a window (venue-neutral, sans-I/O).

:class:`ValueHistory` keeps, in memory, the portfolio's total at each
valuation (:class:`ValuePoint`) and each deposit or withdrawal, valued when it
happened (:class:`Flow`). :meth:`ValueHistory.change_over` answers "how did the
value move over the last ``window`` seconds", split in two:

* ``flows``: money moved in or out (ledger types ``deposit`` and ``withdrawal``,
  valued at the rate of the moment they arrived);
* ``market``: everything else, ``end - start - flows``: price moves and trading
  costs.

A change is only as complete as the valuations it compares: ``complete`` is
``False`` when either end left an asset unvalued, or a deposit or withdrawal
could not be valued. Points older than ``retention`` seconds (and beyond
``max_points``) are dropped; nothing here reads the clock.
"""

from __future__ import annotations

from collections import deque
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import msgspec

from balance_manager.core.amounts import EXACT_CONTEXT, ZERO
from balance_manager.exceptions import ConfigError

__all__ = ["FLOW_KINDS", "Flow", "ValueChange", "ValueHistory", "ValuePoint"]

#: Ledger types that move money in or out of the account (not market moves).
FLOW_KINDS = frozenset({"deposit", "withdrawal"})

_HUNDRED = Decimal(100)
_PERCENT_QUANTUM = Decimal("0.0001")


class ValuePoint(msgspec.Struct, frozen=True, gc=False):
    """The portfolio's value at one moment.

    Attributes:
        at: wall-clock time (Unix seconds).
        total: the valued total in the history's quote currency.
        complete: whether every held asset was valued.
        fresh: whether every rate used was current.
        flows: the valued deposits minus withdrawals noted before this point,
            cumulated since the history began (set by :meth:`ValueHistory.record`).
        flow_count: how many deposits and withdrawals were noted before it.
        unvalued_flows: how many of them could not be valued.
    """

    at: float
    total: Decimal
    complete: bool = True
    fresh: bool = True
    flows: Decimal = ZERO
    flow_count: int = 0
    unvalued_flows: int = 0


class Flow(msgspec.Struct, frozen=True, gc=False):
    """A deposit (positive) or withdrawal (negative), valued when it arrived.

    Attributes:
        at: wall-clock time.
        asset: the asset moved.
        amount: the amount moved (negative out).
        kind: the ledger type.
        value: the amount's value in the quote currency, ``None`` when unpriced.
    """

    at: float
    asset: str
    amount: Decimal
    kind: str
    value: Decimal | None


class ValueChange(msgspec.Struct, frozen=True):
    """How the value moved between two points, split into flows and market.

    Attributes:
        quote: the quote currency.
        start: the first point of the window.
        end: the last point.
        change: ``end.total - start.total``.
        flows: the valued deposits minus withdrawals in between.
        market: ``change - flows``: price moves and trading.
        flow_count: how many deposits and withdrawals.
        complete: both ends complete and every flow valued.
    """

    quote: str
    start: ValuePoint
    end: ValuePoint
    change: Decimal
    flows: Decimal
    market: Decimal
    flow_count: int
    complete: bool

    @property
    def change_pct(self) -> Decimal | None:
        """``change`` in percent of ``start.total`` (``None`` when it was 0)."""
        return _percent(self.change, self.start.total)

    @property
    def market_pct(self) -> Decimal | None:
        """``market`` in percent of ``start.total`` (``None`` when it was 0).

        The figure for "value down more than X % over a window" that deposits and
        withdrawals do not trigger.
        """
        return _percent(self.market, self.start.total)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (amounts as exact strings)."""

        def pct(value: Decimal | None) -> str | None:
            return None if value is None else f"{value:f}"

        return {
            "quote": self.quote,
            "start_at": self.start.at,
            "end_at": self.end.at,
            "start": f"{self.start.total:f}",
            "end": f"{self.end.total:f}",
            "change": f"{self.change:f}",
            "change_pct": pct(self.change_pct),
            "flows": f"{self.flows:f}",
            "market": f"{self.market:f}",
            "market_pct": pct(self.market_pct),
            "flow_count": self.flow_count,
            "complete": self.complete,
        }


def _same(a: ValuePoint, b: ValuePoint) -> bool:
    return (
        a.total == b.total
        and a.complete == b.complete
        and a.fresh == b.fresh
        and a.flow_count == b.flow_count
    )


def _percent(part: Decimal, whole: Decimal) -> Decimal | None:
    if not whole:
        return None
    with localcontext(EXACT_CONTEXT):
        return (part * _HUNDRED / whole).quantize(_PERCENT_QUANTUM, rounding=ROUND_HALF_EVEN)


class ValueHistory:
    """Value points and flows of one quote currency, bounded in time and count.

    Args:
        quote: the quote currency.
        retention: seconds a point is kept.
        max_points: most points kept (the oldest go first).

    Raises:
        ConfigError: ``retention`` or ``max_points`` is not positive.
    """

    __slots__ = (
        "_flow_count",
        "_flow_total",
        "_flows",
        "_points",
        "_unvalued_flows",
        "max_points",
        "quote",
        "retention",
    )

    def __init__(self, quote: str, *, retention: float = 86_400.0, max_points: int = 100_000):
        if not retention > 0:
            raise ConfigError("retention", retention, "must be above 0 seconds")
        if max_points < 2:
            raise ConfigError("max_points", max_points, "must be at least 2")
        self.quote = quote
        self.retention = retention
        self.max_points = max_points
        self._points: deque[ValuePoint] = deque(maxlen=max_points)
        self._flows: deque[Flow] = deque()
        self._flow_total = ZERO
        self._flow_count = 0
        self._unvalued_flows = 0

    def __len__(self) -> int:
        return len(self._points)

    def record(self, point: ValuePoint) -> ValuePoint | None:
        """Add a point (kept in time order); returns it as stored, or ``None``.

        ``None`` means the point replaced the last one of a run of equal points
        (see below): nothing new to keep elsewhere.

        The point's ``flows``, ``flow_count`` and ``unvalued_flows`` are set to the
        flows noted so far. Of three equal points in a row (same total,
        completeness, freshness and flows) the middle one is dropped, so a quiet
        market costs no memory.
        """
        points = self._points
        at = point.at
        if points and at < points[-1].at:
            at = points[-1].at
        point = ValuePoint(
            at,
            point.total,
            point.complete,
            point.fresh,
            self._flow_total,
            self._flow_count,
            self._unvalued_flows,
        )
        if points:
            last = points[-1]
            if len(points) > 1 and _same(points[-2], last) and _same(last, point):
                # Three equal points: keep the first and move the last one forward.
                points[-1] = point
                self._prune(point.at)
                return None
        points.append(point)
        self._prune(point.at)
        return point

    def restore(self, points: list[ValuePoint]) -> None:
        """Take back points kept elsewhere (oldest first), before any new one is recorded.

        Flows noted from now on add to the last restored point's cumulated flows,
        so a window reaching back before a restart still separates them.

        Raises:
            ConfigError: points were recorded already.
        """
        if self._points or self._flows:
            raise ConfigError("points", len(points), "restore before recording anything")
        for point in points:
            self._points.append(point)
        if self._points:
            last = self._points[-1]
            self._flow_total = last.flows
            self._flow_count = last.flow_count
            self._unvalued_flows = last.unvalued_flows

    def add_flow(self, flow: Flow) -> None:
        """Note a deposit or withdrawal (counted in the points recorded after it)."""
        self._flows.append(flow)
        self._flow_count += 1
        if flow.value is None:
            self._unvalued_flows += 1
        else:
            with localcontext(EXACT_CONTEXT):
                self._flow_total += flow.value

    def _prune(self, now: float) -> None:
        horizon = now - self.retention
        points = self._points
        while len(points) > 2 and points[1].at <= horizon:
            points.popleft()
        flows = self._flows
        while flows and flows[0].at < horizon:
            flows.popleft()

    def points(self, since: float | None = None) -> list[ValuePoint]:
        """Points from ``since`` on (wall clock; every point if ``None``), oldest first."""
        if since is None:
            return list(self._points)
        return [point for point in self._points if point.at >= since]

    def flows(self, since: float | None = None) -> list[Flow]:
        """Deposits and withdrawals from ``since`` on, oldest first."""
        if since is None:
            return list(self._flows)
        return [flow for flow in self._flows if flow.at >= since]

    def latest(self) -> ValuePoint | None:
        """The last point, if any."""
        return self._points[-1] if self._points else None

    def change_over(self, window: float, *, now: float) -> ValueChange | None:
        """How the value moved over the last ``window`` seconds before ``now``.

        The start is the last point at or before ``now - window`` (the value then),
        or the first point after it when the history is younger than the window;
        the end is the latest point. ``None`` with fewer than one point.

        Raises:
            ConfigError: ``window`` is not positive.
        """
        if not window > 0:
            raise ConfigError("window", window, "must be above 0 seconds")
        points = self._points
        if not points:
            return None
        since = now - window
        start = points[0]
        for point in points:
            if point.at <= since:
                start = point
            else:
                break
        end = points[-1]
        with localcontext(EXACT_CONTEXT):
            change = end.total - start.total
            valued = end.flows - start.flows
            market = change - valued
        return ValueChange(
            quote=self.quote,
            start=start,
            end=end,
            change=change,
            flows=valued,
            market=market,
            flow_count=end.flow_count - start.flow_count,
            complete=start.complete and end.complete and end.unvalued_flows == start.unvalued_flows,
        )

    def __repr__(self) -> str:
        return f"ValueHistory({self.quote!r}, points={len(self._points)}, flows={len(self._flows)})"
