"""The portfolio in one quote currency, kept valued as balances and prices move (asyncio).

A :class:`PortfolioTracker` values a manager's balances in one quote currency
(:func:`balance_manager.core.valuation.value_portfolio`) with the prices of a
:class:`~balance_manager.service.prices.PriceService`. It is made by
``BalanceManager.portfolio_tracker``, one per quote currency, and lives until
the manager closes.

Off the ingest path: a balance change (from the manager's ``balance_update``
callback) or a price change only marks the portfolio as moved and wakes the
tracker's own task, which values it once for any number of changes since,
records the value in its :class:`~balance_manager.core.value_history.ValueHistory`,
and publishes ``portfolio_change`` to callbacks (through an
:class:`~balance_manager.service.dispatch.EventDispatcher`: no callback runs
inside the tracker) when the total moved by ``threshold_pct`` percent or more
since the last published value. Deposits and withdrawals (ledger types, see
:data:`~balance_manager.core.value_history.FLOW_KINDS`) are valued when they
arrive and kept apart from market moves in :meth:`PortfolioTracker.change_over`.

The value history is kept in memory (``retention`` seconds, default a day) and,
when a ``store`` is given (the manager passes its history database), written to
it every ``flush_interval`` seconds off the loop and read back at start, so the
value over time survives a restart. A store that fails is logged and retried;
valuations go on in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal, localcontext
from typing import Any

import msgspec

from balance_manager.core.amounts import EXACT_CONTEXT, to_amount
from balance_manager.core.models import Balance, BalanceChange
from balance_manager.core.sources import StreamLedgerUpdate
from balance_manager.core.valuation import (
    Portfolio,
    PriceIndex,
    find_rate,
    pairs_needed,
    value_portfolio,
)
from balance_manager.core.value_history import (
    FLOW_KINDS,
    Flow,
    ValueChange,
    ValueHistory,
    ValuePoint,
)
from balance_manager.exceptions import ConfigError, PersistenceError
from balance_manager.runtime.aio import cancel_and_wait
from balance_manager.runtime.clock import Clock
from balance_manager.service.dispatch import EventDispatcher
from balance_manager.service.prices import PriceService
from balance_manager.storage.base import ValueStore

__all__ = ["PORTFOLIO_EVENTS", "PortfolioChange", "PortfolioTracker"]

logger = logging.getLogger(__name__)

#: How far past a rate's age limit the tracker wakes to value it again (seconds).
_PAST_THE_LIMIT = 0.001

#: The events a tracker publishes.
PORTFOLIO_EVENTS = ("portfolio_change",)


class PortfolioChange(msgspec.Struct, frozen=True):
    """The payload of ``portfolio_change``: the value moved by the threshold or more.

    Attributes:
        portfolio: the new valuation.
        previous_total: the total last published (``None`` for the first).
        change: ``portfolio.total - previous_total`` (``None`` for the first).
        change_pct: ``change`` in percent of ``previous_total`` (``None`` if it was 0).
    """

    portfolio: Portfolio
    previous_total: Decimal | None
    change: Decimal | None
    change_pct: Decimal | None


class PortfolioTracker:
    """One quote currency's valuation of a manager's balances (see module docs).

    Args:
        quote: the quote currency (canonical name).
        balances: returns the manager's balances now (no I/O).
        prices: the price service.
        clock: time source.
        threshold_pct: smallest move, in percent of the last published total, that
            publishes ``portfolio_change``.
        max_price_age: age beyond which a rate is stale.
        retention: seconds of value history kept.
        store: where points are kept across restarts (``None``: memory only).
        flush_interval: seconds between writes to ``store``.
    """

    def __init__(
        self,
        quote: str,
        *,
        balances: Callable[[], Mapping[str, Balance]],
        prices: PriceService,
        clock: Clock,
        threshold_pct: Decimal | int | str = Decimal(1),
        max_price_age: float = 60.0,
        retention: float = 86_400.0,
        store: ValueStore | None = None,
        flush_interval: float = 1.0,
    ) -> None:
        threshold = to_amount(threshold_pct, name="threshold_pct")
        if threshold < 0:
            raise ConfigError("threshold_pct", threshold_pct, "must be >= 0")
        if not max_price_age > 0:
            raise ConfigError("max_price_age", max_price_age, "must be above 0 seconds")
        self.quote = quote
        self.threshold_pct = threshold
        self.max_price_age = max_price_age
        self.prices = prices
        self.clock = clock
        self.history = ValueHistory(quote, retention=retention)
        self._balances = balances
        self._events = EventDispatcher(PORTFOLIO_EVENTS)
        self._moved = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._remove_listener: Callable[[], None] | None = None
        self._published: Decimal | None = None
        self._latest: Portfolio | None = None
        self._assets: frozenset[str] = frozenset()
        self._pending_flows: list[StreamLedgerUpdate] = []
        self._started = False
        self._closed = False
        self._store = store
        self._flush_interval = flush_interval
        self._unsaved: list[ValuePoint] = []
        self._flusher: asyncio.Task[None] | None = None
        self.last_store_error: str | None = None
        """The last failure of the store, if any (``None`` once a write succeeds)."""
        self.valuations = 0
        """How many valuations ran."""

    def __repr__(self) -> str:
        return f"PortfolioTracker({self.quote!r}, points={len(self.history)})"

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Check the quote currency, price what is held, value once, and follow changes.

        Raises:
            UnknownAssetError: no pair of the exchange prices ``quote``.
        """
        if self._started:
            return
        await self.prices.check_quote(self.quote)
        self._started = True
        await self._restore()
        self._remove_listener = self.prices.add_listener(self._on_prices)
        await self._want_prices()
        self._record(self._value())
        self._task = asyncio.create_task(self._run(), name=f"portfolio-{self.quote}")
        if self._store is not None:
            self._flusher = asyncio.create_task(
                self._flush_loop(), name=f"portfolio-{self.quote}-store"
            )

    async def _restore(self) -> None:
        """Read back the points of the retention window from the store."""
        store = self._store
        if store is None:
            return
        since = self.clock.time() - self.history.retention
        try:
            points = await store.load_values(self.quote, since)
        except PersistenceError as exc:
            self.last_store_error = str(exc)
            logger.warning("portfolio values could not be read back: %s", exc)
            return
        self.history.restore(points[-self.history.max_points :])

    async def flush(self) -> int:
        """Write the points recorded since the last write to the store; returns how many.

        A failure is logged and remembered (:attr:`last_store_error`); the points
        wait for the next write (at most ``history.max_points`` of them).
        """
        store = self._store
        if store is None or not self._unsaved:
            return 0
        batch, self._unsaved = self._unsaved, []
        try:
            written = await store.append_values(self.quote, batch)
        except PersistenceError as exc:
            self._unsaved = (batch + self._unsaved)[-self.history.max_points :]
            if self.last_store_error is None:
                logger.warning("portfolio values could not be written: %s", exc)
            self.last_store_error = str(exc)
            return 0
        self.last_store_error = None
        return written

    async def _flush_loop(self) -> None:
        rounds = 0
        while True:
            await self.clock.sleep(self._flush_interval)
            await self.flush()
            rounds += 1
            if rounds % 600 == 0 and self._store is not None:
                try:
                    await self._store.prune_values_before(
                        self.clock.time() - self.history.retention
                    )
                except PersistenceError as exc:
                    logger.warning("old portfolio values could not be pruned: %s", exc)

    async def close(self) -> None:
        """Stop following changes and deliver pending callbacks; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._remove_listener is not None:
            self._remove_listener()
        await cancel_and_wait(self._task)
        self._task = None
        await cancel_and_wait(self._flusher)
        self._flusher = None
        await self.flush()
        await self._events.aclose()

    # -- reads -------------------------------------------------------------------------

    async def value(self) -> Portfolio:
        """The portfolio now (prices for newly held assets are fetched first)."""
        await self.start()
        await self._want_prices()
        portfolio = self._value()
        self._record(portfolio)
        return portfolio

    @property
    def latest(self) -> Portfolio | None:
        """The last valuation, if any (no I/O)."""
        return self._latest

    def value_history(self, since: float | None = None) -> list[ValuePoint]:
        """The recorded values from ``since`` on (wall clock), oldest first."""
        return self.history.points(since)

    def flows(self, since: float | None = None) -> list[Flow]:
        """The deposits and withdrawals noted from ``since`` on."""
        return self.history.flows(since)

    def change_over(self, window: float) -> ValueChange | None:
        """How the value moved over the last ``window`` seconds, flows apart from market.

        The hook for an alert such as "portfolio value down more than X % over a
        window": ``change.market_pct`` ignores deposits and withdrawals,
        ``change.change_pct`` does not. ``None`` before the first valuation.

        Raises:
            ConfigError: ``window`` is not positive.
        """
        return self.history.change_over(window, now=self.clock.time())

    # -- callbacks ---------------------------------------------------------------------

    def register_callback(
        self, callback: Callable[[PortfolioChange], Awaitable[object] | object]
    ) -> None:
        """Call ``callback(PortfolioChange)`` when the total moves by ``threshold_pct`` or more.

        "Moves" is measured from the last total that reached the threshold (the
        first valuation's total to begin with), so slow drifts add up. Callbacks
        run in their own task, never inside the tracker.
        """
        self._events.register_callback("portfolio_change", callback)

    def unregister_callback(
        self, callback: Callable[[PortfolioChange], Awaitable[object] | object]
    ) -> bool:
        """Remove a callback; returns whether it was registered."""
        return self._events.unregister_callback("portfolio_change", callback)

    async def drain_callbacks(self) -> None:
        """Wait until every change published so far has reached its callbacks."""
        await self._events.drain()

    async def settle(self) -> None:
        """Value now if anything moved since the last valuation (for tests and the CLI)."""
        if self._moved.is_set():
            self._moved.clear()
            await self._want_prices()
            self._record(self._value())

    # -- what moves it -------------------------------------------------------------------

    def on_balance(self, change: BalanceChange) -> None:
        """A balance changed (the manager's ``balance_update``): value again soon."""
        self._moved.set()

    def on_ledger(self, entry: StreamLedgerUpdate) -> None:
        """A ledger entry arrived (on the ingest path: only noted, valued later).

        Deposits and withdrawals (:data:`FLOW_KINDS`) are flows; their ``amount``
        is what moved (a withdrawal's fee stays a cost, on the market side).
        """
        if entry.kind in FLOW_KINDS and entry.amount:
            self._pending_flows.append(entry)
            self._moved.set()

    def _value_flows(self) -> None:
        """Value the flows noted since the last valuation, at the current rates."""
        if not self._pending_flows:
            return
        pending, self._pending_flows = self._pending_flows, []
        self.prices.confirm()
        index = PriceIndex(self.prices.book.snapshot().values(), self.prices.book.known_current_at)
        now = self.clock.time()
        for entry in pending:
            rate = find_rate(
                entry.asset, self.quote, index, now=now, max_price_age=self.max_price_age
            )
            value = None
            if rate is not None:
                with _exact():
                    value = entry.amount * rate.rate
            self.history.add_flow(
                Flow(
                    at=entry.received_at,
                    asset=entry.asset,
                    amount=entry.amount,
                    kind=entry.kind,
                    value=value,
                )
            )

    def _on_prices(self, changed: frozenset[str]) -> None:
        self._moved.set()

    def on_source(self, changed: object) -> None:
        """The manager's serving source changed (``source_changed``): balances may now be
        served from cache, which no ``balance_update`` announces: value again."""
        self._moved.set()

    def _stale_at(self) -> float | None:
        """When the latest valuation's first still-fresh rate is stale (wall clock): just
        past ``max_price_age``, as a rate exactly that old is still current."""
        latest = self._latest
        if latest is None:
            return None
        moments = [
            value.rate.known_current_at + self.max_price_age + _PAST_THE_LIMIT
            for value in latest.assets.values()
            if value.rate is not None and not value.stale and value.rate.known_current_at
        ]
        return min(moments, default=None)

    async def _next_change(self) -> None:
        """Until something moved, or a rate of the latest valuation turns stale.

        Nothing announces that a price got old: without this wake-up, a tracker
        whose prices stopped arriving (stream down, REST failing) would keep its
        last valuation, and every value point, ``fresh`` forever.
        """
        stale_at = self._stale_at()
        if stale_at is None:
            await self._moved.wait()
            return
        delay = stale_at - self.clock.time()
        if delay <= 0 or self._moved.is_set():
            return
        moved = asyncio.ensure_future(self._moved.wait())
        timer = asyncio.ensure_future(self.clock.sleep(delay))
        try:
            await asyncio.wait({moved, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            moved.cancel()
            timer.cancel()

    async def _run(self) -> None:
        while True:
            await self._next_change()
            self._moved.clear()
            try:
                await self._want_prices()
                self._record(self._value())
            except Exception:  # a bad valuation must not stop the tracker
                logger.exception("portfolio valuation in %s failed", self.quote)

    async def _want_prices(self) -> None:
        balances = self._balances()
        held = frozenset(name for name, b in balances.items() if b.total)
        if held - self._assets:
            self._assets = self._assets | held
            pairs = await self.prices.pairs()
            await self.prices.want(pairs_needed(held, self.quote, pairs))

    def _value(self) -> Portfolio:
        self._value_flows()
        self.prices.confirm()
        book = self.prices.book
        index = PriceIndex(book.snapshot().values(), book.known_current_at)
        self.valuations += 1
        return value_portfolio(
            self._balances(),
            index,
            quote=self.quote,
            now=self.clock.time(),
            max_price_age=self.max_price_age,
        )

    def _record(self, portfolio: Portfolio) -> None:
        self._latest = portfolio
        stored = self.history.record(
            ValuePoint(
                at=portfolio.valued_at,
                total=portfolio.total,
                complete=portfolio.complete,
                fresh=portfolio.fresh,
            )
        )
        if stored is not None and self._store is not None:
            self._unsaved.append(stored)
        previous = self._published
        if previous is None:
            self._publish(portfolio, None)
            return
        with _exact():
            moved = abs(portfolio.total - previous) * 100
            reached = moved >= self.threshold_pct * abs(previous) if previous else bool(moved)
        if reached:
            self._publish(portfolio, previous)

    def _publish(self, portfolio: Portfolio, previous: Decimal | None) -> None:
        self._published = portfolio.total
        if not self._events.has_callbacks("portfolio_change"):
            return
        change = pct = None
        if previous is not None:
            with _exact():
                change = portfolio.total - previous
                if previous:
                    pct = (change * 100 / previous).quantize(Decimal("0.0001"))
        self._events.publish(
            "portfolio_change",
            PortfolioChange(
                portfolio=portfolio, previous_total=previous, change=change, change_pct=pct
            ),
        )

    def get_statistics(self) -> dict[str, Any]:
        """Valuations, history size and callback delivery figures."""
        return {
            "quote": self.quote,
            "valuations": self.valuations,
            "points": len(self.history),
            "callbacks": self._events.get_statistics(),
        }


def _exact() -> Any:
    """The exact context for sums and differences of values."""
    return localcontext(EXACT_CONTEXT)
