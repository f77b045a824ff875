"""SimulatedKraken itself: addresses, credentials, accounts, lifecycle and its Python API."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from balance_manager.exceptions import (
    ConfigError,
    ExchangeError,
    InvalidAmountError,
    UnknownAssetError,
)
from balance_manager.simulator import SimulatedKraken
from balance_manager.simulator.model.ledger import LedgerEntry, OrderEvent
from balance_manager.testing import ManualClock

pytestmark = pytest.mark.asyncio


@pytest.mark.network
async def test_listens_on_loopback_with_a_free_port(clock: ManualClock) -> None:
    """Defaults give 127.0.0.1 URLs with the bound port, REST and WS on the same port."""
    async with SimulatedKraken(clock=clock) as sim:
        assert sim.port > 0
        assert sim.rest_url == f"http://127.0.0.1:{sim.port}"
        assert sim.ws_url == f"ws://127.0.0.1:{sim.port}/v2"
        assert sim.running
    assert not sim.running


async def test_credentials_are_shaped_like_krakens(clock: ManualClock) -> None:
    """The default key pair: ``sim-`` and a 56-char key, and a base64 secret of 64 bytes."""
    sim = SimulatedKraken(clock=clock)
    assert sim.api_key.startswith("sim-")
    assert len(sim.api_key) == 4 + 56
    assert sim.credentials.simulated
    assert len(base64.b64decode(sim.api_secret, validate=True)) == 64
    assert sim.credentials.api_key == sim.api_key
    assert sim.api_secret not in repr(sim)
    assert sim.api_secret not in repr(sim.credentials)


async def test_same_seed_same_credentials(clock: ManualClock) -> None:
    """Keys are drawn from the seed, so a run is repeatable."""
    assert SimulatedKraken(seed=4).api_key == SimulatedKraken(seed=4).api_key
    assert SimulatedKraken(seed=4).api_key != SimulatedKraken(seed=5).api_key


async def test_default_account_is_realistic(clock: ManualClock) -> None:
    """The default account holds several assets and a .F-style earn balance."""
    sim = SimulatedKraken(clock=clock)
    balances = sim.balances()
    assert {"BTC", "ETH", "USD", "USDT", "EUR", "DOT"} <= set(balances)
    assert sim.wallets()[("USDT", "earn", "liquid")] == Decimal(1000)
    assert balances["USDT"] == Decimal(6000)  # liquid earn is tradable
    assert sim.holds() == {}
    assert sim.free()["BTC"] == Decimal("1.2435")


async def test_accounts_option_and_add_account(clock: ManualClock) -> None:
    """Extra accounts get their own keys and balances; 'default' replaces the default balances."""
    sim = SimulatedKraken(clock=clock, accounts={"default": {"USD": "10"}, "bot": {"BTC": "1"}})
    assert sim.balances() == {"USD": Decimal(10)}
    credentials = sim.add_account("third", balances={"ETH": "2"}, earn={("ETH", "bonded"): "1"})
    assert sim.balances(credentials.api_key) == {"ETH": Decimal(2)}
    assert sim.earn(credentials.api_key) == {"ETH": Decimal(1)}
    with pytest.raises(ConfigError):
        sim.add_account("third")


async def test_python_api_moves_money_like_the_exchange(clock: ManualClock) -> None:
    """deposit, withdraw, place_order, fill, cancel and set_price act on the ledger."""
    sim = SimulatedKraken(clock=clock)
    sim.deposit("BTC", "1")
    sim.withdraw("BTC", "0.2435")
    assert sim.balances()["BTC"] == Decimal(2)
    order = sim.place_order("BTC/USD", "sell", "limit", "0.5", price="70000")
    assert sim.holds() == {"BTC": Decimal("0.5")}
    trade = sim.fill(order.order_id, "0.1")
    assert trade.price == Decimal(70000)
    sim.cancel_order(order.order_id)
    assert sim.holds() == {}
    buy = sim.place_order("ETH/USD", "buy", "limit", "1", price="2900")
    (fill,) = sim.set_price("ETH/USD", "2899")
    assert fill.order_id == buy.order_id
    assert [e.type for e in sim.ledger()[-2:]] == ["trade", "trade"]
    with pytest.raises(ExchangeError):
        sim.withdraw("BTC", "1000")


async def test_awaiting_a_synchronous_call_names_it_and_says_to_drop_the_await(
    clock: ManualClock,
) -> None:
    """`await sim.deposit(...)` (and every acting call) raises a TypeError naming the call."""
    sim = SimulatedKraken(clock=clock)
    calls = {
        "sim.deposit()": lambda: sim.deposit("BTC", "1"),
        "sim.withdraw()": lambda: sim.withdraw("BTC", "0.1"),
        "sim.transfer()": lambda: sim.transfer("DOT", "1", to_wallet=("earn", "bonded")),
        "sim.place_order()": lambda: sim.place_order("BTC/USD", "buy", "limit", "0.1", price="1"),
        "sim.set_price()": lambda: sim.set_price("BTC/USD", "61000"),
        "sim.faults.inject()": lambda: sim.faults.drop_websocket(),
    }
    for name, call in calls.items():
        result = call()
        with pytest.raises(TypeError) as raised:
            await result  # type: ignore[misc]  # the mistake a user makes
        message = str(raised.value)
        assert name in message
        assert "synchronous" in message
        assert "without 'await'" in message
        assert "start(), stop() and restart()" in message
    order = sim.place_order("BTC/USD", "sell", "limit", "0.1", price="70000")
    with pytest.raises(TypeError, match=r"sim\.fill\(\)"):
        await sim.fill(order.order_id)  # type: ignore[misc]
    # The values are still what they were: lists compare as lists, orders as orders.
    assert sim.deposit("ETH", "1") == list(sim.ledger()[-1:])
    resting = sim.place_order("BTC/USD", "sell", "limit", "0.1", price="70000")
    assert sim.cancel_order(resting.order_id).status == "canceled"


async def test_orders_take_the_pair_by_keyword_as_everywhere_else(clock: ManualClock) -> None:
    """place_order(pair=...), set_price(pair=...) and price(pair=...) use Kraken's REST name."""
    sim = SimulatedKraken(clock=clock)
    order = sim.place_order(pair="XBTUSD", side="buy", order_type="limit", volume="0.1", price="1")
    assert order.symbol == "BTC/USD"
    sim.set_price(pair="BTC/USD", price="61000")
    assert sim.price(pair="XXBTZUSD") == Decimal(61000)


async def test_invalid_options_are_refused() -> None:
    """A port out of range or a non-positive heartbeat interval is a ConfigError."""
    with pytest.raises(ConfigError):
        SimulatedKraken(port=70000)
    with pytest.raises(ConfigError):
        SimulatedKraken(heartbeat_interval=0)
    with pytest.raises(ConfigError):
        SimulatedKraken(tier="diamond")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("heartbeat_interval", 1e-9),
        ("heartbeat_interval", Decimal("sNaN")),
        ("market_interval", 0),
        ("token_ttl", 10**400),
        ("lockout_window", -1.0),
        ("lockout_duration", float("inf")),
        ("lockout_threshold", "5"),
        ("port", 10**400),
    ],
    ids=[
        "heartbeat-1ns",
        "heartbeat-sNaN",
        "market-0",
        "token-1e400",
        "window-neg",
        "lockout-inf",
        "threshold-text",
        "port-1e400",
    ],
)
async def test_absurd_options_are_refused_by_name(option: str, value: object) -> None:
    """Every duration and count option of the simulator is a ConfigError naming it when absurd."""
    with pytest.raises(ConfigError) as info:
        SimulatedKraken(**{option: value})  # type: ignore[arg-type]  # bad on purpose
    assert info.value.option == option


@pytest.mark.network
async def test_market_option_runs_the_driver_on_the_clock(clock: ManualClock) -> None:
    """With market=True prices move as the clock advances, and the driver stops with the server."""
    async with SimulatedKraken(clock=clock, market=True, seed=3) as sim:
        before = sim.price("BTC/USD")
        await clock.run_for(20.0)
        assert sim.market.ticks == 20
        assert sim.price("BTC/USD") != before
    assert not sim.market.running


async def test_python_api_refuses_what_it_cannot_represent_by_argument() -> None:
    """The Python API refuses unrepresentable amounts and non-text names with library errors."""
    sim = SimulatedKraken()
    before = sim.balances(), sim.ledger()
    with pytest.raises(InvalidAmountError) as amount:
        sim.deposit("USD", "12345678901234567890123456789")
    assert amount.value.field == "amount"
    with pytest.raises(InvalidAmountError) as volume:
        sim.place_order("BTC/USD", "sell", "limit", "1e20", price="100")
    assert volume.value.field == "volume"
    with pytest.raises(InvalidAmountError) as price:
        sim.set_price("BTC/USD", "1e40")
    assert price.value.field == "price"
    with pytest.raises(UnknownAssetError):
        sim.deposit(["BTC"], "1")  # type: ignore[arg-type]  # bad on purpose
    with pytest.raises(ExchangeError, match="wallet"):
        sim.deposit("BTC", "1", wallet_type="earn", wallet_id=["liquid"])  # type: ignore[arg-type]
    with pytest.raises(ExchangeError, match="userref"):
        sim.place_order("BTC/USD", "buy", "limit", "0.01", price="50000", userref=2**40)
    for order_id in (["O1"], None, {"O1": 1}):
        with pytest.raises(ExchangeError, match="Unknown order"):
            sim.cancel_order(order_id)  # type: ignore[arg-type]  # bad on purpose
        with pytest.raises(ExchangeError, match="Unknown order"):
            sim.fill(order_id)  # type: ignore[arg-type]  # bad on purpose
    assert (sim.balances(), sim.ledger()) == before


# -- one seed, one story ----------------------------------------------------------------------


def _story(seed: int, *, market_first: bool) -> dict[str, object]:
    """Two API orders and 40 market ticks, in one order or the other; what happened."""
    sim = SimulatedKraken(seed=seed, clock=ManualClock(start=1_700_000_000.0))
    placed: list[tuple[str, str, str, Decimal]] = []
    entries: list[str] = []

    def listen(event: object) -> None:
        if isinstance(event, OrderEvent) and event.exec_type == "pending_new":
            order = event.order
            placed.append((order.order_id, order.symbol, order.side, order.order_qty))
        elif isinstance(event, LedgerEntry):
            entries.append(event.ledger_id)

    sim.account().subscribe(listen)
    prices: list[dict[str, Decimal]] = []

    def ticks() -> None:
        for _ in range(40):
            sim.clock.advance(1.0)  # type: ignore[attr-defined]  # a ManualClock
            sim.market.step(sim.clock.time())
            prices.append(sim.exchange.prices())

    if market_first:
        ticks()
    api = [
        sim.place_order("BTC/USD", "buy", "limit", "0.001", price="30000").order_id,
        sim.place_order("ETH/USD", "sell", "limit", "0.01", price="9999").order_id,
    ]
    if not market_first:
        ticks()
    bot = [order for order in placed if order[0] not in api]
    return {"api": api, "bot": bot, "prices": prices, "key": sim.api_key, "entries": entries}


async def test_one_seed_gives_the_same_ids_and_orders_whatever_the_interleaving() -> None:
    """An API order's id, the market's orders and its prices depend on the seed, not on timing."""
    first = _story(7, market_first=True)
    second = _story(7, market_first=False)
    assert first["api"] == second["api"]  # the account's first API order is always this one
    assert first["bot"] == second["bot"]  # the market bot's orders: same ids, pairs, sides, sizes
    assert first["bot"]  # (it did place some)
    assert first["prices"] == second["prices"]  # the same price path, tick by tick
    assert first["key"] == second["key"]


async def test_the_same_seed_and_steps_give_the_same_run_and_another_seed_another() -> None:
    """Replaying the same steps with the same seed repeats the run exactly."""
    assert _story(3, market_first=True) == _story(3, market_first=True)
    assert _story(3, market_first=True)["api"] != _story(4, market_first=True)["api"]
