"""CcxtRestSource against the simulator: ccxt's kraken REST, read exactly, faults translated."""

from __future__ import annotations

from decimal import Decimal

import ccxt.async_support as ccxt_async
import pytest

from balance_manager.ccxt import CcxtRestSource, translate_error
from balance_manager.core.sources import RestSource
from balance_manager.exceptions import (
    AuthenticationError,
    CircuitOpenError,
    ExchangeUnavailableError,
    RateLimitedError,
    RequestTimeoutError,
    TransportError,
)
from balance_manager.simulator import SimulatedKraken

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


async def test_is_a_rest_source(rest: CcxtRestSource) -> None:
    """It implements the interface the manager uses, and names the simulator as such."""
    assert isinstance(rest, RestSource)
    assert rest.exchange == "simulator"
    assert rest.venue == "kraken"
    assert len(rest.account) == 16
    assert rest.client.apiKey not in rest.account


async def test_balances_equal_the_simulator_truth(
    sim: SimulatedKraken, rest: CcxtRestSource
) -> None:
    """fetch_balance's raw strings give exactly the simulator's balances, holds and earn."""
    sim.deposit("BTC", "0.000000017")
    sim.place_order("BTC/USD", "sell", "limit", "0.2", price="90000")
    await rest.load_assets()
    snapshot = await rest.fetch_balances()
    got = {a: v.balance for a, v in snapshot.balances.items() if v.balance or v.earn}
    assert got == {a: v for a, v in sim.balances().items() if v}
    holds = {a: v.hold_trade for a, v in snapshot.balances.items() if v.hold_trade}
    assert holds == {a: v for a, v in sim.holds().items() if v}
    assert all(v.exact for v in snapshot.balances.values())
    assert snapshot.balances["BTC"].balance == Decimal("1.243500017")


async def test_names_follow_ccxt(rest: CcxtRestSource) -> None:
    """Kraken's spellings become ccxt's unified codes."""
    await rest.load_assets()
    assert rest.names.canonical("XXBT") == "BTC"
    assert rest.names.canonical("xbt") == "BTC"
    assert rest.names.canonical("ZUSD") == "USD"
    assert rest.names.decimals("BTC") is None


async def test_rate_limit_is_translated(sim: SimulatedKraken, rest: CcxtRestSource) -> None:
    """Kraken's rate-limit error through ccxt is our RateLimitedError, naming the venue."""
    await rest.load_assets()
    sim.faults.rate_limit(endpoint="BalanceEx")
    with pytest.raises(RateLimitedError, match="kraken"):
        await rest.fetch_balances()
    assert (await rest.fetch_balances()).balances


async def test_outage_opens_the_circuit(sim: SimulatedKraken, rest: CcxtRestSource) -> None:
    """HTTP 5xx pages are failures for the breaker; enough of them open it."""
    await rest.load_assets()
    sim.faults.http_error(status=502, times=None, endpoint="BalanceEx")
    for _ in range(rest.config.circuit_failure_threshold):
        with pytest.raises((TransportError, ExchangeUnavailableError)):
            await rest.fetch_balances()
    with pytest.raises(CircuitOpenError):
        await rest.fetch_balances()


async def test_refused_key_is_an_authentication_error_without_secrets(
    sim: SimulatedKraken, rest: CcxtRestSource
) -> None:
    """A refused key is AuthenticationError, and the message holds neither key nor secret."""
    await rest.load_assets()
    secret = rest.client.secret
    rest.client.secret = "c2VjcmV0c2VjcmV0c2VjcmV0"  # a valid base64 secret that signs wrong
    with pytest.raises(AuthenticationError) as info:
        await rest.fetch_balances()
    text = str(info.value)
    assert "kraken" in text
    assert secret not in text
    assert "c2VjcmV0c2VjcmV0c2VjcmV0" not in text


async def test_a_ccxt_timeout_names_ccxts_configured_timeout(rest: CcxtRestSource) -> None:
    """ccxt's RequestTimeout becomes RequestTimeoutError with ccxt's own timeout (ms → s).

    Before, the message said "no answer within 0 s".
    """
    rest.client.timeout = 2500
    error = rest.translate(
        ccxt_async.RequestTimeout("kraken GET /0/private/BalanceEx"), "fetch_balance"
    )
    assert isinstance(error, RequestTimeoutError)
    assert error.timeout == 2.5
    assert str(error) == "kraken fetch_balance got no answer within 2.5 s"
    unknown = translate_error(
        ccxt_async.RequestTimeout("x"), venue="kraken", method="fetch_balance"
    )
    assert isinstance(unknown, RequestTimeoutError)
    assert "within 0 s" not in str(unknown)
