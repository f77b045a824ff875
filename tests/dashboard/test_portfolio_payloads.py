"""What the portfolio panel's API says, without sockets: exact strings, unvalued never zero,
stale said with the reason, the window's start value, thinning that keeps both ends."""

from __future__ import annotations

import json
from decimal import Decimal

from balance_manager.core.models import Balance, Source
from balance_manager.core.prices import PairPrice
from balance_manager.core.valuation import PriceIndex, value_portfolio
from balance_manager.core.value_history import Flow, ValueHistory, ValuePoint
from balance_manager.dashboard.payloads import dumps
from balance_manager.dashboard.portfolio import (
    in_window,
    portfolio_history_payload,
    portfolio_payload,
    thin,
)

NOW = 1_700_000_000.0


def balance(asset: str, amount: str, source: Source = Source.WEBSOCKET) -> Balance:
    return Balance(asset, Decimal(amount), Decimal(0), source, None, NOW)


def price(symbol: str, mid: str, at: float = NOW) -> PairPrice:
    base, quote = symbol.split("/")
    return PairPrice(
        symbol=symbol,
        base=base,
        quote=quote,
        bid=Decimal(mid),
        ask=Decimal(mid),
        last=None,
        source=Source.WEBSOCKET,
        received_at=at,
    )


def decimals(asset: str) -> int | None:
    return {"BTC": 5, "ETH": 5}.get(asset)


def test_values_are_exact_strings_with_a_display_and_unvalued_is_null() -> None:
    """BTC valued exactly, XYZ (no pair) unvalued: null values, state "unvalued", not in total."""
    balances = {"BTC": balance("BTC", "1.2435"), "XYZ": balance("XYZ", "5")}
    index = PriceIndex([price("BTC/USD", "60000.1")])
    portfolio = value_portfolio(balances, index, quote="USD", now=NOW, max_price_age=30.0)
    body = json.loads(dumps(portfolio_payload(portfolio, decimals=decimals, now=NOW + 1)))
    assert body["total"] == "74610.12435"
    assert body["display"]["total"] == "74610.12"
    assert body["as_of"] == NOW + 1
    assert body["state"] == "live"
    assert body["complete"] is False
    assert body["unvalued"] == ["XYZ"]
    btc, xyz = body["assets"]
    assert (btc["asset"], btc["value"], btc["state"], btc["reason"]) == (
        "BTC",
        "74610.12435",
        "live",
        "",
    )
    assert btc["display"] == {
        "total": "1.24350",
        "value": "74610.12",
        "allocation": "100.00",
        "rate": "60000.1",
    }
    assert btc["path_text"] == "BTC→USD"
    assert xyz["asset"] == "XYZ"
    assert xyz["value"] is None
    assert xyz["allocation"] is None
    assert xyz["display"]["value"] is None
    assert xyz["state"] == "unvalued"
    assert "no price" in xyz["reason"]


def test_an_old_price_or_a_cached_balance_is_stale_with_the_reason() -> None:
    """A price older than max_price_age, or a balance from cache: the asset and total are stale."""
    balances = {"BTC": balance("BTC", "1"), "ETH": balance("ETH", "2", Source.CACHE)}
    index = PriceIndex([price("BTC/USD", "60000", at=NOW - 100), price("ETH/USD", "3000")])
    portfolio = value_portfolio(balances, index, quote="USD", now=NOW, max_price_age=30.0)
    body = portfolio_payload(portfolio, decimals=decimals, now=NOW)
    assert body["state"] == "stale"
    assert body["fresh"] is False
    rows = {row["asset"]: row for row in body["assets"]}
    assert rows["BTC"]["state"] == "stale"
    assert "price 100 s old (stale after 30 s)" in rows["BTC"]["reason"]
    assert rows["ETH"]["state"] == "stale"
    assert "balance not confirmed" in rows["ETH"]["reason"]


def test_thinning_keeps_both_ends_and_the_limit() -> None:
    """At most ``limit`` points, evenly spread, the first and the last always kept."""
    points = [ValuePoint(float(n), Decimal(n)) for n in range(1000)]
    kept = thin(points, 10)
    assert len(kept) == 10
    assert kept[0].at == 0.0
    assert kept[-1].at == 999.0
    assert [p.at for p in kept] == sorted(p.at for p in kept)
    assert thin(points[:5], 10) == points[:5]


def test_a_limit_of_one_gives_one_point_the_newest() -> None:
    """``limit=1`` is one point (the current value), not the two ends of the window."""
    points = [ValuePoint(float(n), Decimal(n)) for n in range(5)]
    assert thin(points, 1) == [points[-1]]
    body = portfolio_history_payload(points, [], None, quote="USD", hours=1.0, now=10.0, limit=1)
    assert [p["t"] for p in body["points"]] == [4.0]
    assert body["thinned"] is True


def test_the_window_starts_with_the_value_then() -> None:
    """The last point at or before the window's start leads it: the value at its start."""
    points = [ValuePoint(t, Decimal(t)) for t in (10.0, 20.0, 30.0)]
    assert [p.at for p in in_window(points, 25.0)] == [20.0, 30.0]
    assert [p.at for p in in_window(points, 5.0)] == [10.0, 20.0, 30.0]
    assert [p.at for p in in_window(points, 40.0)] == [30.0]


def test_history_splits_flows_from_the_market() -> None:
    """A deposit is a flow, the rest the market; amounts exact; an unpriced flow stays null."""
    history = ValueHistory("USD")
    history.record(ValuePoint(NOW, Decimal("1000")))
    history.add_flow(Flow(NOW + 1, "BTC", Decimal("0.01"), "deposit", Decimal("600")))
    history.add_flow(Flow(NOW + 2, "XYZ", Decimal("5"), "deposit", None))
    history.record(ValuePoint(NOW + 3, Decimal("1650.5")))
    change = history.change_over(3600, now=NOW + 3)
    body = json.loads(
        dumps(
            portfolio_history_payload(
                history.points(),
                history.flows(),
                change,
                quote="USD",
                hours=1.0,
                now=NOW + 3,
                limit=100,
            )
        )
    )
    assert [p["total"] for p in body["points"]] == ["1000", "1650.5"]
    assert body["thinned"] is False
    assert body["change"]["change"] == "650.5"
    assert body["change"]["flows"] == "600"
    assert body["change"]["market"] == "50.5"
    assert body["change"]["complete"] is False  # a deposit could not be valued
    assert body["display"]["market"] == "50.50"
    assert [f["value"] for f in body["flows"]] == ["600", None]
    empty = portfolio_history_payload([], [], None, quote="USD", hours=1.0, now=NOW, limit=10)
    assert empty["change"] is None
    assert empty["points"] == []
