"""Prices of trading pairs, and how long each is known current (venue-neutral, sans-I/O).

Prices are a second kind of source beside balances. A venue's price client
turns its ticker messages into :class:`PairPrice` values (exact ``Decimal``
bid, ask and last trade price of one pair) and pushes them, as
:data:`PriceEvent` values, to a sink; :class:`PriceBook` holds the latest price
of every pair and answers, for a wall-clock ``now``, how old each one is.

Freshness follows the rule of balances (docs/architecture.md, 'Trust: how a
wrong value is kept from passing as fresh'): a price is known current up to
the last moment a live source confirmed it. A healthy ticker stream confirms
every price it follows up to its last message (a heartbeat included: the
stream sends a pair's price again whenever its best bid or ask moves, so a
quiet stream means an unchanged price); a REST read confirms the prices it read
up to the moment its answer arrived. When the stream goes down its prices stop
being confirmed and age from then on, until REST or the stream confirms them
again.

Nothing here reads a clock: every ``now`` comes in.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Protocol, TypeAlias, runtime_checkable

import msgspec

from balance_manager.core.amounts import EXACT_CONTEXT, to_amount
from balance_manager.core.models import Source
from balance_manager.exceptions import InvalidAmountError

__all__ = [
    "PairInfo",
    "PairPrice",
    "PriceBook",
    "PriceEvent",
    "PriceSink",
    "PriceSource",
    "PriceStreamState",
    "PriceStreamStatus",
    "PriceUpdate",
    "pair_price",
]

_TWO = Decimal(2)


class PairInfo(msgspec.Struct, frozen=True):
    """One tradable pair, in canonical names.

    Attributes:
        symbol: ``BASE/QUOTE`` in canonical asset names (``BTC/USD``).
        base: canonical base asset (``BTC``).
        quote: canonical quote asset (``USD``).
        venue_name: the venue's own name for the pair in REST calls (``XXBTZUSD``).
    """

    symbol: str
    base: str
    quote: str
    venue_name: str = ""


class PairPrice(msgspec.Struct, frozen=True, gc=False):
    """The price of one pair at one moment, from one source.

    Attributes:
        symbol: ``BASE/QUOTE`` in canonical names.
        base: canonical base asset.
        quote: canonical quote asset.
        bid: best bid, if known.
        ask: best ask, if known.
        last: last trade price, if known (may be a day old on a quiet pair).
        source: ``websocket`` or ``rest`` (``cache`` once no live source confirms it).
        received_at: local wall-clock time it arrived (Unix seconds).
        exchange_time: the exchange's time of the data, if it gave one.

    Use :func:`pair_price` to build one from user input (it checks the amounts).
    """

    symbol: str
    base: str
    quote: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    source: Source
    received_at: float
    exchange_time: float | None = None

    @property
    def mid(self) -> Decimal | None:
        """``(bid + ask) / 2`` when both sides are known and positive (exact: a division by 2)."""
        bid, ask = self.bid, self.ask
        if bid is None or ask is None or bid <= 0 or ask <= 0:
            return None
        return EXACT_CONTEXT.divide(EXACT_CONTEXT.add(bid, ask), _TWO)

    @property
    def price(self) -> Decimal | None:
        """The price used to value (``None``: none known).

        Both sides known: the mid. Only the bid: the bid (what a holding sells for
        now; a last trade above it is not to be had). Only the ask: the last trade,
        but never above the ask. No side: the last trade (:attr:`from_last_trade`).
        """
        mid = self.mid
        if mid is not None:
            return mid
        bid, ask, last = _positive(self.bid), _positive(self.ask), _positive(self.last)
        if bid is not None:
            return bid
        if ask is not None:
            return ask if last is None else min(last, ask)
        return last

    @property
    def from_last_trade(self) -> bool:
        """Whether :attr:`price` is a last trade price (no bid: it may be old; a
        valuation counts it as stale)."""
        if self.mid is not None or _positive(self.bid) is not None:
            return False
        last = _positive(self.last)
        return last is not None and self.price == last


def _positive(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > 0 else None


def pair_price(
    symbol: str,
    *,
    bid: object = None,
    ask: object = None,
    last: object = None,
    source: Source = Source.REST,
    received_at: float = 0.0,
    exchange_time: float | None = None,
) -> PairPrice:
    """A checked :class:`PairPrice` (amounts through ``to_amount``: no ``float``).

    Raises:
        InvalidAmountError: a price is not a finite amount above zero, or ``symbol``
            is not ``BASE/QUOTE``.
        FloatAmountError: a price is a ``float``.
    """
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote or "/" in quote:
        raise InvalidAmountError("symbol", symbol, "a pair is written BASE/QUOTE")
    values: dict[str, Decimal | None] = {}
    for name, value in (("bid", bid), ("ask", ask), ("last", last)):
        if value is None:
            values[name] = None
            continue
        amount = to_amount(value, name=name)
        if amount <= 0:
            raise InvalidAmountError(name, value, "a price must be above zero")
        values[name] = amount
    return PairPrice(
        symbol=symbol,
        base=base,
        quote=quote,
        bid=values["bid"],
        ask=values["ask"],
        last=values["last"],
        source=source,
        received_at=received_at,
        exchange_time=exchange_time,
    )


class PriceUpdate(msgspec.Struct, frozen=True):
    """New prices from a source.

    Attributes:
        prices: the pairs' new prices.
        snapshot: whether this is a (re)subscription's first picture.
    """

    prices: tuple[PairPrice, ...]
    snapshot: bool = False


class PriceStreamState(enum.Enum):
    """Where a price stream stands."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    CLOSED = "closed"


class PriceStreamStatus(msgspec.Struct, frozen=True):
    """The price stream's state changed (``reason`` is human readable)."""

    state: PriceStreamState
    reason: str = ""


PriceEvent: TypeAlias = PriceUpdate | PriceStreamStatus
PriceSink: TypeAlias = Callable[[PriceEvent], None]


@runtime_checkable
class PriceSource(Protocol):
    """A venue's prices: its pairs, a REST read and a stream (see module docs).

    Attributes:
        quiet_after: seconds without any message after which the stream is not
            trusted to have sent every price change.
    """

    quiet_after: float

    async def load_pairs(self) -> Sequence[PairInfo]:
        """Every tradable pair of the venue."""
        ...

    async def fetch_prices(self, symbols: Sequence[str]) -> list[PairPrice]:
        """Read the prices of ``symbols`` once (REST)."""
        ...

    async def start(self, sink: PriceSink) -> None:
        """Start streaming in the background; events go to ``sink`` in order."""
        ...

    def follow(self, symbols: Iterable[str]) -> None:
        """Stream these pairs too (a running stream subscribes to them at once)."""
        ...

    async def stop(self) -> None:
        """Stop streaming; no task or socket is left behind."""
        ...

    @property
    def connected(self) -> bool:
        """Whether the stream is subscribed and delivering."""
        ...

    @property
    def last_message_at(self) -> float | None:
        """Monotonic time of the last message received, if any."""
        ...


class PriceBook:
    """The latest price of every pair, with the moment each is known current.

    Methods take the wall-clock ``now`` of the event; nothing reads a clock.
    """

    __slots__ = ("_confirmed", "_prices", "_stream_confirmed", "_streamed")

    def __init__(self) -> None:
        self._prices: dict[str, PairPrice] = {}
        self._confirmed: dict[str, float] = {}  # symbol → known current up to (wall)
        self._streamed: set[str] = set()  # symbols the live stream follows
        self._stream_confirmed: float | None = None  # the live stream confirms up to (wall)

    def __len__(self) -> int:
        return len(self._prices)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._prices

    def apply(self, prices: Iterable[PairPrice]) -> list[str]:
        """Hold new prices; returns the symbols whose price changed.

        A REST price never replaces the price of a pair the trusted live stream
        follows: a REST answer is stamped when it arrives, after any stream message
        that came in while it was in flight, so it may be the older of the two.
        """
        changed = []
        trusted_stream = self._stream_confirmed is not None
        for price in prices:
            if (
                price.source is not Source.WEBSOCKET
                and trusted_stream
                and price.symbol in self._streamed
            ):
                continue
            old = self._prices.get(price.symbol)
            self._prices[price.symbol] = price
            confirmed = self._confirmed.get(price.symbol)
            if confirmed is None or price.received_at > confirmed:
                self._confirmed[price.symbol] = price.received_at
            if price.source is Source.WEBSOCKET:
                self._streamed.add(price.symbol)
            if old is None or old.price != price.price:
                changed.append(price.symbol)
        return changed

    def stream_heard(self, now: float) -> None:
        """The live stream spoke at ``now``: every price it follows is current up to ``now``."""
        self._stream_confirmed = now

    def stream_lost(self, now: float) -> None:
        """The stream stopped being trusted at ``now``: its prices age from its last message."""
        last = self._stream_confirmed
        if last is not None:
            for symbol in self._streamed:
                if self._confirmed.get(symbol, 0.0) < last:
                    self._confirmed[symbol] = last
        self._stream_confirmed = None
        self._streamed.clear()

    def get(self, symbol: str) -> PairPrice | None:
        """The latest price of ``symbol``, if any."""
        return self._prices.get(symbol)

    def known_current_at(self, symbol: str) -> float | None:
        """Up to when ``symbol``'s price is known current (wall clock), if it has one."""
        confirmed = self._confirmed.get(symbol)
        if confirmed is None:
            return None
        stream = self._stream_confirmed
        if stream is not None and symbol in self._streamed and stream > confirmed:
            return stream
        return confirmed

    def age(self, symbol: str, now: float) -> float | None:
        """Seconds since ``symbol``'s price was last known current, at ``now``."""
        at = self.known_current_at(symbol)
        return None if at is None else max(0.0, now - at)

    def streamed(self) -> frozenset[str]:
        """The symbols the live stream has priced since it was last trusted."""
        return frozenset(self._streamed)

    def snapshot(self) -> Mapping[str, PairPrice]:
        """Every held price by symbol (a copy)."""
        return dict(self._prices)

    def __repr__(self) -> str:
        return f"PriceBook({len(self._prices)} pairs, streamed={len(self._streamed)})"
