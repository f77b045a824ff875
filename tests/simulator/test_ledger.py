"""The simulated account's ledger: fills, fees, holds, transfers and its invariants."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from balance_manager.exceptions import BalanceStateError, ExchangeError, InvalidAmountError
from balance_manager.kraken.protocol.ws_messages import (
    BalancesSnapshotMessage,
    BalancesUpdateMessage,
    ExecutionsMessage,
    decode_message,
)
from balance_manager.simulator.model.frames import (
    balances_snapshot_frame,
    balances_update_frame,
    execution_item,
    executions_frame,
)
from balance_manager.simulator.model.instruments import Instruments
from balance_manager.simulator.model.ledger import Account, AccountEvent, LedgerEntry, OrderEvent


def make_account(seed: int = 1) -> Account:
    """A fresh account on the default instruments."""
    return Account("test", instruments=Instruments(), rng=random.Random(seed))


def test_documented_trade_example_gives_the_documented_legs() -> None:
    """Selling 0.005 BTC at 26599.9 gives BTC -0.005/fee 0 and USD +132.9995/fee 0.3458."""
    account = make_account()
    account.deposit("BTC", "0.01", now=1.0)
    account.deposit("USD", "367.3463", now=1.0)
    order = account.place_order("BTC/USD", "sell", "limit", "0.005", now=2.0, limit_price="26599.9")
    trade = account.fill(order.order_id, "0.005", "26599.9", now=3.0)
    btc_leg, usd_leg = account.entries[-2:]
    assert (btc_leg.asset, btc_leg.amount, btc_leg.fee, btc_leg.balance) == (
        "BTC",
        Decimal("-0.005"),
        Decimal(0),
        Decimal("0.005"),
    )
    assert (usd_leg.asset, usd_leg.amount, usd_leg.fee, usd_leg.balance) == (
        "USD",
        Decimal("132.9995"),
        Decimal("0.3458"),
        Decimal(500),
    )
    assert btc_leg.ref_id == usd_leg.ref_id == trade.exec_id
    assert (btc_leg.type, btc_leg.category, btc_leg.wallet_type, btc_leg.wallet_id) == (
        "trade",
        "trade",
        "spot",
        "main",
    )


def test_buy_fill_pays_cost_plus_fee_from_the_quote_leg() -> None:
    """A buy credits the base with no fee and debits the quote by cost, with the fee on top."""
    account = make_account()
    account.deposit("USD", "1000", now=0.0)
    order = account.place_order("BTC/USD", "buy", "limit", "0.01", now=0.0, limit_price="50000")
    account.fill(order.order_id, "0.01", "50000", now=1.0)
    assert account.wallet_balance("BTC") == Decimal("0.01")
    assert account.wallet_balance("USD") == Decimal("1000") - Decimal("500") - Decimal("1.3")
    assert account.holds() == {}


def test_ledger_ids_have_krakens_shape() -> None:
    """Ledger ids are L + base32 blocks shaped 6-5-6, like AAICKV-NMQSR-ZO5IJD."""
    account = make_account()
    (entry,) = account.deposit("BTC", "1", now=0.0)
    first, second, third = entry.ledger_id.split("-")
    assert first[0] == "L"
    assert (len(first), len(second), len(third)) == (6, 5, 6)


def test_limit_buy_holds_cost_and_fee_in_the_quote_asset() -> None:
    """A resting buy holds qty * price * (1 + fee rate), rounded up to the quote decimals."""
    account = make_account()
    account.deposit("USD", "1000", now=0.0)
    account.place_order("BTC/USD", "buy", "limit", "0.00333333", now=0.0, limit_price="30000.1")
    expected = Decimal("0.00333333") * Decimal("30000.1") * Decimal("1.0026")
    hold = account.hold("USD")
    assert hold >= expected
    assert hold - expected < Decimal("0.0001")
    assert account.free("USD") == Decimal(1000) - hold


def test_partial_fill_releases_the_filled_part_of_the_hold() -> None:
    """After half a sell fills, the hold is the half that remains."""
    account = make_account()
    account.deposit("BTC", "1", now=0.0)
    order = account.place_order("BTC/USD", "sell", "limit", "0.4", now=0.0, limit_price="60000")
    account.fill(order.order_id, "0.1", "60000", now=1.0)
    assert account.hold("BTC") == Decimal("0.3")
    assert account.order(order.order_id).status == "partially_filled"


def test_insufficient_funds_refuses_and_changes_nothing() -> None:
    """An order beyond the free balance is refused (EOrder:Insufficient funds), nothing changes."""
    account = make_account()
    account.deposit("USD", "100", now=0.0)
    events: list[AccountEvent] = []
    account.subscribe(events.append)
    with pytest.raises(ExchangeError) as info:
        account.place_order("BTC/USD", "buy", "limit", "0.01", now=0.0, limit_price="60000")
    assert info.value.code == "EOrder:Insufficient funds"
    assert account.open_orders() == []
    assert events == []


def test_withdrawal_cannot_exceed_free() -> None:
    """A withdrawal larger than balance minus holds is refused with EFunding:Insufficient funds."""
    account = make_account()
    account.deposit("BTC", "1", now=0.0)
    account.place_order("BTC/USD", "sell", "limit", "0.6", now=0.0, limit_price="70000")
    with pytest.raises(ExchangeError) as info:
        account.withdraw("BTC", "0.5", now=1.0)
    assert info.value.code == "EFunding:Insufficient funds"
    account.withdraw("BTC", "0.4", now=1.0)
    assert account.wallet_balance("BTC") == Decimal("0.6")


def test_withdrawal_fee_is_charged_on_top() -> None:
    """A withdrawal entry has a negative amount and the fee; balance = before + amount - fee."""
    account = make_account()
    account.deposit("ETH", "2", now=0.0)
    (entry,) = account.withdraw("ETH", "1", now=1.0, fee="0.0035")
    assert (entry.type, entry.amount, entry.fee, entry.balance) == (
        "withdrawal",
        Decimal(-1),
        Decimal("0.0035"),
        Decimal("0.9965"),
    )


def test_transfer_to_earn_writes_two_legs_with_one_ref_id() -> None:
    """Moving spot funds to an earn wallet writes a debit and a credit sharing a ref_id."""
    account = make_account()
    account.deposit("DOT", "10", now=0.0)
    out, into = account.transfer("DOT", "4", now=1.0, to_wallet=("earn", "bonded"))
    assert (out.wallet_type, out.amount, out.subtype) == ("spot", Decimal(-4), "spottostaking")
    assert (into.wallet_id, into.amount, into.subtype) == ("bonded", Decimal(4), "stakingfromspot")
    assert out.ref_id == into.ref_id
    assert account.tradable("DOT") == Decimal(6)
    assert account.earn("DOT") == Decimal(4)
    assert account.total("DOT") == Decimal(10)


def test_liquid_earn_funds_are_tradable_and_move_to_spot_when_spent() -> None:
    """Spending beyond spot first moves the shortfall from the liquid (.F) wallet to spot."""
    account = make_account()
    account.deposit("USDT", "10", now=0.0)
    account.deposit("USDT", "100", now=0.0, wallet_type="earn", wallet_id="liquid")
    assert account.tradable("USDT") == Decimal(110)
    account.withdraw("USDT", "50", now=1.0)
    assert account.wallet_balance("USDT") == 0
    assert account.wallet_balance("USDT", "earn", "liquid") == Decimal(60)
    kinds = [(e.type, e.wallet_id) for e in account.entries[-3:]]
    assert kinds == [("transfer", "liquid"), ("transfer", "main"), ("withdrawal", "main")]


def test_market_order_fills_at_once_as_taker() -> None:
    """A market order fills completely at the given market price with liquidity 't'."""
    account = make_account()
    account.deposit("USD", "1000", now=0.0)
    events: list[AccountEvent] = []
    account.subscribe(events.append)
    order = account.place_order("ETH/USD", "buy", "market", "0.1", now=0.0, market_price="3000")
    assert order.status == "filled"
    exec_types = [e.exec_type for e in events if isinstance(e, OrderEvent)]
    assert exec_types == ["pending_new", "new", "trade", "filled"]
    trade = next(e.trade for e in events if isinstance(e, OrderEvent) and e.trade)
    assert trade.liquidity == "t"


def test_events_emit_ledger_legs_before_the_trade_event() -> None:
    """Observers see both ledger legs of a fill before the order's trade event."""
    account = make_account()
    account.deposit("BTC", "1", now=0.0)
    order = account.place_order("BTC/USD", "sell", "limit", "0.5", now=0.0, limit_price="60000")
    events: list[AccountEvent] = []
    account.subscribe(events.append)
    account.fill(order.order_id, "0.5", "60000", now=1.0)
    kinds = [type(e).__name__ + ":" + getattr(e, "exec_type", "") for e in events]
    assert kinds == ["LedgerEntry:", "LedgerEntry:", "OrderEvent:trade", "OrderEvent:filled"]


def test_fill_at_a_price_worse_than_the_limit_is_refused() -> None:
    """A buy cannot fill above its limit nor a sell below it."""
    account = make_account()
    account.deposit("USD", "1000", now=0.0)
    order = account.place_order("BTC/USD", "buy", "limit", "0.01", now=0.0, limit_price="50000")
    with pytest.raises(ExchangeError) as info:
        account.fill(order.order_id, "0.01", "50000.1", now=1.0)
    assert info.value.code == "EGeneral:Invalid arguments:price"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"symbol": "NOPE/USD"}, "EQuery:Unknown asset pair"),
        ({"side": "hold"}, "EGeneral:Invalid arguments:type"),
        ({"order_type": "stop"}, "EGeneral:Invalid arguments:ordertype"),
        ({"qty": "0"}, "EGeneral:Invalid arguments:volume"),
        ({"qty": "0.000000001"}, "EGeneral:Invalid arguments:volume"),
        ({"qty": "0.00001"}, "EOrder:Order minimum not met"),
        (
            {"limit_price": "50000.05"},
            "EOrder:Invalid price:XBTUSD price can only be specified up to 1 decimals.",
        ),
        ({"limit_price": None}, "EGeneral:Invalid arguments:price"),
    ],
)
def test_bad_orders_are_refused_with_krakens_errors(kwargs: dict[str, object], code: str) -> None:
    """Each invalid order field is refused with Kraken's error string."""
    account = make_account()
    account.deposit("USD", "100000", now=0.0)
    args: dict[str, object] = {
        "symbol": "BTC/USD",
        "side": "buy",
        "order_type": "limit",
        "qty": "0.01",
        "limit_price": "50000",
    }
    args.update(kwargs)
    with pytest.raises(ExchangeError) as info:
        account.place_order(
            str(args["symbol"]),
            str(args["side"]),
            str(args["order_type"]),
            str(args["qty"]),
            now=0.0,
            limit_price=args["limit_price"],  # type: ignore[arg-type]  # None is the case tested
        )
    assert info.value.code == code


def test_float_amounts_are_refused() -> None:
    """A float amount is refused at the ledger's edge (inexact by nature)."""
    account = make_account()
    with pytest.raises(ExchangeError) as info:
        account.deposit("BTC", 0.1, now=0.0)  # type: ignore[arg-type]  # the point of the test
    assert info.value.code == "EGeneral:Invalid arguments:amount"


def test_cancel_releases_the_hold_and_unknown_orders_are_refused() -> None:
    """Canceling frees the held funds; canceling again gives EOrder:Unknown order."""
    account = make_account()
    account.deposit("BTC", "1", now=0.0)
    order = account.place_order("BTC/USD", "sell", "limit", "0.5", now=0.0, limit_price="90000")
    account.cancel_order(order.order_id, now=1.0)
    assert account.free("BTC") == Decimal(1)
    with pytest.raises(ExchangeError) as info:
        account.cancel_order(order.order_id, now=2.0)
    assert info.value.code == "EOrder:Unknown order"


def test_check_invariants_detects_a_tampered_wallet() -> None:
    """A wallet that no longer equals the sum of its ledger legs is reported as impossible."""
    account = make_account()
    account.deposit("BTC", "1", now=0.0)
    account._balances[("BTC", "spot", "main")] = Decimal(2)
    with pytest.raises(BalanceStateError):
        account.check_invariants()


def test_a_failing_listener_does_not_undo_the_operation() -> None:
    """An observer that raises is logged; the committed deposit stands."""
    account = make_account()

    def broken(event: AccountEvent) -> None:
        raise RuntimeError("observer bug")

    account.subscribe(broken)
    account.deposit("BTC", "1", now=0.0)
    assert account.wallet_balance("BTC") == Decimal(1)


# -- the state machine -----------------------------------------------------------------

_ASSETS = ("BTC", "ETH", "USD", "USDT")
_PAIRS = ("BTC/USD", "ETH/USD", "ETH/BTC", "USDT/USD")
_PRICES = {"BTC/USD": "60000", "ETH/USD": "3000", "ETH/BTC": "0.05", "USDT/USD": "1.0002"}
_MINS = {"BTC/USD": "0.0001", "ETH/USD": "0.002", "ETH/BTC": "0.002", "USDT/USD": "5"}


class LedgerMachine(RuleBasedStateMachine):
    """Random deposits, withdrawals, transfers, orders, fills and cancels keep every invariant."""

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.account = make_account(seed=3)
        self.now = 0.0
        self.events: list[AccountEvent] = []
        self.account.subscribe(self.events.append)

    def tick(self) -> float:
        self.now += 1.0
        return self.now

    @rule(asset=st.sampled_from(_ASSETS), units=st.integers(1, 10_000), liquid=st.booleans())
    def deposit(self, asset: str, units: int, liquid: bool) -> None:
        amount = Decimal(units) / 100
        wallet = ("earn", "liquid") if liquid else ("spot", "main")
        self.account.deposit(
            asset, amount, now=self.tick(), wallet_type=wallet[0], wallet_id=wallet[1]
        )

    @rule(asset=st.sampled_from(_ASSETS), units=st.integers(1, 10_000))
    def withdraw(self, asset: str, units: int) -> None:
        amount = Decimal(units) / 100
        free = self.account.free(asset)
        refused = None
        try:
            self.account.withdraw(asset, amount, now=self.tick())
        except ExchangeError as exc:
            refused = exc.code
        assert refused == ("EFunding:Insufficient funds" if amount > free else None)

    @rule(asset=st.sampled_from(_ASSETS), units=st.integers(1, 1_000), to_earn=st.booleans())
    def transfer(self, asset: str, units: int, to_earn: bool) -> None:
        earn = ("earn", "flex")
        try:
            if to_earn:
                self.account.transfer(asset, Decimal(units) / 100, now=self.tick(), to_wallet=earn)
            else:
                self.account.transfer(
                    asset,
                    Decimal(units) / 100,
                    now=self.tick(),
                    to_wallet=("spot", "main"),
                    from_wallet=earn,
                )
        except ExchangeError as exc:
            refused = exc.code
        else:
            refused = "EFunding:Insufficient funds"
        assert refused == "EFunding:Insufficient funds"

    @rule(
        target=orders,
        pair=st.sampled_from(_PAIRS),
        side=st.sampled_from(("buy", "sell")),
        lots=st.integers(1, 50),
        offset_bp=st.integers(-500, 500),
        market=st.booleans(),
    )
    def place(self, pair: str, side: str, lots: int, offset_bp: int, market: bool) -> str:
        qty = Decimal(_MINS[pair]) * lots
        spec = self.account.instruments.pair(pair)
        price = (Decimal(_PRICES[pair]) * (1 + Decimal(offset_bp) / 10_000)).quantize(
            spec.tick_size
        )
        try:
            order = self.account.place_order(
                pair,
                side,
                "market" if market else "limit",
                qty,
                now=self.tick(),
                limit_price=None if market else price,
                market_price=price if market else None,
            )
        except ExchangeError as exc:
            refused = exc.code
        else:
            return order.order_id
        assert refused == "EOrder:Insufficient funds"
        return ""

    @rule(order_id=orders, fraction=st.sampled_from(("0.25", "0.5", "1")))
    def fill(self, order_id: str, fraction: str) -> None:
        if not order_id or not self.account.order(order_id).is_open:
            return
        order = self.account.order(order_id)
        spec = self.account.instruments.pair(order.symbol)
        qty = (order.remaining * Decimal(fraction)).quantize(Decimal(1).scaleb(-spec.lot_decimals))
        if qty <= 0:
            qty = order.remaining
        assert order.limit_price is not None
        try:
            self.account.fill(order_id, qty, order.limit_price, now=self.tick())
        except ExchangeError as exc:
            refused = exc.code
        else:
            refused = "EOrder:Insufficient funds"
        # Only rounding at the last unit of the quote can leave a hold short.
        assert refused == "EOrder:Insufficient funds"

    @rule(order_id=consumes(orders))
    def cancel(self, order_id: str) -> None:
        if order_id and self.account.order(order_id).is_open:
            self.account.cancel_order(order_id, now=self.tick())

    @invariant()
    def invariants_hold(self) -> None:
        self.account.check_invariants()

    @invariant()
    def balances_equal_the_sum_of_ledger_legs(self) -> None:
        audited = self.account.audit()
        wallets = self.account.wallets()
        assert {k: v for k, v in audited.items()} == wallets

    @invariant()
    def no_negative_wallet_and_holds_are_covered(self) -> None:
        assert all(value >= 0 for value in self.account.wallets().values())
        for asset, held in self.account.holds().items():
            assert held <= self.account.tradable(asset)

    @invariant()
    def every_entry_adds_up(self) -> None:
        running: dict[tuple[str, str, str], Decimal] = {}
        for event in self.events:
            if isinstance(event, LedgerEntry):
                key = (event.asset, event.wallet_type, event.wallet_id)
                running[key] = running.get(key, Decimal(0)) + event.amount - event.fee
                assert running[key] == event.balance


LedgerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase


# -- what the simulator cannot represent is refused at the door ------------------------------


def state(account: Account) -> object:
    """Everything a refused operation must leave unchanged."""
    return (account.wallets(), account.entries, account.open_orders(), account.holds())


@pytest.mark.parametrize(
    ("asset", "amount"),
    [
        ("USD", "1" + "0" * 28),
        ("USD", "12345678901234567890123456789"),
        ("USD", "1e24"),
        ("BTC", "1e18"),
        ("BTC", "123456789012345678901234567.5"),
    ],
    ids=["usd-29-digits", "usd-29-digits-b", "usd-1e24", "btc-1e18", "btc-27-int-digits"],
)
def test_amounts_beyond_28_digits_are_refused_by_argument(asset: str, amount: str) -> None:
    """A deposit that cannot be written in 28 digits at the asset's decimals: InvalidAmountError."""
    account = make_account()
    account.deposit("USD", "100", now=0.0)
    before = state(account)
    with pytest.raises(InvalidAmountError) as info:
        account.deposit(asset, amount, now=1.0)
    assert info.value.field == "amount"
    assert "28 significant digits" in str(info.value)
    assert state(account) == before


def test_the_largest_representable_amounts_are_kept_exactly() -> None:
    """Just below the limit (28 digits at the asset's decimals) amounts are exact."""
    account = make_account()
    account.deposit("USD", "999999999999999999999999.9999", now=0.0)
    account.deposit("BTC", "99999999999999999.9999999999", now=0.0)
    assert account.tradable("USD") == Decimal("999999999999999999999999.9999")
    assert account.tradable("BTC") == Decimal("99999999999999999.9999999999")


def test_precision_that_normalize_would_round_away_is_refused() -> None:
    """0.1 followed by 34 more places is not 0.1: refused, not rounded (normalize() hid it)."""
    account = make_account()
    before = state(account)
    with pytest.raises(ExchangeError, match="amount"):
        account.deposit("BTC", "0.1" + "0" * 33 + "1", now=0.0)
    assert state(account) == before


def test_a_balance_that_would_outgrow_28_digits_is_refused() -> None:
    """Two deposits each representable, whose sum is not: the second is refused, naming amount."""
    account = make_account()
    account.deposit("USD", "600000000000000000000000", now=0.0)
    before = state(account)
    with pytest.raises(InvalidAmountError, match="USD") as info:
        account.deposit("USD", "600000000000000000000000", now=1.0)
    assert info.value.field == "amount"
    assert state(account) == before


def test_a_fee_beyond_28_digits_is_refused() -> None:
    """A withdrawal fee that cannot be represented is refused, naming fee."""
    account = make_account()
    account.deposit("USD", "100", now=0.0)
    with pytest.raises(InvalidAmountError) as info:
        account.withdraw("USD", "1", now=1.0, fee="1e30")
    assert info.value.field == "fee"


@pytest.mark.parametrize(
    ("side", "volume", "price", "field"),
    [
        ("buy", "100000000000000000", "10000000", "volume × price"),
        ("sell", "100000000000000000", "10000000", "volume × price"),
        ("buy", "1", "1e30", "price"),
        ("sell", "1e20", "100", "volume"),
    ],
    ids=["buy-cost", "sell-proceeds", "price", "volume"],
)
def test_orders_the_simulator_cannot_represent_are_refused(
    side: str, volume: str, price: str, field: str
) -> None:
    """An order whose volume, price or cost cannot be written in 28 digits: InvalidAmountError."""
    account = make_account()
    account.deposit("USD", "1000", now=0.0)
    account.deposit("BTC", "1", now=0.0)
    before = state(account)
    with pytest.raises(InvalidAmountError) as info:
        account.place_order("BTC/USD", side, "limit", volume, now=1.0, limit_price=price)
    assert info.value.field == field
    assert state(account) == before


def test_a_fill_whose_proceeds_cannot_be_represented_is_refused() -> None:
    """A sell filled far above its limit with unrepresentable proceeds: refused, order untouched."""
    account = make_account()
    account.deposit("BTC", "1", now=0.0)
    order = account.place_order("BTC/USD", "sell", "limit", "1", now=1.0, limit_price="60000")
    before = state(account)
    with pytest.raises(InvalidAmountError) as info:
        account.fill(order.order_id, "1", "1e25", now=2.0)
    assert info.value.field == "volume × price"
    assert state(account) == before


def _decimals_strategy() -> st.SearchStrategy[Decimal]:
    """Positive decimals of any size and precision, most of them absurd."""
    return st.builds(
        lambda digits, exponent: Decimal(digits).scaleb(exponent),
        st.integers(min_value=1, max_value=10**40),
        st.integers(min_value=-40, max_value=20),
    )


@settings(max_examples=300, deadline=None)
@given(
    deposits=st.lists(
        st.tuples(st.sampled_from(["BTC", "USD", "ETH"]), _decimals_strategy()), max_size=4
    ),
    orders=st.lists(
        st.tuples(st.sampled_from(["buy", "sell"]), _decimals_strategy(), _decimals_strategy()),
        max_size=3,
    ),
)
def test_anything_accepted_reaches_subscribers_exactly(
    deposits: list[tuple[str, Decimal]], orders: list[tuple[str, Decimal, Decimal]]
) -> None:
    """Every operation is refused with nothing changed, or each of its events encodes exactly."""
    account = make_account()
    account.deposit("USD", "1000000", now=0.0)
    account.deposit("BTC", "100", now=0.0)
    events: list[AccountEvent] = []
    account.subscribe(events.append)
    operations = [
        lambda asset=asset, amount=amount: account.deposit(asset, amount, now=1.0)
        for asset, amount in deposits
    ] + [
        lambda side=side, qty=qty, price=price: account.place_order(
            "BTC/USD", side, "limit", qty, now=2.0, limit_price=price
        )
        for side, qty, price in orders
    ]
    for operation in operations:
        before, seen = state(account), len(events)
        try:
            operation()
        except (ExchangeError, InvalidAmountError):
            assert state(account) == before
            assert len(events) == seen
    for event in events:
        if isinstance(event, LedgerEntry):
            update = decode_message(balances_update_frame(event, 1))
            assert isinstance(update, BalancesUpdateMessage)
            (item,) = update.data
            assert (item.amount, item.fee, item.balance) == (event.amount, event.fee, event.balance)
        else:
            message = decode_message(
                executions_frame("update", [execution_item(event, account.instruments)], 1)
            )
            assert isinstance(message, ExecutionsMessage)
            (item,) = message.data
            if item.order_qty is not None:
                assert item.order_qty == event.order.order_qty
            if item.limit_price is not None:
                assert item.limit_price == event.order.limit_price
    snapshot = decode_message(balances_snapshot_frame(account, 1))
    assert isinstance(snapshot, BalancesSnapshotMessage)
    assert {a.asset: a.balance for a in snapshot.data} == {
        asset: account.total(asset) for asset in account.assets()
    }


def test_client_order_ids_follow_the_order_and_are_checked() -> None:
    """cl_ord_id is kept on the order and its events, unique among open orders, Kraken's shapes."""
    account = make_account()
    account.deposit("USD", "1000", now=0.0)
    events: list[AccountEvent] = []
    account.subscribe(events.append)
    order = account.place_order(
        "BTC/USD", "buy", "limit", "0.01", now=0.0, limit_price="100", cl_ord_id="strat-a-1"
    )
    assert order.cl_ord_id == "strat-a-1"
    account.cancel_order(order.order_id, now=0.0)
    orders = [e for e in events if isinstance(e, OrderEvent)]
    assert [e.exec_type for e in orders] == ["pending_new", "new", "canceled"]
    items = [execution_item(e, Instruments()) for e in orders if e.exec_type != "new"]
    assert {item.cl_ord_id for item in items} == {"strat-a-1"}
    account.place_order(
        "BTC/USD", "buy", "limit", "0.01", now=0.0, limit_price="100", cl_ord_id="strat-a-2"
    )
    for bad in ("strat-a-2", "x" * 19, "with space", ""):
        with pytest.raises(ExchangeError, match="cl_ord_id"):
            account.place_order(
                "BTC/USD", "buy", "limit", "0.01", now=0.0, limit_price="100", cl_ord_id=bad
            )
    with pytest.raises(ExchangeError, match="cl_ord_id"):
        account.place_order(
            "BTC/USD", "buy", "limit", "0.01", now=0.0, limit_price="1", cl_ord_id="a", userref=1
        )
    uuid = "6d1b345e-2821-40e2-ad83-4ecb18a06876"
    placed = account.place_order(
        "BTC/USD", "buy", "limit", "0.01", now=0.0, limit_price="100", cl_ord_id=uuid
    )
    assert placed.cl_ord_id == uuid
