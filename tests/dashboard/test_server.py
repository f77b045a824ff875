"""The dashboard's server over real loopback sockets: the API, the event stream and its
resumption, safety, against a simulator and a manager on a manual clock."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from tests.dashboard.helpers import EventReader

from balance_manager import BalanceManager
from balance_manager.core.alerts.rules import LowBalance
from balance_manager.core.freshness import ServingMode
from balance_manager.dashboard import Dashboard, serve_dashboard
from balance_manager.dashboard.security import COOKIE_NAME
from balance_manager.exceptions import ConfigError
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive, wait_until

pytestmark = [pytest.mark.network, pytest.mark.asyncio]

WILDCARD = "0.0.0.0"  # noqa: S104 - the address whose binding must be refused
TOKEN = "a-long-dashboard-token-1234"


async def get_json(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> Any:
    async with http.get(url, **kwargs) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "application/json"
        return await response.json()


async def settle(manager: BalanceManager, predicate: Any) -> None:
    """Wait (bounded) for the manager to see a change, then for its callbacks to run."""
    await wait_until(predicate)
    await manager.drain_callbacks()


def number(event_id: str | None) -> int:
    assert event_id is not None
    return int(event_id.split(".")[1])


def sim_balance(manager: BalanceManager, asset: str) -> Decimal | None:
    held = manager.sync_view().get_balance(asset)
    return None if held is None else held.balance


# -- the JSON API -------------------------------------------------------------------------------


async def test_balances_are_exact_strings_matching_the_exchange(
    dashboard: Dashboard, http: aiohttp.ClientSession, sim: SimulatedKraken
) -> None:
    """/api/balances lists every asset with exact amounts equal to the exchange's, live."""
    body = await get_json(http, f"{dashboard.url}api/balances")
    rows = {row["asset"]: row for row in body["balances"]}
    assert {a: Decimal(r["balance"]) for a, r in rows.items()} == sim.balances()
    free = sim.free()
    for asset, row in rows.items():
        assert Decimal(row["free"]) == free[asset]
        assert isinstance(row["balance"], str)
        assert row["source"] == "websocket"
        assert row["state"] == "live"
        assert row["age"] is not None
    assert rows["USDT"]["balance"] == "6000" or Decimal(rows["USDT"]["balance"]) == 6000
    assert body["simulated"] is True
    assert body["source"] == "websocket"
    assert body["event_id"] == dashboard.journal.last_id


async def test_status_shows_sources_breaker_counters_and_single_process(
    dashboard: Dashboard, http: aiohttp.ClientSession
) -> None:
    """/api/status: stream, REST and breaker, counters, and shared mode as a single process."""
    status = await get_json(http, f"{dashboard.url}api/status")
    assert status["source"] == "websocket"
    assert status["websocket"]["state"] == "streaming"
    assert status["websocket"]["holds_live"] is True
    assert status["rest"]["circuit_state"] == "closed"
    assert status["shared"] == {
        "mode": "single process",
        "leader": None,
        "epoch": None,
        "reservations": None,
    }
    assert set(status["counters"]) >= {"updates", "rest_api_calls", "reconnects", "fallbacks"}
    assert "account" not in status
    assert status["dashboard"]["run"] == dashboard.journal.run
    assert status["freshness"]["BTC"]["state"] == "live"


async def test_history_has_the_balance_and_the_free_line(
    dashboard: Dashboard,
    http: aiohttp.ClientSession,
    sim: SimulatedKraken,
    manager: BalanceManager,
) -> None:
    """After a deposit /api/history/XBT has BTC's entries and free points, newest = the exchange."""
    sim.deposit("BTC", "0.5")
    await settle(manager, lambda: sim_balance(manager, "BTC") == Decimal("1.7435"))
    body = await get_json(http, f"{dashboard.url}api/history/XBT?hours=1")
    assert body["asset"] == "BTC"
    assert [Decimal(p["balance"]) for p in body["balance"]][-2:] == [
        Decimal("1.2435"),
        Decimal("1.7435"),
    ]
    assert Decimal(body["balance"][-1]["change"]) == Decimal("0.5")
    assert Decimal(body["free"][-1]["free"]) == sim.free()["BTC"]
    assert Decimal(body["current"]["balance"]) == Decimal("1.7435")
    assert body["free_recorded_since"] is not None


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("api/history/" + "A" * 100, "asset"),
        ("api/history/BTC?hours=soon", "hours"),
        ("api/history/BTC?hours=0", "hours"),
        ("api/history/BTC?hours=nan", "hours"),
        ("api/history/BTC?limit=0", "limit"),
        ("api/events?limit=-3", "limit"),
    ],
)
async def test_bad_queries_are_400_naming_the_field(
    dashboard: Dashboard, http: aiohttp.ClientSession, path: str, field: str
) -> None:
    """A bad asset, window or limit is a JSON 400 that names the field and the value."""
    async with http.get(f"{dashboard.url}{path}") as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["field"] == field
    assert error["value"] is not None
    assert error["message"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_the_api_is_read_only(
    dashboard: Dashboard, http: aiohttp.ClientSession, method: str
) -> None:
    """Writing to the API is refused (405, JSON naming the method); nothing changes."""
    async with http.request(method, f"{dashboard.url}api/balances") as response:
        assert response.status == 405
        error = (await response.json())["error"]
    assert error == {
        "status": 405,
        "field": "method",
        "value": method,
        "message": "Method Not Allowed",
    }
    assert "GET" in response.headers["Allow"]


async def test_unknown_api_paths_are_json_404s(
    dashboard: Dashboard, http: aiohttp.ClientSession
) -> None:
    """A path that does not exist is a 404 in JSON, naming the path."""
    async with http.get(f"{dashboard.url}api/withdraw") as response:
        assert response.status == 404
        assert (await response.json())["error"]["value"] == "/api/withdraw"


async def test_every_response_carries_the_security_headers(
    dashboard: Dashboard, http: aiohttp.ClientSession
) -> None:
    """The page, the API, static files and errors: CSP (no inline script), nosniff, no framing."""
    for path in (
        "",
        "api/status",
        "static/app.js",
        "static/vendor/uplot/uPlot.iife.min.js",
        "nope",
    ):
        async with http.get(f"{dashboard.url}{path}") as response:
            csp = response.headers.get("Content-Security-Policy", "")
            assert "script-src 'self'" in csp, path
            assert "unsafe-inline" not in csp
            assert response.headers.get("X-Content-Type-Options") == "nosniff", path
            assert "frame-ancestors 'none'" in csp
    async with http.get(f"{dashboard.url}static/app.js") as response:
        assert response.content_type in ("text/javascript", "application/javascript")


async def test_a_foreign_host_header_is_refused_on_loopback(
    dashboard: Dashboard, http: aiohttp.ClientSession
) -> None:
    """A request naming another host (DNS rebinding) gets 421, not the balances."""
    async with http.get(
        f"{dashboard.url}api/balances", headers={"Host": "attacker.example"}
    ) as response:
        assert response.status == 421
        body = await response.text()
    assert "balance" not in body.lower() or "Host" in body


# -- the event stream ------------------------------------------------------------------------


async def test_a_deposit_is_pushed_as_a_numbered_balance_event(
    dashboard: Dashboard, sim: SimulatedKraken, open_stream: Any
) -> None:
    """A deposit reaches the stream as a balance event with the next id and the new row."""
    start = dashboard.journal.last_number
    reader: EventReader = await open_stream(dashboard.journal.last_id)
    sim.deposit("ETH", "1.5")
    frame = await reader.next()
    assert frame.event == "balance"
    assert frame.id == f"{dashboard.journal.run}.{start + 1}"
    assert frame.data["row"]["asset"] == "ETH"
    assert Decimal(frame.data["row"]["balance"]) == sim.balances()["ETH"]
    assert frame.data["delta"] == "1.5"
    assert frame.data["text"] == "ETH balance 12.50000 → 14.00000 (+1.50000) via websocket"


async def test_the_stream_resumes_after_a_reconnect_without_losing_events(
    dashboard: Dashboard, sim: SimulatedKraken, manager: BalanceManager, open_stream: Any
) -> None:
    """Events published while a page was away are replayed once, in order, on reconnect."""
    reader: EventReader = await open_stream(dashboard.journal.last_id)
    sim.deposit("BTC", "0.1")
    seen = await reader.next()
    reader.response.close()  # the page goes away
    sim.deposit("ETH", "1")
    sim.deposit("DOT", "2")
    sim.withdraw("USD", "10")
    await settle(manager, lambda: dashboard.journal.last_number >= number(seen.id) + 3)
    missed = [e for e in dashboard.journal.after(seen.id).events]
    assert [e.data["asset"] for e in missed] == ["ETH", "DOT", "USD"]

    again: EventReader = await open_stream(seen.id)  # as EventSource sends Last-Event-ID
    frames = [await again.next() for _ in missed]
    assert [f.id for f in frames] == [e.id for e in missed]
    assert [f.data["row"]["asset"] for f in frames] == ["ETH", "DOT", "USD"]
    assert Decimal(frames[-1].data["row"]["balance"]) == sim.balances()["USD"]
    # Nothing is sent twice: the next event is a new one.
    sim.deposit("EUR", "5")
    nxt = await again.next()
    assert nxt.data["asset"] == "EUR"
    assert number(nxt.id) == number(frames[-1].id) + 1


async def test_the_query_parameter_resumes_too(
    dashboard: Dashboard, sim: SimulatedKraken, manager: BalanceManager, open_stream: Any
) -> None:
    """A first connection says where its snapshot stands with ?last_event_id=."""
    before = dashboard.journal.last_id
    sim.deposit("BTC", "0.2")
    await settle(manager, lambda: dashboard.journal.last_id != before)
    reader: EventReader = await open_stream(before, header=False)
    frame = await reader.next()
    assert frame.event == "balance"
    assert frame.data["asset"] == "BTC"


@pytest.mark.parametrize("last", ["elsewhere.3", None])
async def test_an_id_from_another_run_or_none_gets_a_reset(
    dashboard: Dashboard, sim: SimulatedKraken, open_stream: Any, last: str | None
) -> None:
    """A page from before a restart (or with no state) is told to reload, then gets new events."""
    reader: EventReader = await open_stream(last)
    frame = await reader.next()
    assert frame.event == "reset"
    assert frame.id == dashboard.journal.last_id
    sim.deposit("BTC", "0.3")
    assert (await reader.next()).event == "balance"


async def test_a_page_away_longer_than_the_buffer_gets_a_reset(
    manager: BalanceManager, sim: SimulatedKraken, http: aiohttp.ClientSession
) -> None:
    """With 2 events kept, a page that missed 4 is told to reload, saying how many it missed."""
    async with Dashboard(manager, replay_capacity=2, stall_after=0) as small:
        first = small.journal.last_id
        for n in range(4):
            sim.deposit("DOT", str(n + 1))
        await settle(manager, lambda: small.journal.last_number >= 4)
        async with http.get(f"{small.url}api/stream", headers={"Last-Event-ID": first}) as response:
            reader = EventReader(response)
            frame = await reader.next()
    assert frame.event == "reset"
    assert "missed" in frame.data["reason"]


async def test_status_is_pushed_every_tick_of_the_managers_clock(
    dashboard: Dashboard, open_stream: Any, clock: ManualClock
) -> None:
    """A status frame comes at once, then one per tick_interval of the (manual) clock."""
    reader: EventReader = await open_stream(dashboard.journal.last_id)
    first = await reader.next(skip_status=False)
    assert first.event == "status"
    clock.advance(dashboard.tick_interval)
    second = await reader.next(skip_status=False)
    assert second.event == "status"
    assert second.data["as_of"] > first.data["as_of"]


async def test_a_fault_is_pushed_and_marks_values_unconfirmed_until_recovery(
    dashboard: Dashboard,
    sim: SimulatedKraken,
    manager: BalanceManager,
    http: aiohttp.ClientSession,
    open_stream: Any,
    clock: ManualClock,
) -> None:
    """Stream and REST down: a `cache` source event, rows unconfirmed; then back to live."""
    reader: EventReader = await open_stream(dashboard.journal.last_id)
    sim.faults.http_error(times=None)
    sim.faults.drop_websocket()
    await drive(clock, 60, until=lambda: manager.serving_mode is ServingMode.CACHE)
    await manager.drain_callbacks()
    events: list[Any] = []
    while not any(f.event == "source" and f.data["source"] == "cache" for f in events):
        events.append(await reader.next())
    body = await get_json(http, f"{dashboard.url}api/balances")
    assert {row["state"] for row in body["balances"]} == {"unconfirmed"}
    assert {row["source"] for row in body["balances"]} == {"cache"}

    sim.faults.clear()
    await drive(clock, 120, until=lambda: manager.serving_mode is ServingMode.WEBSOCKET)
    await manager.drain_callbacks()
    while not any(f.event == "source" and f.data["source"] == "websocket" for f in events):
        events.append(await reader.next())
    body = await get_json(http, f"{dashboard.url}api/balances")
    assert {row["state"] for row in body["balances"]} == {"live"}


# -- lifecycle -------------------------------------------------------------------------------------


async def test_stop_ends_open_streams_and_unregisters(
    manager: BalanceManager, http: aiohttp.ClientSession
) -> None:
    """stop() closes every stream and removes the dashboard's callbacks from the manager."""
    served = await serve_dashboard(manager, stall_after=0)
    registered = manager.get_statistics()["callbacks"]["registered"]
    assert registered["balance_update"] == 1
    async with http.get(f"{served.url}api/stream?last_event_id={served.journal.last_id}") as r:
        reader = EventReader(r)
        await reader.next(skip_status=False)
        await served.stop()
        with pytest.raises((ConnectionError, aiohttp.ClientPayloadError)):
            await reader.next(within=5)
    assert served.clients == 0
    assert manager.get_statistics()["callbacks"]["registered"]["balance_update"] == 0
    await served.stop()  # idempotent


async def test_drop_clients_closes_streams(dashboard: Dashboard, open_stream: Any) -> None:
    """drop_clients() closes the open streams (pages then reconnect and resume)."""
    reader: EventReader = await open_stream(dashboard.journal.last_id)
    await reader.next(skip_status=False)
    assert dashboard.clients == 1
    assert dashboard.drop_clients() == 1
    with pytest.raises((ConnectionError, aiohttp.ClientPayloadError)):
        await reader.next(within=5)
    await wait_until(lambda: dashboard.clients == 0)


async def test_streams_beyond_the_limit_are_refused(
    manager: BalanceManager, http: aiohttp.ClientSession
) -> None:
    """With max_clients=1 a second stream gets a JSON 503 naming the limit."""
    async with Dashboard(manager, max_clients=1, stall_after=0) as small:
        url = f"{small.url}api/stream?last_event_id={small.journal.last_id}"
        async with http.get(url) as first:
            await EventReader(first).next(skip_status=False)
            async with http.get(url) as second:
                assert second.status == 503
                assert "at most 1" in (await second.json())["error"]["message"]


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"host": WILDCARD}, "host"),
        ({"port": 70000}, "port"),
        ({"tick_interval": 0}, "tick_interval"),
        ({"stall_after": float("nan")}, "stall_after"),
        ({"max_clients": 0}, "max_clients"),
        ({"token": "short"}, "token"),
    ],
)
async def test_bad_options_are_refused_by_name(
    manager: BalanceManager, kwargs: dict[str, Any], option: str
) -> None:
    """Beyond loopback without a token, a bad port, tick or limit: a ConfigError naming it."""
    with pytest.raises(ConfigError) as info:
        Dashboard(manager, **kwargs)
    assert info.value.option == option


# -- the token -------------------------------------------------------------------------------------


async def test_with_a_token_nothing_is_served_without_it(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """API 401 without the token, 200 with it; the page redirects to the login form, which sets
    a cookie (not the token) that opens the page; a wrong token is refused."""
    async with Dashboard(manager, token=TOKEN, stall_after=0) as guarded:
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(f"{guarded.url}api/balances") as response:
                assert response.status == 401
                assert (await response.json())["error"]["field"] == "token"
            async with anonymous.get(f"{guarded.url}api/stream") as response:
                assert response.status == 401
            async with anonymous.get(guarded.url, allow_redirects=False) as response:
                assert response.status == 303
                assert response.headers["Location"] == "/login"
            async with anonymous.get(f"{guarded.url}login") as response:
                assert response.status == 200
                assert 'name="token"' in await response.text()
            async with anonymous.post(
                f"{guarded.url}login",
                data={"token": "wrong-token-wrong-token"},
                allow_redirects=False,
            ) as response:
                assert response.headers["Location"] == "/login?failed=1"
                assert COOKIE_NAME not in response.cookies
        async with aiohttp.ClientSession() as bearer:
            body = await get_json(
                bearer, f"{guarded.url}api/balances", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert body["balances"]
        # An IP address host: aiohttp's jar keeps its cookies only when told to (browsers do).
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.post(
                f"{guarded.url}login", data={"token": TOKEN}, allow_redirects=False
            ) as response:
                assert response.status == 303
                cookie = response.cookies[COOKIE_NAME]
                assert TOKEN not in cookie.value
                assert cookie["httponly"]
                assert cookie["samesite"] == "Strict"
            async with browser.get(guarded.url) as response:
                assert response.status == 200
                assert "<table" in await response.text()
            assert (await get_json(browser, f"{guarded.url}api/status"))["dashboard"][
                "token_required"
            ] is True


async def test_no_key_secret_or_token_reaches_any_response(
    manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """Every page, API answer and streamed event is free of the API key, secret and token."""
    async with Dashboard(manager, token=TOKEN, stall_after=0) as guarded:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        texts: list[str] = []
        async with aiohttp.ClientSession(headers=headers) as http:
            for path in (
                "",
                "login",
                "api/balances",
                "api/status",
                "api/history/BTC",
                "api/events",
                "static/app.js",
                "static/index.html",
                "api/nope",
            ):
                async with http.get(f"{guarded.url}{path}") as response:
                    texts.append(await response.text())
                    texts.append(str(dict(response.headers)))
            async with http.get(f"{guarded.url}api/stream?last_event_id=x.0") as response:
                reader = EventReader(response)
                sim.deposit("BTC", "1")
                while True:
                    frame = await reader.next(skip_status=False)
                    if frame.event == "balance":
                        break
                texts.extend(str(f) for f in reader.frames)
    text = "\n".join(texts)
    assert len(text) > 10_000  # the scan read real pages
    for secret in (sim.api_key, sim.api_secret, TOKEN):
        assert secret not in text


async def test_the_url_never_holds_the_token(manager: BalanceManager) -> None:
    """The URL printed for people is the page's address alone."""
    dashboard = Dashboard(manager, token=TOKEN)
    assert TOKEN not in dashboard.url
    assert TOKEN not in repr(dashboard)


async def test_concurrent_pages_each_get_every_event(
    dashboard: Dashboard, sim: SimulatedKraken, open_stream: Any
) -> None:
    """Three pages open at once each receive the same events, in the same order."""
    readers = [await open_stream(dashboard.journal.last_id) for _ in range(3)]
    sim.deposit("BTC", "0.01")
    sim.deposit("ETH", "0.02")

    async def two(reader: EventReader) -> list[Any]:
        return [await reader.next(), await reader.next()]

    got = await asyncio.gather(*(two(r) for r in readers))
    ids = [[f.id for f in frames] for frames in got]
    assert ids[0] == ids[1] == ids[2]
    assert [f.data["asset"] for f in got[0]] == ["BTC", "ETH"]


async def test_alerts_are_in_the_status_and_pushed_as_events(
    dashboard: Dashboard,
    manager: BalanceManager,
    sim: SimulatedKraken,
    open_stream: Any,
    http: aiohttp.ClientSession,
) -> None:
    """An alert that fires is pushed as a numbered ``alert`` event and listed in the status
    until it resolves, which is pushed too; amounts stay exact strings."""
    monitor = manager.alerts
    assert monitor is not None
    monitor.engine.remove_rule("low_balance")  # the built-in one watches nothing here
    monitor.engine.add_rule(LowBalance({"ETH": "20"}))
    reader: EventReader = await open_stream(dashboard.journal.last_id)
    sim.withdraw("ETH", "1")
    assert (await reader.next()).event == "balance"
    monitor.evaluate_now()
    fired = await reader.next()
    assert fired.event == "alert"
    assert fired.data["text"] == "alert: warning low_balance ETH: ETH free 11.5 is below 20"
    assert Decimal(fired.data["alert"]["details"]["free"]) == Decimal("11.5")
    status = await get_json(http, f"{dashboard.url}api/status")
    (listed,) = status["alerts"]
    assert (listed["rule"], listed["asset"], listed["active"]) == ("low_balance", "ETH", True)
    assert listed["details"]["threshold"] == "20"

    sim.deposit("ETH", "10")
    assert (await reader.next()).event == "balance"
    monitor.evaluate_now()
    resolved = await reader.next()
    assert resolved.event == "alert"
    assert resolved.data["text"] == "alert resolved: low_balance ETH"
    assert resolved.data["alert"]["resolved_at"] is not None
    assert number(resolved.id) == number(fired.id) + 2
    assert (await get_json(http, f"{dashboard.url}api/status"))["alerts"] == []
