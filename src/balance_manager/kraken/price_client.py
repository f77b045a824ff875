"""Kraken's prices over the network: public REST ``Ticker`` and the WebSocket v2 ``ticker``.

:class:`KrakenPriceFeed` implements :class:`~balance_manager.core.prices.PriceSource`:

* :meth:`~KrakenPriceFeed.load_pairs` reads ``AssetPairs`` once (canonical
  names, v2 symbols such as ``BTC/USD``);
* :meth:`~KrakenPriceFeed.fetch_prices` reads ``Ticker`` for some pairs (one
  public call; the REST fallback when the stream is down);
* :meth:`~KrakenPriceFeed.start` streams the ``ticker`` channel of the public
  WebSocket host (no token) for the pairs it is asked to :meth:`~KrakenPriceFeed.follow`,
  with ``event_trigger: bbo`` so a price comes whenever the best bid or ask
  moves; it pings on an interval, treats a connection silent for
  ``websocket_timeout`` as dead, and reconnects with Kraken's backoff.

The facts are in docs/kraken.md, 'Ticker' and 'The ticker channel'. A pair the
server refuses is logged and no longer asked for; its asset stays unvalued
unless another path prices it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import aiohttp

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.prices import (
    PairInfo,
    PairPrice,
    PriceSink,
    PriceStreamState,
    PriceStreamStatus,
    PriceUpdate,
)
from balance_manager.core.stats import Counters
from balance_manager.exceptions import BalanceManagerError, ConfigError, TransportError
from balance_manager.kraken.protocol.limits import kraken_reconnect_delays
from balance_manager.kraken.protocol.ticker import (
    decode_asset_pairs,
    decode_public_frame,
    decode_rest_ticker,
    pairs_from_rest,
    rest_ticker_prices,
    ticker_price,
    ticker_subscribe_request,
)
from balance_manager.kraken.protocol.ws_messages import ping_request
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.runtime.aio import cancel_and_wait, describe_network_error, with_timeout
from balance_manager.runtime.clock import Clock

__all__ = ["KRAKEN_PUBLIC_WS_URL", "KrakenPriceFeed"]

logger = logging.getLogger(__name__)

#: Kraken's public WebSocket v2 endpoint (docs/kraken.md, 'Hosts').
KRAKEN_PUBLIC_WS_URL = "wss://ws.kraken.com/v2"
#: Most pairs asked for in one ``Ticker`` call (very long lists have been refused).
TICKER_BATCH = 50

_COUNTER_NAMES = (
    "messages",
    "ticker_messages",
    "prices",
    "connects",
    "connect_failures",
    "reconnects",
    "refused_pairs",
    "protocol_errors",
    "rest_reads",
    "silence_timeouts",
)


class KrakenPriceFeed:
    """Kraken's prices: REST ``Ticker`` reads and a public ``ticker`` stream.

    Args:
        rest_client: makes the public REST calls (``AssetPairs``, ``Ticker``).
        url: the public WebSocket v2 URL (default) or a simulator's ``ws_url``;
            ``None`` streams nothing (prices come from REST alone).
        config: ``websocket_timeout``, ``websocket_ping_interval`` and reconnect delays.
        clock: time source; defaults to the REST client's.
        rng: randomness for reconnect jitter.
    """

    def __init__(
        self,
        rest_client: KrakenRestClient,
        url: str | None = KRAKEN_PUBLIC_WS_URL,
        *,
        config: BalanceManagerConfig | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("ws://", "wss://"))
        ):
            raise ConfigError("url", url, "must be a ws:// or wss:// URL")
        self.url = url
        self.rest = rest_client
        self.config = config or rest_client.config
        self.clock: Clock = clock or rest_client.clock
        self.quiet_after = self.config.websocket_timeout
        """Seconds of silence after which the stream's prices are not trusted."""
        self._rng = rng or random.Random()
        self._pairs: dict[str, PairInfo] | None = None
        self._wanted: set[str] = set()
        self._subscribed: set[str] = set()
        self._refused: set[str] = set()
        self._sink: PriceSink | None = None
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._state = PriceStreamState.DISCONNECTED
        self._last_message_at: float | None = None
        self._counters = Counters(_COUNTER_NAMES)
        self._counts = self._counters.live

    def __repr__(self) -> str:
        state, pairs = self._state.value, len(self._wanted)
        return f"KrakenPriceFeed(url={self.url!r}, state={state}, pairs={pairs})"

    # -- REST ------------------------------------------------------------------------

    async def load_pairs(self) -> Sequence[PairInfo]:
        """Every online pair (``AssetPairs``, read once and remembered)."""
        if self._pairs is None:
            raw = await self.rest.public("AssetPairs")
            pairs = pairs_from_rest(decode_asset_pairs(raw), self.rest.names)
            self._pairs = {pair.symbol: pair for pair in pairs}
        return list(self._pairs.values())

    async def fetch_prices(self, symbols: Sequence[str]) -> list[PairPrice]:
        """The prices of ``symbols`` (v2 names) from ``Ticker``, :data:`TICKER_BATCH` per call."""
        await self.load_pairs()
        assert self._pairs is not None  # noqa: S101 - set by load_pairs
        pairs = [self._pairs[s] for s in dict.fromkeys(symbols) if s in self._pairs]
        prices: list[PairPrice] = []
        for start in range(0, len(pairs), TICKER_BATCH):
            batch = pairs[start : start + TICKER_BATCH]
            raw = await self.rest.public("Ticker", {"pair": [p.venue_name for p in batch]})
            self._counts["rest_reads"] += 1
            prices.extend(
                rest_ticker_prices(decode_rest_ticker(raw), batch, received_at=self.clock.time())
            )
        return prices

    # -- the stream ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the stream is subscribed and delivering."""
        return self._state is PriceStreamState.STREAMING

    @property
    def last_message_at(self) -> float | None:
        """Monotonic time of the last frame received, if any."""
        return self._last_message_at

    @property
    def followed(self) -> frozenset[str]:
        """The pairs asked for (refused ones excluded)."""
        return frozenset(self._wanted)

    async def start(self, sink: PriceSink) -> None:
        """Start streaming in a background task; events go to ``sink`` in order.

        Raises:
            ConfigError: the feed already streams.
        """
        if self._task is not None and not self._task.done():
            raise ConfigError("price_feed", self, "already streams; give each consumer its own")
        self._sink = sink
        self._stop.clear()
        if self.url is not None:
            self._task = asyncio.create_task(self._run(), name="kraken-prices")

    def follow(self, symbols: Iterable[str]) -> None:
        """Stream these pairs too (subscribed at once on a live connection)."""
        new = {s for s in symbols if s not in self._wanted and s not in self._refused}
        if new:
            self._wanted |= new
            self._wake.set()

    async def stop(self) -> None:
        """Close the socket and end the task; idempotent."""
        self._stop.set()
        self._wake.set()
        ws = self._ws
        if ws is not None and not ws.closed:
            await ws.close()
        await cancel_and_wait(self._task)
        self._task = None
        http, self._http = self._http, None
        if http is not None and not http.closed:
            await http.close()
        self._set_state(PriceStreamState.CLOSED, "stopped")

    def get_statistics(self) -> dict[str, Any]:
        """Counters (``messages``, ``prices``, ``reconnects``...) and the stream's state."""
        stats: dict[str, Any] = dict(self._counters.snapshot())
        stats["state"] = self._state.value
        stats["followed"] = len(self._wanted)
        return stats

    async def _run(self) -> None:
        delays = self._delays()
        while not self._stop.is_set():
            if not self._wanted:
                self._wake.clear()
                await self._wake.wait()
                continue
            streamed = False
            try:
                streamed = await self._connect_once()
                reason = "connection closed"
            except asyncio.CancelledError:
                raise
            except BalanceManagerError as exc:
                reason = str(exc)
            except Exception as exc:  # a bug must not stop prices for good
                logger.exception("price stream failed unexpectedly")
                reason = f"{type(exc).__name__}: {exc}"
            if self._stop.is_set():
                break
            if not streamed:
                self._counts["connect_failures"] += 1
            else:
                delays = self._delays()
            self._set_state(PriceStreamState.DISCONNECTED, reason)
            delay = next(delays)
            logger.info("price stream down (%s); reconnecting in %.2f s", reason, delay)
            await self.clock.sleep(delay)
            self._counts["reconnects"] += 1

    def _delays(self) -> Iterator[float]:
        return kraken_reconnect_delays(
            self._rng,
            initial=self.config.reconnect_initial_delay,
            maximum=self.config.reconnect_max_delay,
        )

    async def _connect_once(self) -> bool:
        """One connection; returns whether it delivered prices."""
        self._set_state(PriceStreamState.CONNECTING, "connecting")
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        url = self.url
        assert url is not None  # noqa: S101 - start() runs no stream without one
        try:
            ws = await with_timeout(
                self.clock,
                self.config.websocket_timeout,
                self._http.ws_connect(url, autoping=True, heartbeat=None, max_msg_size=0),
                "WebSocket connect",
            )
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"WebSocket connect to {self.url}: {describe_network_error(exc)}"
            ) from exc
        self._counts["connects"] += 1
        self._ws = ws
        self._subscribed = set()
        self._last_message_at = self.clock.monotonic()
        helpers = [
            asyncio.create_task(self._watchdog(ws), name="kraken-prices-watchdog"),
            asyncio.create_task(self._subscriber(ws), name="kraken-prices-subscriber"),
        ]
        streamed = False
        try:
            async for message in ws:
                if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    streamed = self._receive(message.data) or streamed
                elif message.type is aiohttp.WSMsgType.ERROR:
                    break
        finally:
            for task in helpers:
                await cancel_and_wait(task)
            self._ws = None
            if not ws.closed:
                await ws.close()
        return streamed

    async def _subscriber(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Subscribe to every wanted pair not yet asked for on this connection."""
        while not ws.closed:
            missing = sorted(self._wanted - self._subscribed)
            if missing:
                self._subscribed |= set(missing)
                try:
                    await ws.send_bytes(ticker_subscribe_request(missing))
                except (ConnectionError, RuntimeError):
                    return
            self._wake.clear()
            if not (self._wanted - self._subscribed):
                await self._wake.wait()

    async def _watchdog(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Ping on an interval; close a connection silent for ``websocket_timeout``."""
        interval = self.config.websocket_ping_interval
        timeout = self.config.websocket_timeout
        while not ws.closed:
            await self.clock.sleep(interval)
            last = self._last_message_at
            if last is not None and self.clock.monotonic() - last > timeout:
                self._counts["silence_timeouts"] += 1
                self._set_state(PriceStreamState.DISCONNECTED, "silent")
                await ws.close()
                return
            try:
                await ws.send_bytes(ping_request())
            except (ConnectionError, RuntimeError):
                return

    def _receive(self, data: bytes | str) -> bool:
        """One frame; returns whether it carried prices."""
        counts = self._counts
        counts["messages"] += 1
        self._last_message_at = self.clock.monotonic()
        try:
            frame = decode_public_frame(data)
        except BalanceManagerError as exc:
            counts["protocol_errors"] += 1
            logger.warning("ignoring a malformed public frame: %s", exc)
            return False
        if frame.kind == "ack":
            if not frame.success:
                self._refuse(frame.symbol, frame.error or "refused")
            return False
        if frame.kind != "ticker":
            return False
        counts["ticker_messages"] += 1
        now = self.clock.time()
        prices = []
        for item in frame.items:
            try:
                prices.append(ticker_price(item, received_at=now))
            except BalanceManagerError as exc:
                counts["protocol_errors"] += 1
                logger.warning("ignoring a ticker item: %s", exc)
        if not prices:
            return False
        counts["prices"] += len(prices)
        if self._state is not PriceStreamState.STREAMING:
            self._set_state(PriceStreamState.STREAMING, "prices received")
        sink = self._sink
        if sink is not None:
            sink(PriceUpdate(tuple(prices), snapshot=frame.snapshot))
        return True

    def _refuse(self, symbol: str | None, error: str) -> None:
        self._counts["refused_pairs"] += 1
        logger.warning("the price stream refused %s: %s", symbol or "a subscription", error)
        if symbol is not None:
            self._wanted.discard(symbol)
            self._refused.add(symbol)

    def _set_state(self, state: PriceStreamState, reason: str) -> None:
        if state is self._state:
            return
        self._state = state
        sink = self._sink
        if sink is not None:
            sink(PriceStreamStatus(state, reason))
