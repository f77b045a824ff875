"""Tests of balance_manager.kraken.protocol.assets: names both ways, suffix policy, folding."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, strategies as st

from balance_manager.core.amounts import ZERO
from balance_manager.core.models import MAX_ASSET_NAME_LENGTH, check_asset_name
from balance_manager.exceptions import UnknownAssetError
from balance_manager.kraken.protocol.assets import (
    DEFAULT_ASSETS,
    AssetInfo,
    AssetNames,
    RestBalanceEntry,
    fold_rest_balances,
    wallet_is_tradable,
)
from balance_manager.kraken.protocol.rest import decode_balance, parse_envelope


@pytest.fixture
def names() -> AssetNames:
    """The built-in name table."""
    return AssetNames()


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("XXBT", "BTC"),
        ("XBT", "BTC"),
        ("BTC", "BTC"),
        ("xbt", "BTC"),
        ("ZUSD", "USD"),
        ("USD", "USD"),
        ("XXDG", "DOGE"),
        ("XDG", "DOGE"),
        ("DOGE", "DOGE"),
        ("XETH", "ETH"),
        ("ZEUR", "EUR"),
        ("USDT", "USDT"),
        ("DOT", "DOT"),
    ],
)
def test_every_spelling_maps_to_the_v2_name(
    names: AssetNames, spelling: str, canonical: str
) -> None:
    """REST keys, altnames and v2 names all map to the v2 name."""
    assert names.canonical(spelling) == canonical


@pytest.mark.parametrize(
    ("name", "rest_key"),
    [("BTC", "XXBT"), ("XBT", "XXBT"), ("USD", "ZUSD"), ("DOGE", "XXDG"), ("USDT", "USDT")],
)
def test_rest_key_maps_back(names: AssetNames, name: str, rest_key: str) -> None:
    """Any spelling maps back to the REST key."""
    assert names.rest_key(name) == rest_key


def test_unknown_prefix_less_names_pass_through(names: AssetNames) -> None:
    """A new, prefix-less asset keeps its name on both sides (ZEUS is not ZEUS → EUS)."""
    assert names.canonical("ZEUS") == "ZEUS"
    assert names.canonical("AAPLx") == "AAPLx"
    assert names.rest_key("ZEUS") == "ZEUS"
    assert "ZEUS" not in names


@pytest.mark.parametrize(
    "name", [["BTC"], {"BTC": 1}, None, 123, b"BTC"], ids=["list", "dict", "None", "int", "bytes"]
)
def test_names_that_are_not_text_are_unknown_assets(names: AssetNames, name: Any) -> None:
    """canonical, info, rest_key and decimals refuse a non-str with UnknownAssetError."""
    for lookup in (names.canonical, names.info, names.rest_key, names.decimals, names.split):
        with pytest.raises(UnknownAssetError, match="str"):
            lookup(name)
    assert name not in names


@pytest.mark.parametrize(
    ("name", "expected"),
    [("BTC", "BTC"), ("  xbt ", "xbt"), ("A" * 64, "A" * 64), ("ETH2.S", "ETH2.S")],
)
def test_check_asset_name_passes_sane_names_stripped(name: str, expected: str) -> None:
    """A non-empty, printable name of up to 64 characters comes back stripped."""
    assert check_asset_name(name) == expected


@pytest.mark.parametrize(
    "name",
    ["", "   ", "A" * 65, "B" * 1_000_000, "BT\x00C", "BT\nC", ["BTC"], None],
    ids=["empty", "blank", "65", "megabyte", "nul", "newline", "list", "None"],
)
def test_check_asset_name_refuses_absurd_names_briefly(name: Any) -> None:
    """Empty, over-long, control-character and non-str names: UnknownAssetError, short message."""
    with pytest.raises(UnknownAssetError) as info:
        check_asset_name(name)
    assert len(str(info.value)) < 400


def test_decimals_cache_keeps_no_absurd_keys(names: AssetNames) -> None:
    """decimals() of an over-long name answers without remembering the name."""
    assert names.decimals("Z" * 10_000) is None
    assert all(len(key) <= MAX_ASSET_NAME_LENGTH for key in names._decimals)


def test_suffixed_keys_keep_their_suffix_on_the_canonical_base(names: AssetNames) -> None:
    """XBT.F → BTC.F and split() returns (base, suffix)."""
    assert names.canonical("XBT.F") == "BTC.F"
    assert names.split("XBT.F") == ("BTC", "F")
    assert names.split("ZUSD") == ("USD", None)
    assert names.split("usd.hold") == ("USD", "HOLD")


def test_decimals_come_from_the_table(names: AssetNames) -> None:
    """Ledger decimals of the documented assets (BTC 10, USD 4) are known by any spelling."""
    assert names.decimals("XXBT") == 10
    assert names.decimals("USD") == 4
    assert names.decimals("NOPE") is None


def test_display_decimals_of_the_documented_assets_and_of_the_assets_result() -> None:
    """BTC 5, USD and EUR 2 are built in (Kraken's Assets example); the rest is learnt or None."""
    names = AssetNames()
    assert names.display_decimals("XBT") == 5
    assert names.display_decimals("ZUSD") == 2
    assert names.display_decimals("EUR") == 2
    assert names.display_decimals("DOT") is None
    assert names.display_decimals("NOPE") is None
    names.update_from_assets({"DOT": {"altname": "DOT", "decimals": 10, "display_decimals": 4}})
    assert names.display_decimals("DOT") == 4


def test_update_from_assets_learns_new_assets(fixture_json: Callable[[str], Any]) -> None:
    """The REST Assets result adds assets and replaces decimals and status."""
    names = AssetNames([])
    names.update_from_assets(fixture_json("rest_assets.json")["result"])
    assert names.known() == ["BTC", "EUR", "USD"]
    info = names.info("XXBT")
    assert info == AssetInfo("BTC", "XXBT", "XBT", 10, 5, "enabled")


def test_update_from_assets_finds_suffixed_keys_again() -> None:
    """A suffixed key learnt from Assets is found again by its own spelling."""
    names = AssetNames()
    names.update_from_assets({"XBT.M": {"altname": "XBT.M", "decimals": 10}})
    assert names.decimals("XBT.M") == 10


@pytest.mark.parametrize(
    ("wallet", "tradable"),
    [
        (("spot", "main"), True),
        (("earn", "liquid"), True),
        (("earn", "flex"), False),
        (("earn", "bonded"), False),
        (("earn", "flexible"), False),
        (("earn", "locked"), False),
        (("earn", "closed"), False),
        (("earn", "something-new"), False),
    ],
)
def test_wallet_tradability(wallet: tuple[str, str], tradable: bool) -> None:
    """Spot and earn/liquid are tradable; other earn wallets (and unknown ones) are not."""
    assert wallet_is_tradable(*wallet) is tradable


def test_fold_rest_balances_on_the_documented_balance(
    fixture_bytes: Callable[[str], bytes],
) -> None:
    """rest_balance.json folds into canonical assets with the two views."""
    raw = parse_envelope(fixture_bytes("rest_balance.json"), method="Balance", status=200)
    folded = fold_rest_balances(decode_balance(raw), AssetNames())
    assert set(folded) == {"USD", "EUR", "BTC", "ETH", "USDT", "DAI", "DOT", "ETH2"}
    usd = folded["USD"]
    assert usd.balance == Decimal("171288.6158")
    assert usd.earn == Decimal("1213029.2780")  # USD.M is not spendable
    assert usd.keys == ("ZUSD", "USD.M")
    assert folded["BTC"].balance == Decimal("1011.1908877900")
    assert folded["ETH2"].balance == Decimal("2.5885574330")
    assert folded["ETH2"].earn == Decimal("198.3970800000")


def test_fold_adds_rewards_key_to_tradable_and_holds_up() -> None:
    """.F adds to the tradable balance; holds and credit add up across keys."""
    entries = {
        "XXBT": RestBalanceEntry(Decimal("0.1"), hold_trade=Decimal("0.5")),
        "XBT.F": RestBalanceEntry(Decimal("0.9")),
        "XBT.S": RestBalanceEntry(Decimal("2")),
        "ZUSD": RestBalanceEntry(Decimal("10"), credit=Decimal("100"), credit_used=Decimal("5")),
    }
    folded = fold_rest_balances(entries, AssetNames())
    btc = folded["BTC"]
    assert (btc.balance, btc.hold_trade, btc.earn) == (Decimal("1.0"), Decimal("0.5"), Decimal("2"))
    assert (folded["USD"].credit, folded["USD"].credit_used) == (Decimal("100"), Decimal("5"))


def test_fold_keeps_a_lone_keys_amounts_as_they_are() -> None:
    """An asset with one key gets its amounts themselves (no sum from zero, ZERO kept)."""
    hold = Decimal("0.25000")
    entries = {"XXBT": RestBalanceEntry(Decimal("1.50000"), hold_trade=hold)}
    btc = fold_rest_balances(entries, AssetNames())["BTC"]
    assert btc.balance is entries["XXBT"].balance
    assert btc.hold_trade is hold
    assert (btc.earn, btc.credit, btc.credit_used) == (ZERO, ZERO, ZERO)
    assert all(amount is ZERO for amount in (btc.earn, btc.credit, btc.credit_used))
    assert str(btc.balance) == "1.50000"  # the exchange's digits, unchanged


@given(
    st.dictionaries(
        st.sampled_from(["XXBT", "XBT.F", "XBT.S", "ZUSD", "USD.M", "USDT", "USDT.B", "DOT.P"]),
        st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False),
    )
)
def test_fold_preserves_every_unit(values: dict[str, Decimal]) -> None:
    """Folding never loses or invents funds: balance + earn sums to the input."""
    entries = {key: RestBalanceEntry(value) for key, value in values.items()}
    folded = fold_rest_balances(entries, AssetNames())
    total = sum((f.balance + f.earn for f in folded.values()), Decimal(0))
    assert total == sum(values.values(), Decimal(0))


def test_default_table_is_consistent() -> None:
    """Every built-in asset maps its REST key and altname to its own name."""
    names = AssetNames(DEFAULT_ASSETS)
    for info in DEFAULT_ASSETS:
        assert names.canonical(info.rest_key) == info.name
        assert names.canonical(info.altname) == info.name
        assert names.rest_key(info.name) == info.rest_key
