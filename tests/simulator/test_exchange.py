"""The exchange state: prices, crossing orders, and what each system status allows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from balance_manager.exceptions import (
    ConfigError,
    ExchangeError,
    InvalidAmountError,
    UnknownAssetError,
)
from balance_manager.simulator.model.exchange import SimExchange


def make_exchange() -> tuple[SimExchange, str]:
    """An exchange with one funded account; returns it and the account name."""
    exchange = SimExchange(seed=1)
    exchange.add_account("a", balances={"USD": "100000", "BTC": "2"}, now=0.0)
    return exchange, "a"


def test_accounts_start_with_their_deposits_in_the_ledger() -> None:
    """A new account's balances are explained by deposit entries."""
    exchange, name = make_exchange()
    account = exchange.account(name)
    assert [e.type for e in account.entries] == ["deposit", "deposit"]
    assert account.balances() == {"BTC": Decimal(2), "USD": Decimal(100000)}


def test_duplicate_and_unknown_accounts_are_config_errors() -> None:
    """Account names are unique and must exist."""
    exchange, name = make_exchange()
    with pytest.raises(ConfigError):
        exchange.add_account(name, now=0.0)
    with pytest.raises(ConfigError):
        exchange.account("nobody")


def test_resting_order_fills_at_its_limit_when_the_price_crosses() -> None:
    """A buy below the market rests, then fills at its limit as maker when the price drops."""
    exchange, name = make_exchange()
    account = exchange.account(name)
    order = exchange.place_order(account, "BTC/USD", "buy", "limit", "0.1", now=0.0, price="59000")
    assert order.status == "new"
    assert exchange.set_price("BTC/USD", "59500", now=1.0) == []
    (trade,) = exchange.set_price("BTC/USD", "58900", now=2.0)
    assert (trade.price, trade.liquidity) == (Decimal(59000), "m")
    assert account.order(order.order_id).status == "filled"


def test_limit_order_that_crosses_on_arrival_fills_as_taker_at_the_market() -> None:
    """A sell limit below the market fills at once at the market price."""
    exchange, name = make_exchange()
    account = exchange.account(name)
    order = exchange.place_order(account, "XBTUSD", "sell", "limit", "0.1", now=0.0, price="50000")
    assert order.status == "filled"
    assert order.avg_price == exchange.price("BTC/USD")


def test_market_order_uses_the_current_price() -> None:
    """A market buy fills at the pair's current price."""
    exchange, name = make_exchange()
    exchange.move_price("ETH/USD", "2500")
    order = exchange.place_order(exchange.account(name), "ETH/USD", "buy", "market", "1", now=0.0)
    assert order.avg_price == Decimal(2500)


@pytest.mark.parametrize(
    ("status", "order_type", "code"),
    [
        ("maintenance", "limit", "EService:Unavailable"),
        ("cancel_only", "limit", "EService:Market in cancel_only mode"),
        ("post_only", "market", "EService:Market in post_only mode"),
    ],
)
def test_status_refuses_orders(status: str, order_type: str, code: str) -> None:
    """Maintenance, cancel_only and post_only refuse what Kraken documents they refuse."""
    exchange, name = make_exchange()
    exchange.set_status(status)
    with pytest.raises(ExchangeError) as info:
        exchange.place_order(
            exchange.account(name), "BTC/USD", "buy", order_type, "0.01", now=0.0, price="50000"
        )
    assert info.value.code == code


def test_post_only_rests_crossing_limits_without_matching() -> None:
    """In post_only a crossing limit order rests; nothing matches until online again."""
    exchange, name = make_exchange()
    exchange.set_status("post_only")
    account = exchange.account(name)
    order = exchange.place_order(account, "BTC/USD", "buy", "limit", "0.01", now=0.0, price="70000")
    assert order.status == "new"
    assert exchange.fill_crossed(now=1.0) == []
    exchange.set_status("online")
    assert len(exchange.fill_crossed(now=2.0)) == 1


def test_maintenance_refuses_cancels() -> None:
    """No cancels during maintenance."""
    exchange, name = make_exchange()
    account = exchange.account(name)
    order = exchange.place_order(account, "BTC/USD", "buy", "limit", "0.01", now=0.0, price="100")
    exchange.set_status("maintenance")
    with pytest.raises(ExchangeError):
        exchange.cancel_order(account, order.order_id, now=1.0)


def test_status_listeners_hear_changes_only() -> None:
    """Listeners are called once per actual change; unknown statuses are refused."""
    exchange, _ = make_exchange()
    heard: list[str] = []
    unsubscribe = exchange.on_status(heard.append)
    exchange.set_status("maintenance")
    exchange.set_status("maintenance")
    exchange.set_status("online")
    unsubscribe()
    exchange.set_status("cancel_only")
    assert heard == ["maintenance", "online"]
    with pytest.raises(ConfigError):
        exchange.set_status("sleeping")


def test_partial_portion_fills_part_of_a_crossed_order() -> None:
    """fill_crossed with a portion leaves the rest of the order resting."""
    exchange, name = make_exchange()
    account = exchange.account(name)
    order = exchange.place_order(account, "BTC/USD", "sell", "limit", "0.4", now=0.0, price="61000")
    exchange.move_price("BTC/USD", "61000")
    exchange.fill_crossed(now=1.0, portion=lambda o: o.remaining / 4)
    assert account.order(order.order_id).cum_qty == Decimal("0.1")
    assert account.hold("BTC") == Decimal("0.3")


# -- what the simulator cannot represent ------------------------------------------------------


@pytest.mark.parametrize("price", ["1e40", "1e27"], ids=["1e40", "1e27"])
def test_a_price_beyond_28_digits_is_refused_by_name(price: str) -> None:
    """set_price with a price that cannot be written in 28 digits: InvalidAmountError, no move."""
    exchange, _ = make_exchange()
    before = exchange.price("BTC/USD")
    with pytest.raises(InvalidAmountError) as info:
        exchange.set_price("BTC/USD", price, now=1.0)
    assert info.value.field == "price"
    assert exchange.price("BTC/USD") == before


def test_a_crossed_order_whose_proceeds_cannot_be_represented_is_canceled() -> None:
    """A resting sell whose proceeds would take USD beyond 28 digits is canceled, not raised."""
    exchange = SimExchange(seed=1)
    account = exchange.add_account(
        "a", balances={"USD": "999999999999999999999999", "BTC": "1"}, now=0.0
    )
    order = exchange.place_order(account, "BTC/USD", "sell", "limit", "1", now=1.0, price="70000")
    assert exchange.set_price("BTC/USD", "70000", now=2.0) == []
    assert account.order(order.order_id).status == "canceled"
    assert account.tradable("USD") == Decimal("999999999999999999999999")


def test_a_crossing_order_whose_proceeds_cannot_be_represented_is_refused() -> None:
    """A sell crossing at once, with unrepresentable proceeds, is refused and left canceled."""
    exchange = SimExchange(seed=1)
    account = exchange.add_account(
        "a", balances={"USD": "999999999999999999999999", "BTC": "1"}, now=0.0
    )
    with pytest.raises(InvalidAmountError):
        exchange.place_order(account, "BTC/USD", "sell", "limit", "1", now=1.0, price="100")
    assert account.open_orders() == []
    assert account.tradable("BTC") == Decimal(1)


@pytest.mark.parametrize("name", [["BTC"], None, 5], ids=["list", "None", "int"])
def test_names_that_are_not_text_are_refused(name: object) -> None:
    """An asset or pair that is not a str: UnknownAssetError / EQuery, never TypeError."""
    exchange, account_name = make_exchange()
    account = exchange.account(account_name)
    with pytest.raises(UnknownAssetError):
        account.deposit(name, "1", now=1.0)  # type: ignore[arg-type]  # bad on purpose
    with pytest.raises(ExchangeError, match="Unknown asset pair"):
        exchange.set_price(name, "1", now=1.0)  # type: ignore[arg-type]  # bad on purpose
    with pytest.raises(ExchangeError, match="Unknown order"):
        account.cancel_order(name, now=1.0)  # type: ignore[arg-type]  # bad on purpose


def test_price_listeners_hear_real_moves_only() -> None:
    """A move is told once with the rounded price; the same price again tells nothing."""
    exchange, _ = make_exchange()
    heard: list[tuple[str, Decimal]] = []
    stop = exchange.on_price(lambda symbol, price: heard.append((symbol, price)))
    exchange.move_price("XBTUSD", "61000.04")
    exchange.move_price("BTC/USD", "61000.0")
    stop()
    exchange.move_price("BTC/USD", "1000")
    assert heard == [("BTC/USD", Decimal("61000.0"))]


def test_quote_is_one_tick_around_the_price() -> None:
    """Bid and ask are one tick either side, so the mid is the price; one tick has no room."""
    exchange, _ = make_exchange()
    exchange.move_price("BTC/USD", "60000.0")
    assert exchange.quote("BTC/USD") == (Decimal("59999.9"), Decimal("60000.1"))
    exchange.move_price("BTC/USD", "0.1")
    assert exchange.quote("BTC/USD") == (Decimal("0.1"), Decimal("0.1"))
