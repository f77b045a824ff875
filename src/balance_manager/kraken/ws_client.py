"""Kraken's WebSocket v2 over aiohttp: the thin I/O layer around :class:`KrakenSession`.

:class:`KrakenWebSocketClient` owns one background task that connects, feeds
every frame to the sans-I/O :class:`~balance_manager.kraken.protocol.ws_session.KrakenSession`,
sends what the session asks, and turns the session's events into the
exchange-neutral events of :mod:`balance_manager.core.sources` for the
manager. It:

* fetches a fresh token from REST for every connection;
* subscribes to ``balances`` (snapshot) and, by default, ``executions`` so
  holds, and therefore ``free``, follow orders in real time;
* sends an application ping every ``websocket_ping_interval`` and treats a
  connection silent for ``websocket_timeout`` as dead;
* treats a silence longer than :data:`QUIET_AFTER` (a late heartbeat)
  followed by more frames as an interruption: updates may have been lost, so
  both channels are resynchronised and the manager is told since when values
  are unconfirmed;
* reconnects with Kraken's recommended backoff and jitter, never in a tight
  loop, resubscribing with snapshots so what changed while away shows up.

The sink is called synchronously, in order; nothing here waits on the
manager or on callbacks. All timers run on the injected
:class:`~balance_manager.runtime.clock.Clock`. The Kraken facts behind each of
these are in docs/kraken.md: 'Token lifetime', 'The executions channel',
'Ping and pong', 'Heartbeats', 'Connection limits and reconnect pace'.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import aiohttp

from balance_manager.config import KRAKEN_WS_URL, BalanceManagerConfig
from balance_manager.core.amounts import ZERO
from balance_manager.core.sources import (
    AssetAmounts,
    StreamEvent,
    StreamHolds,
    StreamLedgerUpdate,
    StreamSink,
    StreamSnapshot,
    StreamState,
    StreamStatus,
)
from balance_manager.core.stats import Counters
from balance_manager.credentials import Secret
from balance_manager.exceptions import (
    AuthenticationError,
    BalanceManagerError,
    ConfigError,
    LockoutError,
    TransportError,
)
from balance_manager.kraken.protocol.limits import kraken_reconnect_delays
from balance_manager.kraken.protocol.ws_messages import unsubscribe_request
from balance_manager.kraken.protocol.ws_session import (
    BALANCES,
    EXECUTIONS,
    BalancesSnapshot,
    ErrorReceived,
    HoldsChanged,
    KrakenSession,
    MessageRejected,
    Pong,
    ResyncStarted,
    SessionEvent,
    SessionState,
    StatusChanged,
    SubscriptionFailed,
)
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.runtime.aio import cancel_and_wait, describe_network_error, with_timeout
from balance_manager.runtime.clock import Clock
from balance_manager.runtime.stream_task import StreamTask

__all__ = ["QUIET_AFTER", "STABLE_AFTER", "KrakenWebSocketClient"]

logger = logging.getLogger(__name__)

#: A connection that streamed this long resets the reconnect backoff (as Kraken's CLI does).
STABLE_AFTER = 30.0

#: Seconds without any frame, once heartbeats flow, after which frames may have
#: been lost: Kraken sends a heartbeat about every second while no other data
#: flows, so this is a heartbeat half an interval late. A false alarm costs a
#: resync and a REST read; a missed loss would be served as current.
QUIET_AFTER = 1.5

_COUNTER_NAMES = (
    "connects",
    "reconnects",
    "connect_failures",
    "token_fetches",
    "frames_received",
    "frames_sent",
    "pings",
    "pongs",
    "silence_timeouts",
    "snapshot_timeouts",
    "subscription_failures",
    "server_errors",
    "interruptions",
)


class KrakenWebSocketClient(StreamTask):
    """Streams one Kraken account's balances and holds (WebSocket v2, private endpoint).

    Args:
        rest_client: fetches a token for every connection (GetWebSocketsToken).
        url: Kraken's private WebSocket v2 URL (default) or a simulator's ``ws_url``.
        config: timeouts, ping interval, reconnect delays, ``subscribe_executions``.
        clock: time source; defaults to the REST client's.
        rng: randomness for reconnect jitter.
        session: an aiohttp session to use (one is made and owned otherwise).
    """

    def __init__(
        self,
        rest_client: KrakenRestClient,
        url: str = KRAKEN_WS_URL,
        *,
        config: BalanceManagerConfig | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise ConfigError("url", url, "must be a ws:// or wss:// URL")
        self.url = url
        self.rest = rest_client
        self.config = config or rest_client.config
        self.clock: Clock = clock or rest_client.clock
        self._rng = rng or random.Random()
        self._http = session
        self._owns_http = session is None
        self.session = KrakenSession(
            subscribe_executions=self.config.subscribe_executions,
            asset_decimals=self._decimals,
        )
        self._init_stream_task()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._token: Secret | None = None
        self._send_lock = asyncio.Lock()
        self._holds_live = False
        self._last_error = ""
        self._last_rtt: float | None = None
        self._failure: BalanceManagerError | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._quiet_since: float | None = None  # an interruption's start, for its status
        self._counters = Counters(_COUNTER_NAMES)
        self._frames = self._counters.live  # incremented in place per frame
        self.quiet_after = min(QUIET_AFTER, self.config.websocket_timeout / 2)
        """Seconds of silence after which updates may have been lost (see :data:`QUIET_AFTER`)."""

    def _decimals(self, asset: str) -> int | None:
        return self.rest.names.decimals(asset)

    def __repr__(self) -> str:
        return f"KrakenWebSocketClient(url={self.url!r}, state={self._state.value})"

    # -- the StreamSource interface -------------------------------------------------

    @property
    def connected(self) -> bool:
        """Subscribed and streaming balances (not connecting, not resyncing)."""
        return self.session.state is SessionState.STREAMING

    @property
    def holds_live(self) -> bool:
        """Whether holds follow ``executions`` in real time right now."""
        return self._holds_live

    async def start(self, sink: StreamSink) -> None:
        """Start streaming in a background task; events go to ``sink`` in order."""
        self._launch(sink, self._run(), name="kraken-ws", consumer="KrakenWebSocketClient")

    async def stop(self) -> None:
        """Unsubscribe, close the socket, end the task; idempotent."""
        self._stop.set()
        ws = self._ws
        if ws is not None and not ws.closed:
            await self._unsubscribe(ws)
            await ws.close()
        await cancel_and_wait(self._task)
        self._task = None
        for task in list(self._flushes):
            await cancel_and_wait(task)
        http, self._http = self._http, None
        if http is not None and self._owns_http and not http.closed:
            await http.close()
        self._set_state(StreamState.CLOSED, "stopped")

    def request_resync(self, reason: str, *, balances: bool = True, holds: bool = False) -> None:
        """Ask for fresh snapshots on the live connection (reported as ``resyncing`` at once)."""
        events: list[SessionEvent] = []
        if balances:
            events += self.session.request_resync(reason, BALANCES)
        if holds:
            events += self.session.request_resync(reason, EXECUTIONS)
        if events:
            self._handle(events, self.clock.time())
        ws = self._ws
        if ws is not None and not ws.closed:
            task = asyncio.get_running_loop().create_task(self._flush(ws))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    def get_statistics(self) -> dict[str, Any]:
        """Connection and protocol counters (``messages``, ``reconnects``, ``gaps``...)."""
        stats: dict[str, Any] = dict(self._counters.snapshot())
        counters = self.session.counters
        stats.update(
            messages=counters.messages,
            updates=counters.updates,
            ledger_entries=counters.ledger_entries,
            duplicates=counters.duplicates,
            gaps=counters.gaps,
            continuity_breaks=counters.continuity_breaks,
            rejected=counters.rejected,
            resyncs=counters.resyncs,
        )
        stats["state"] = self._state.value
        stats["connected"] = self.connected
        stats["holds_live"] = self._holds_live
        stats["system"] = self.session.system
        stats["last_rtt"] = self._last_rtt
        stats["last_error"] = self._last_error
        return stats

    # -- the connection loop ----------------------------------------------------------

    async def _run(self) -> None:
        delays = self._delays()
        while not self._stop.is_set():
            started = self.clock.monotonic()
            streamed = False
            try:
                streamed = await self._connect_once()
                reason = "connection closed"
            except asyncio.CancelledError:
                raise
            except (AuthenticationError, LockoutError) as exc:
                # Credentials or token refused: retrying fast risks a lockout.
                reason = str(exc)
                delays = self._delays(floor=self.config.reconnect_max_delay)
            except BalanceManagerError as exc:
                reason = str(exc)
            except Exception as exc:  # a bug must not kill the stream for good
                logger.exception("WebSocket connection failed unexpectedly")
                reason = f"{type(exc).__name__}: {exc}"
            if self._stop.is_set():
                break
            self._last_error = reason
            if not streamed:
                self._counters.incr("connect_failures")
            self._set_status(StreamState.DISCONNECTED, reason)
            if streamed and self.clock.monotonic() - started >= STABLE_AFTER:
                delays = self._delays()
            delay = next(delays)
            logger.info("WebSocket down (%s); reconnecting in %.2f s", reason, delay)
            await self.clock.sleep(delay)
            self._counters.incr("reconnects")

    def _delays(self, floor: float = 0.0) -> Iterator[float]:
        base = kraken_reconnect_delays(
            self._rng,
            initial=self.config.reconnect_initial_delay,
            maximum=self.config.reconnect_max_delay,
        )
        return (max(floor, delay) for delay in base)

    async def _connect_once(self) -> bool:
        """One connection, from token to close; returns whether it streamed."""
        self._set_status(StreamState.CONNECTING, "connecting")
        self._counters.incr("token_fetches")
        token = await self.rest.get_websockets_token()
        self._token = token.token
        http = self._http_session()
        timeout = self.config.websocket_timeout
        try:
            ws = await with_timeout(
                self.clock,
                timeout,
                http.ws_connect(self.url, autoping=True, heartbeat=None, max_msg_size=0),
                "WebSocket connect",
            )
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"WebSocket connect to {self.url}: {describe_network_error(exc)}"
            ) from exc
        self._counters.incr("connects")
        self._ws = ws
        self._last_message_at = self.clock.monotonic()
        self.session.connection_opened()
        self.session.token_received(token.token)
        await self._flush(ws)
        watchdog = asyncio.create_task(self._watchdog(ws), name="kraken-ws-watchdog")
        streamed = False
        reason = "closed by server"
        try:
            async for message in ws:
                if (
                    message.type is aiohttp.WSMsgType.TEXT
                    or message.type is aiohttp.WSMsgType.BINARY
                ):
                    streamed = self._receive(message.data) or streamed
                    if self.session.state is SessionState.CLOSED:
                        reason = "subscription refused"
                        break
                    if self.session.has_data_to_send:  # rarely: a resync, a pong's answer
                        await self._flush(ws)
                elif message.type is aiohttp.WSMsgType.ERROR:
                    reason = f"socket error: {type(ws.exception()).__name__}"
                    break
        finally:
            await cancel_and_wait(watchdog)
            self._ws = None
            if not ws.closed:
                await ws.close()
            if self.session.state is not SessionState.CLOSED:
                self.session.connection_lost(reason)
            self._holds_live = False
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        return streamed

    async def _watchdog(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Ping on an interval; close a connection silent for ``websocket_timeout``."""
        interval = self.config.websocket_ping_interval
        timeout = self.config.websocket_timeout
        waiting_since: float | None = self.clock.monotonic()
        while not ws.closed:
            await self.clock.sleep(interval)
            now = self.clock.monotonic()
            last = self._last_message_at
            if last is not None and now - last > timeout:
                self._counters.incr("silence_timeouts")
                self._failure = TransportError(f"WebSocket silent for more than {timeout:g} s")
                await ws.close()
                return
            # Heartbeats alone do not make a live subscription: a snapshot that
            # never comes (lost subscribe, lost answer) is a dead connection too.
            if self.session.state is SessionState.STREAMING:
                waiting_since = None
            elif waiting_since is None:
                waiting_since = now
            elif now - waiting_since > timeout:
                self._counters.incr("snapshot_timeouts")
                self._failure = TransportError(f"no balances snapshot within {timeout:g} s")
                await ws.close()
                return
            self.session.ping(self.clock.time())
            self._counters.incr("pings")
            await self._flush(ws)

    def _http_session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
            self._owns_http = True
        return self._http

    async def _flush(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        frames = self.session.data_to_send()
        if not frames:
            return
        async with self._send_lock:
            for frame in frames:
                if ws.closed:
                    return
                try:
                    await ws.send_str(frame.decode())
                except (aiohttp.ClientError, ConnectionError):
                    return  # the reader sees the close and reconnects
                self._counters.incr("frames_sent")

    async def _unsubscribe(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Best-effort unsubscribe before a clean close."""
        token = self._token
        if token is None or self.session.state is SessionState.CLOSED:
            return
        channels = [BALANCES, EXECUTIONS] if self._holds_live else [BALANCES]
        async with self._send_lock:
            for channel in channels:
                try:
                    await ws.send_str(unsubscribe_request(channel, token=token).decode())
                except (aiohttp.ClientError, ConnectionError):
                    return

    # -- session events → stream events -------------------------------------------------

    def _receive(self, frame: bytes | str) -> bool:
        """Everything one received frame causes (the read loop's body; the hot path).

        Returns whether a balances snapshot arrived.
        """
        self._frames["frames_received"] += 1
        clock = self.clock
        mono = clock.monotonic()
        last = self._last_message_at
        self._last_message_at = mono
        now = clock.time()
        events = self.session.feed(frame, now)
        if last is not None and mono - last > self.quiet_after:
            events = self._silence_ended(events, last, mono - last)
        if events or self.session.holds_live != self._holds_live:
            return self._handle(events, now)
        return False

    def _silence_ended(
        self, events: list[SessionEvent], since: float, seconds: float
    ) -> list[SessionEvent]:
        """The server fell silent and spoke again: resync, and say since when values are unsure.

        The frame that ended the silence is applied first (it arrived, it is
        true); the resync that follows replaces whatever was lost before it.
        """
        by_pong = any(type(event) is Pong for event in events)
        resync = self.session.silence_ended(seconds, by_pong=by_pong)
        if not resync and not any(type(event) is ResyncStarted for event in events):
            return events
        # Also when the frame itself started the resync (a sequence gap): what
        # was lost may date from anywhere in the silence, not from this frame.
        self._counters.incr("interruptions")
        self._quiet_since = since
        logger.warning(
            "WebSocket silent for %.1f s: updates may have been lost; resyncing", seconds
        )
        return events + resync

    def _handle(self, events: list[SessionEvent], now: float) -> bool:
        """Translate session events for the sink; returns whether a snapshot arrived."""
        snapshot_seen = False
        for event in events:
            if type(event) is StreamLedgerUpdate:
                # The common case: the session's event is the sink's, handed on as it is.
                sink = self._sink
                if sink is None:
                    continue
                try:
                    sink(event)
                except Exception:  # the last guard: a bug downstream never kills the stream
                    logger.exception("stream sink failed on a ledger update")
            elif isinstance(event, BalancesSnapshot):
                snapshot_seen = True
                self._emit(self._snapshot_event(event, now))
            elif isinstance(event, HoldsChanged):
                self._emit_holds(
                    now, frozenset(event.holds), event.uncertain, event.orders, event.closed
                )
            elif isinstance(event, ResyncStarted):
                quiet_since, self._quiet_since = self._quiet_since, None
                self._set_status(StreamState.RESYNCING, event.reason, quiet_since=quiet_since)
            elif isinstance(event, StatusChanged):
                if event.system != "online":
                    logger.warning("Kraken reports system status %r", event.system)
                self._set_status(self._state, f"system {event.system}", force=True)
            elif isinstance(event, SubscriptionFailed):
                self._counters.incr("subscription_failures")
                if event.channel == BALANCES:
                    self._failure = event.exception
                else:
                    logger.warning(
                        "executions subscription refused (%s): holds from REST only", event.error
                    )
            elif isinstance(event, Pong):
                self._counters.incr("pongs")
                self._last_rtt = event.rtt
            elif isinstance(event, MessageRejected):
                logger.warning("rejected a WebSocket frame: %s", event.error)
            elif isinstance(event, ErrorReceived):
                self._counters.incr("server_errors")
                logger.warning("Kraken WebSocket error: %s", event.error)
        if (
            self.session.state is SessionState.STREAMING
            and self._state is not StreamState.STREAMING
        ):
            # Every awaited snapshot is in (a resync of ``executions`` alone ends
            # with its snapshot, not a balances one).
            self._set_status(
                StreamState.STREAMING, "snapshot received" if snapshot_seen else "resync done"
            )
        holds_live = self.session.holds_live
        if holds_live != self._holds_live:
            self._holds_live = holds_live
            if holds_live:
                holds = self.session.holds()
                book = self.session.order_book
                self._emit_holds(
                    now, frozenset(holds), book.uncertain_assets(), book.client_orders()
                )
            self._set_status(
                self._state, "holds live" if holds_live else "holds not live", force=True
            )
        return snapshot_seen

    def _snapshot_event(self, event: BalancesSnapshot, now: float) -> StreamSnapshot:
        holds = self.session.holds() if self.session.holds_live else None
        uncertain = self.session.order_book.uncertain_assets()
        balances: dict[str, AssetAmounts] = {}
        for asset, wallets in event.balances.items():
            hold: Decimal | None = None
            if holds is not None and asset not in uncertain:
                hold = holds.get(asset, ZERO)  # the shared zero: 104 bytes per asset otherwise
            balances[asset] = AssetAmounts(asset, wallets.tradable, wallets.earn, hold)
        return StreamSnapshot(balances=balances, received_at=now, sequence=event.sequence)

    def _emit_holds(
        self,
        now: float,
        changed: frozenset[str],
        uncertain: frozenset[str],
        orders: frozenset[str] = frozenset(),
        closed: frozenset[str] = frozenset(),
    ) -> None:
        self._emit(
            StreamHolds(
                holds=self.session.holds(),
                received_at=now,
                changed=changed,
                uncertain=uncertain,
                orders=orders,
                closed=closed,
            )
        )

    def _set_status(
        self,
        state: StreamState,
        reason: str,
        *,
        force: bool = False,
        quiet_since: float | None = None,
    ) -> None:
        if state is self._state and not force:
            return
        self._set_state(state, reason)
        self._emit(
            StreamStatus(
                state=state,
                reason=reason,
                system=self.session.system,
                holds_live=self._holds_live,
                quiet_since=quiet_since,
            )
        )

    def _set_state(self, state: StreamState, reason: str) -> None:
        if state is not self._state:
            logger.info("WebSocket %s → %s (%s)", self._state.value, state.value, reason)
        self._state = state

    def _emit(self, event: StreamEvent) -> None:
        sink = self._sink
        if sink is None:
            return
        try:
            sink(event)
        except Exception:
            # The manager's sink isolates callbacks itself; this is the last guard
            # so a bug downstream never kills the stream.
            logger.exception("stream sink failed on %s", type(event).__name__)
