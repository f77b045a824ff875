"""The dashboard's portfolio API over real loopback sockets, against the simulator's prices:
exact values, unvalued assets never zero, staleness said, bad quotes named, no price source."""

from __future__ import annotations

from decimal import Context, Decimal, localcontext
from typing import Any

import aiohttp
import pytest

from balance_manager import BalanceManager
from balance_manager.core.freshness import ServingMode
from balance_manager.dashboard import Dashboard, server
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive, wait_until

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


def exact_sum(values: Any) -> Decimal:
    """The sum of decimal strings, every digit kept."""
    with localcontext(Context(prec=200)):
        return sum((Decimal(v) for v in values), Decimal(0))


def minus(a: Decimal, *others: Decimal) -> Decimal:
    """``a`` minus ``others``, every digit kept."""
    with localcontext(Context(prec=200)):
        return a - sum(others, Decimal(0))


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "application/json"
        return await response.json()


async def get_error(http: aiohttp.ClientSession, url: str, status: int) -> dict[str, Any]:
    async with http.get(url) as response:
        assert response.status == status, await response.text()
        body: dict[str, Any] = (await response.json())["error"]
    return body


async def test_the_portfolio_is_exact_and_adds_up(
    valued: Dashboard, http: aiohttp.ClientSession, sim: SimulatedKraken
) -> None:
    """Each value is the balance times its rate, exactly; the total is their sum; all live."""
    body = await get_json(http, f"{valued.url}api/portfolio?quote=usd")
    assert body["quote"] == "USD"
    assets = {row["asset"]: row for row in body["assets"]}
    assert set(assets) == {a for a, amount in sim.balances().items() if amount}
    btc = assets["BTC"]
    assert Decimal(btc["value"]) == sim.balances()["BTC"] * Decimal(btc["rate"])
    assert btc["path"] == ["BTC", "USD"]
    assert btc["path_text"] == "BTC→USD"
    assert btc["price_source"] in ("websocket", "rest")
    assert btc["state"] == "live"
    assert btc["display"]["value"] == f"{Decimal(btc['value']):.2f}"
    eur = assets["EUR"]
    assert eur["path"] == ["EUR", "BTC", "USD"]  # one hop: no EUR/USD pair
    assert Decimal(body["total"]) == exact_sum(row["value"] for row in assets.values())
    assert all(isinstance(row["value"], str) for row in assets.values())
    shares = exact_sum(row["allocation"] for row in assets.values())
    assert abs(shares - 100) < Decimal("0.001")
    assert body["complete"] is True
    assert body["fresh"] is True
    assert body["state"] == "live"
    assert body["unvalued"] == []


async def test_an_unvalued_asset_is_listed_as_such_never_as_zero(
    valued: Dashboard, http: aiohttp.ClientSession
) -> None:
    """In EUR no pair reaches DOT or USDT: they are listed unvalued, with null values, not 0."""
    body = await get_json(http, f"{valued.url}api/portfolio?quote=EUR")
    assert body["unvalued"] == ["DOT", "USDT"]
    assert body["complete"] is False
    assets = {row["asset"]: row for row in body["assets"]}
    for name in ("DOT", "USDT"):
        row = assets[name]
        assert row["value"] is None
        assert row["allocation"] is None
        assert row["display"]["value"] is None
        assert row["state"] == "unvalued"
        assert "no price" in row["reason"]
    valued_rows = [row for row in body["assets"] if row["value"] is not None]
    assert Decimal(body["total"]) == exact_sum(r["value"] for r in valued_rows)
    assert [row["asset"] for row in body["assets"]][-2:] == ["DOT", "USDT"]  # unvalued last


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("quote=", "api/portfolio"),
        ("quote=NOPE", "api/portfolio"),
        ("quote=" + "Z" * 100, "api/portfolio"),
        ("quote=NOPE", "api/portfolio/history"),
    ],
)
async def test_a_bad_quote_is_400_naming_the_field(
    valued: Dashboard, http: aiohttp.ClientSession, query: str, path: str
) -> None:
    """A quote currency that is no asset, or that no pair prices, is a JSON 400 naming "quote"."""
    error = await get_error(http, f"{valued.url}{path}?{query}", 400)
    assert error["field"] == "quote"
    assert error["message"]
    assert valued.manager.portfolio_trackers.keys() <= {"USD"}  # nothing started for it


async def test_the_quote_currencies_valued_are_bounded(
    valued: Dashboard, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only API cannot grow the manager without bound: beyond MAX_QUOTES, a new quote
    currency is refused (400 naming it); one valued already is still served."""
    monkeypatch.setattr(server, "MAX_QUOTES", 1)
    await get_json(http, f"{valued.url}api/portfolio?quote=USD")
    error = await get_error(http, f"{valued.url}api/portfolio?quote=EUR", 400)
    assert error["field"] == "quote"
    assert "at most 1 quote" in error["message"]
    assert "EUR" not in valued.manager.portfolio_trackers
    await get_json(http, f"{valued.url}api/portfolio/history?quote=USD")


@pytest.mark.parametrize("query", ["hours=soon", "hours=0", "hours=nan", "limit=0"])
async def test_a_bad_window_is_400(
    valued: Dashboard, http: aiohttp.ClientSession, query: str
) -> None:
    """The history's window and limit are checked like the balance history's."""
    error = await get_error(http, f"{valued.url}api/portfolio/history?{query}", 400)
    assert error["field"] == query.split("=")[0]


async def test_without_a_price_source_the_portfolio_is_409_and_the_status_says_so(
    dashboard: Dashboard, http: aiohttp.ClientSession
) -> None:
    """A manager that cannot value (no price source) answers 409 with why; never a total of 0."""
    for path in ("api/portfolio", "api/portfolio/history"):
        error = await get_error(http, f"{dashboard.url}{path}", 409)
        assert error["field"] == "prices"
        assert "no price source" in error["message"]
    status = await get_json(http, f"{dashboard.url}api/status")
    assert status["portfolio"]["available"] is False
    assert "no price source" in status["portfolio"]["reason"]


async def test_the_history_separates_a_deposit_from_a_market_move(
    valued: Dashboard,
    http: aiohttp.ClientSession,
    sim: SimulatedKraken,
    priced: BalanceManager,
    clock: ManualClock,
) -> None:
    """A deposit counts as a flow, a price move as the market; the points follow the value."""
    first = await get_json(http, f"{valued.url}api/portfolio")
    before = Decimal(first["total"])
    sim.deposit("BTC", "0.5")
    await wait_until(lambda: priced.sync_view().get_balance("BTC").balance == Decimal("1.7435"))  # type: ignore[union-attr]
    clock.advance(1)
    after_deposit = Decimal((await get_json(http, f"{valued.url}api/portfolio"))["total"])
    assert after_deposit == exact_sum([before, Decimal(30000)])
    sim.set_price("BTC/USD", "66000")
    tracker = priced.portfolio_trackers["USD"]
    await wait_until(lambda: tracker.latest is not None and tracker.latest.total > after_deposit)
    clock.advance(1)
    end = Decimal((await get_json(http, f"{valued.url}api/portfolio"))["total"])

    body = await get_json(http, f"{valued.url}api/portfolio/history?hours=1")
    assert body["quote"] == "USD"
    totals = [Decimal(p["total"]) for p in body["points"]]
    assert totals[0] == before
    assert totals[-1] == end
    assert after_deposit in totals
    assert all(p["fresh"] and p["complete"] for p in body["points"])
    change = body["change"]
    assert Decimal(change["change"]) == minus(end, before)
    assert Decimal(change["flows"]) == Decimal(30000)
    assert Decimal(change["market"]) == minus(end, before, Decimal(30000))
    assert Decimal(change["market"]) > 0
    assert change["flow_count"] == 1
    assert change["complete"] is True
    assert [(f["asset"], f["kind"], f["amount"]) for f in body["flows"]] == [
        ("BTC", "deposit", "0.5")
    ]
    status = await get_json(http, f"{valued.url}api/status")
    assert status["portfolio"]["available"] is True
    assert status["portfolio"]["valued_at"]["USD"] >= body["points"][-1]["t"]


async def test_stale_values_are_marked_stale_never_fresh(
    valued: Dashboard,
    http: aiohttp.ClientSession,
    sim: SimulatedKraken,
    priced: BalanceManager,
    clock: ManualClock,
) -> None:
    """Stream and REST down: every asset and the total say stale, with the reason."""
    assert (await get_json(http, f"{valued.url}api/portfolio"))["state"] == "live"
    sim.faults.http_error(times=None)
    sim.faults.drop_websocket(times=None)  # the private stream and the public price stream
    await drive(clock, 120, until=lambda: priced.serving_mode is ServingMode.CACHE)
    assert priced.serving_mode is ServingMode.CACHE, priced.get_status()
    body = await get_json(http, f"{valued.url}api/portfolio")
    assert body["fresh"] is False
    assert body["state"] == "stale"
    rows = [row for row in body["assets"] if row["value"] is not None]
    assert rows
    assert sorted(body["stale"]) == sorted(row["asset"] for row in rows)
    for row in rows:
        assert row["state"] == "stale"
        assert row["stale"] is True
        assert "not confirmed" in row["reason"] or "old" in row["reason"]
    history = await get_json(http, f"{valued.url}api/portfolio/history")
    assert history["points"][-1]["fresh"] is False
    sim.faults.clear()


async def test_the_portfolio_routes_need_the_token_and_never_show_a_secret(
    priced: BalanceManager, sim: SimulatedKraken
) -> None:
    """Behind a token the routes answer 401 without it; with it, no key, secret or token."""
    token = "a-long-dashboard-token-1234"
    async with Dashboard(priced, token=token, stall_after=0) as guarded:
        async with aiohttp.ClientSession() as anonymous:
            for path in ("api/portfolio", "api/portfolio/history"):
                assert (await get_error(anonymous, f"{guarded.url}{path}", 401))["field"] == "token"
        texts = []
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            for path in ("api/portfolio", "api/portfolio/history?hours=1", "api/status"):
                async with http.get(f"{guarded.url}{path}") as response:
                    assert response.status == 200
                    texts.append(await response.text())
                    texts.append(str(dict(response.headers)))
    text = "\n".join(texts)
    assert '"total"' in text
    for secret in (sim.api_key, sim.api_secret, token):
        assert secret not in text
