"""Tests of balance_manager.kraken.protocol.holds: holds per order and per asset from executions."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from balance_manager.kraken.protocol.holds import (
    DEFAULT_FEE_RATE,
    OpenOrderBook,
    hold_for_order,
    holds_from_orders,
    split_symbol,
)
from balance_manager.kraken.protocol.ws_messages import Execution, ExecutionsMessage, decode_message

D = Decimal


def new_order(
    order_id: str,
    side: str,
    qty: str,
    price: str | None,
    *,
    symbol: str = "BTC/USD",
    order_type: str = "limit",
) -> Execution:
    """A `new` order event as Kraken sends it."""
    return Execution(
        order_id=order_id,
        exec_type="new",
        order_status="new",
        symbol=symbol,
        side=side,
        order_type=order_type,
        order_qty=D(qty),
        limit_price=D(price) if price is not None else None,
        cum_qty=D(0),
    )


def update(*items: Execution) -> ExecutionsMessage:
    """An executions update carrying ``items``."""
    return ExecutionsMessage("update", items, None)


def test_split_symbol() -> None:
    """BTC/USD splits into v2 base and quote; other shapes are refused."""
    assert split_symbol("BTC/USD") == ("BTC", "USD")
    for bad in ("BTCUSD", "/USD", "BTC/", "A/B/C"):
        with pytest.raises(ValueError, match="BASE/QUOTE"):
            split_symbol(bad)


def test_buy_holds_cost_plus_fee_rounded_up() -> None:
    """A buy holds qty * price * (1 + fee) of the quote, rounded up to its decimals."""
    # 0.5 * 30000.1 * 1.0026 = 15039.05013 → 15039.0502 at 4 decimals (up, never down).
    hold = hold_for_order("buy", "limit", D("0.5"), D("30000.1"), DEFAULT_FEE_RATE, 4)
    assert hold == D("15039.0502")
    exact = hold_for_order("buy", "limit", D("0.5"), D("30000.1"), DEFAULT_FEE_RATE, None)
    assert exact == D("15039.05013")


def test_sell_holds_the_remaining_base() -> None:
    """A sell holds the quantity still to sell, whatever the price."""
    assert hold_for_order("sell", "limit", D("0.75"), D("30000"), DEFAULT_FEE_RATE, 4) == D("0.75")
    assert hold_for_order("sell", "market", D("0.75"), None) == D("0.75")


def test_nothing_remaining_holds_nothing() -> None:
    """A fully filled order holds 0."""
    assert hold_for_order("buy", "limit", D(0), D(100)) == 0
    assert hold_for_order("sell", "limit", D("-1"), D(100)) == 0


def test_buy_without_a_price_is_unknown() -> None:
    """A market buy has no price to hold against: None, not a guess."""
    assert hold_for_order("buy", "market", D(1), None) is None
    assert hold_for_order("buy", "market", D(1), D(0)) is None


def test_bad_side_is_refused() -> None:
    """Only buy and sell exist."""
    with pytest.raises(ValueError, match="side"):
        hold_for_order("short", "limit", D(1), D(1))


@given(
    qty=st.decimals(min_value=D("0.00000001"), max_value=1000, places=8),
    price=st.decimals(min_value=D("0.0001"), max_value=10**6, places=4),
    decimals=st.integers(min_value=0, max_value=10),
)
def test_rounded_hold_is_never_below_the_exact_one(qty: D, price: D, decimals: int) -> None:
    """Rounding overstates the hold by less than one last-digit unit, never understates it."""
    exact = hold_for_order("buy", "limit", qty, price, DEFAULT_FEE_RATE, None)
    rounded = hold_for_order("buy", "limit", qty, price, DEFAULT_FEE_RATE, decimals)
    assert exact is not None
    assert rounded is not None
    assert exact <= rounded < exact + D(1).scaleb(-decimals)


def test_orders_open_fill_and_release() -> None:
    """Holds follow new → partial fill → fill, per asset, and report what changed."""
    book = OpenOrderBook()
    assert book.apply(update(new_order("O1", "buy", "1", "100"))) == {"USD"}
    assert book.holds() == {"USD": D("100.2600")}
    assert book.apply(update(new_order("O2", "sell", "0.5", "200"))) == {"BTC"}
    assert book.holds() == {"USD": D("100.2600"), "BTC": D("0.5")}
    partial = Execution(
        order_id="O1", exec_type="trade", order_status="partially_filled", cum_qty=D("0.25")
    )
    assert book.apply(update(partial)) == {"USD"}
    assert book.hold("USD") == D("75.1950")
    filled = Execution(order_id="O1", exec_type="trade", order_status="filled", cum_qty=D(1))
    assert book.apply(update(filled)) == {"USD"}
    assert book.holds() == {"BTC": D("0.5")}
    assert "O1" not in book.orders()
    canceled = Execution(order_id="O2", exec_type="canceled", order_status="canceled")
    assert book.apply(update(canceled)) == {"BTC"}
    assert book.holds() == {}
    assert len(book) == 0


def test_exec_type_alone_closes_an_order() -> None:
    """An expired/canceled exec_type releases the hold even without order_status."""
    book = OpenOrderBook()
    book.apply(update(new_order("O1", "sell", "2", "10")))
    assert book.apply(update(Execution(order_id="O1", exec_type="expired"))) == {"BTC"}
    assert book.holds() == {}


def test_amend_changes_the_hold() -> None:
    """An amended order's new quantity and price replace the old ones."""
    book = OpenOrderBook()
    book.apply(update(new_order("O1", "buy", "1", "100")))
    amended = Execution(order_id="O1", exec_type="amended", order_qty=D(2), limit_price=D(60))
    assert book.apply(update(amended)) == {"USD"}
    assert book.hold("USD") == D("120.3120")  # 2 * 60 * 1.0026


def test_a_late_event_does_not_lower_cum_qty() -> None:
    """cum_qty only grows: an older trade event arriving late does not raise the hold."""
    book = OpenOrderBook()
    book.apply(update(new_order("O1", "sell", "1", "100")))
    book.apply(update(Execution(order_id="O1", exec_type="trade", cum_qty=D("0.6"))))
    book.apply(update(Execution(order_id="O1", exec_type="trade", cum_qty=D("0.4"))))
    assert book.hold("BTC") == D("0.4")


def test_unchanged_holds_are_not_reported() -> None:
    """An event that changes nothing held reports no asset."""
    book = OpenOrderBook()
    book.apply(update(new_order("O1", "sell", "1", "100")))
    same = Execution(order_id="O1", exec_type="restated", order_status="new")
    assert book.apply(update(same)) == set()


def test_market_buy_is_flagged_not_guessed() -> None:
    """A market buy adds no hold but marks its quote asset uncertain until it closes."""
    book = OpenOrderBook()
    changed = book.apply(update(new_order("O1", "buy", "1", None, order_type="market")))
    assert changed == {"USD"}
    assert book.holds() == {}
    assert book.uncertain_assets() == {"USD"}
    filled = Execution(order_id="O1", exec_type="filled", order_status="filled")
    assert book.apply(update(filled)) == {"USD"}
    assert book.uncertain_assets() == frozenset()


def test_trade_for_an_unseen_order_is_uncertain(fixture_bytes: Callable[[str], bytes]) -> None:
    """The fixture's trade names no order_qty: its asset is flagged, no hold invented."""
    message = decode_message(fixture_bytes("ws_executions_update_trade.json"))
    assert isinstance(message, ExecutionsMessage)
    book = OpenOrderBook()
    assert book.apply(message) == {"BTC"}
    assert book.holds() == {}
    assert book.uncertain_assets() == {"BTC"}
    order = book.orders()["OK4GJX-KSTLS-7DZZO5"]
    assert (order.side, order.cum_qty, order.remaining_qty) == ("sell", D("0.005"), None)


def test_snapshot_replaces_the_book_and_skips_trades() -> None:
    """A snapshot lists every open order: others are dropped, past trades ignored."""
    book = OpenOrderBook()
    book.apply(update(new_order("OLD", "sell", "1", "100")))
    snapshot = ExecutionsMessage(
        "snapshot",
        (
            new_order("O1", "buy", "1", "10", symbol="ETH/EUR"),
            Execution(order_id="T1", exec_type="trade", symbol="BTC/USD", side="buy"),
        ),
        1,
    )
    assert book.apply(snapshot) == {"BTC", "EUR"}
    assert set(book.orders()) == {"O1"}
    assert book.holds() == {"EUR": D("10.0260")}


def test_unknown_decimals_keep_the_exact_hold() -> None:
    """With no decimals known for the quote, the hold is exact (never rounded down)."""
    book = OpenOrderBook(asset_decimals=lambda asset: None)
    book.apply(update(new_order("O1", "buy", "0.3", "0.7", symbol="NEW/COIN")))
    assert book.hold("COIN") == D("0.3") * D("0.7") * (1 + DEFAULT_FEE_RATE)


def test_custom_fee_rate() -> None:
    """The fee reserved on buys is configurable."""
    book = OpenOrderBook(fee_rate=D(0))
    book.apply(update(new_order("O1", "buy", "2", "100")))
    assert book.hold("USD") == D("200.0000")


events = st.lists(
    st.tuples(
        st.sampled_from(["O1", "O2", "O3", "O4"]),
        st.sampled_from(["new", "trade", "amended", "canceled", "filled"]),
        st.sampled_from(["buy", "sell"]),
        st.sampled_from(["BTC/USD", "ETH/USD", "ETH/BTC"]),
        st.decimals(min_value=D("0.001"), max_value=100, places=3),
        st.decimals(min_value=D("0.01"), max_value=1000, places=2) | st.none(),
    ),
    max_size=30,
)


@given(events)
@settings(max_examples=200)
def test_incremental_totals_equal_a_recount(
    steps: list[tuple[str, str, str, str, D, D | None]],
) -> None:
    """After any event sequence, per-asset totals equal a recount over open orders."""
    book = OpenOrderBook()
    for order_id, exec_type, side, symbol, qty, price in steps:
        item = Execution(
            order_id=order_id,
            exec_type=exec_type,
            side=side,
            symbol=symbol,
            order_type="limit" if price is not None else "market",
            order_qty=qty if exec_type in ("new", "amended") else None,
            limit_price=price,
            cum_qty=qty / 2 if exec_type == "trade" else None,
            order_status=exec_type if exec_type in ("canceled", "filled") else None,
        )
        book.apply(update(item))
        assert book.holds() == holds_from_orders(book.orders())
        assert all(hold > 0 for hold in book.holds().values())


def test_client_order_ids_are_told_while_held_and_once_closed() -> None:
    """An order's client id is listed while its hold counts, then once among the closed."""
    book = OpenOrderBook()
    placed = Execution(
        order_id="O1",
        exec_type="new",
        order_status="new",
        symbol="BTC/USD",
        side="buy",
        order_type="limit",
        order_qty=D(1),
        limit_price=D(100),
        cl_ord_id="res-1",
    )
    assert book.apply(update(placed)) == {"USD"}
    assert book.client_orders() == {"res-1"}
    assert not book.has_closed
    filled = Execution(order_id="O1", exec_type="filled", order_status="filled", cum_qty=D(1))
    book.apply(update(filled))
    assert book.client_orders() == frozenset()
    assert book.has_closed
    assert book.take_closed() == {"res-1"}
    assert book.take_closed() == frozenset()


def test_an_order_whose_hold_is_unknown_is_not_listed_as_held() -> None:
    """A market buy (hold unknown, taken from REST) never counts as settled by the stream."""
    book = OpenOrderBook()
    market = Execution(
        order_id="O2",
        exec_type="new",
        order_status="new",
        symbol="BTC/USD",
        side="buy",
        order_type="market",
        order_qty=D(1),
        cl_ord_id="res-2",
    )
    book.apply(update(market))
    assert book.uncertain_assets() == {"USD"}
    assert book.client_orders() == frozenset()
