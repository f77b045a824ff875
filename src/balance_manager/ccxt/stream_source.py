"""A venue's balance stream through ccxt.pro's ``watch_balance``, read exactly.

:class:`CcxtStreamSource` implements :class:`~balance_manager.core.sources.StreamSource`.
ccxt.pro connects, authenticates, subscribes, keeps the connection alive with
its pings and decodes the frames; this source:

* reads **every** balance message ccxt receives, in order, from ccxt's own
  message handler (ccxt's ``watch_balance`` only hands its caller the latest
  state when the next message comes, so two messages arriving together would
  otherwise be seen as one), with the venue's raw reader
  (:mod:`balance_manager.ccxt.shapes`): exact where the venue writes strings,
  marked inexact where it writes JSON numbers;
* takes a **snapshot on every (re)connection** before saying it streams: the
  venue's own snapshot where it sends one when subscribed, else a REST read
  made once the connection is open (messages received meanwhile are applied
  after it, in order). So what changed while it was away always shows up, and
  a venue that sends nothing until a change still starts complete;
* pushes the whole account as a complete :class:`~balance_manager.core.sources.StreamSnapshot`
  once per connection (and when a complete message drops an asset), and after
  any other message a partial one with only the assets whose amounts it
  changed: the held values of the others are left alone, so a REST read in
  flight still applies to them (and finds a lost update) on a busy account;
* follows liveness on the injected clock: any message or pong heard by ccxt
  counts; a connection silent for ``websocket_timeout`` is closed and
  reconnected with backoff, never in a tight loop.

The sink is called synchronously, in order; nothing here waits on the manager.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any

from balance_manager.ccxt.rest_source import CcxtRestSource
from balance_manager.ccxt.shapes import Reading, StreamBook
from balance_manager.config import BalanceManagerConfig
from balance_manager.core.backoff import backoff
from balance_manager.core.sources import (
    AssetAmounts,
    StreamEvent,
    StreamSink,
    StreamSnapshot,
    StreamState,
    StreamStatus,
)
from balance_manager.core.stats import Counters
from balance_manager.exceptions import (
    AuthenticationError,
    BalanceManagerError,
    ConfigError,
    LockoutError,
    ProtocolError,
    TransportError,
)
from balance_manager.runtime.aio import cancel_and_wait
from balance_manager.runtime.clock import Clock
from balance_manager.runtime.stream_task import StreamTask

__all__ = ["CcxtStreamSource"]

logger = logging.getLogger(__name__)

#: Seconds between liveness checks (on the injected clock).
TICK = 0.5

_COUNTER_NAMES = (
    "connects",
    "reconnects",
    "connect_failures",
    "messages",
    "updates",
    "snapshots",
    "rest_snapshots",
    "silence_timeouts",
    "snapshot_timeouts",
    "rejected",
    "resyncs",
)


def _differs(old: AssetAmounts, new: AssetAmounts) -> bool:
    """Whether ``new`` tells more than ``old``: other amounts, or the same ones read exactly.

    The same amounts read again through a float say nothing new (``old`` stays,
    exact if it was): a value does not flip between exact and inexact with
    every message.
    """
    return (
        old.balance != new.balance
        or old.earn != new.earn
        or old.hold_trade != new.hold_trade
        or old.credit != new.credit
        or old.credit_used != new.credit_used
        or (new.exact and not old.exact)
    )


class CcxtStreamSource(StreamTask):
    """Streams one account's balances from a ccxt.pro venue (a ``StreamSource``).

    Args:
        rest: the venue's REST source; its ccxt instance is the one streamed
            from (it must be a ``ccxt.pro`` class), and it takes the snapshot
            of venues whose stream sends none.
        config: ``websocket_timeout``, ``websocket_ping_interval``, reconnect delays.
        clock: time source; defaults to the REST source's.
        rng: randomness for reconnect jitter.
    """

    def __init__(
        self,
        rest: CcxtRestSource,
        *,
        config: BalanceManagerConfig | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        exchange = rest.client
        if not callable(getattr(exchange, "watch_balance", None)) or not exchange.has.get(
            "watchBalance"
        ):
            raise ConfigError(
                "exchange",
                rest.venue,
                "has no ccxt.pro watch_balance: use a ccxt.pro class, or run on REST alone",
            )
        self.rest = rest
        self.exchange = exchange
        self.shape = rest.shape
        self.config = config or rest.config
        self.clock: Clock = clock or rest.clock
        self._rng = rng or random.Random()
        caps = self.shape.capabilities
        timeout = self.config.websocket_timeout
        interval = self.config.websocket_ping_interval
        # ccxt pings every ``keepAlive`` ms and drops a connection after two
        # missed pongs: at our ping interval, silence is noticed in time.
        keep_alive = int(interval * 1000)
        streaming = exchange.streaming
        if not streaming.get("keepAlive") or streaming["keepAlive"] > keep_alive:
            streaming["keepAlive"] = keep_alive
        self.quiet_after: float = (
            min(1.5 * caps.heartbeat, timeout / 2)
            if caps.heartbeat is not None and self.shape.reads_raw
            else min(timeout * 0.9, max(timeout / 2, 1.5 * interval + TICK))
        )
        """Seconds of silence after which updates may have been lost."""
        self._init_stream_task()
        self._pulse: tuple[object, object] = (None, None)
        self._book: StreamBook | None = None
        self._pending: list[Reading] | None = None  # readings before the snapshot
        self._balances: dict[str, AssetAmounts] = {}
        self._synced = asyncio.Event()
        self._opened = asyncio.Event()
        self._failure: BalanceManagerError | None = None
        self._wake = asyncio.Event()  # set with a failure: the loop looks at once
        self._resync_now = False
        self._streamed = False
        self._last_error = ""
        self._counters = Counters(_COUNTER_NAMES)
        self._install_hooks()

    def __repr__(self) -> str:
        return f"CcxtStreamSource(venue={self.rest.venue!r}, state={self._state.value})"

    # -- ccxt hooks -----------------------------------------------------------------------

    def _install_hooks(self) -> None:
        """See every message ccxt receives, and every connection it opens, on this instance.

        ccxt's clients take the instance's ``handle_message`` and
        ``on_connected`` when they are made: wrapping them on the instance
        (ccxt's own code still runs first) reaches every connection.
        """
        exchange = self.exchange
        handle_message = exchange.handle_message
        on_connected = exchange.on_connected

        def hooked_message(client: Any, message: Any) -> Any:
            try:
                return handle_message(client, message)
            finally:
                self._on_message(message)

        def hooked_connected(client: Any, message: Any = None) -> Any:
            try:
                return on_connected(client, message)
            finally:
                self._opened.set()

        exchange.handle_message = hooked_message
        exchange.on_connected = hooked_connected

    def _on_message(self, message: object) -> None:
        """One decoded message (called synchronously inside ccxt's receive loop)."""
        self._last_message_at = self.clock.monotonic()
        self._counters.incr("messages")
        book = self._book
        if book is None or not self.shape.reads_raw:
            return
        try:
            reading = book.feed(message, self.rest.names.canonical)
        except ProtocolError as exc:
            self._counters.incr("rejected")
            logger.warning("%s: rejected a balance message (%s); resyncing", self.rest.venue, exc)
            self._fail(exc)
            return
        if reading is not None:
            self._on_reading(reading)

    def _on_reading(self, reading: Reading) -> None:
        if self._book is None:
            # A resync or a failure is pending (or no connection is open): what
            # ccxt still hands over before the connection is torn down must not
            # reach the manager as live values.
            return
        pending = self._pending
        if pending is not None:
            if reading.complete and self.shape.capabilities.snapshot_on_subscribe:
                self._balances = dict(reading.balances)
                self._pending = None
                self._counters.incr("snapshots")
                self._synced.set()
            else:
                pending.append(reading)
            return
        changed, removed = self._apply(reading)
        self._counters.incr("updates")
        if removed:
            self._emit_snapshot()  # assets went: the whole account, as the venue gave it
        elif changed:
            self._emit_changes(changed)

    def _apply(self, reading: Reading) -> tuple[dict[str, AssetAmounts], bool]:
        """Fold ``reading`` into the account: the assets whose amounts it changed, and
        whether a complete reading dropped any asset."""
        held = self._balances
        changed: dict[str, AssetAmounts] = {}
        for asset, amounts in reading.balances.items():
            old = held.get(asset)
            if old is None or _differs(old, amounts):
                held[asset] = changed[asset] = amounts
        removed = False
        if reading.complete:
            for asset in held.keys() - reading.balances.keys():
                del held[asset]
                removed = True
        return changed, removed

    # -- the StreamSource interface ---------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Subscribed, snapshotted and streaming."""
        return self._state is StreamState.STREAMING

    async def start(self, sink: StreamSink) -> None:
        """Start streaming in a background task; events go to ``sink`` in order."""
        self._launch(sink, self._run(), name=f"{self.rest.venue}-ccxt-stream", consumer="source")

    async def stop(self) -> None:
        """End the task and close the WebSocket connections; idempotent."""
        self._stop.set()
        await cancel_and_wait(self._task)
        self._task = None
        await self._close_connections()
        self._set_status(StreamState.CLOSED, "stopped")

    def request_resync(self, reason: str, *, balances: bool = True, holds: bool = False) -> None:
        """Take a fresh snapshot: reconnect at once (reported as ``resyncing`` now)."""
        if not (balances or holds) or self._task is None or self._task.done():
            return
        self._counters.incr("resyncs")
        self._set_status(StreamState.RESYNCING, reason)
        self._resync_now = True
        self._fail(TransportError(f"resync: {reason}"))

    def get_statistics(self) -> dict[str, Any]:
        """Connection counters (``messages``, ``reconnects``, ``snapshots``...)."""
        stats: dict[str, Any] = dict(self._counters.snapshot())
        stats["state"] = self._state.value
        stats["connected"] = self.connected
        stats["holds_live"] = self._holds_live
        stats["venue"] = self.rest.venue
        stats["last_error"] = self._last_error
        return stats

    @property
    def _holds_live(self) -> bool:
        return self.connected and self.shape.capabilities.holds and self.shape.reads_raw

    # -- the connection loop --------------------------------------------------------------

    async def _run(self) -> None:
        delays = self._delays()
        while not self._stop.is_set():
            self._streamed = False
            try:
                await self._connect_once()
                reason = "connection closed"
            except asyncio.CancelledError:
                raise
            except (AuthenticationError, LockoutError) as exc:
                reason = str(exc)
                delays = self._delays(floor=self.config.reconnect_max_delay)
            except BalanceManagerError as exc:
                reason = str(exc)
            except Exception as exc:  # a bug must not kill the stream for good
                logger.exception("%s stream failed unexpectedly", self.rest.venue)
                reason = f"{type(exc).__name__}"
            finally:
                self._book = None
                self._pending = None
                await self._close_connections()
            if self._stop.is_set():
                break
            self._last_error = reason
            if not self._streamed:
                self._counters.incr("connect_failures")
            else:
                delays = self._delays()
            self._set_status(StreamState.DISCONNECTED, reason)
            delay = 0.0 if self._resync_now else next(delays)
            self._resync_now = False
            logger.info(
                "%s stream down (%s); reconnecting in %.2f s", self.rest.venue, reason, delay
            )
            if delay:
                await self.clock.sleep(delay)
            self._counters.incr("reconnects")

    def _delays(self, floor: float = 0.0) -> Any:
        base = backoff(
            initial=self.config.reconnect_initial_delay,
            maximum=self.config.reconnect_max_delay,
            rng=self._rng,
        )
        return (max(floor, delay) for delay in base)

    async def _connect_once(self) -> None:
        """One connection, from subscribing to its end (``_streamed``: whether it streamed)."""
        self._set_status(StreamState.CONNECTING, "connecting")
        self._failure = None
        self._wake.clear()
        self._synced.clear()
        self._opened.clear()
        self._book = self.shape.book()
        self._pending = []
        watcher = asyncio.create_task(self._watch(), name=f"{self.rest.venue}-watch-balance")
        try:
            await self._until_snapshot(watcher)
            self._counters.incr("connects")
            self._emit_snapshot()
            self._set_status(StreamState.STREAMING, "snapshot received")
            self._streamed = True
            await self._stream(watcher)
        finally:
            await cancel_and_wait(watcher)

    async def _watch(self) -> None:
        """Keep ccxt's ``watch_balance`` pending: it subscribes; its failure ends the connection."""
        while True:
            try:
                result = await self.exchange.watch_balance()
            except asyncio.CancelledError:
                raise
            except BalanceManagerError:
                raise
            except Exception as exc:
                raise self.rest.translate(exc, "watch_balance") from None
            self._last_message_at = self.clock.monotonic()
            if self._book is not None and not self.shape.reads_raw and isinstance(result, Mapping):
                reading = self.shape.unified(result, self.rest.names.canonical)
                reading.complete = False  # ccxt's state may not list every asset yet
                self._on_reading(reading)

    async def _until_snapshot(self, watcher: asyncio.Task[None]) -> None:
        """Wait for the venue's snapshot, or for the connection and then read REST."""
        caps = self.shape.capabilities
        timeout = self.config.websocket_timeout
        if caps.snapshot_on_subscribe and self.shape.reads_raw:
            await self._wait_for(self._synced, watcher, timeout, "no balance snapshot")
            return
        await self._wait_for(self._opened, watcher, timeout, "no connection")
        # Open: every change from now on reaches us. A REST read made now covers
        # what happened before; what arrived meanwhile is applied after it.
        snapshot = await self.rest.fetch_balances()
        self._counters.incr("rest_snapshots")
        self._balances = dict(snapshot.balances)
        pending, self._pending = self._pending or [], None
        for reading in pending:
            self._apply(reading)
        self._check_failure()

    async def _wait_for(
        self, event: asyncio.Event, watcher: asyncio.Task[None], seconds: float, what: str
    ) -> None:
        deadline = self.clock.monotonic() + seconds
        waiter = asyncio.ensure_future(event.wait())
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            while not event.is_set():
                self._check_failure()
                if watcher.done():
                    watcher.result()  # raises the watcher's error
                    raise TransportError(f"{self.rest.venue} watch_balance ended")
                if self.clock.monotonic() >= deadline:
                    self._counters.incr("snapshot_timeouts")
                    raise TransportError(f"{self.rest.venue}: {what} within {seconds:g} s")
                tick = asyncio.ensure_future(self.clock.sleep(TICK))
                await asyncio.wait(
                    {waiter, watcher, tick, woken}, return_when=asyncio.FIRST_COMPLETED
                )
                await cancel_and_wait(tick)
        finally:
            await cancel_and_wait(waiter)
            await cancel_and_wait(woken)
        self._check_failure()

    async def _stream(self, watcher: asyncio.Task[None]) -> None:
        """Until the connection fails: watch liveness on the injected clock."""
        timeout = self.config.websocket_timeout
        while True:
            tick = asyncio.ensure_future(self.clock.sleep(TICK))
            woken = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait({watcher, tick, woken}, return_when=asyncio.FIRST_COMPLETED)
            await cancel_and_wait(tick)
            await cancel_and_wait(woken)
            if watcher.done():
                watcher.result()
                raise TransportError(f"{self.rest.venue} watch_balance ended")
            self._check_failure()
            self._note_pulse()
            last = self._last_message_at
            if last is not None and self.clock.monotonic() - last > timeout:
                self._counters.incr("silence_timeouts")
                raise TransportError(f"{self.rest.venue} stream silent for more than {timeout:g} s")

    def _note_pulse(self) -> None:
        """A pong or message ccxt heard since the last look counts as a message now."""
        pulse: tuple[object, object] = (None, None)
        for client in list((getattr(self.exchange, "clients", None) or {}).values()):
            if getattr(client, "isConnected", False):
                pulse = (
                    getattr(client, "lastPong", None),
                    getattr(client, "last_message_at", None),
                )
                if pulse != self._pulse:
                    break
        if pulse != self._pulse and pulse != (None, None):
            self._pulse = pulse
            self._last_message_at = self.clock.monotonic()

    def _fail(self, error: BalanceManagerError) -> None:
        """End the current connection with ``error`` (seen by the loop at its next look)."""
        if self._failure is None:
            self._failure = error
        # From now on this connection's messages are not read: the next one
        # starts from a fresh snapshot.
        self._book = None
        self._wake.set()

    def _check_failure(self) -> None:
        failure = self._failure
        if failure is not None:
            self._failure = None
            self._wake.clear()
            raise failure

    async def _close_connections(self) -> None:
        try:
            await self.exchange.close_ws_clients()
        except Exception as exc:  # closing must not fail the loop
            logger.debug("closing %s WebSockets: %s", self.rest.venue, type(exc).__name__)

    # -- events ---------------------------------------------------------------------------

    def _emit_snapshot(self) -> None:
        now = self.clock.time()
        self._emit(StreamSnapshot(balances=dict(self._balances), received_at=now))

    def _emit_changes(self, changed: dict[str, AssetAmounts]) -> None:
        """The assets one message changed, and only those (the others' held values stay)."""
        now = self.clock.time()
        self._emit(StreamSnapshot(balances=changed, received_at=now, complete=False))

    def _set_status(self, state: StreamState, reason: str) -> None:
        if state is self._state and state is not StreamState.RESYNCING:
            return
        if state is not self._state:
            logger.info(
                "%s stream %s → %s (%s)", self.rest.venue, self._state.value, state.value, reason
            )
        self._state = state
        self._emit(StreamStatus(state=state, reason=reason, holds_live=self._holds_live))

    def _emit(self, event: StreamEvent) -> None:
        sink = self._sink
        if sink is None:
            return
        try:
            sink(event)
        except Exception:
            logger.exception("stream sink failed on %s", type(event).__name__)
