"""Kraken's prices: the public REST ``Ticker`` and ``AssetPairs``, and the WebSocket v2 ``ticker``.

Sans-I/O. The facts are in docs/kraken.md, 'Ticker' and 'The ticker channel':

* REST ``Ticker`` answers, per pair (keyed by Kraken's REST pair name, which may
  differ from the name asked for), ``a`` (ask: price, whole-lot volume, lot
  volume), ``b`` (bid, same), ``c`` (last trade: price, lot volume) and day
  statistics, every price a decimal **string**;
* the public WebSocket v2 ``ticker`` channel sends, for each subscribed pair, a
  snapshot then updates of one shape, ``data`` holding one object with
  ``symbol`` (``BTC/USD``), ``bid``, ``ask``, ``last``... as JSON **numbers**.

Prices are decoded straight from the JSON text to ``Decimal`` (msgspec), never
through ``float``; NaN and infinities are refused. :func:`decode_public_frame`
reads any frame of a public connection (ticker data, heartbeats, status,
acknowledgements, errors); the encoders at the bottom write the server's shapes
for the simulator, with numbers at full precision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar, Literal

import msgspec

from balance_manager.core.models import Source
from balance_manager.core.prices import PairInfo, PairPrice
from balance_manager.core.sources import AssetNaming
from balance_manager.exceptions import ProtocolError
from balance_manager.kraken.protocol.rest import protocol_error
from balance_manager.kraken.protocol.timefmt import format_rfc3339, parse_rfc3339
from balance_manager.kraken.protocol.ws_messages import subscribe_request

__all__ = [
    "EVENT_TRIGGER",
    "PublicFrame",
    "RestAssetPair",
    "RestTicker",
    "TickerItem",
    "decode_asset_pairs",
    "decode_public_frame",
    "decode_rest_ticker",
    "encode_ticker",
    "pairs_from_rest",
    "rest_ticker_prices",
    "ticker_price",
    "ticker_subscribe_request",
]

#: ``event_trigger`` we ask for: a message whenever the best bid or ask changes, so a
#: quiet stream means an unchanged mid (docs/kraken.md, 'The ticker channel').
EVENT_TRIGGER = "bbo"

_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError)


class TickerItem(msgspec.Struct, frozen=True, gc=False):
    """One pair's ticker in a WebSocket v2 ``ticker`` message.

    Attributes:
        symbol: the v2 pair name (``BTC/USD``).
        bid: best bid price.
        bid_qty: quantity at the best bid.
        ask: best ask price.
        ask_qty: quantity at the best ask.
        last: last trade price.
        volume: 24 h volume (base asset).
        vwap: 24 h volume-weighted average price.
        low: 24 h low.
        high: 24 h high.
        change: 24 h change in quote units.
        change_pct: 24 h change in percentage points.
        timestamp: RFC 3339 time of the data, if given.
    """

    _amount_fields: ClassVar[tuple[str, ...]] = (
        "bid",
        "bid_qty",
        "ask",
        "ask_qty",
        "last",
        "volume",
        "vwap",
        "low",
        "high",
        "change",
        "change_pct",
    )

    symbol: str
    bid: Decimal | None = None
    bid_qty: Decimal | None = None
    ask: Decimal | None = None
    ask_qty: Decimal | None = None
    last: Decimal | None = None
    volume: Decimal | None = None
    vwap: Decimal | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    change: Decimal | None = None
    change_pct: Decimal | None = None
    timestamp: str | None = None

    def __post_init__(self) -> None:
        """Refuse NaN and infinities in any price or quantity given."""
        for name in self._amount_fields:
            value = getattr(self, name)
            if value is not None and not value.is_finite():
                raise ValueError(f"`{name}` must be a finite number, got {value}")


class _Envelope(msgspec.Struct, frozen=True):
    channel: str | None = None
    method: str | None = None
    type: str | None = None
    success: bool | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    data: msgspec.Raw = msgspec.Raw()


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_items_decoder = msgspec.json.Decoder(tuple[TickerItem, ...])


class PublicFrame(msgspec.Struct, frozen=True):
    """One frame of a public WebSocket v2 connection, as far as prices care.

    Attributes:
        kind: ``ticker`` (prices in ``items``), ``heartbeat``, ``status``, ``ack``
            (an answer to a request; ``success`` and ``error`` say how it went),
            ``pong`` or ``other`` (another channel: ignored).
        items: the ticker items of a ``ticker`` frame.
        snapshot: a ``ticker`` frame of type ``snapshot``.
        success: for an ``ack``, whether the request succeeded.
        error: for a failed ``ack``, Kraken's error text.
        symbol: for a ticker ``ack``, the pair it answers, if given.
    """

    kind: Literal["ticker", "heartbeat", "status", "ack", "pong", "other"]
    items: tuple[TickerItem, ...] = ()
    snapshot: bool = False
    success: bool = True
    error: str | None = None
    symbol: str | None = None


def decode_public_frame(frame: bytes | str) -> PublicFrame:
    """Decode one text frame of a public connection (see :class:`PublicFrame`).

    Raises:
        ProtocolError: not JSON, or a ticker frame of the wrong shape (the message
            names the JSON path, e.g. ``$.data[0].bid``).
    """
    try:
        envelope = _envelope_decoder.decode(frame)
    except _DECODE_ERRORS as exc:
        raise protocol_error(exc, context="public frame: ") from None
    channel = envelope.channel
    if channel == "ticker" and envelope.data:
        try:
            items = _items_decoder.decode(envelope.data)
        except _DECODE_ERRORS as exc:
            raise protocol_error(exc, prefix="$.data", context="ticker: ") from None
        return PublicFrame("ticker", items=items, snapshot=envelope.type == "snapshot")
    if channel == "heartbeat":
        return PublicFrame("heartbeat")
    if channel == "status":
        return PublicFrame("status")
    method = envelope.method
    if method == "pong":
        return PublicFrame("pong")
    if method is not None:
        result = envelope.result or {}
        symbol = result.get("symbol")
        return PublicFrame(
            "ack",
            success=bool(envelope.success),
            error=envelope.error,
            symbol=symbol if isinstance(symbol, str) else None,
        )
    return PublicFrame("other")


def ticker_price(item: TickerItem, *, received_at: float) -> PairPrice:
    """A WebSocket ticker item as a neutral :class:`PairPrice` (v2 names are canonical).

    Raises:
        ProtocolError: the symbol is not ``BASE/QUOTE``, or its timestamp is not RFC 3339.
    """
    base, sep, quote = item.symbol.partition("/")
    if not sep or not base or not quote:
        raise ProtocolError(f"ticker symbol {item.symbol!r} is not BASE/QUOTE", path="$.symbol")
    exchange_time = None
    if item.timestamp is not None:
        try:
            exchange_time = parse_rfc3339(item.timestamp)
        except ValueError as exc:
            raise ProtocolError(str(exc), path="$.timestamp") from None
    return PairPrice(
        symbol=item.symbol,
        base=base,
        quote=quote,
        bid=_positive(item.bid),
        ask=_positive(item.ask),
        last=_positive(item.last),
        source=Source.WEBSOCKET,
        received_at=received_at,
        exchange_time=exchange_time,
    )


def _positive(value: Decimal | None) -> Decimal | None:
    """A price that is not above zero is no price (an empty book side)."""
    return value if value is not None and value > 0 else None


def ticker_subscribe_request(symbols: Sequence[str], *, req_id: int | None = None) -> bytes:
    """``subscribe`` to ``ticker`` for v2 ``symbols``: a snapshot, then every best-price change."""
    return subscribe_request(
        "ticker",
        token=None,
        snapshot=True,
        req_id=req_id,
        params={"symbol": list(symbols), "event_trigger": EVENT_TRIGGER},
    )


# -- REST ----------------------------------------------------------------------------


class RestTicker(msgspec.Struct, frozen=True):
    """One pair of the REST ``Ticker`` result (the fields prices need).

    Attributes:
        a: ask ``[price, whole-lot volume, lot volume]``.
        b: bid, same shape.
        c: last trade ``[price, lot volume]``.
    """

    a: tuple[Decimal, ...] = ()
    b: tuple[Decimal, ...] = ()
    c: tuple[Decimal, ...] = ()

    def __post_init__(self) -> None:
        """Refuse NaN and infinities."""
        for name in ("a", "b", "c"):
            for value in getattr(self, name):
                if not value.is_finite():
                    raise ValueError(f"`{name}` must hold finite numbers, got {value}")


class RestAssetPair(msgspec.Struct, frozen=True):
    """One pair of the REST ``AssetPairs`` result (the fields prices need).

    Attributes:
        altname: ``XBTUSD``.
        base: the base asset's REST key (``XXBT``).
        quote: the quote asset's REST key (``ZUSD``).
        wsname: the legacy WebSocket name (``XBT/USD``), if given.
        status: ``online``, ``cancel_only``... if given.
    """

    altname: str
    base: str
    quote: str
    wsname: str | None = None
    status: str | None = None


_ticker_decoder = msgspec.json.Decoder(dict[str, RestTicker])
_pairs_decoder = msgspec.json.Decoder(dict[str, RestAssetPair])


def decode_rest_ticker(raw: msgspec.Raw | bytes) -> dict[str, RestTicker]:
    """The ``Ticker`` result: REST pair name → ticker.

    Raises:
        ProtocolError: the wrong shape (the path names the field).
    """
    try:
        return _ticker_decoder.decode(raw)
    except _DECODE_ERRORS as exc:
        raise protocol_error(exc, prefix="$.result", context="Ticker: ") from None


def decode_asset_pairs(raw: msgspec.Raw | bytes) -> dict[str, RestAssetPair]:
    """The ``AssetPairs`` result: REST pair name → pair.

    Raises:
        ProtocolError: the wrong shape.
    """
    try:
        return _pairs_decoder.decode(raw)
    except _DECODE_ERRORS as exc:
        raise protocol_error(exc, prefix="$.result", context="AssetPairs: ") from None


def pairs_from_rest(pairs: Mapping[str, RestAssetPair], names: AssetNaming) -> list[PairInfo]:
    """Pairs in canonical names (``BTC/USD``, the v2 symbol), skipping those not ``online``.

    ``venue_name`` is Kraken's REST pair key, the key ``Ticker`` answers under.
    """
    found = []
    for key, pair in pairs.items():
        if pair.status not in (None, "online"):
            continue
        base, quote = names.canonical(pair.base), names.canonical(pair.quote)
        found.append(PairInfo(symbol=f"{base}/{quote}", base=base, quote=quote, venue_name=key))
    return found


def rest_ticker_prices(
    tickers: Mapping[str, RestTicker],
    pairs: Iterable[PairInfo],
    *,
    received_at: float,
) -> list[PairPrice]:
    """``Ticker`` entries as neutral prices, matched to ``pairs`` by REST pair key.

    A key that matches none of ``pairs`` (by ``venue_name``, or by symbol
    without the slash) is skipped: Kraken may answer under another spelling.
    """
    by_key: dict[str, PairInfo] = {}
    for pair in pairs:
        by_key[pair.venue_name] = pair
        by_key[pair.symbol.replace("/", "")] = pair
    prices = []
    for key, ticker in tickers.items():
        found = by_key.get(key)
        if found is None:
            continue
        pair = found
        prices.append(
            PairPrice(
                symbol=pair.symbol,
                base=pair.base,
                quote=pair.quote,
                bid=_positive(ticker.b[0] if ticker.b else None),
                ask=_positive(ticker.a[0] if ticker.a else None),
                last=_positive(ticker.c[0] if ticker.c else None),
                source=Source.REST,
                received_at=received_at,
            )
        )
    return prices


# -- encoders (the simulator's side) -------------------------------------------------------

_number_encoder = msgspec.json.Encoder(decimal_format="number")


def encode_ticker(
    kind: Literal["snapshot", "update"],
    symbol: str,
    *,
    bid: Decimal,
    ask: Decimal,
    last: Decimal,
    timestamp: float,
    bid_qty: Decimal = Decimal(1),
    ask_qty: Decimal = Decimal(1),
) -> bytes:
    """A ``ticker`` frame for one pair, numbers at full precision."""
    item: dict[str, object] = {
        "symbol": symbol,
        "bid": bid,
        "bid_qty": bid_qty,
        "ask": ask,
        "ask_qty": ask_qty,
        "last": last,
        "volume": Decimal(0),
        "vwap": last,
        "low": min(bid, last),
        "high": max(ask, last),
        "change": Decimal(0),
        "change_pct": Decimal(0),
        "timestamp": format_rfc3339(timestamp),
    }
    return _number_encoder.encode({"channel": "ticker", "type": kind, "data": [item]})
