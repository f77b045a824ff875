"""Tests for balance_manager.core.prices (checked prices, mid, and how long each is current)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from balance_manager.core.models import Source
from balance_manager.core.prices import PriceBook, pair_price
from balance_manager.exceptions import FloatAmountError, InvalidAmountError

prices = st.decimals(
    min_value=Decimal("1e-10"), max_value=Decimal("1e9"), allow_nan=False, allow_infinity=False
)


def test_pair_price_refuses_a_float() -> None:
    """A float bid is refused: prices are exact."""
    with pytest.raises(FloatAmountError):
        pair_price("BTC/USD", bid=60000.5, ask="60001")


@pytest.mark.parametrize("bad", ["0", "-1", "NaN"])
def test_pair_price_refuses_a_price_not_above_zero(bad: str) -> None:
    """Zero, negative and NaN prices are refused, naming the field."""
    with pytest.raises(InvalidAmountError, match="ask"):
        pair_price("BTC/USD", bid="1", ask=bad)


@pytest.mark.parametrize("symbol", ["BTCUSD", "/USD", "BTC/", "A/B/C"])
def test_pair_price_refuses_a_symbol_not_base_slash_quote(symbol: str) -> None:
    """A pair is written BASE/QUOTE."""
    with pytest.raises(InvalidAmountError, match="symbol"):
        pair_price(symbol, last="1")


@given(prices, prices)
def test_mid_is_exactly_half_the_sum(bid: Decimal, ask: Decimal) -> None:
    """The mid is (bid + ask) / 2 with every digit (a division by 2 terminates)."""
    price = pair_price("A/B", bid=bid, ask=ask)
    assert price.mid is not None
    assert price.mid * 2 == bid + ask
    assert price.price == price.mid
    assert not price.from_last_trade


def test_last_trade_price_is_used_only_without_both_sides_and_is_flagged() -> None:
    """Without a bid, the price is the last trade (never above the ask), flagged as such."""
    price = pair_price("A/B", ask="2", last="1.5")
    assert price.mid is None
    assert price.price == Decimal("1.5")
    assert price.from_last_trade
    assert pair_price("A/B").price is None


@pytest.mark.parametrize(
    ("bid", "ask", "last", "price", "from_last"),
    [
        ("0.5", None, "5", "0.5", False),  # a stale last trade far above the only bid: the bid
        ("0.5", None, None, "0.5", False),
        (None, "2", "3", "2", False),  # never above what buying costs now
        (None, "2", "1.5", "1.5", True),
        (None, "2", None, "2", False),
        (None, None, "7", "7", True),  # no book at all: the last trade, flagged
    ],
)
def test_with_one_side_of_the_book_the_price_never_leaves_it(
    bid: str | None, ask: str | None, last: str | None, price: str, from_last: bool
) -> None:
    """One side known: the bid values a holding (what it sells for now); with only an ask,
    the last trade but never above the ask. A last trade used is flagged: it may be old."""
    value = pair_price("A/B", bid=bid, ask=ask, last=last)
    assert value.price == Decimal(price)
    assert value.from_last_trade is from_last


def test_a_rest_read_never_replaces_a_price_the_live_stream_follows() -> None:
    """A REST answer stamped at arrival can carry an older price than the stream's: while the
    stream follows the pair and is trusted, its price stays; once it is lost, REST counts."""
    book = PriceBook()
    book.apply([pair_price("A/B", bid="199", ask="201", source=Source.WEBSOCKET, received_at=100)])
    book.stream_heard(100.0)
    assert book.apply([pair_price("A/B", last="100", source=Source.REST, received_at=101)]) == []
    held = book.get("A/B")
    assert held is not None
    assert held.price == Decimal(200)
    book.stream_lost(102.0)
    assert book.apply([pair_price("A/B", last="150", source=Source.REST, received_at=103)]) == [
        "A/B"
    ]
    assert book.age("A/B", 104.0) == 1.0


def test_rest_prices_are_current_as_of_their_arrival() -> None:
    """A REST price ages from when it arrived."""
    book = PriceBook()
    assert book.apply([pair_price("A/B", last="1", received_at=100.0)]) == ["A/B"]
    assert book.age("A/B", 130.0) == 30.0
    assert book.age("C/D", 130.0) is None


def test_a_live_stream_confirms_its_prices_up_to_its_last_message() -> None:
    """Heartbeats of a healthy stream keep an unchanged price current; a loss stops that."""
    book = PriceBook()
    book.apply([pair_price("A/B", last="1", source=Source.WEBSOCKET, received_at=100.0)])
    book.apply([pair_price("C/D", last="1", source=Source.REST, received_at=100.0)])
    book.stream_heard(150.0)
    assert book.age("A/B", 151.0) == 1.0
    assert book.age("C/D", 151.0) == 51.0  # not followed by the stream
    book.stream_lost(160.0)
    book.stream_heard(200.0)  # a new stream's heartbeat confirms nothing it has not sent again
    assert book.age("A/B", 170.0) == 20.0


def test_apply_reports_only_prices_that_changed() -> None:
    """The same price again is no change; another one is."""
    book = PriceBook()
    book.apply([pair_price("A/B", bid="1", ask="3")])
    assert book.apply([pair_price("A/B", bid="1.5", ask="2.5", received_at=1.0)]) == []
    assert book.apply([pair_price("A/B", bid="1", ask="2", received_at=2.0)]) == ["A/B"]
