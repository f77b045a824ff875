"""Tests of kraken.protocol.ticker: Kraken's ticker examples decode exactly; shapes; encoders."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, strategies as st

from balance_manager.core.models import Source
from balance_manager.core.prices import PairInfo
from balance_manager.exceptions import ProtocolError
from balance_manager.kraken.protocol.assets import AssetNames
from balance_manager.kraken.protocol.ticker import (
    decode_asset_pairs,
    decode_public_frame,
    decode_rest_ticker,
    encode_ticker,
    pairs_from_rest,
    rest_ticker_prices,
    ticker_price,
    ticker_subscribe_request,
)


def test_ws_snapshot_example_decodes_every_digit(fixture_bytes: Callable[[str], bytes]) -> None:
    """Kraken's ticker snapshot example: numbers become the exact decimals written."""
    frame = decode_public_frame(fixture_bytes("ws_ticker_snapshot.json"))
    assert frame.kind == "ticker"
    assert frame.snapshot
    (item,) = frame.items
    assert item.symbol == "ALGO/USD"
    assert (item.bid, item.ask, item.last) == (
        Decimal("0.10025"),
        Decimal("0.10036"),
        Decimal("0.10035"),
    )
    assert item.ask_qty == Decimal("1361.44813783")
    price = ticker_price(item, received_at=5.0)
    assert price.mid == Decimal("0.100305")
    assert (price.base, price.quote, price.source) == ("ALGO", "USD", Source.WEBSOCKET)
    assert price.exchange_time == pytest.approx(1695632671.742648)


def test_ws_update_example_is_not_a_snapshot(fixture_bytes: Callable[[str], bytes]) -> None:
    """The update example has the same shape, type update."""
    frame = decode_public_frame(fixture_bytes("ws_ticker_update.json"))
    assert frame.kind == "ticker"
    assert not frame.snapshot
    assert frame.items[0].ask == Decimal("0.10035")


def test_other_frames_are_told_apart(fixture_bytes: Callable[[str], bytes]) -> None:
    """Acks, heartbeats, status and other channels are recognised, not mistaken for prices."""
    ack = decode_public_frame(fixture_bytes("ws_ticker_subscribe_ack.json"))
    assert (ack.kind, ack.success, ack.symbol) == ("ack", True, "ALGO/USD")
    assert decode_public_frame(fixture_bytes("ws_heartbeat.json")).kind == "heartbeat"
    assert decode_public_frame(fixture_bytes("ws_status.json")).kind == "status"
    assert decode_public_frame(fixture_bytes("ws_instrument_snapshot.json")).kind == "other"
    assert decode_public_frame(fixture_bytes("ws_pong.json")).kind == "pong"


def test_a_refusal_carries_the_error_and_symbol() -> None:
    """A failed subscribe answer says why, and for which pair."""
    frame = decode_public_frame(
        b'{"method":"subscribe","success":false,"error":"Currency pair not supported XBT/USD",'
        b'"result":{"channel":"ticker","symbol":"XBT/USD"}}'
    )
    assert (frame.kind, frame.success, frame.symbol) == ("ack", False, "XBT/USD")
    assert frame.error == "Currency pair not supported XBT/USD"


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (
            b'{"channel":"ticker","type":"update","data":[{"symbol":"A/B","bid":"x"}]}',
            "$.data[0].bid",
        ),
        (b'{"channel":"ticker","type":"update","data":[{"bid":1}]}', "$.data[0]"),
        (
            b'{"channel":"ticker","type":"update","data":[{"symbol":"A/B","bid":"NaN"}]}',
            "$.data[0]",
        ),
        (b"not json", "$"),
    ],
)
def test_bad_ticker_frames_name_the_path(raw: bytes, path: str) -> None:
    """A wrong shape is a ProtocolError naming where it is wrong."""
    with pytest.raises(ProtocolError) as caught:
        decode_public_frame(raw)
    assert caught.value.path is not None
    assert caught.value.path.startswith(path)


def test_zero_bid_is_no_price() -> None:
    """An empty book side (0) is not a price: the value falls back to the last trade."""
    frame = decode_public_frame(
        b'{"channel":"ticker","type":"update","data":[{"symbol":"A/B","bid":0,"ask":2,"last":1.5}]}'
    )
    price = ticker_price(frame.items[0], received_at=0.0)
    assert price.bid is None
    assert price.price == Decimal("1.5")
    assert price.from_last_trade


def test_rest_example_decodes_and_matches_by_pair_key(fixture_json: Callable[[str], Any]) -> None:
    """Kraken's Ticker example, keyed XXBTZUSD, becomes a BTC/USD price from its strings."""
    raw = json.dumps(fixture_json("rest_ticker.json")["result"]).encode()
    tickers = decode_rest_ticker(raw)
    pair = PairInfo(symbol="BTC/USD", base="BTC", quote="USD", venue_name="XXBTZUSD")
    (price,) = rest_ticker_prices(tickers, [pair], received_at=9.0)
    assert (price.bid, price.ask, price.last) == (
        Decimal("30300.00000"),
        Decimal("30300.10000"),
        Decimal("30303.20000"),
    )
    assert price.mid == Decimal("30300.05")
    assert price.source is Source.REST
    assert rest_ticker_prices(tickers, [], received_at=9.0) == []


def test_asset_pairs_become_canonical_v2_symbols() -> None:
    """XXBTZUSD (XXBT, ZUSD) is BTC/USD; a pair not online is skipped."""
    raw = (
        b'{"XXBTZUSD":{"altname":"XBTUSD","wsname":"XBT/USD","base":"XXBT","quote":"ZUSD",'
        b'"status":"online"},"XETHZEUR":{"altname":"ETHEUR","base":"XETH","quote":"ZEUR",'
        b'"status":"cancel_only"}}'
    )
    pairs = pairs_from_rest(decode_asset_pairs(raw), AssetNames())
    assert pairs == [PairInfo(symbol="BTC/USD", base="BTC", quote="USD", venue_name="XXBTZUSD")]


def test_subscribe_request_asks_for_best_price_changes() -> None:
    """The request names the channel, the pairs and the bbo trigger."""
    request = json.loads(ticker_subscribe_request(["BTC/USD", "ETH/USD"], req_id=3))
    assert request == {
        "method": "subscribe",
        "params": {
            "channel": "ticker",
            "snapshot": True,
            "symbol": ["BTC/USD", "ETH/USD"],
            "event_trigger": "bbo",
        },
        "req_id": 3,
    }


prices = st.decimals(
    min_value=Decimal("1e-12"), max_value=Decimal("1e12"), allow_nan=False, allow_infinity=False
)


@given(prices, prices, prices)
def test_encoder_round_trips_exactly(bid: Decimal, ask: Decimal, last: Decimal) -> None:
    """What the simulator writes, the client reads back digit for digit."""
    frame = decode_public_frame(
        encode_ticker("update", "BTC/USD", bid=bid, ask=ask, last=last, timestamp=1.5)
    )
    (item,) = frame.items
    assert (item.bid, item.ask, item.last) == (bid, ask, last)
