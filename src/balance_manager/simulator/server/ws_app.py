"""The simulator's WebSocket v2 endpoint (``/v2``), as Kraken's auth host behaves.

On connect the server sends a ``status`` update. Clients then send JSON
requests (the shapes are in docs/kraken.md, 'WebSocket v2'):

* ``ping`` → ``pong`` with the ``req_id``;
* ``subscribe`` / ``unsubscribe`` to ``balances`` and ``executions`` (private:
  ``params.token`` from ``GetWebSocketsToken`` is required) and to
  the public ``instrument`` and ``ticker`` channels; acknowledged with
  ``time_in``/``time_out`` and the ``req_id`` (``ticker``: one answer per pair);
* anything else → ``success: false`` with ``EGeneral:Invalid arguments``.

After a ``balances`` subscription the connection gets a snapshot
(``sequence`` 1, unless ``snapshot: false``) and then one ``update`` per
ledger entry, each with the next ``sequence`` of that subscription.
``executions`` works the same way with order events. A ``ticker``
subscription (v2 pair names in ``params.symbol``) gets each pair's snapshot and
then an ``update`` whenever the market moves the pair's price; best bid and ask
are one tick either side of it (``SimExchange.quote``). Heartbeats go out about
every ``heartbeat_interval`` seconds (on the injected clock) when no other
channel data has flowed, once the connection has subscribed to something.

Every frame passes through the fault registry (see :mod:`.faults`) on its way
out; a writer task sends frames in order and applies delays on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import WSCloseCode, WSMsgType, web

from balance_manager.exceptions import ExchangeError, ProtocolError
from balance_manager.kraken.protocol.ws_messages import ClientRequest, decode_request
from balance_manager.simulator.model.auth import TOKEN_ERROR
from balance_manager.simulator.model.faults import (
    SEQUENCED_KINDS,
    TOKEN_KINDS,
    WS_FRAME_KINDS,
    FaultKind,
)
from balance_manager.simulator.model.frames import (
    HEARTBEAT_FRAME,
    MALFORMED_FRAME,
    anonymous_error_frame,
    balances_snapshot_frame,
    balances_update_frame,
    execution_item,
    executions_frame,
    instrument_snapshot_frame,
    open_order_item,
    pong_frame,
    response_frame,
    status_frame,
    ticker_frame,
)
from balance_manager.simulator.model.ledger import Account, AccountEvent, LedgerEntry, OrderEvent
from balance_manager.simulator.server.context import SimContext

__all__ = ["INVALID_ARGUMENTS", "PRIVATE_CHANNELS", "PUBLIC_CHANNELS", "WsConnection", "ws_handler"]

logger = logging.getLogger(__name__)

#: Channels that need a token (served only on Kraken's auth host).
PRIVATE_CHANNELS = frozenset({"balances", "executions"})
#: Public channels the simulator serves.
PUBLIC_CHANNELS = frozenset({"instrument", "ticker"})
#: The error of a request the server cannot accept.
INVALID_ARGUMENTS = "EGeneral:Invalid arguments"

_SKIP = frozenset({FaultKind.WS_SKIP_SEQUENCE})
_FRAME_SEQUENCED = WS_FRAME_KINDS | (SEQUENCED_KINDS - _SKIP)


class _RequestError(Exception):
    """A request to refuse with ``error`` (never shown with a token in it)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(slots=True)
class _Subscription:
    channel: str
    account: Account | None
    sequence: int = 0
    detach: Callable[[], None] | None = None


class WsConnection:
    """One client connection: its subscriptions, outgoing queue and timers.

    Args:
        ctx: the simulator's shared state.
        ws: the prepared WebSocket response.
        request: the HTTP request that opened it (its transport is aborted by ``ws_drop``).
    """

    def __init__(self, ctx: SimContext, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ctx = ctx
        self.ws = ws
        self.request = request
        # Kraken's ids exceed 2**63: draw them from the top half of uint64.
        self.connection_id = (1 << 63) | ctx.rng.getrandbits(63)
        self.subscriptions: dict[str, _Subscription] = {}
        self.tokens: set[str] = set()
        self.closed = False
        self._ever_subscribed = False
        self._queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()
        # Frames held back by ws_reorder, per channel: released after the next
        # frame of the same channel, so the client sees that channel's sequence
        # out of order (a heartbeat in between must not release them).
        self._held: dict[str | None, list[bytes]] = {}
        self._last_data = ctx.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        # The public ticker channel: subscribed pairs, and the price listener feeding them.
        self.ticker_symbols: set[str] = set()
        self._ticker_detach: Callable[[], None] | None = None

    # -- lifecycle -----------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until either side closes it."""
        self.ctx.connections.add(self)
        self._tasks = [
            asyncio.create_task(self._writer(), name=f"sim-ws-writer-{self.connection_id}"),
            asyncio.create_task(self._heartbeats(), name=f"sim-ws-heartbeat-{self.connection_id}"),
        ]
        try:
            self.send(status_frame(self.connection_id, self.ctx.exchange.status), channel="status")
            async for message in self.ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    data = message.data
                    self.handle_request(data if isinstance(data, bytes) else data.encode())
                elif message.type == WSMsgType.ERROR:
                    break
                if self.closed:
                    break
        finally:
            await self._cleanup()

    async def _cleanup(self) -> None:
        self.closed = True
        self.ctx.connections.discard(self)
        for sub in self.subscriptions.values():
            if sub.detach is not None:
                sub.detach()
        self.subscriptions.clear()
        self._stop_ticker()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def shutdown(self, code: int = WSCloseCode.SERVICE_RESTART) -> None:
        """Close with a close frame (the server is stopping); abort if that stalls."""
        if self.closed:
            return
        self.closed = True
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=b"server stopping"), 2.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            self.abort()

    def abort(self) -> None:
        """Close the TCP connection at once, without a close frame (the ``ws_drop`` fault)."""
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    # -- outgoing ------------------------------------------------------------------

    def send(self, frame: bytes, *, channel: str | None, sequenced: bool = False) -> None:
        """Queue ``frame`` through the fault pipeline (see :mod:`.faults`)."""
        if self.closed:
            return
        faults = self.ctx.faults
        if faults.silenced():
            return
        kinds = _FRAME_SEQUENCED if sequenced else WS_FRAME_KINDS
        delay = 0.0
        duplicate = hold = lost = False
        for fault in faults.take(kinds, channel=channel):
            if fault.kind is FaultKind.WS_DROP:
                self.abort()
                return
            if fault.kind is FaultKind.WS_SILENCE:
                return
            if fault.kind is FaultKind.WS_LOSE:
                lost = True
            elif fault.kind is FaultKind.WS_MALFORMED:
                self._queue.put_nowait((MALFORMED_FRAME, 0.0))
            elif fault.kind is FaultKind.WS_DELAY:
                delay = max(delay, fault.seconds or 0.0)
            elif fault.kind is FaultKind.WS_DUPLICATE:
                duplicate = True
            elif fault.kind is FaultKind.WS_REORDER:
                hold = True
        if channel not in (None, "heartbeat", "status"):
            self._last_data = self.ctx.monotonic()
        if lost:
            # Sent, as far as the server knows (no heartbeat replaces it), but
            # never delivered; frames held back by ws_reorder wait for the next one.
            return
        if hold:
            self._held.setdefault(channel, []).append(frame)
            return
        self._queue.put_nowait((frame, delay))
        if duplicate:
            self._queue.put_nowait((frame, 0.0))
        for held in self._held.pop(channel, ()) if sequenced else ():
            self._queue.put_nowait((held, 0.0))

    def send_sequenced(self, sub: _Subscription, build: Callable[[int], bytes]) -> None:
        """Send a channel data frame with the subscription's next ``sequence``."""
        if self.closed:
            return
        sub.sequence += 1
        if not self.ctx.faults.silenced() and self.ctx.faults.take(_SKIP, channel=sub.channel):
            sub.sequence += 1  # one number never sent: a gap the client can see
        self.send(build(sub.sequence), channel=sub.channel, sequenced=True)

    def push_status(self, system: str) -> None:
        """Send a ``status`` update (the system status changed)."""
        self.send(status_frame(self.connection_id, system), channel="status")

    async def _writer(self) -> None:
        while True:
            frame, delay = await self._queue.get()
            if delay > 0:
                await self.ctx.clock.sleep(delay)
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(frame.decode())
            except (ConnectionError, RuntimeError):
                # The peer went away; the read loop notices and cleans up.
                return

    async def _heartbeats(self) -> None:
        interval = self.ctx.heartbeat_interval
        while not self.closed:
            await self.ctx.clock.sleep(interval)
            if not self._ever_subscribed:
                continue
            # Tolerate float error in a clock advanced in steps of the interval.
            if self.ctx.monotonic() - self._last_data >= interval * 0.999:
                self.send(HEARTBEAT_FRAME, channel="heartbeat")

    # -- incoming ------------------------------------------------------------------

    def handle_request(self, raw: bytes) -> None:
        """Answer one client frame (read with the client library's ``decode_request``)."""
        time_in = self.ctx.now()
        try:
            request = decode_request(raw)
        except ProtocolError:
            # Not JSON, or the wrong shape (a req_id that is not an integer...).
            frame = anonymous_error_frame(INVALID_ARGUMENTS, time_in=time_in, time_out=time_in)
            self.send(frame, channel=None)
            return
        try:
            if request.method == "ping":
                self.send(pong_frame(request.req_id, time_in, self.ctx.now()), channel=None)
            elif request.method == "subscribe":
                self._subscribe(request, time_in)
            elif request.method == "unsubscribe":
                self._unsubscribe(request, time_in)
            else:
                raise _RequestError(INVALID_ARGUMENTS)
        except _RequestError as exc:
            self._respond(request.method, time_in, request.req_id, error=exc.error)

    def _respond(
        self,
        method: str,
        time_in: float,
        req_id: int | None,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        frame = response_frame(
            method,
            success=error is None,
            time_in=time_in,
            time_out=self.ctx.now(),
            req_id=req_id,
            result=result,
            error=error,
        )
        self.send(frame, channel=None)

    def _channel(self, request: ClientRequest) -> str:
        channel = request.channel
        if channel is None or channel not in PRIVATE_CHANNELS | PUBLIC_CHANNELS:
            raise _RequestError(INVALID_ARGUMENTS)
        return channel

    def _account(self, request: ClientRequest) -> Account:
        """The account whose token the request carries (checks the token faults too)."""
        token = request.token.reveal() if request.token is not None else ""
        if not token:
            raise _RequestError(INVALID_ARGUMENTS)
        if self.ctx.faults.take(TOKEN_KINDS):
            raise _RequestError(TOKEN_ERROR)
        try:
            api_key = self.ctx.auth.redeem_token(token, self.ctx.monotonic(), self.tokens)
            return self.ctx.account_for_key(api_key)
        except ExchangeError as exc:
            raise _RequestError(exc.code) from None

    @staticmethod
    def _flag(request: ClientRequest, name: str, default: bool) -> bool:
        value = request.params.get(name, default)
        if not isinstance(value, bool):
            raise _RequestError(INVALID_ARGUMENTS)
        return value

    def _subscribe(self, request: ClientRequest, time_in: float) -> None:
        channel = self._channel(request)
        snapshot = True if request.snapshot is None else request.snapshot
        if channel == "ticker":
            self._subscribe_ticker(request, time_in, snapshot)
            return
        if channel == "executions":
            snapshot = self._flag(request, "snap_orders", snapshot)
        account = self._account(request) if channel in PRIVATE_CHANNELS else None
        if channel in self.subscriptions:
            raise _RequestError("Already subscribed")
        sub = _Subscription(channel=channel, account=account)
        self.subscriptions[channel] = sub
        self._ever_subscribed = True
        self._respond(
            "subscribe",
            time_in,
            request.req_id,
            result={"channel": channel, "snapshot": snapshot},
        )
        if account is None:  # the public instrument channel
            if snapshot:
                self.send(instrument_snapshot_frame(self.ctx.exchange.instruments), channel=channel)
            return
        if snapshot:
            if channel == "balances":
                self.send_sequenced(sub, lambda seq: balances_snapshot_frame(account, seq))
            else:
                items = [open_order_item(order) for order in account.open_orders()]
                self.send_sequenced(sub, lambda seq: executions_frame("snapshot", items, seq))
        sub.detach = account.subscribe(self._listener(sub))

    def _listener(self, sub: _Subscription) -> Callable[[AccountEvent], None]:
        instruments = self.ctx.exchange.instruments

        def on_event(event: AccountEvent) -> None:
            if sub.channel == "balances" and isinstance(event, LedgerEntry):
                self.send_sequenced(sub, lambda seq: balances_update_frame(event, seq))
            elif sub.channel == "executions" and isinstance(event, OrderEvent):
                item = execution_item(event, instruments)
                self.send_sequenced(sub, lambda seq: executions_frame("update", [item], seq))

        return on_event

    # -- the public ticker channel (docs/kraken.md, 'The ticker channel') ----------------

    def _ticker_symbols(self, request: ClientRequest) -> list[str]:
        """The pair names of a ticker request (strings, at least one, without repeats)."""
        symbols = request.params.get("symbol")
        if not isinstance(symbols, list) or not symbols:
            raise _RequestError(INVALID_ARGUMENTS)
        if not all(isinstance(symbol, str) for symbol in symbols):
            raise _RequestError(INVALID_ARGUMENTS)
        return list(dict.fromkeys(symbols))

    def _known_pair(self, symbol: str) -> bool:
        """Whether ``symbol`` is a pair's v2 name (other spellings are refused, as Kraken does)."""
        try:
            return self.ctx.exchange.instruments.pair(symbol).symbol == symbol
        except ExchangeError:
            return False

    def _subscribe_ticker(self, request: ClientRequest, time_in: float, snapshot: bool) -> None:
        symbols = self._ticker_symbols(request)
        trigger = request.params.get("event_trigger", "trades")
        if trigger not in ("trades", "bbo"):
            raise _RequestError(INVALID_ARGUMENTS)
        self._ever_subscribed = True
        for symbol in symbols:
            refused = None
            if not self._known_pair(symbol):
                refused = f"Currency pair not supported {symbol}"
            elif symbol in self.ticker_symbols:
                refused = "Already subscribed"
            if refused is not None:
                result = {"channel": "ticker", "symbol": symbol}
                self._respond("subscribe", time_in, request.req_id, result=result, error=refused)
                continue
            self.ticker_symbols.add(symbol)
            acked: dict[str, Any] = {"channel": "ticker", "symbol": symbol, "snapshot": snapshot}
            self._respond("subscribe", time_in, request.req_id, result=acked)
            if snapshot:
                self._send_ticker("snapshot", symbol)
        if self._ticker_detach is None and self.ticker_symbols:
            self._ticker_detach = self.ctx.exchange.on_price(self._on_price)

    def _on_price(self, symbol: str, price: object) -> None:
        if symbol in self.ticker_symbols:
            self._send_ticker("update", symbol)

    def _send_ticker(self, kind: Literal["snapshot", "update"], symbol: str) -> None:
        exchange = self.ctx.exchange
        bid, ask = exchange.quote(symbol)
        frame = ticker_frame(
            kind, symbol, bid=bid, ask=ask, last=exchange.price(symbol), now=self.ctx.now()
        )
        self.send(frame, channel="ticker")

    def _unsubscribe_ticker(self, request: ClientRequest, time_in: float) -> None:
        for symbol in self._ticker_symbols(request):
            if symbol not in self.ticker_symbols:
                self._respond(
                    "unsubscribe", time_in, request.req_id, error="Subscription Not Found"
                )
                continue
            self.ticker_symbols.discard(symbol)
            result = {"channel": "ticker", "symbol": symbol}
            self._respond("unsubscribe", time_in, request.req_id, result=result)
        if not self.ticker_symbols:
            self._stop_ticker()

    def _stop_ticker(self) -> None:
        detach, self._ticker_detach = self._ticker_detach, None
        if detach is not None:
            detach()

    def _unsubscribe(self, request: ClientRequest, time_in: float) -> None:
        channel = self._channel(request)
        if channel == "ticker":
            self._unsubscribe_ticker(request, time_in)
            return
        if channel in PRIVATE_CHANNELS and (request.token is None or not request.token.reveal()):
            raise _RequestError(INVALID_ARGUMENTS)
        sub = self.subscriptions.pop(channel, None)
        if sub is None:
            raise _RequestError("Subscription Not Found")
        if sub.detach is not None:
            sub.detach()
        # Frames the subscription still owes (held back by ws_reorder) go out
        # before its end: none may follow the next subscription's snapshot.
        for held in self._held.pop(channel, ()):
            self._queue.put_nowait((held, 0.0))
        self._respond("unsubscribe", time_in, request.req_id, result={"channel": channel})

    def __repr__(self) -> str:
        return (
            f"WsConnection(id={self.connection_id}, channels={sorted(self.subscriptions)}, "
            f"closed={self.closed})"
        )


def ws_handler(ctx: SimContext) -> Callable[[web.Request], Any]:
    """The aiohttp handler of ``/v2``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, timeout=2.0)
        await ws.prepare(request)
        connection = WsConnection(ctx, ws, request)
        await connection.run()
        return ws

    return handle
