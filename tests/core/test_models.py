"""Tests of balance_manager.core.models: Balance and BalanceChange."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, strategies as st

from balance_manager.core.amounts import ZERO
from balance_manager.core.models import AMOUNT_FIELDS, Balance, BalanceChange, Source
from balance_manager.exceptions import BalanceStateError

D = Decimal


def btc(**changes: object) -> Balance:
    fields: dict[str, object] = {"asset": "BTC", "balance": D("1.5")}
    fields.update(changes)
    return Balance(**fields)  # type: ignore[arg-type]  # test helper


# -- derived values ---------------------------------------------------------------


def test_free_is_balance_minus_hold() -> None:
    """free = balance - hold_trade when there is no credit."""
    balance = btc(hold_trade=D("0.4"))
    assert balance.free == D("1.1")


def test_free_follows_the_documented_credit_formula() -> None:
    """free = balance + credit - credit_used - hold_trade (Kraken's BalanceEx formula)."""
    balance = Balance(
        asset="USD",
        balance=D("100"),
        hold_trade=D("30"),
        credit=D("50"),
        credit_used=D("20"),
    )
    assert balance.free == D("100")


def test_total_adds_earn() -> None:
    """total = balance + earn; free ignores earn."""
    balance = btc(earn=D("2"), hold_trade=D("0.5"))
    assert balance.total == D("3.5")
    assert balance.free == D("1.0")


def test_defaults() -> None:
    """Unset amounts are zero, the source is REST and there is no exchange time."""
    balance = Balance(asset="ETH", balance=D("3"))
    assert all(getattr(balance, name) == ZERO for name in AMOUNT_FIELDS if name != "balance")
    assert balance.source is Source.REST
    assert balance.exchange_time is None


def test_timestamp_prefers_the_exchange_time() -> None:
    """timestamp is the exchange's time when known, else the local receive time."""
    assert btc(received_at=20.0).timestamp == 20.0
    assert btc(received_at=20.0, exchange_time=19.5).timestamp == 19.5


def test_age_counts_from_receipt_and_never_goes_negative() -> None:
    """age(now) is now - received_at, clamped at 0 if the clock is behind."""
    balance = btc(received_at=100.0)
    assert balance.age(112.5) == 12.5
    assert balance.age(90.0) == 0.0


# -- validation -----------------------------------------------------------------------


def test_balance_is_immutable() -> None:
    """A Balance cannot be changed after construction."""
    balance = btc()
    with pytest.raises(AttributeError):
        balance.balance = D("2")  # type: ignore[misc]  # frozen on purpose


@pytest.mark.parametrize("field", ["hold_trade", "credit", "credit_used", "earn", "balance"])
def test_nan_is_refused_naming_the_field(field: str) -> None:
    """A NaN amount raises BalanceStateError naming the asset and the field."""
    with pytest.raises(BalanceStateError) as info:
        btc(**{field: D("NaN")})
    assert info.value.field == field
    assert info.value.asset == "BTC"
    assert field in str(info.value)
    assert "finite" in str(info.value)


@pytest.mark.parametrize("field", ["hold_trade", "credit", "credit_used", "earn"])
def test_negative_is_refused_naming_the_field(field: str) -> None:
    """A negative hold, credit, credit_used or earn raises BalanceStateError naming the field."""
    with pytest.raises(BalanceStateError, match=field) as info:
        btc(**{field: D("-0.00000001")})
    assert info.value.field == field
    assert "negative" in info.value.reason


def test_negative_balance_is_allowed_to_stay_visible() -> None:
    """A negative balance is kept (reported by the negative_balance rule, not hidden)."""
    assert btc(balance=D("-1")).balance == D("-1")


def test_float_amount_is_refused_as_inexact() -> None:
    """A float amount raises BalanceStateError whose reason says floats are inexact."""
    with pytest.raises(BalanceStateError, match="inexact") as info:
        btc(hold_trade=0.1)
    assert info.value.field == "hold_trade"


def test_text_and_int_amounts_become_decimals() -> None:
    """str and int amounts are converted to exact Decimals."""
    balance = Balance(asset="USD", balance="21.9050", hold_trade=3)  # type: ignore[arg-type]
    assert type(balance.balance) is Decimal
    assert str(balance.balance) == "21.9050"
    assert balance.hold_trade == D(3)


@pytest.mark.parametrize("asset", ["", None, 5])
def test_asset_must_be_a_non_empty_string(asset: object) -> None:
    """An empty or non-str asset raises BalanceStateError on the asset field."""
    with pytest.raises(BalanceStateError) as info:
        Balance(asset=asset, balance=D(1))  # type: ignore[arg-type]  # bad on purpose
    assert info.value.field == "asset"


def test_replace_validates_again() -> None:
    """replace() returns a changed copy and refuses an impossible one."""
    balance = btc()
    assert balance.replace(hold_trade=D("1")).free == D("0.5")
    assert balance.hold_trade == ZERO
    with pytest.raises(BalanceStateError):
        balance.replace(hold_trade=D("-1"))


def test_equal_values_are_equal_and_hashable() -> None:
    """Two Balances with the same fields are equal and hash alike."""
    assert btc() == btc()
    assert hash(btc()) == hash(btc())
    assert btc() != btc(hold_trade=D("0.1"))


def test_json_round_trip_keeps_decimals_exact() -> None:
    """msgspec JSON encodes amounts as strings and decodes them back exactly and validated."""
    balance = btc(balance=D("0.0000000030"), source=Source.WEBSOCKET, received_at=5.0)
    raw = msgspec.json.encode(balance)
    assert b'"balance":"3.0E-9"' in raw  # str(Decimal), digits and exponent kept
    decoded = msgspec.json.decode(raw, type=Balance)
    assert decoded == balance
    assert decoded.balance.as_tuple() == balance.balance.as_tuple()
    bad = raw.replace(b'"hold_trade":"0"', b'"hold_trade":"-1"')
    # msgspec wraps __post_init__ errors in its ValidationError; the reason is kept.
    with pytest.raises(msgspec.ValidationError, match=r"hold_trade.*must not be negative"):
        msgspec.json.decode(bad, type=Balance)


# -- mapping access (the seed's shape) -------------------------------------------------

KEYS = [
    "asset",
    "balance",
    "free",
    "hold_trade",
    "credit",
    "credit_used",
    "earn",
    "total",
    "source",
    "timestamp",
    "exchange_time",
    "received_at",
]


def test_mapping_access_like_the_seed() -> None:
    """b['free'], b['balance'] and b['source'] read like the seed's dicts."""
    balance = btc(hold_trade=D("0.5"), source=Source.WEBSOCKET)
    assert balance["free"] == D("1.0")
    assert balance["balance"] == D("1.5")
    assert balance["asset"] == "BTC"
    assert balance["source"] == "websocket"


def test_list_dict_items_and_to_dict_agree() -> None:
    """list(b) gives the keys; dict(b.items()), dict(b) and to_dict() give the same mapping."""
    balance = btc(hold_trade=D("0.25"), received_at=7.0)
    assert list(balance) == KEYS
    assert list(balance.keys()) == KEYS
    as_items = dict(balance.items())
    assert as_items == balance.to_dict()
    assert dict(balance) == as_items
    assert as_items["free"] == D("1.25")
    assert as_items["source"] == "rest"
    assert as_items["timestamp"] == 7.0


def test_mapping_membership_len_and_get() -> None:
    """`in`, len() and get() behave like a read-only mapping; unknown keys raise KeyError."""
    balance = btc()
    assert "free" in balance
    assert "nope" not in balance
    assert len(balance) == len(KEYS)
    assert balance.get("nope", 42) == 42
    assert balance.get("free") == D("1.5")
    with pytest.raises(KeyError):
        balance["nope"]


def test_source_prints_as_its_value() -> None:
    """str(Source.WEBSOCKET) is 'websocket'."""
    assert [str(source) for source in Source] == ["websocket", "rest", "cache"]


# -- BalanceChange -------------------------------------------------------------------------


def test_change_reports_delta_and_old_values() -> None:
    """A change exposes new values, old_balance, old_free and delta = new - old balance."""
    old = btc(hold_trade=D("0.5"))
    new = btc(balance=D("2.0"), hold_trade=D("0.5"))
    change = BalanceChange(new=new, old=old, significant=True, kind="update", ledger_id="L1")
    assert change.delta == D("0.5")
    assert change["delta"] == D("0.5")
    assert change.old_balance == D("1.5")
    assert change.old_free == D("1.0")
    assert change["free"] == D("1.5")
    assert change["asset"] == "BTC"
    assert change["significant"] is True
    assert change["ledger_id"] == "L1"


def test_first_value_has_no_old_values_and_full_delta() -> None:
    """A change without an old value has old_* None and delta = the whole balance."""
    change = BalanceChange(new=btc(), kind="snapshot")
    assert change.old_balance is None
    assert change.old_free is None
    assert change.delta == D("1.5")
    assert change["kind"] == "snapshot"


def test_change_reads_every_balance_field_through() -> None:
    """Every Balance property of a change is the new Balance's."""
    new = Balance(
        asset="USD",
        balance=D("10"),
        hold_trade=D("1"),
        credit=D("5"),
        credit_used=D("2"),
        earn=D("3"),
        source=Source.WEBSOCKET,
        exchange_time=9.0,
        received_at=10.0,
    )
    change = BalanceChange(new=new)
    for name in ("asset", "balance", "free", "hold_trade", "credit", "credit_used", "earn"):
        assert getattr(change, name) == getattr(new, name)
    assert (change.total, change.source, change.timestamp) == (D("13"), Source.WEBSOCKET, 9.0)
    assert (change.exchange_time, change.received_at) == (9.0, 10.0)


def test_change_to_dict_extends_the_balance_dict() -> None:
    """to_dict() of a change holds the new balance's keys plus the change's own."""
    change = BalanceChange(new=btc(balance=D("3")), old=btc())
    data = change.to_dict()
    assert list(data) == [
        *KEYS,
        "old_balance",
        "old_free",
        "delta",
        "significant",
        "kind",
        "ledger_id",
    ]
    assert data["delta"] == D("1.5")
    assert dict(change.items()) == data


# -- properties ------------------------------------------------------------------------------

# Kraken amounts: at most 10 decimals (ledger precision) and far below 1e15.
AMOUNTS = st.decimals(min_value=0, max_value=D("1e15"), places=10, allow_nan=False)


@given(balance=AMOUNTS, hold=AMOUNTS, credit=AMOUNTS, used=AMOUNTS, negative=st.booleans())
def test_free_plus_hold_equals_balance_plus_credit_minus_used(
    balance: Decimal, hold: Decimal, credit: Decimal, used: Decimal, negative: bool
) -> None:
    """For any valid amounts, free + hold_trade == balance + credit - credit_used, exactly."""
    value = Balance(
        asset="X",
        balance=-balance if negative else balance,
        hold_trade=hold,
        credit=credit,
        credit_used=used,
    )
    assert value.free + value.hold_trade == value.balance + value.credit - value.credit_used


def test_free_is_exact_beyond_28_significant_digits() -> None:
    """free stays exact for amounts with more than 28 significant digits."""
    value = Balance(
        asset="X",
        balance=D("123456789012345678901.123456789"),  # 30 significant digits
        hold_trade=D("0.000000001"),
    )
    assert value.free == D("123456789012345678901.123456788")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"source": "websocket"}, "source"),
        ({"received_at": float("nan")}, "received_at"),
        ({"received_at": float("inf")}, "received_at"),
        ({"exchange_time": float("nan")}, "exchange_time"),
        ({"received_at": "now"}, "received_at"),
    ],
)
def test_balance_refuses_a_bad_source_or_time(changes: dict[str, object], field: str) -> None:
    """A source that is not a Source, or a time that is not finite seconds, is refused by name."""
    with pytest.raises(BalanceStateError, match=field):
        Balance("BTC", Decimal("1"), **changes)  # type: ignore[arg-type]


# -- how a balance and a change print ------------------------------------------------------


def _rest_btc(**changes: object) -> Balance:
    """BTC as REST writes it: ten decimals, a zero hold spelled 0E-10."""
    values: dict[str, object] = {
        "asset": "BTC",
        "balance": Decimal("1.2435000000"),
        "hold_trade": Decimal("0.0000000000"),
        "source": Source.REST,
        "received_at": 1_700_000_000.5,
    }
    values.update(changes)
    return Balance(**values)  # type: ignore[arg-type]  # test data built from a dict


def test_str_of_a_balance_is_one_plain_line() -> None:
    """str() reads like a sentence: plain amounts, no exponent, no noise zeros."""
    assert str(_rest_btc()) == "BTC 1.2435 (free 1.2435, held 0) via rest"
    with_hold = _rest_btc(hold_trade=Decimal("0.0003000000"), earn=Decimal("0.5"))
    assert str(with_hold) == "BTC 1.2435 (free 1.2432, held 0.0003, earn 0.5) via rest"


def test_repr_of_a_balance_shows_plain_amounts() -> None:
    """repr() names every field, with amounts in plain notation (never 0E-10 or Decimal(...))."""
    text = repr(_rest_btc(exchange_time=1_700_000_000.25))
    assert text == (
        "Balance(asset='BTC', balance=1.2435, hold_trade=0, free=1.2435, source='rest', "
        "exchange_time=1700000000.25, received_at=1700000000.5)"
    )
    assert "E-" not in repr(_rest_btc(balance=Decimal("1E-8")))


def test_repr_shows_credit_and_earn_only_when_set() -> None:
    """Credit, credit used and earn appear in repr() when they are not zero."""
    text = repr(_rest_btc(credit=Decimal("100.0000"), credit_used=Decimal("2.50"), earn=Decimal(1)))
    assert "credit=100, credit_used=2.5, earn=1" in text


def test_str_and_repr_of_a_change_show_plain_amounts() -> None:
    """A change prints old → new with a signed delta, all in plain notation."""
    old = _rest_btc()
    new = _rest_btc(balance=Decimal("1.24400000"), source=Source.WEBSOCKET)
    change = BalanceChange(new=new, old=old, significant=True, kind="update", ledger_id="L-1")
    assert str(change) == "BTC 1.2435 → 1.244 (+0.0005) via websocket"
    assert repr(change) == (
        "BalanceChange(asset='BTC', old_balance=1.2435, balance=1.244, delta=+0.0005, "
        "free=1.244, hold_trade=0, source='websocket', kind='update', significant=True, "
        "ledger_id='L-1')"
    )
    first = BalanceChange(new=old, kind="snapshot")
    assert str(first) == "BTC 1.2435 (first value) via rest"
