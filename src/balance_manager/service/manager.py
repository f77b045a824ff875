"""BalanceManager: one answer, for every strategy, to "how much do I have, and how much is free?".

The manager keeps the latest balance of every asset in memory and serves every
read from there. Sources keep it current:

* the **WebSocket** stream (``websocket_client``) pushes each ledger entry and,
  with ``executions``, each hold change, in real time; while it is healthy no
  REST call is needed for reads;
* **REST** (``rest_client``) takes the first snapshot, polls within the rate
  limit (behind the circuit breaker) while the stream is down or silent,
  checks the stream whenever it may have lost something (missed heartbeats),
  and cross-checks it every ``force_update_interval``;
* when both fail, the last known values are served marked with source
  ``cache``, so a caller can always tell (``Balance.source``, ``received_at``,
  and ``max_age`` to demand fresh data or an error).

Which reading wins is decided by the pure rules of
:mod:`balance_manager.core.reconcile`; the manager applies their outcome in one
step, without awaiting anything, and hands events to an
:class:`~balance_manager.service.dispatch.EventDispatcher`, so no callback runs while a
reading is being applied and no lock is held while user code runs.

Everything time-dependent runs on the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.alerts.model import Alert
from balance_manager.core.amounts import ZERO
from balance_manager.core.cache import BalanceCache
from balance_manager.core.freshness import ServingMode, SourceTracker
from balance_manager.core.models import Balance, BalanceChange, Source, check_asset_name
from balance_manager.core.reconcile import (
    Outcome,
    StreamView,
    apply_holds,
    apply_stream_snapshot,
    reconcile_rest,
    same_amounts,
)
from balance_manager.core.sources import (
    PlainNames,
    RestSource,
    StreamEvent,
    StreamHolds,
    StreamLedgerUpdate,
    StreamSnapshot,
    StreamSource,
    StreamState,
    StreamStatus,
)
from balance_manager.core.stats import Counters
from balance_manager.core.validation.validator import BalanceValidator, ValidationResult
from balance_manager.exceptions import (
    AuthenticationError,
    ConfigError,
    LockoutError,
    ProtocolError,
    SourceError,
    StaleBalanceError,
    UnknownAssetError,
)
from balance_manager.runtime.aio import cancel_and_wait
from balance_manager.runtime.clock import Clock, SystemClock
from balance_manager.service.alerts import AlertMonitor
from balance_manager.service.dispatch import Callback, EventDispatcher
from balance_manager.service.history import BalanceHistory
from balance_manager.service.status import (
    EVENTS,
    ConnectionState,
    EventName,
    ManagerStatistics,
    ManagerStatus,
    SourceChanged,
)
from balance_manager.storage.memory import BalanceStore, InMemoryBalanceStore

if TYPE_CHECKING:
    from balance_manager.core.prices import PriceSource
    from balance_manager.core.valuation import Portfolio
    from balance_manager.service.portfolio import PortfolioTracker
    from balance_manager.service.prices import PriceService
    from balance_manager.storage.base import ValueStore

if TYPE_CHECKING:
    from balance_manager.simulator import SimulatedKraken

__all__ = ["EVENTS", "BalanceManager", "BalanceObserver", "SyncBalanceView"]

logger = logging.getLogger(__name__)


#: How a REST read can fail: the source could not answer, or answered a result
#: of the wrong shape (a ProtocolError is not a SourceError). Either is a failed
#: read: counted, retried at the next poll, never fatal to the polling task.
_REST_FAILURES = (SourceError, ProtocolError)
#: Spellings remembered by ``canonical`` (names are at most 64 characters).
_CANONICAL_CACHE_SIZE = 4096

#: Seconds between two runs of the health monitor.
MONITOR_INTERVAL = 1.0

_COUNTER_NAMES = (
    "updates",
    "ledger_updates",
    "snapshots",
    "hold_updates",
    "rest_refreshes",
    "rest_failures",
    "validation_failures",
    "validation_warnings",
    "fallbacks",
    "recoveries",
    "stale_reads",
    "source_inconsistencies",
    "hold_mismatches",
    "continuity_breaks",
    "stream_interruptions",
    "quiet_checks",
    "resyncs_requested",
    "stream_restarts",
)


class BalanceObserver(Protocol):
    """Told each new value and serving mode as they happen (an exporter, e.g. Prometheus)."""

    def observe(self, balance: Balance) -> None:
        """A new value of one asset."""
        ...

    def set_mode(self, mode: ServingMode) -> None:
        """The serving mode changed."""
        ...

    def close(self) -> None:
        """The manager closed."""
        ...


class BalanceManager:
    """Real-time, exact balances from a WebSocket stream with REST fallback.

    Args:
        websocket_client: the stream (a
            :class:`~balance_manager.kraken.ws_client.KrakenWebSocketClient`),
            or ``None`` to run on REST polling alone.
        rest_client: the REST client (a
            :class:`~balance_manager.kraken.rest_client.KrakenRestClient`).
            A client given here may be shared with other managers: it is
            closed by the last manager using it that closes.
        config: every option; defaults to :class:`BalanceManagerConfig()`.
        clock: time source; defaults to the REST client's clock.
        store: where balances are held; defaults to this process's memory.
        history: the history component; made from ``config`` by default.
        validator: the validator; made from ``config`` by default (``None`` when
            ``enable_validation`` is off).

    Use it as an async context manager, or call :meth:`initialize` and
    :meth:`close` yourself::

        async with BalanceManager(websocket_client=ws, rest_client=rest) as manager:
            usdt = await manager.get_balance("USDT")
    """

    def __init__(
        self,
        websocket_client: StreamSource | None = None,
        rest_client: RestSource | None = None,
        config: BalanceManagerConfig | None = None,
        *,
        clock: Clock | None = None,
        store: BalanceStore | None = None,
        history: BalanceHistory | None = None,
        validator: BalanceValidator | None = None,
    ) -> None:
        if websocket_client is None and rest_client is None:
            raise ConfigError("rest_client", None, "a BalanceManager needs at least a REST client")
        self.config = config or BalanceManagerConfig()
        self.clock: Clock = clock or getattr(rest_client, "clock", None) or SystemClock()
        self.websocket_client = websocket_client
        self.rest_client = rest_client
        self.names = rest_client.names if rest_client is not None else PlainNames()
        self.exchange: str = rest_client.exchange if rest_client is not None else "unknown"
        """What is on the other end: ``"kraken"``, or ``"simulator"`` for a simulated exchange."""
        self.account: str = rest_client.account if rest_client is not None else ""
        """The account's fingerprint (never its key): history is kept per account."""
        self._store: BalanceStore = store if store is not None else InMemoryBalanceStore()
        self.cache: BalanceCache[Balance] = BalanceCache.from_config(
            self.config, time=self.clock.monotonic
        )
        self.history = history or BalanceHistory.from_config(
            self.config, clock=self.clock, account=self.account, simulated=self.simulated
        )
        self.validator: BalanceValidator | None
        if validator is not None:
            self.validator = validator
        elif self.config.enable_validation:
            self.validator = BalanceValidator.from_config(self.config, decimals=self.names.decimals)
        else:
            self.validator = None
        self._events = EventDispatcher(EVENTS)
        self._tracker = SourceTracker(
            stream_timeout=self.config.websocket_timeout,
            rest_fresh_for=max(
                2 * self.config.rest_poll_interval + self.config.rest_api_timeout,
                self.config.websocket_timeout,
            ),
            poll_interval=self.config.rest_poll_interval,
            poll_for_holds=websocket_client is not None and self.config.subscribe_executions,
        )
        self._counters = Counters(_COUNTER_NAMES)
        self._counts = self._counters.live  # incremented in place on the hot path
        self._canonical: dict[str, str] = {}
        self._refresh_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._initialized = False
        self._closed = False
        self._mode = ServingMode.CACHE
        self._holds_live = False
        self._uncertain_holds: frozenset[str] = frozenset()
        # Assets the stream speaks for: those of its last whole-account snapshot and any it
        # updated since. Only these are confirmed by a healthy stream; an asset only REST
        # lists is as fresh as its last REST read.
        self._stream_assets: set[str] = set()
        self._rest_read_at: dict[str, float] = {}  # asset → when REST last read it (wall)
        self._stream_state = StreamState.DISCONNECTED
        self._system: str | None = None
        self._last_update: float | None = None
        self._last_rest_error: str | None = None
        self._quiet_checked = False  # a REST check ran for the current quiet spell
        self._restarting = False  # a dead stream task is being restarted
        self._observers: list[BalanceObserver] = []
        self.simulator: SimulatedKraken | None = None
        """The simulator this manager talks to, when :func:`connect` started one."""
        self.prices: PriceService | None = None
        """Prices for valuations (:meth:`use_prices`; :func:`connect` sets one up)."""
        self._trackers: dict[str, PortfolioTracker] = {}
        self._trackers_lock = asyncio.Lock()  # one tracker per quote, however many ask at once
        # Told each ledger entry (its type tells deposits from trades); empty unless valued.
        self._ledger_listeners: list[Callable[[StreamLedgerUpdate], None]] = []
        self.alerts: AlertMonitor | None = None
        """The alert monitor (``config.alerts_enabled``; docs/alerts.md), or ``None``."""
        if self.config.alerts_enabled:
            self.alerts = AlertMonitor(self, self._events.publish)
            self._observers.append(self.alerts)
            self._events.register_callback("validation_failed", self.alerts.on_validation_failed)

    @property
    def simulated(self) -> bool:
        """Whether the exchange on the other end is a simulator (its values are not real)."""
        return self.exchange == "simulator"

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> BalanceManager:
        await self.initialize()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def initialize(self) -> None:
        """Load history, read asset info, take a REST snapshot, start the stream and tasks.

        Raises:
            AuthenticationError: the exchange refused the credentials.
            LockoutError: the key is locked out.
        """
        if self._initialized:
            return
        if self._closed:
            raise RuntimeError("this BalanceManager was closed; make a new one")
        self._initialized = True
        rest = self.rest_client
        if rest is not None:
            rest.acquire()
        await self.history.load()
        self._restore_last_known()
        if rest is not None:
            try:
                await rest.load_assets()
            except (AuthenticationError, LockoutError):
                await self.close()
                raise
            except _REST_FAILURES as exc:
                logger.warning("could not read asset info (%s); using built-in names", exc)
            try:
                await self.refresh_all_balances()
            except (AuthenticationError, LockoutError):
                await self.close()
                raise
            except _REST_FAILURES as exc:
                logger.warning("initial REST snapshot failed (%s); will retry", exc)
        if self._stop.is_set():
            return  # close() ran meanwhile: start nothing that would outlive it
        if self.websocket_client is not None:
            await self.websocket_client.start(self._on_stream_event)
        self._spawn(self._monitor(), "balance-monitor")
        self._spawn(self._periodic_refresh(), "balance-periodic-refresh")
        self._spawn(self.history.run_maintenance(self._stop), "balance-history-maintenance")
        if self.alerts is not None:
            self._spawn(self.alerts.run(), "balance-alerts")

    async def close(self) -> None:
        """Stop the stream and every task, deliver pending events, flush history, release clients.

        Idempotent. A REST client shared with other managers is closed by the
        last of them.
        """
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self.websocket_client is not None:
            await self.websocket_client.stop()
        tasks, self._tasks = self._tasks, []
        maintenance = [t for t in tasks if t.get_name() == "balance-history-maintenance"]
        if maintenance:
            # It flushes once more when told to stop: let it, rather than cancel it.
            await asyncio.wait(maintenance, timeout=5.0)
        for task in tasks:
            await cancel_and_wait(task)
        for tracker in list(self._trackers.values()):
            await tracker.close()
        if self.prices is not None:
            await self.prices.close()
        if self.alerts is not None:
            await self.alerts.aclose()
        await self._events.aclose()
        await self.history.close()
        if self.rest_client is not None and self._initialized:
            await self.rest_client.release()
        for observer in self._observers:
            observer.close()

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    def _restore_last_known(self) -> None:
        """Hold the last known values of this account (stale until a source confirms).

        Complete values only (balance, hold, earn and credit, as stored): a
        value whose hold is not known is not restored at all, rather than shown
        with a hold of zero and a wrong free amount.
        """
        for asset, value in self.history.last_known().items():
            if asset not in self._store:
                self._store.put(value.replace(source=Source.CACHE))

    # -- reads -----------------------------------------------------------------------

    def canonical(self, asset: str) -> str:
        """The canonical name of any spelling (``XBT``, ``XXBT``, ``btc`` → ``BTC``).

        Raises:
            UnknownAssetError: ``asset`` is not a non-empty string of at most
                64 printable characters (``check_asset_name``).
        """
        name = self._canonical.get(asset) if type(asset) is str else None
        if name is None:
            name = self.names.canonical(check_asset_name(asset))
            if type(asset) is str and len(self._canonical) < _CANONICAL_CACHE_SIZE:
                self._canonical[asset] = name
        return name

    async def get_balance(self, asset: str, *, max_age: float | None = None) -> Balance | None:
        """The balance of ``asset`` (any spelling), or ``None`` for an asset not held.

        The value reads as a mapping (``b["free"]``, ``b["balance"]``,
        ``b["hold_trade"]``, ``b["asset"]``) and as an object (``b.free``), and
        says where it came from (``source``: websocket, rest or cache) and when
        (``received_at``).

        Args:
            asset: ``BTC``, ``XBT``, ``XXBT``...
            max_age: seconds; the value must have been known current at some
                moment no earlier than ``max_age`` seconds before this call. If
                the held one was not, a REST refresh is forced first (a value
                read by a request sent after this call satisfies any
                ``max_age``, ``0`` included).

        Raises:
            StaleBalanceError: ``max_age`` was given and no source could provide
                a value that young.
            ConfigError: ``max_age`` is not a number of seconds >= 0 (NaN included).
        """
        name = (self._canonical.get(asset) if type(asset) is str else None) or self.canonical(asset)
        value = self.cache.get(name)
        if value is not None and max_age is None and self._mode is _LIVE:
            return value  # the fast path: a held value, confirmed by a live stream
        return await self._read(name, value, max_age)

    async def _read(
        self, name: str, value: Balance | None, max_age: float | None
    ) -> Balance | None:
        asked_at = self.clock.time()
        mode = self._update_mode()
        if value is None:
            value = self._store.get(name)
            if value is not None and mode is not ServingMode.CACHE:
                self.cache.put(name, value)  # re-confirmed by a live source
        if max_age is not None:
            oldest = asked_at - _checked_max_age(max_age)
            if value is None or self._known_current_at(value) < oldest:
                await self._refresh_for_read(name, max_age)
                mode = self._update_mode()
                value = self._store.get(name)
                if value is not None and self._known_current_at(value) < oldest:
                    raise StaleBalanceError(
                        name, self.age_of(value), max_age, self._last_rest_error or ""
                    )
        if value is None:
            return None
        if mode is ServingMode.CACHE:
            self._counters.incr("stale_reads")
            return value if value.source is Source.CACHE else value.replace(source=Source.CACHE)
        return value

    async def _refresh_for_read(self, name: str, max_age: float) -> None:
        if self.rest_client is None:
            return
        try:
            await self.refresh_all_balances()
        except _REST_FAILURES as exc:
            held = self._store.get(name)
            raise StaleBalanceError(name, self.age_of(held), max_age, str(exc)) from exc

    def _known_current_at(self, value: Balance) -> float:
        """Wall-clock time up to which ``value`` is known to have been current.

        Its amounts are as recent as its own reading, the stream's confirmation
        (for an asset the stream reports: one only REST lists is never pushed)
        and the last REST read of its asset; its hold only as recent as the
        stream's while it follows holds (and can derive this asset's), else as
        the last REST read of the asset. A value is as recent as both.
        """
        if value.source is Source.CACHE:
            return value.received_at
        return self._confirmed_at(value.asset, value.received_at)

    def _confirmed_at(self, asset: str | None, known: float) -> float:
        """:meth:`_known_current_at` of ``asset``'s value read at ``known``; ``None``: of
        the values the stream reports, as one (what a shared leader publishes)."""
        tracker = self._tracker
        offset = self.clock.time() - self.clock.monotonic()
        rest = None if asset is None else self._rest_read_at.get(asset)
        stream = tracker.stream_confirmed_at()
        if (
            stream is not None
            and stream + offset > known
            and (asset is None or asset in self._stream_assets)
        ):
            known = stream + offset
        if rest is not None and rest > known:
            known = rest
        holds = None if asset in self._uncertain_holds else tracker.holds_confirmed_at()
        hold_known = -math.inf if holds is None else holds + offset
        if rest is not None and rest > hold_known:
            hold_known = rest
        return known if known <= hold_known else hold_known

    def confirmed_age(self) -> float:
        """Seconds since the values the stream reports were all last known current.

        What a healthy stream (holds included, while it follows them) confirms for
        the account as a whole; without one, as old as the start of time (``inf`` is
        never returned: the age counts from Unix time 0). An asset only REST lists
        is as fresh as its own last REST read (:meth:`age_of`).
        """
        return max(0.0, self.clock.time() - self._confirmed_at(None, 0.0))

    def age_of(self, value: Balance | None) -> float | None:
        """Seconds since ``value`` was last known current, or ``None`` for no value.

        A value confirmed by a healthy stream (which would have pushed any
        change) or a later REST read is as young as that confirmation.
        """
        if value is None:
            return None
        return max(0.0, self.clock.time() - self._known_current_at(value))

    async def get_all_balances(self, *, max_age: float | None = None) -> dict[str, Balance]:
        """Every held asset → its balance (same shape and sources as :meth:`get_balance`).

        Raises:
            StaleBalanceError: ``max_age`` was given and a value that young could
                not be had for every asset.
            ConfigError: ``max_age`` is not a number of seconds >= 0.
        """
        asked_at = self.clock.time()
        mode = self._update_mode()
        if max_age is not None:
            oldest = asked_at - _checked_max_age(max_age)
            stale = [
                b for b in self._store.snapshot().values() if self._known_current_at(b) < oldest
            ]
            if stale or not self._store:
                await self._refresh_for_read(stale[0].asset if stale else "*", max_age)
                mode = self._update_mode()
                # The read may not have confirmed every value: never hand one back that old.
                for held in self._store.snapshot().values():
                    if self._known_current_at(held) < oldest:
                        raise StaleBalanceError(
                            held.asset, self.age_of(held), max_age, self._last_rest_error or ""
                        )
        balances = self._store.snapshot()
        if mode is ServingMode.CACHE:
            self._counters.incr("stale_reads")
            return {
                asset: b if b.source is Source.CACHE else b.replace(source=Source.CACHE)
                for asset, b in balances.items()
            }
        return balances

    async def refresh_all_balances(self) -> dict[str, Balance]:
        """Read every balance over REST now (rate-limited, behind the circuit breaker).

        The reading replaces every held value it is newer than (see
        :mod:`balance_manager.core.reconcile`); where it shows that the stream
        lost an update, the stream is resynchronised and the disagreement is
        reported as a ``source_inconsistency``.

        Raises:
            SourceError: REST failed (the held values stay as they were).
            ProtocolError: REST answered with a result of the wrong shape (held
                values unchanged; counted as a failure like a SourceError).
        """
        rest = self.rest_client
        if rest is None:
            raise ConfigError("rest_client", None, "refresh_all_balances needs a REST client")
        async with self._refresh_lock:
            self._tracker.rest_attempt(self.clock.monotonic())
            before = self._store.snapshot()
            try:
                snapshot = await rest.fetch_balances()
            except _REST_FAILURES as exc:
                self._tracker.rest_failure()
                self._counters.incr("rest_failures")
                self._last_rest_error = str(exc)
                raise
            # Known current from when the request left (its wall time, on the
            # monotonic scale the tracker keeps).
            current_at = snapshot.current_at
            self._tracker.rest_success(
                self.clock.monotonic() - max(0.0, self.clock.time() - current_at)
            )
            self._last_rest_error = None
            self._counters.incr("rest_refreshes")
            view = StreamView(self._stream_live(), self._holds_live)
            held = self._store.snapshot()
            self._apply_outcome(reconcile_rest(before, held, snapshot, view))
            # What this read tells about: every asset not changed since it left
            # (those the stream changed meanwhile are newer than it).
            read_at = current_at
            for asset in snapshot.balances.keys() | held.keys():
                if held.get(asset) is before.get(asset):
                    self._rest_read_at[asset] = read_at
        self._update_mode()
        return self._store.snapshot()

    async def validate_all_balances(self) -> ValidationResult:
        """Run the validator over every held balance (stale data included).

        Raises:
            ConfigError: validation is disabled.
        """
        if self.validator is None:
            raise ConfigError("enable_validation", False, "validation is disabled")
        now = self.clock.time()
        balances = self._store.snapshot()
        confirmations = {
            asset: self._known_current_at(b)
            for asset, b in balances.items()
            if b.source is not Source.CACHE
        }
        return self.validator.validate_balances(balances, now=now, confirmed_at=confirmations)

    def sync_view(self) -> SyncBalanceView:
        """A thread-safe, synchronous read view for strategies that run in threads."""
        return SyncBalanceView(self)

    # -- callbacks ---------------------------------------------------------------------

    @overload
    def register_callback(
        self,
        event: Literal["balance_update", "balance_change"],
        callback: Callable[[BalanceChange], Awaitable[object] | object],
    ) -> None: ...

    @overload
    def register_callback(
        self,
        event: Literal["validation_failed"],
        callback: Callable[[ValidationResult], Awaitable[object] | object],
    ) -> None: ...

    @overload
    def register_callback(
        self,
        event: Literal["source_changed"],
        callback: Callable[[SourceChanged], Awaitable[object] | object],
    ) -> None: ...

    @overload
    def register_callback(
        self,
        event: Literal["connection_state"],
        callback: Callable[[ConnectionState], Awaitable[object] | object],
    ) -> None: ...

    @overload
    def register_callback(
        self,
        event: Literal["alert_fired", "alert_resolved"],
        callback: Callable[[Alert], Awaitable[object] | object],
    ) -> None: ...

    def register_callback(self, event: EventName, callback: Callback) -> None:
        """Call ``callback(payload)`` (sync or async) on ``event`` (see :data:`EVENTS`).

        Callbacks run in their own task, never inside the code that applies a
        balance: a slow or failing callback delays nothing but itself. The
        payload's type follows the event (checked by mypy): a
        :class:`BalanceChange` for ``balance_update`` and ``balance_change``, a
        :class:`ValidationResult` for ``validation_failed``, a
        :class:`SourceChanged` or a :class:`ConnectionState` dict for those two,
        an :class:`~balance_manager.core.alerts.model.Alert` for ``alert_fired``
        and ``alert_resolved``.

        Raises:
            UnknownEventError: ``event`` is not one of :data:`EVENTS`.
        """
        self._events.register_callback(event, callback)

    def unregister_callback(self, event: str, callback: Callback) -> bool:
        """Remove a callback; returns whether it was registered."""
        return self._events.unregister_callback(event, callback)

    async def drain_callbacks(self) -> None:
        """Wait until every event published so far has reached its callbacks."""
        await self._events.drain()

    def add_observer(self, observer: BalanceObserver) -> None:
        """Tell ``observer`` every new value and serving mode, synchronously (keep it cheap).

        For exporters such as :mod:`balance_manager.contrib.prometheus`, not for
        strategies (use :meth:`register_callback`): an observer runs on the
        ingest path. It is closed with the manager.
        """
        self._observers.append(observer)

    # -- portfolio (docs/portfolio.md) -------------------------------------------------

    def use_prices(self, source: PriceSource) -> PriceService:
        """Value balances with ``source``'s prices (a venue's price client).

        Nothing is read or connected until a portfolio is asked for. REST is
        polled every ``rest_poll_interval`` while the price stream is down.

        Raises:
            ConfigError: prices are already set up.
        """
        from balance_manager.service.prices import PriceService

        if self.prices is not None:
            raise ConfigError("prices", source, "this manager already has a price source")
        self.prices = PriceService(
            source, clock=self.clock, poll_interval=self.config.rest_poll_interval
        )
        return self.prices

    @property
    def max_price_age(self) -> float:
        """Age beyond which a price is stale: as long as a REST read keeps balances fresh."""
        return max(
            2 * self.config.rest_poll_interval + self.config.rest_api_timeout,
            self.config.websocket_timeout,
        )

    async def portfolio_tracker(
        self, quote: str = "USD", *, threshold_pct: Decimal | int | str = Decimal(1)
    ) -> PortfolioTracker:
        """The started tracker of the portfolio in ``quote`` (one per quote currency).

        ``threshold_pct`` applies when the tracker is made (the first call for
        ``quote``). See :class:`~balance_manager.service.portfolio.PortfolioTracker`.

        Raises:
            ConfigError: the manager has no price source (see :meth:`use_prices`).
            UnknownAssetError: no pair of the exchange prices ``quote``.
        """
        from balance_manager.service.portfolio import PortfolioTracker

        prices = self.prices
        if prices is None:
            raise ConfigError(
                "prices",
                None,
                "no price source: connect() sets one up for Kraken and the simulator; "
                "otherwise call use_prices()",
            )
        name = self.canonical(quote)
        async with self._trackers_lock:
            tracker = self._trackers.get(name)
            if tracker is None:
                tracker = PortfolioTracker(
                    name,
                    balances=self._portfolio_balances,
                    prices=prices,
                    clock=self.clock,
                    threshold_pct=threshold_pct,
                    max_price_age=self.max_price_age,
                    retention=self.config.history_retention_hours * 3600.0,
                    store=self._value_store(),
                )
                await tracker.start()
                self._trackers[name] = tracker
                self._events.register_callback("balance_update", tracker.on_balance)
                self._events.register_callback("source_changed", tracker.on_source)
                self._ledger_listeners.append(tracker.on_ledger)
                if self.alerts is not None and name == self._alert_quote():
                    self.alerts.watch_portfolio(tracker)  # portfolio_drop, stale_price
        return tracker

    def _alert_quote(self) -> str | None:
        """The quote currency the value alerts follow (``alert_portfolio_quote``), canonical;
        not whichever tracker happens to start first (a dashboard request could pick it)."""
        try:
            return self.canonical(self.config.alert_portfolio_quote)
        except UnknownAssetError:
            return None

    @property
    def portfolio_trackers(self) -> Mapping[str, PortfolioTracker]:
        """The started trackers by quote currency (read-only, no I/O).

        For code that must not await, such as an alert rule: ``trackers.get("USD")``
        then ``tracker.change_over(window)``.
        """
        return MappingProxyType(self._trackers)

    async def portfolio(self, quote: str = "USD") -> Portfolio:
        """Every balance valued in ``quote``: total, per-asset values and allocation.

        An asset without a price is listed in ``unvalued``, never counted as
        zero; a rate older than :attr:`max_price_age`, or a balance served
        from cache, is listed in ``stale`` (``Portfolio.fresh`` is then false).

        Raises:
            ConfigError: the manager has no price source (see :meth:`use_prices`).
            UnknownAssetError: no pair of the exchange prices ``quote``.
        """
        tracker = await self.portfolio_tracker(quote)
        return await tracker.value()

    def _value_store(self) -> ValueStore | None:
        """The history database, when it keeps portfolio values too (both stores do)."""
        from balance_manager.storage.base import ValueStore

        store = self.history.store
        return store if isinstance(store, ValueStore) else None

    def _portfolio_balances(self) -> dict[str, Balance]:
        """Every held balance, marked ``cache`` when no source is live (no I/O)."""
        self._update_mode()
        return SyncBalanceView(self).get_all_balances()

    # -- status ------------------------------------------------------------------------

    @property
    def serving_mode(self) -> ServingMode:
        """Where served values stand right now: websocket, rest or cache (stale)."""
        return self._update_mode()

    def get_status(self) -> ManagerStatus:
        """Health at a glance: sources, cache, assets, freshness.

        The parts never contradict each other: a stream that says it streams
        but has not been heard from within ``websocket_timeout`` is reported
        ``silent``, as the serving source (``rest`` or ``cache``) implies.
        """
        mode = self._update_mode()
        mono = self.clock.monotonic()
        ws = self.websocket_client
        last_msg = ws.last_message_at if ws is not None else None
        rest_stats = self.rest_client.get_statistics() if self.rest_client is not None else {}
        last_rest = self._tracker.last_rest_success
        state = self._stream_state.value
        if self._stream_state is StreamState.STREAMING and not self._stream_live():
            state = "silent"
        return {
            "initialized": self._initialized and not self._closed,
            "exchange": self.exchange,
            "account": self.account,
            "source": mode.value,
            "websocket": {
                "enabled": ws is not None,
                "connected": bool(ws is not None and ws.connected),
                "state": state,
                "holds_live": self._holds_live,
                "system": self._system,
                "last_message_age": None if last_msg is None else max(0.0, mono - last_msg),
            },
            "rest": {
                "enabled": self.rest_client is not None,
                "circuit_state": rest_stats.get("circuit_state"),
                "last_success_age": None if last_rest is None else max(0.0, mono - last_rest),
                "consecutive_failures": self._tracker.rest_failures,
                "last_error": self._last_rest_error,
            },
            "cache": self.cache.get_statistics(),
            "tracked_assets": len(self._store),
            "assets": sorted(self._store.snapshot()),
            "last_update_age": (
                None
                if self._last_update is None
                else max(0.0, self.clock.time() - self._last_update)
            ),
            "history": {
                "entries": self.history.get_statistics()["entries"],
                "persistence_error": self.history.last_error,
            },
            "validation_enabled": self.validator is not None,
        }

    def get_statistics(self) -> ManagerStatistics:
        """Counters: REST calls, WebSocket messages, reconnects, fallbacks, errors..."""
        counts = self._counters.snapshot()
        rest_stats = self.rest_client.get_statistics() if self.rest_client is not None else {}
        ws_stats = self.websocket_client.get_statistics() if self.websocket_client else {}
        events = self._events.get_statistics()
        return {
            "updates": counts["updates"],
            "ledger_updates": counts["ledger_updates"],
            "snapshots": counts["snapshots"],
            "hold_updates": counts["hold_updates"],
            "rest_refreshes": counts["rest_refreshes"],
            "rest_failures": counts["rest_failures"],
            "validation_failures": counts["validation_failures"],
            "validation_warnings": counts["validation_warnings"],
            "fallbacks": counts["fallbacks"],
            "recoveries": counts["recoveries"],
            "stale_reads": counts["stale_reads"],
            "source_inconsistencies": counts["source_inconsistencies"],
            "hold_mismatches": counts["hold_mismatches"],
            "continuity_breaks": counts["continuity_breaks"],
            "stream_interruptions": counts["stream_interruptions"],
            "quiet_checks": counts["quiet_checks"],
            "resyncs_requested": counts["resyncs_requested"],
            "stream_restarts": counts["stream_restarts"],
            "rest_api_calls": rest_stats.get("rest_api_calls", 0),
            "websocket_messages": ws_stats.get("messages", 0),
            "reconnects": ws_stats.get("reconnects", 0),
            "callback_errors": events["callback_errors"],
            "callbacks": events,
            "cache": self.cache.get_statistics(),
            "history": dict(self.history.get_statistics()),
            "rest": rest_stats,
            "websocket": ws_stats,
            "validator": dict(self.validator.get_statistics()) if self.validator else {},
        }

    # -- the stream sink ---------------------------------------------------------------

    def _on_stream_event(self, event: StreamEvent) -> None:
        """Apply one event from the stream (called by the stream client, in order)."""
        if type(event) is StreamLedgerUpdate:
            self._on_ledger(event)  # the common case, tested first
        elif isinstance(event, StreamSnapshot):
            self._on_snapshot(event)
        elif isinstance(event, StreamHolds):
            self._on_holds(event)
        elif isinstance(event, StreamStatus):
            self._on_status(event)

    def _on_ledger(self, event: StreamLedgerUpdate) -> None:
        counts = self._counts
        counts["ledger_updates"] += 1
        if not event.continuity_ok:
            counts["continuity_breaks"] += 1
        asset = event.asset
        self._stream_assets.add(asset)
        old = self._store.get(asset)
        # Positional arguments: the field order of Balance (the hot path).
        if old is None:
            new = Balance(
                asset, event.balance, ZERO, _WEBSOCKET, event.exchange_time,
                event.received_at, ZERO, ZERO, event.earn,
            )  # fmt: skip
        else:
            new = Balance(
                asset, event.balance, old.hold_trade, _WEBSOCKET, event.exchange_time,
                event.received_at, old.credit, old.credit_used, event.earn,
            )  # fmt: skip
        self._apply(new, old, "update", event.ledger_id)
        if self._ledger_listeners:
            for listener in self._ledger_listeners:
                listener(event)

    def _on_snapshot(self, event: StreamSnapshot) -> None:
        if event.complete:  # a partial one (the assets one message changed) is updates
            self._counters.incr("snapshots")
            self._stream_assets = set(event.balances)
        else:
            self._stream_assets.update(event.balances)
        outcome = apply_stream_snapshot(self._store.snapshot(), event)
        self._apply_outcome(outcome)
        if outcome.check_over_rest and self.rest_client is not None:
            # Whether a snapshot omits zero balances is not documented: ask REST
            # rather than guess that these went to zero.
            logger.info(
                "snapshot omits held assets %s; confirming over REST", outcome.check_over_rest
            )
            self._spawn(self._refresh_quietly(), "balance-confirm-missing")
        if self._stream_state is StreamState.STREAMING:
            # Values, not a status: a snapshot read while the source says it resyncs
            # (or connects) does not make it live; its ``streaming`` status will.
            self._tracker.stream_up(self.clock.monotonic())
        self._update_mode()

    def _on_holds(self, event: StreamHolds) -> None:
        self._counters.incr("hold_updates")
        self._holds_live = True
        self._tracker.holds_live(True)
        self._uncertain_holds = event.uncertain
        self._apply_outcome(apply_holds(self._store.snapshot(), event))

    def _on_status(self, event: StreamStatus) -> None:
        previous = self._stream_state
        self._stream_state = event.state
        self._system = event.system or self._system
        self._holds_live = event.holds_live and event.state is StreamState.STREAMING
        self._tracker.holds_live(self._holds_live)
        mono = self.clock.monotonic()
        if event.state is StreamState.STREAMING:
            if previous is not StreamState.STREAMING:
                self._tracker.stream_up(mono)
        else:
            ws = self.websocket_client
            if ws is not None and ws.last_message_at is not None:
                self._tracker.stream_message(ws.last_message_at)
            self._tracker.stream_down(event.quiet_since)
            if event.quiet_since is not None:
                self._counters.incr("stream_interruptions")
            if (
                previous is StreamState.STREAMING
                and self.rest_client is not None
                and not self._rest_read_since(self._tracker.confirmed_at(mono))
            ):
                # Fall back at once rather than at the monitor's next tick.
                self._spawn(self._refresh_quietly(), "balance-fallback-refresh")
        self._update_mode()
        if event.state is not previous or event.system:
            connection: ConnectionState = {
                "state": event.state.value,
                "reason": event.reason,
                "system": event.system,
                "holds_live": self._holds_live,
            }
            self._events.publish("connection_state", connection)

    def _rest_read_since(self, moment: float | None) -> bool:
        """Whether a REST read succeeded at or after monotonic ``moment``."""
        last = self._tracker.last_rest_success
        return last is not None and moment is not None and last >= moment

    # -- applying values ------------------------------------------------------------------

    def _stream_live(self) -> bool:
        return self.websocket_client is not None and self._tracker.stream_healthy(
            self.clock.monotonic()
        )

    def _apply_outcome(self, outcome: Outcome) -> None:
        """Apply a reconciliation outcome in one step (no await: nobody sees half of it)."""
        for change in outcome.changes:
            self._apply(change.new, change.old, change.kind, change.ledger_id)
        if outcome.hold_mismatches:
            self._counters.incr("hold_mismatches", outcome.hold_mismatches)
        for held, rest_view in outcome.disagreements:
            self._counters.incr("source_inconsistencies")
            if self.validator is not None:
                result = self.validator.compare_sources(held, rest_view)
                if result.issues:
                    self._events.publish("validation_failed", result)
        if outcome.resync_balances or outcome.resync_holds:
            self._request_resync(
                "REST shows the stream lost an update",
                balances=outcome.resync_balances,
                holds=outcome.resync_holds,
            )

    def _request_resync(self, reason: str, *, balances: bool, holds: bool) -> None:
        ws = self.websocket_client
        if ws is None:
            return
        self._counters.incr("resyncs_requested")
        logger.warning("%s; resynchronising the stream", reason)
        ws.request_resync(reason, balances=balances, holds=holds)

    def _apply(
        self, new: Balance, old: Balance | None, kind: str, ledger_id: str | None = None
    ) -> None:
        """Hold ``new``, validate it, record it, and publish its events (the hot path)."""
        self._store.put(new)
        self.cache.refresh(new.asset, new)  # a write never evicts what was read
        self._last_update = new.received_at
        history = self.history
        if old is not None and same_amounts(old, new):
            if ledger_id is not None:
                history.add(new, ledger_id=ledger_id)  # remember the ledger id
            return
        counts = self._counts
        counts["updates"] += 1
        validator = self.validator
        events = self._events
        if validator is not None:
            result = validator.validate_balance(new)
            if result.issues:
                if result.is_valid:
                    counts["validation_warnings"] += 1
                else:
                    counts["validation_failures"] += 1
                events.publish("validation_failed", result)
        history.add(new, ledger_id=ledger_id)
        if old is None or old.balance != new.balance:
            significant = history.is_significant(
                old.balance if old is not None else None, new.balance
            )
        else:
            significant = history.is_significant(old.free, new.free)
        for observer in self._observers:
            observer.observe(new)
        if events.has_callbacks("balance_update") or (
            significant and events.has_callbacks("balance_change")
        ):
            change = BalanceChange(
                new=new, old=old, significant=significant, kind=kind, ledger_id=ledger_id
            )
            events.publish("balance_update", change)
            if significant:
                events.publish("balance_change", change)

    # -- background work --------------------------------------------------------------------

    def _update_mode(self) -> ServingMode:
        """Recompute the serving mode; notes fallbacks and recoveries."""
        mono = self.clock.monotonic()
        ws = self.websocket_client
        if ws is not None:
            self._check_stream_task()
            last = ws.last_message_at
            if last is not None:
                self._tracker.stream_message(last)
        mode = self._tracker.mode(mono)
        previous = self._mode
        if mode is not previous:
            self._mode = mode
            if previous is ServingMode.WEBSOCKET:
                self._counters.incr("fallbacks")
            elif mode is ServingMode.WEBSOCKET and self._counters.get("fallbacks"):
                self._counters.incr("recoveries")
            logger.info("serving balances from %s (was %s)", mode.value, previous.value)
            if self._initialized and not self._closed:
                changed: SourceChanged = {"source": mode.value, "previous": previous.value}
                self._events.publish("source_changed", changed)
            for observer in self._observers:
                observer.set_mode(mode)
        return mode

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh_all_balances()
        except _REST_FAILURES as exc:
            logger.warning("REST refresh failed: %s", exc)

    async def _monitor(self) -> None:
        """Every second: note source health, check a quiet stream, poll REST while it is down."""
        while not self._stop.is_set():
            await self.clock.sleep(MONITOR_INTERVAL)
            mono = self.clock.monotonic()
            self._update_mode()
            if self.rest_client is not None:
                if self._tracker.poll_due(mono):
                    await self._refresh_quietly()
                elif self._stream_quiet(mono):
                    self._counters.incr("quiet_checks")
                    await self._refresh_quietly()
            self.cache.expire()
            self._prune_tasks()

    def _stream_quiet(self, mono: float) -> bool:
        """Whether the stream is quiet longer than it should be, not yet checked over REST.

        Its heartbeats stopped: updates may be getting lost. One REST check per
        quiet spell keeps the values confirmed (and corrected) before the
        stream is declared dead, so nothing is ever served as stale meanwhile.
        """
        ws = self.websocket_client
        quiet = self._tracker.stream_quiet_for(mono)
        if ws is None or quiet is None or quiet <= ws.quiet_after:
            self._quiet_checked = False
            return False
        if self._quiet_checked:
            return False
        self._quiet_checked = True
        return True

    def _check_stream_task(self) -> None:
        """Restart a stream whose task died (a bug): never report a dead stream as live."""
        ws = self.websocket_client
        if ws is None or self._closed or self._restarting or not ws.failed:
            return
        self._restarting = True
        self._counters.incr("stream_restarts")
        logger.error("the stream task ended unexpectedly; restarting it")
        self._on_status(StreamStatus(StreamState.CLOSED, "the stream task ended unexpectedly"))
        self._spawn(self._restart_stream(ws), "balance-stream-restart")

    async def _restart_stream(self, ws: StreamSource) -> None:
        try:
            await ws.start(self._on_stream_event)
        finally:
            self._restarting = False

    async def _periodic_refresh(self) -> None:
        """Every ``force_update_interval``: a REST read (a cross-check while streaming)."""
        if self.rest_client is None:
            return
        while not self._stop.is_set():
            await self.clock.sleep(self.config.force_update_interval)
            await self._refresh_quietly()

    def _prune_tasks(self) -> None:
        self._tasks = [task for task in self._tasks if not task.done() or _report(task)]

    def __repr__(self) -> str:
        return (
            f"BalanceManager(exchange={self.exchange}, source={self._mode.value}, "
            f"assets={len(self._store)}, stream={self._stream_state.value})"
        )


def _checked_max_age(max_age: object) -> float:
    """``max_age`` as seconds, refusing what would disable or break the freshness check.

    A NaN compares false with every age, so it would let any value through:
    refused, like negatives, bools and non-numbers.

    Raises:
        ConfigError: naming ``max_age`` and the value given.
    """
    if isinstance(max_age, bool) or not isinstance(max_age, int | float | Decimal):
        raise ConfigError("max_age", max_age, "must be a number of seconds (int or float)")
    try:
        seconds = float(max_age)
    except OverflowError:
        seconds = math.inf  # an int beyond float range: any age is young enough
    except ValueError:  # a signalling NaN
        seconds = math.nan
    if math.isnan(seconds) or seconds < 0:
        raise ConfigError("max_age", max_age, "must be a number of seconds >= 0")
    return seconds


# Read paths test these: ``ServingMode.CACHE`` is a class attribute lookup (~60 ns on 3.11).
_WEBSOCKET = Source.WEBSOCKET
_CACHE = Source.CACHE
_LIVE = ServingMode.WEBSOCKET
_STALE = ServingMode.CACHE


def _report(task: asyncio.Task[None]) -> bool:
    """Log a finished background task's error; always False (drop it from the list)."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s failed", task.get_name(), exc_info=task.exception())
    return False


class SyncBalanceView:
    """Read-only, thread-safe access to a manager's balances, without ``await``.

    For strategies running in threads. Values come from the manager's store
    (immutable ``Balance`` objects, so never torn); no refresh is triggered.
    """

    __slots__ = ("_held", "_manager", "_names")

    def __init__(self, manager: BalanceManager) -> None:
        self._manager = manager
        # The manager's spelling → name dict and its store's lookup (neither is ever
        # replaced), held to save two attribute lookups per read.
        self._names = manager._canonical
        self._held = manager._store.get

    def get_balance(self, asset: str, *, max_age: float | None = None) -> Balance | None:
        """The held balance of ``asset``, marked ``cache`` when no source is live.

        Raises:
            StaleBalanceError: the value was not known current within ``max_age`` seconds.
        """
        manager = self._manager
        # A spelling not seen yet (or not a str) is checked, and remembered, by canonical().
        name = (self._names.get(asset) if type(asset) is str else None) or manager.canonical(asset)
        value = self._held(name)
        if max_age is not None:
            max_age = _checked_max_age(max_age)  # checked even when nothing is held
            age = manager.age_of(value)
            if value is not None and (age is None or age > max_age):
                raise StaleBalanceError(name, age, max_age, "no refresh from a thread")
        if value is None or manager._mode is not _STALE or value.source is _CACHE:
            return value
        return value.replace(source=_CACHE)

    def get_all_balances(self) -> dict[str, Balance]:
        """Every held balance (a consistent copy)."""
        manager = self._manager
        balances = manager._store.snapshot()
        if manager._mode is ServingMode.CACHE:
            return {
                a: b if b.source is Source.CACHE else b.replace(source=Source.CACHE)
                for a, b in balances.items()
            }
        return balances
