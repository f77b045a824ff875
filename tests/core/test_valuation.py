"""Tests for balance_manager.core.valuation (rates, paths, exact values, unvalued and stale)."""

from __future__ import annotations

from decimal import Decimal, localcontext

from hypothesis import given, strategies as st

from balance_manager.core.amounts import EXACT_CONTEXT
from balance_manager.core.models import Balance, Source
from balance_manager.core.prices import PairInfo, pair_price
from balance_manager.core.valuation import (
    RATE_DIGITS,
    PriceIndex,
    find_rate,
    pairs_needed,
    value_portfolio,
)

NOW = 1000.0


def index(*prices: tuple[str, str, str]) -> PriceIndex:
    """Prices from (symbol, bid, ask), received at NOW."""
    return PriceIndex(
        pair_price(symbol, bid=bid, ask=ask, source=Source.WEBSOCKET, received_at=NOW)
        for symbol, bid, ask in prices
    )


def rate_of(asset: str, quote: str, prices: PriceIndex) -> Decimal | None:
    found = find_rate(asset, quote, prices, now=NOW, max_price_age=60.0)
    return None if found is None else found.rate


def test_direct_pair_uses_the_mid() -> None:
    """BTC in USD is the BTC/USD mid, path BTC→USD."""
    rate = find_rate("BTC", "USD", index(("BTC/USD", "100", "101")), now=NOW, max_price_age=60)
    assert rate is not None
    assert rate.rate == Decimal("100.5")
    assert rate.path_text == "BTC→USD"
    assert rate.pairs == ("BTC/USD",)
    assert rate.source is Source.WEBSOCKET


def test_inverse_pair_divides_and_rounds_to_rate_digits() -> None:
    """USD in BTC is 1 / mid of BTC/USD, kept to RATE_DIGITS significant digits."""
    rate = find_rate("USD", "BTC", index(("BTC/USD", "3", "3")), now=NOW, max_price_age=60)
    assert rate is not None
    assert rate.pairs == ("1/BTC/USD",)
    assert rate.rate == Decimal("0." + "3" * RATE_DIGITS)


def test_inverse_hop_divides_once() -> None:
    """EUR→BTC→USD is BTC/USD over BTC/EUR in one division: 66000 / 55000 is exactly 1.2."""
    prices = index(("BTC/EUR", "55000", "55000"), ("BTC/USD", "66000", "66000"))
    rate = find_rate("EUR", "USD", prices, now=NOW, max_price_age=60)
    assert rate is not None
    assert rate.pairs == ("1/BTC/EUR", "BTC/USD")
    assert rate.rate == Decimal("1.2")


def test_one_hop_shows_its_path() -> None:
    """DOT in USD without DOT/USD goes DOT→EUR→USD, exactly the product of the mids."""
    prices = index(("DOT/EUR", "5", "5"), ("EUR/USD", "1.1", "1.1"))
    rate = find_rate("DOT", "USD", prices, now=NOW, max_price_age=60)
    assert rate is not None
    assert rate.path == ("DOT", "EUR", "USD")
    assert rate.pairs == ("DOT/EUR", "EUR/USD")
    assert rate.rate == Decimal("5.5")


def test_hop_without_inversion_is_preferred() -> None:
    """Of two hops, the one that inverts no pair wins."""
    prices = index(
        ("DOT/EUR", "5", "5"), ("EUR/USD", "1", "1"), ("DOT/BTC", "1", "1"), ("USD/BTC", "1", "1")
    )
    rate = find_rate("DOT", "USD", prices, now=NOW, max_price_age=60)
    assert rate is not None
    assert rate.path == ("DOT", "EUR", "USD")


def test_two_hops_are_not_walked() -> None:
    """A→B→C→USD is beyond one hop: no rate."""
    prices = index(("A/B", "1", "1"), ("B/C", "1", "1"), ("C/USD", "1", "1"))
    assert rate_of("A", "USD", prices) is None
    assert rate_of("B", "USD", prices) == 1


def test_unpriced_asset_is_unvalued_never_zero() -> None:
    """An asset without a rate is listed unvalued, has no value, and is not in the total."""
    balances = {
        "BTC": Balance("BTC", Decimal(2)),
        "XYZ": Balance("XYZ", Decimal(5)),
        "USD": Balance("USD", Decimal(10)),
    }
    portfolio = value_portfolio(
        balances, index(("BTC/USD", "100", "100")), quote="USD", now=NOW, max_price_age=60
    )
    assert portfolio.unvalued == ("XYZ",)
    assert not portfolio.complete
    assert portfolio.assets["XYZ"].value_total is None
    assert portfolio.assets["XYZ"].allocation is None
    assert portfolio.total == Decimal(210)
    assert list(portfolio.assets) == ["BTC", "USD", "XYZ"]


def test_free_held_and_earn_are_valued() -> None:
    """Each part of a balance is valued with the same rate."""
    balances = {"ETH": Balance("ETH", Decimal(3), hold_trade=Decimal(1), earn=Decimal(2))}
    value = value_portfolio(
        balances, index(("ETH/USD", "10", "10")), quote="USD", now=NOW, max_price_age=60
    ).assets["ETH"]
    assert (value.value_total, value.value_free, value.value_held, value.value_earn) == (
        Decimal(50),
        Decimal(20),
        Decimal(10),
        Decimal(20),
    )


def test_old_price_is_stale_and_shown_as_cache() -> None:
    """A price older than max_price_age is still used but marked stale, source cache."""
    prices = PriceIndex([pair_price("BTC/USD", last="100", source=Source.REST, received_at=0.0)])
    portfolio = value_portfolio(
        {"BTC": Balance("BTC", Decimal(1))}, prices, quote="USD", now=NOW, max_price_age=60
    )
    assert portfolio.stale == ("BTC",)
    assert not portfolio.fresh
    rate = portfolio.assets["BTC"].rate
    assert rate is not None
    assert rate.source is Source.CACHE
    assert rate.from_last_trade
    assert rate.age(NOW) == NOW


def test_cached_balance_makes_the_portfolio_not_fresh() -> None:
    """A balance no live source confirms is stale even with a fresh price."""
    balances = {"BTC": Balance("BTC", Decimal(1), source=Source.CACHE)}
    portfolio = value_portfolio(
        balances, index(("BTC/USD", "1", "1")), quote="USD", now=NOW, max_price_age=60
    )
    assert not portfolio.fresh


def test_zero_balances_are_left_out() -> None:
    """An asset with nothing held is not listed, priced or not."""
    portfolio = value_portfolio(
        {"XYZ": Balance("XYZ", Decimal(0))}, index(), quote="USD", now=NOW, max_price_age=60
    )
    assert portfolio.assets == {}
    assert portfolio.complete


amounts = st.decimals(
    min_value=Decimal("0.00000001"), max_value=Decimal("1e9"), places=8, allow_nan=False
)


@given(st.lists(amounts, min_size=1, max_size=8), st.lists(amounts, min_size=8, max_size=8))
def test_total_is_the_exact_sum_and_allocations_add_up(
    held: list[Decimal], mids: list[Decimal]
) -> None:
    """The total is exactly the sum of the values; allocations add to 100 within rounding."""
    names = [f"A{i}" for i in range(len(held))]
    balances = {name: Balance(name, amount) for name, amount in zip(names, held, strict=False)}
    prices = index(
        *((f"{name}/USD", str(mid), str(mid)) for name, mid in zip(names, mids, strict=False))
    )
    portfolio = value_portfolio(balances, prices, quote="USD", now=NOW, max_price_age=60)
    with localcontext(EXACT_CONTEXT):
        exact = sum((amount * mid for amount, mid in zip(held, mids, strict=False)), Decimal(0))
    assert portfolio.total == exact
    shares = sum(portfolio.allocation().values(), Decimal(0))
    assert abs(shares - 100) <= Decimal("0.0001") * len(held)


def test_pairs_needed_direct_first_then_every_hop() -> None:
    """A direct pair suffices; otherwise both legs of every one-hop path are asked for."""
    pairs = [
        PairInfo("BTC/USD", "BTC", "USD"),
        PairInfo("DOT/EUR", "DOT", "EUR"),
        PairInfo("DOT/BTC", "DOT", "BTC"),
        PairInfo("EUR/USD", "EUR", "USD"),
        PairInfo("ETH/BTC", "ETH", "BTC"),
    ]
    assert pairs_needed(["BTC", "USD"], "USD", pairs) == {"BTC/USD"}
    assert pairs_needed(["DOT"], "USD", pairs) == {"DOT/EUR", "EUR/USD", "DOT/BTC", "BTC/USD"}
    assert pairs_needed(["XYZ"], "USD", pairs) == set()


def test_to_dict_writes_amounts_as_exact_strings() -> None:
    """The JSON form keeps every digit as text and names the path."""
    portfolio = value_portfolio(
        {"BTC": Balance("BTC", Decimal("0.1"))},
        index(("BTC/USD", "60000.1", "60000.1")),
        quote="USD",
        now=NOW,
        max_price_age=60,
    )
    data = portfolio.to_dict()
    assert data["total"] == "6000.01"
    (asset,) = data["assets"]  # type: ignore[misc]  # a list of one dict
    assert asset["path"] == ["BTC", "USD"]
    assert asset["allocation"] == "100.0000"


def test_a_last_trade_price_makes_the_asset_stale_even_when_just_received() -> None:
    """No bid: the value rests on a last trade that may be days old: stale, not fresh."""
    prices = PriceIndex([pair_price("XYZ/USD", last="5", source=Source.WEBSOCKET, received_at=NOW)])
    portfolio = value_portfolio(
        {"XYZ": Balance("XYZ", Decimal(1000))}, prices, quote="USD", now=NOW, max_price_age=60
    )
    assert portfolio.stale == ("XYZ",)
    assert not portfolio.fresh


def test_a_bid_alone_values_at_the_bid_not_at_an_old_last_trade() -> None:
    """A last trade ten times the only bid is not what the holding sells for."""
    prices = PriceIndex(
        [pair_price("XYZ/USD", bid="0.5", last="5", source=Source.WEBSOCKET, received_at=NOW)]
    )
    portfolio = value_portfolio(
        {"XYZ": Balance("XYZ", Decimal(1000))}, prices, quote="USD", now=NOW, max_price_age=60
    )
    assert portfolio.total == Decimal("500.0")
    assert portfolio.fresh
