"""The alert monitor: runs the alert rules for a manager and delivers what fires and resolves.

A :class:`AlertMonitor` is attached to every
:class:`~balance_manager.service.manager.BalanceManager` whose configuration
has ``alerts_enabled`` (``manager.alerts``). It never slows ingest and never
runs user code while it holds anything:

* it is a :class:`~balance_manager.service.manager.BalanceObserver`: on each new
  value the manager calls :meth:`AlertMonitor.observe`, which keeps the new
  amount for the anomaly rule (a dict lookup and a bounded append, about
  0.4 µs) and marks the monitor dirty; a change of serving mode
  (:meth:`set_mode`) starts or ends a stream outage;
* validation failures arrive through a ``validation_failed`` callback;
* its own task evaluates the rules (:class:`~balance_manager.core.alerts.engine.AlertEngine`)
  within :data:`MIN_GAP` seconds of a change (so at most ten times a second) and every
  :data:`INTERVAL` seconds regardless, for the conditions that time alone
  creates (stale values, a stream down too long);
* each alert that fires or resolves is logged (fired: WARNING, or INFO for an
  ``info`` alert; resolved: INFO), published to callbacks
  (``alert_fired``, ``alert_resolved``, through the manager's dispatcher: each
  callback in its own task) and, with ``alert_webhook_url``, queued for the
  webhook (:class:`~balance_manager.service.webhook.WebhookSender`).

The ``portfolio_drop`` and ``stale_price`` rules need prices: give the monitor
a source of portfolio values with :meth:`AlertMonitor.set_portfolio_source` (a
callable returning the current value, or ``None`` when unknown; sampled at each
evaluation) and one of price confirmations with
:meth:`AlertMonitor.set_price_source` (a callable returning pair → when its
price was last confirmed). Until then both rules stay silent.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.alerts.engine import AlertEngine, AlertEngineStatistics, AlertUpdate
from balance_manager.core.alerts.model import Alert, AlertContext, AlertRule
from balance_manager.core.alerts.rules import BalanceAnomaly, PortfolioDrop, default_alert_rules
from balance_manager.core.amounts import to_amount
from balance_manager.core.freshness import ServingMode
from balance_manager.core.models import Balance
from balance_manager.core.validation.rules import Severity
from balance_manager.core.validation.validator import ValidationResult
from balance_manager.runtime.clock import Clock
from balance_manager.service.webhook import WebhookSender, WebhookStatistics

if TYPE_CHECKING:
    from balance_manager.service.manager import BalanceManager
    from balance_manager.service.portfolio import PortfolioTracker

__all__ = [
    "INTERVAL",
    "MIN_GAP",
    "AlertMonitor",
    "AlertMonitorStatistics",
    "PortfolioSource",
    "PriceSource",
]

logger = logging.getLogger(__name__)

#: Seconds between two evaluations when nothing happens (time-based conditions).
INTERVAL = 1.0
#: How often the monitor wakes to look for changes: a busy stream
#: costs at most ten evaluations a second.
MIN_GAP = 0.1
#: Validation failure times kept at most.
_MAX_FAILURES = 10_000

#: Returns the portfolio's current value, or ``None`` while it is unknown.
PortfolioSource = Callable[[], Decimal | None]
#: Returns pair → the wall-clock time its price was last confirmed by a live source.
PriceSource = Callable[[], Mapping[str, float]]

#: Log level of a fired alert by severity. An alert is news about the account, not a
#: failure of this program: even an ``error`` alert is logged at WARNING (its text
#: starts with its severity), so a command line that prints errors stays quiet.
_LOG_LEVEL = {Severity.ERROR: logging.WARNING, Severity.WARNING: logging.WARNING}


class AlertMonitorStatistics(TypedDict):
    """What :meth:`AlertMonitor.get_statistics` returns."""

    engine: AlertEngineStatistics
    active: int
    webhook: WebhookStatistics | None


class AlertMonitor:
    """Evaluates the alert rules for one manager and delivers alerts (see the module docs).

    Args:
        manager: the manager watched (its public API only).
        publish: ``publish(event, alert)``: hands an ``alert_fired`` /
            ``alert_resolved`` event to the callbacks (the manager's dispatcher).
        config: the options (default: the manager's).
        rules: the rules (default: the seven built-in ones, from ``config``).
        webhook: where alerts are POSTed (default: one for
            ``config.alert_webhook_url``, if set).
    """

    def __init__(
        self,
        manager: BalanceManager,
        publish: Callable[[str, Any], None],
        *,
        config: BalanceManagerConfig | None = None,
        rules: Iterable[AlertRule] | None = None,
        webhook: WebhookSender | None = None,
    ) -> None:
        self.config = config = config or manager.config
        self._manager = manager
        self._publish = publish
        self.clock: Clock = manager.clock
        if rules is None:
            rules = default_alert_rules(config, canonical=manager.canonical)
        self.engine = AlertEngine(rules, cooldown=config.alert_cooldown)
        """The rules and the state of every condition."""
        if webhook is None and config.alert_webhook_url is not None:
            webhook = WebhookSender(
                config.alert_webhook_url, clock=self.clock, timeout=config.alert_webhook_timeout
            )
        self.webhook = webhook
        """Where alerts are POSTed, or ``None``."""
        anomaly = next((r for r in self.engine.rules if isinstance(r, BalanceAnomaly)), None)
        # The anomaly rule looks at ``lookback`` earlier changes and the newest.
        self._keep_changes = (anomaly.lookback if anomaly is not None else 100) + 1
        # Each asset's recent changes as read from the manager's history (the one place
        # they are kept), with the newest entry they were read at: read again only when
        # the history recorded something since.
        self._change_cache: dict[
            str, tuple[tuple[float, Decimal], list[tuple[float, Decimal]]]
        ] = {}
        self._failures: deque[float] = deque(maxlen=_MAX_FAILURES)
        self._portfolio: deque[tuple[float, Decimal]] = deque()
        self._portfolio_source: PortfolioSource | None = None
        self._portfolio_failing = False
        self._price_source: PriceSource | None = None
        self._price_failing = False
        self._last_prices: dict[str, float] = {}
        self._down_since: float | None = None  # monotonic
        self._dirty = False  # something changed since the last evaluation
        self._streams = manager.websocket_client is not None

    # -- inputs (the observer protocol and a callback) ---------------------------------------

    def observe(self, balance: Balance) -> None:
        """A new value of one asset (called on the ingest path): evaluate soon.

        Nothing is kept here: the changes are read from the manager's history
        when the rules run, off the ingest path.
        """
        self._dirty = True

    def _changes(self, assets: Iterable[str]) -> dict[str, list[tuple[float, Decimal]]]:
        """Recent balance changes of ``assets``, from the manager's history (cached per asset).

        The history is where changes are kept (in memory, reloaded from its store on
        start): a monitor started after a restart judges with the changes before it.
        """
        history = self._manager.history
        out: dict[str, list[tuple[float, Decimal]]] = {}
        cache = self._change_cache
        for asset in assets:
            newest = history.last_recorded(asset)
            if newest is None:
                continue
            cached = cache.get(asset)
            if cached is not None and cached[0] == newest:
                changes = cached[1]
            else:
                changes = history.recent_changes(asset, self._keep_changes)
                cache[asset] = (newest, changes)
            if changes:
                out[asset] = changes
        if len(cache) > 2 * len(out) + 64:  # assets no longer held
            for gone in cache.keys() - out.keys():
                del cache[gone]
        return out

    def set_mode(self, mode: ServingMode) -> None:
        """The serving mode changed: a stream outage starts or ends."""
        if not self._streams:
            return
        if mode is ServingMode.WEBSOCKET:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = self.clock.monotonic()
        self._dirty = True

    def close(self) -> None:
        """The manager closed (the webhook is closed by :meth:`aclose`)."""

    def on_validation_failed(self, result: ValidationResult) -> None:
        """A ``validation_failed`` callback: an invalid result counts as one failure."""
        if not result.is_valid:
            self._failures.append(self.clock.time())
            self._dirty = True

    def set_portfolio_source(self, source: PortfolioSource | None) -> None:
        """Sample ``source()`` (the portfolio's value) at each evaluation, for ``portfolio_drop``.

        ``None`` stops sampling and forgets the samples.
        """
        self._portfolio_source = source
        self._portfolio.clear()

    def set_price_source(self, source: PriceSource | None) -> None:
        """Read ``source()`` (pair → when its price was last confirmed) at each evaluation,
        for ``stale_price``; ``None`` stops it (and forgets the last confirmations)."""
        self._price_source = source
        self._last_prices = {}

    def watch_portfolio(self, tracker: PortfolioTracker) -> None:
        """Feed ``portfolio_drop`` and ``stale_price`` from a portfolio tracker.

        The value sampled is the tracker's latest total **net of deposits and
        withdrawals** (``total - flows``: what market moves and trading made of
        it), and only while that valuation is complete, fresh and every flow is
        valued (``None`` otherwise: no sample rather than a wrong one). Price
        confirmations are those of the pairs the tracker's prices follow. The
        manager calls this for its tracker in ``alert_portfolio_quote``.
        """
        history = tracker.history
        prices = tracker.prices

        def market_value() -> Decimal | None:
            point = history.latest()
            if point is None or not (point.complete and point.fresh) or point.unvalued_flows:
                return None
            return point.total - point.flows

        def confirmations() -> dict[str, float]:
            book = prices.book
            known = ((symbol, book.known_current_at(symbol)) for symbol in prices.wanted)
            return {symbol: at for symbol, at in known if at is not None}

        self.set_portfolio_source(market_value)
        self.set_price_source(confirmations)

    # -- evaluation -------------------------------------------------------------------------

    def evaluate_now(self) -> AlertUpdate:
        """Evaluate every rule now and deliver what fired and resolved."""
        self._dirty = False
        manager = self._manager
        now = self.clock.time()
        balances = manager.sync_view().get_all_balances()
        confirmed: dict[str, float] = {}
        for asset, value in balances.items():
            age = manager.age_of(value)
            if age is not None:
                confirmed[asset] = now - age
        self._sample_portfolio(now)
        down = self._down_since
        ctx = AlertContext(
            now,
            balances,
            confirmed,
            # The outage is timed on the monotonic clock (a wall-clock step must neither hide
            # nor invent one), shown to the rules as the wall time it began.
            None if down is None else now - (self.clock.monotonic() - down),
            tuple(self._failures),
            self._changes(balances),
            tuple(self._portfolio),
            self._price_confirmations(),
            self.clock.monotonic(),
        )
        update = self.engine.evaluate(ctx)
        deliveries = [("alert_resolved", a) for a in update.resolved]
        deliveries += [("alert_fired", a) for a in update.fired]
        for event, alert in deliveries:
            try:
                self._deliver(event, alert)
            except Exception:  # one alert's delivery must not lose the others
                logger.exception("could not deliver %s %s", event, alert.key)
        return update

    def _sample_portfolio(self, now: float) -> None:
        source = self._portfolio_source
        if source is None:
            return
        try:
            value = source()
            if value is not None:
                amount = to_amount(value, name="portfolio value")
                # Only samples that can still be the window's highest are kept (each newer
                # one at least as high replaces them): the drop from the peak is the same,
                # and a busy portfolio no longer keeps ten samples a second for the window.
                samples = self._portfolio
                while samples and samples[-1][1] <= amount:
                    samples.pop()
                samples.append((now, amount))
            self._portfolio_failing = False
        except Exception:
            if not self._portfolio_failing:
                logger.exception("the portfolio source failed; portfolio_drop skips this sample")
            self._portfolio_failing = True
        drop = next((r for r in self.engine.rules if isinstance(r, PortfolioDrop)), None)
        window = drop.window if drop is not None else self.config.alert_portfolio_window
        # The window ends at the newest known value, not at now: while the value is unknown
        # (no fresh valuation), the last known window stays, so an active drop holds rather
        # than resolving as if the portfolio had recovered.
        samples = self._portfolio
        while samples and samples[0][0] < samples[-1][0] - window:
            samples.popleft()

    def _price_confirmations(self) -> Mapping[str, float]:
        source = self._price_source
        if source is None:
            return {}
        try:
            confirmed = dict(source())
        except Exception:
            if not self._price_failing:
                logger.exception("the price source failed; its last confirmations age on")
            self._price_failing = True
            return self._last_prices  # no news is no confirmation: they only get older
        self._price_failing = False
        self._last_prices = confirmed
        return confirmed

    def _deliver(self, event: str, alert: Alert) -> None:
        if event == "alert_fired":
            logger.log(_LOG_LEVEL.get(alert.severity, logging.INFO), "alert fired: %s", alert)
        else:
            logger.info("alert resolved: %s", alert)
        self._publish(event, alert)
        if self.webhook is not None:
            manager = self._manager
            self.webhook.send(
                {
                    "event": event,
                    "exchange": manager.exchange,
                    "account": manager.account,
                    "simulated": manager.simulated,
                    "alert": alert.as_json(),
                }
            )

    async def run(self) -> None:
        """Evaluate soon after a change and every :data:`INTERVAL` seconds, until cancelled.

        One sleep on the clock per :data:`MIN_GAP`, no helper task: between two
        evaluations the monitor costs a wake-up and a flag check.
        """
        if (
            self._streams
            and self._down_since is None
            and self._manager.serving_mode is not ServingMode.WEBSOCKET
        ):
            self._down_since = self.clock.monotonic()
        clock = self.clock
        due = clock.monotonic()
        while True:
            if self._dirty or clock.monotonic() >= due:
                due = clock.monotonic() + INTERVAL
                try:
                    self.evaluate_now()
                except Exception:  # a bug must not end alerting for good
                    logger.exception("alert evaluation failed")
            await clock.sleep(MIN_GAP)

    async def aclose(self, grace: float = 5.0) -> None:
        """Deliver the webhook's waiting alerts (up to ``grace`` seconds), then stop it."""
        if self.webhook is not None:
            await self.webhook.aclose(grace)

    # -- reading --------------------------------------------------------------------------------

    def active(self) -> list[Alert]:
        """The alerts firing now, oldest first."""
        return self.engine.active()

    def recent(self) -> list[Alert]:
        """The last resolved alerts, oldest first."""
        return self.engine.recent()

    def get_statistics(self) -> AlertMonitorStatistics:
        """The engine's counts, and the webhook's when there is one."""
        return {
            "engine": self.engine.get_statistics(),
            "active": len(self.engine.active()),
            "webhook": self.webhook.get_statistics() if self.webhook is not None else None,
        }

    def __repr__(self) -> str:
        webhook = f", webhook={self.webhook.shown_url!r}" if self.webhook is not None else ""
        active = len(self.engine.active())
        return f"AlertMonitor(rules={len(self.engine.rules)}, active={active}{webhook})"
