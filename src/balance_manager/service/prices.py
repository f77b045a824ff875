"""The latest prices, kept current: a price stream with REST as fallback (asyncio).

:class:`PriceService` owns a :class:`~balance_manager.core.prices.PriceBook`
fed by a venue's :class:`~balance_manager.core.prices.PriceSource`:

* :meth:`PriceService.want` asks for the pairs that value some assets; pairs
  not yet priced are read over REST at once (so the first valuation has
  prices), then streamed;
* while the stream is healthy (a message within its ``quiet_after``) every
  price it follows is known current up to its last message; when it is down or
  silent, REST is polled every ``poll_interval`` seconds (and so are pairs a live
  stream has not priced: refused, or not yet sent), and prices are as old
  as their last confirmation (the rules of balances: docs/architecture.md,
  'Trust: how a wrong value is kept from passing as fresh');
* listeners are told, synchronously and cheaply, which pairs changed.

Nothing is started before the first :meth:`PriceService.want`: a manager that
never values its balances opens no price connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from balance_manager.core.prices import (
    PairInfo,
    PriceBook,
    PriceEvent,
    PriceSource,
    PriceStreamState,
    PriceStreamStatus,
    PriceUpdate,
)
from balance_manager.core.stats import Counters
from balance_manager.exceptions import ConfigError, ProtocolError, SourceError, UnknownAssetError
from balance_manager.runtime.aio import cancel_and_wait
from balance_manager.runtime.clock import Clock

__all__ = ["PriceListener", "PriceService"]

logger = logging.getLogger(__name__)

#: Told the symbols whose price changed (synchronously: keep it cheap).
PriceListener = Callable[[frozenset[str]], None]

_FAILURES = (SourceError, ProtocolError)


class PriceService:
    """Prices for valuations: stream first, REST when the stream cannot be trusted.

    Args:
        source: the venue's prices.
        clock: time source.
        poll_interval: seconds between REST reads while the stream is down.

    Raises:
        ConfigError: ``poll_interval`` is not positive.
    """

    def __init__(self, source: PriceSource, *, clock: Clock, poll_interval: float = 10.0) -> None:
        if not poll_interval > 0:
            raise ConfigError("poll_interval", poll_interval, "must be above 0 seconds")
        self.source = source
        self.clock = clock
        self.poll_interval = poll_interval
        self.book = PriceBook()
        self._pairs: dict[str, PairInfo] | None = None
        self._wanted: set[str] = set()
        self._listeners: list[PriceListener] = []
        self._started = False
        self._closed = False
        self._stream_trusted = False
        self._task: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()
        self._counters = Counters(("updates", "rest_reads", "rest_failures", "stream_losses"))
        self.last_error: str | None = None
        """The last REST failure, if any."""

    def __repr__(self) -> str:
        return f"PriceService(pairs={len(self._wanted)}, priced={len(self.book)})"

    # -- pairs -------------------------------------------------------------------------

    async def pairs(self) -> list[PairInfo]:
        """Every pair of the venue (read once)."""
        if self._pairs is None:
            loaded = await self.source.load_pairs()
            self._pairs = {pair.symbol: pair for pair in loaded}
        return list(self._pairs.values())

    async def check_quote(self, quote: str) -> None:
        """Refuse a quote currency no pair is quoted in or based on.

        Raises:
            UnknownAssetError: no pair of the venue has ``quote`` on either side.
        """
        for pair in await self.pairs():
            if quote in (pair.base, pair.quote):
                return
        raise UnknownAssetError(quote, "no pair of the exchange prices it: not a quote currency")

    # -- wanting prices ------------------------------------------------------------------

    async def want(self, symbols: Iterable[str]) -> None:
        """Price these pairs from now on: read the unpriced ones over REST, then stream them.

        A REST failure is logged and remembered (:attr:`last_error`): the pairs
        stay wanted, and their assets unvalued until a price arrives.
        """
        await self._ensure_started()
        new = set(symbols) - self._wanted
        if not new:
            return
        self._wanted |= new
        self.source.follow(sorted(new))
        missing = sorted(s for s in new if s not in self.book)
        if missing:
            await self._read_rest(missing)

    @property
    def wanted(self) -> frozenset[str]:
        """The pairs priced."""
        return frozenset(self._wanted)

    def add_listener(self, listener: PriceListener) -> Callable[[], None]:
        """Tell ``listener`` the symbols of every price change; returns an unsubscriber."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    # -- freshness ---------------------------------------------------------------------

    def stream_live(self) -> bool:
        """Whether the stream is connected and spoke within its ``quiet_after``."""
        source = self.source
        last = source.last_message_at
        return (
            source.connected
            and last is not None
            and self.clock.monotonic() - last <= source.quiet_after
        )

    def confirm(self) -> None:
        """Bring the book's confirmations up to date with the stream's health (before a read)."""
        book = self.book
        if self.stream_live():
            last = self.source.last_message_at
            assert last is not None  # noqa: S101 - stream_live checked it
            book.stream_heard(self.clock.time() - (self.clock.monotonic() - last))
            self._stream_trusted = True
        elif self._stream_trusted:
            self._stream_trusted = False
            self._counters.incr("stream_losses")
            book.stream_lost(self.clock.time())

    # -- lifecycle ---------------------------------------------------------------------

    async def _ensure_started(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            if self._closed:
                raise RuntimeError("this PriceService was closed")
            self._started = True
            await self.pairs()
            await self.source.start(self._on_event)
            self._task = asyncio.create_task(self._poll(), name="price-rest-fallback")

    async def close(self) -> None:
        """Stop the stream and the REST fallback; idempotent."""
        if self._closed:
            return
        self._closed = True
        await cancel_and_wait(self._task)
        self._task = None
        if self._started:
            await self.source.stop()

    def get_statistics(self) -> dict[str, Any]:
        """Counters, the stream's health and the number of pairs."""
        stats: dict[str, Any] = dict(self._counters.snapshot())
        stats["pairs"] = len(self._wanted)
        stats["priced"] = len(self.book)
        stats["stream_live"] = self.stream_live()
        stats["last_error"] = self.last_error
        return stats

    # -- events ------------------------------------------------------------------------

    def _on_event(self, event: PriceEvent) -> None:
        """Apply one event from the stream (called by the source, in order; the hot path)."""
        if type(event) is PriceUpdate:
            changed = self.book.apply(event.prices)
            self._counters.live["updates"] += 1
            if self._stream_trusted is False and self.source.connected:
                self._stream_trusted = True
            if changed:
                self._tell(frozenset(changed))
        elif (
            isinstance(event, PriceStreamStatus)
            and event.state is not PriceStreamState.STREAMING
            and self._stream_trusted
        ):
            self._stream_trusted = False
            self._counters.incr("stream_losses")
            self.book.stream_lost(self.clock.time())
            self._tell(frozenset())

    def _tell(self, changed: frozenset[str]) -> None:
        for listener in list(self._listeners):
            try:
                listener(changed)
            except Exception:  # a listener must not stop the stream
                logger.exception("price listener %r failed", listener)

    async def _read_rest(self, symbols: list[str]) -> bool:
        try:
            prices = await self.source.fetch_prices(symbols)
        except _FAILURES as exc:
            self._counters.incr("rest_failures")
            self.last_error = str(exc)
            logger.warning("could not read prices over REST: %s", exc)
            return False
        self._counters.incr("rest_reads")
        self.last_error = None
        self.confirm()  # so the book knows which pairs the live stream covers right now
        changed = self.book.apply(prices)
        self._tell(frozenset(changed))
        return True

    async def _poll(self) -> None:
        """Read over REST every wanted price the live stream does not cover (all, when down)."""
        while True:
            await self.clock.sleep(self.poll_interval)
            self.confirm()
            uncovered = self._wanted
            if self.stream_live():
                uncovered = self._wanted - self.book.streamed()
            if uncovered:
                await self._read_rest(sorted(uncovered))
