"""KrakenRestClient against the simulator over real loopback sockets."""

from __future__ import annotations

import logging
import random
import socket
from decimal import Decimal

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.breaker import BreakerState
from balance_manager.exceptions import (
    AuthenticationError,
    CircuitOpenError,
    ConfigError,
    ExchangeUnavailableError,
    FloatAmountError,
    InvalidNonceError,
    LockoutError,
    RequestTimeoutError,
    TransportError,
)
from balance_manager.kraken.protocol.signing import NonceSource
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive_until_done

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


async def test_fetch_balances_equals_the_exchange(
    rest: KrakenRestClient, sim: SimulatedKraken
) -> None:
    """One BalanceEx call gives every balance and hold, folded to canonical names."""
    sim.place_order("BTC/USD", "buy", "limit", "0.1", price="20000")
    snapshot = await rest.fetch_balances()
    truth = sim.balances()
    holds = sim.holds()
    assert {a: s.balance for a, s in snapshot.balances.items()} == truth
    assert {a: s.hold_trade for a, s in snapshot.balances.items() if s.hold_trade} == {
        a: h for a, h in holds.items() if h
    }
    assert snapshot.balances["USD"].hold_trade == holds["USD"] > 0
    assert rest.get_statistics()["rest_api_calls"] == 1


async def test_orders_are_placed_and_canceled_with_typed_keywords(
    rest: KrakenRestClient, sim: SimulatedKraken
) -> None:
    """add_order(pair=..., side=..., order_type=..., volume=..., price=...) places the order."""
    added = await rest.add_order(
        pair="XBTUSD", side="buy", order_type="limit", volume=Decimal("0.1"), price="20000"
    )
    (order_id,) = added.txid
    assert added.descr.order == "buy 0.10000000 XBTUSD @ limit 20000"
    assert sim.holds()["USD"] > 0
    assert list(await rest.open_orders()) == [order_id]
    assert (await rest.cancel_order(order_id)).count == 1
    assert sim.holds() == {}
    checked = await rest.add_order(
        pair="BTC/USD", side="sell", order_type="market", volume=1, validate=True
    )
    assert checked.txid == []
    assert not sim.account().open_orders()


async def test_add_order_refuses_a_float_and_a_bad_side_before_any_call(
    rest: KrakenRestClient, sim: SimulatedKraken
) -> None:
    """A float volume or price is refused by name, as is a side that is neither buy nor sell."""
    with pytest.raises(FloatAmountError, match="volume"):
        await rest.add_order(pair="XBTUSD", side="buy", order_type="market", volume=0.1)  # type: ignore[arg-type]
    with pytest.raises(FloatAmountError, match="price"):
        await rest.add_order(
            pair="XBTUSD",
            side="buy",
            order_type="limit",
            volume="1",
            price=1.5,  # type: ignore[arg-type]
        )
    with pytest.raises(ConfigError, match="side"):
        await rest.add_order(pair="XBTUSD", side="long", order_type="market", volume="1")  # type: ignore[arg-type]
    assert sim.rest_calls["AddOrder"] == 0


async def test_add_order_sends_the_client_order_id(
    rest: KrakenRestClient, sim: SimulatedKraken
) -> None:
    """cl_ord_id reaches the exchange with the order (shared reservations settle on it)."""
    placed = await rest.add_order(
        pair="XBTUSD", side="buy", order_type="limit", volume="0.01", price="1000", cl_ord_id="r-1"
    )
    (txid,) = placed.txid
    assert sim.account().order(txid).cl_ord_id == "r-1"


async def test_public_calls(rest: KrakenRestClient) -> None:
    """Time, SystemStatus and Assets decode; Assets teaches decimals."""
    assert (await rest.system_status()).status == "online"
    assert (await rest.server_time()).unixtime > 0
    await rest.load_assets()
    assert rest.names.decimals("BTC") == 10
    assert rest.names.canonical("XXBT") == "BTC"


async def test_wrong_secret_is_an_authentication_error_without_the_secret(
    sim: SimulatedKraken,
    clock: ManualClock,
    config: BalanceManagerConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A wrong secret gives EAPI:Invalid signature at once (no retry), and never prints."""
    wrong = (
        "c2VjcmV0LXRoYXQtaXMtd3Jvbmctc2VjcmV0LXRoYXQtaXMtd3JvbmdzZWNyZXQtdGhhdC1pcy13cm9uZy1zZQ=="
    )
    caplog.set_level(logging.DEBUG)
    async with KrakenRestClient(
        api_key=sim.api_key, api_secret=wrong, base_url=sim.rest_url, config=config, clock=clock
    ) as client:
        with pytest.raises(AuthenticationError, match="Invalid signature") as info:
            await client.balance_ex()
        assert client.get_statistics()["rest_api_calls"] == 1
        assert wrong not in str(info.value)
        assert wrong not in repr(client)
    assert wrong not in caplog.text
    assert sim.api_secret not in caplog.text


async def test_stale_nonce_is_raised_at_once_naming_the_cause(
    sim: SimulatedKraken,
    rest: KrakenRestClient,
    clock: ManualClock,
    config: BalanceManagerConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client whose nonces fall behind the key's floor (another user of the key) is told so.

    Never retried (it would race the other user again and risk a lockout);
    a second one within a minute is logged as an error naming the cause.
    """
    await rest.balance()  # the key's floor is now a current nanosecond time
    behind = NonceSource(time_ns=lambda: 1_000)
    async with KrakenRestClient(
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        base_url=sim.rest_url,
        config=config,
        clock=clock,
        nonces=behind,
    ) as client:
        with pytest.raises(InvalidNonceError, match="another process"):
            await drive_until_done(clock, client.balance())
        assert client.get_statistics()["private_calls"] == 1
        assert "another process" not in caplog.text
        with pytest.raises(InvalidNonceError):
            await drive_until_done(clock, client.balance())
        assert client.get_statistics()["private_calls"] == 2
        assert "another process or program is probably using this API key" in caplog.text


async def test_invalid_nonce_never_becomes_more_private_calls(
    sim: SimulatedKraken, rest: KrakenRestClient, clock: ManualClock
) -> None:
    """fetch_balances() on an invalid nonce raises: no retry, no fallback to Balance."""
    sim.faults.invalid_nonce(times=2)
    with pytest.raises(InvalidNonceError):
        await drive_until_done(clock, rest.fetch_balances())
    assert sim.rest_calls["BalanceEx"] == 1
    assert sim.rest_calls["Balance"] == 0


async def test_rate_limit_answer_is_waited_out_and_retried(
    sim: SimulatedKraken, rest: KrakenRestClient, clock: ManualClock
) -> None:
    """EAPI:Rate limit exceeded once: the client waits as the counter says and succeeds."""
    sim.faults.rate_limit(times=1)
    start = clock.monotonic()
    entries = await drive_until_done(clock, rest.balance_ex())
    assert entries
    stats = rest.get_statistics()
    assert stats["rate_limited"] == 1
    assert stats["retries"] == 1
    assert clock.monotonic() - start > 0  # it waited on the clock before retrying


async def test_http_5xx_is_retried(
    sim: SimulatedKraken, rest: KrakenRestClient, clock: ManualClock
) -> None:
    """A Cloudflare 520 is a transport error, retried with backoff until it passes."""
    sim.faults.http_error(520, times=1)
    assert await drive_until_done(clock, rest.balance_ex())
    assert rest.get_statistics()["transport_errors"] == 1


async def test_html_page_everywhere_is_a_transport_error(
    sim: SimulatedKraken, rest: KrakenRestClient, clock: ManualClock
) -> None:
    """An HTML page instead of JSON, every time, ends as TransportError naming the status."""
    sim.faults.html_page(200, times=None)
    with pytest.raises(TransportError, match="HTTP 200"):
        await drive_until_done(clock, rest.balance_ex())
    assert rest.get_statistics()["rest_api_calls"] == 3  # 1 + rest_max_retries


async def test_lockout_is_not_retried(sim: SimulatedKraken, rest: KrakenRestClient) -> None:
    """EGeneral:Temporary lockout surfaces at once."""
    sim.faults.lockout(times=None)
    with pytest.raises(LockoutError):
        await rest.balance_ex()
    assert rest.get_statistics()["rest_api_calls"] == 1


async def test_slow_response_times_out_on_the_clock(
    sim: SimulatedKraken, rest: KrakenRestClient, clock: ManualClock
) -> None:
    """A response slower than rest_api_timeout becomes RequestTimeoutError (no real waiting)."""
    sim.faults.slow_response(60.0, times=None)
    with pytest.raises(RequestTimeoutError):
        await drive_until_done(clock, rest.balance_ex(), seconds=300)
    assert rest.get_statistics()["timeouts"] == 3


async def test_breaker_opens_and_refuses_without_calling(
    sim: SimulatedKraken, rest: KrakenRestClient, clock: ManualClock
) -> None:
    """After repeated failures the circuit opens and calls fail fast, then it recovers."""
    sim.faults.service_unavailable(times=None)
    with pytest.raises(ExchangeUnavailableError):
        await drive_until_done(clock, rest.balance_ex())
    assert rest.breaker.state is BreakerState.OPEN
    calls = sim.rest_calls["BalanceEx"]
    with pytest.raises(CircuitOpenError):
        await rest.balance_ex()
    assert sim.rest_calls["BalanceEx"] == calls
    sim.faults.clear()
    clock.advance(11.0)
    assert await rest.balance_ex()
    assert rest.breaker.state is BreakerState.CLOSED


async def test_paced_burst_never_trips_the_exchange_limit(
    sim: SimulatedKraken, rest: KrakenRestClient, clock: ManualClock
) -> None:
    """Thirty calls in a burst are spread by the call counter; the exchange never refuses one."""
    for _ in range(30):
        await drive_until_done(clock, rest.balance())
    stats = rest.get_statistics()
    assert stats["rate_limited"] == 0
    assert stats["rate_limit_waits"] > 0
    assert sim.rest_calls["Balance"] == 30


async def test_websocket_token_is_masked(rest: KrakenRestClient) -> None:
    """The WebSocket token is a Secret: its repr never shows it."""
    token = await rest.get_websockets_token()
    assert token.token.reveal() not in repr(token)
    assert token.expires == 900


async def test_json_bodies_are_accepted(
    sim: SimulatedKraken, clock: ManualClock, config: BalanceManagerConfig
) -> None:
    """The simulator checks signatures over JSON bodies too."""
    async with KrakenRestClient(
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        base_url=sim.rest_url,
        config=config,
        clock=clock,
        encoding="json",
        rng=random.Random(1),
    ) as client:
        entries = await client.balance_ex()
    assert entries["XXBT"].balance == Decimal("1.2435")


async def test_bad_arguments_name_what_is_wrong() -> None:
    """Half credentials or a non-HTTP URL are refused with the option named."""
    with pytest.raises(ConfigError, match="api_secret"):
        KrakenRestClient(api_key="key")
    with pytest.raises(ConfigError, match="base_url"):
        KrakenRestClient(base_url="ftp://x")


async def test_private_call_without_credentials(clock: ManualClock) -> None:
    """A private call with no credentials fails clearly, without touching the network."""
    async with KrakenRestClient(clock=clock) as client:
        with pytest.raises(AuthenticationError):
            await client.balance()
        assert client.get_statistics()["rest_api_calls"] == 0


async def test_lockout_holds_private_calls_back(
    sim: SimulatedKraken, rest: KrakenRestClient, clock: ManualClock
) -> None:
    """After a lockout, private calls are refused locally for a minute, then one probe goes out."""
    sim.faults.lockout(times=1)
    with pytest.raises(LockoutError):
        await rest.balance_ex()
    with pytest.raises(LockoutError, match="next probe"):
        await rest.balance_ex()
    assert sim.rest_calls["BalanceEx"] == 1  # the second call never left
    clock.advance(61.0)
    assert await rest.balance_ex()
    assert rest.get_statistics()["lockout_refusals"] == 1


# -- failures that name their cause ------------------------------------------------------------


class _NoSuchHost(AbstractResolver):
    """A resolver that fails every lookup as a missing host does (no DNS server involved)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise OSError(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        """Nothing to release."""


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_connection_refused_is_named_and_kept_by_the_open_circuit(
    clock: ManualClock, config: BalanceManagerConfig
) -> None:
    """A refused connection says so; once the circuit opens, its refusal still names it."""
    port = _closed_port()
    async with KrakenRestClient(
        base_url=f"http://127.0.0.1:{port}", config=config, clock=clock, rng=random.Random(1)
    ) as client:
        with pytest.raises(TransportError) as info:
            await drive_until_done(clock, client.server_time())
        assert f"connection refused by 127.0.0.1:{port}" in str(info.value)
        assert client.breaker.state is BreakerState.OPEN
        with pytest.raises(CircuitOpenError) as refused:
            await client.server_time()
        assert str(refused.value).startswith(
            f"GET /0/public/Time: connection refused by 127.0.0.1:{port}"
        )
        assert "\n" not in str(refused.value)


async def test_a_host_that_does_not_resolve_is_named_as_dns(
    clock: ManualClock, config: BalanceManagerConfig
) -> None:
    """A failed lookup is reported as DNS, naming the host."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=_NoSuchHost()))
    async with (
        session,
        KrakenRestClient(
            base_url="https://api.kraken.invalid",
            config=config.replace(rest_max_retries=0),
            clock=clock,
            session=session,
        ) as client,
    ):
        with pytest.raises(TransportError) as info:
            await client.server_time()
    assert "cannot resolve host api.kraken.invalid (DNS: Name or service not known)" in str(
        info.value
    )


async def test_tls_to_a_plain_http_port_is_named_as_tls(
    sim: SimulatedKraken, clock: ManualClock, config: BalanceManagerConfig
) -> None:
    """https:// to a server that speaks plain HTTP fails as a TLS handshake, named as such."""
    url = sim.rest_url.replace("http://", "https://")
    async with KrakenRestClient(
        base_url=url, config=config.replace(rest_max_retries=0), clock=clock
    ) as client:
        with pytest.raises(TransportError) as info:
            await client.server_time()
    host_port = url.removeprefix("https://")
    assert f"TLS handshake with {host_port} failed" in str(info.value)
