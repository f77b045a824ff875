"""Raw payload shapes read exactly, per venue (sans-I/O).

The payloads follow each venue's public API documentation, page named per
test; they are written here, not captured (no network in tests).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, strategies as st

from balance_manager.ccxt.shapes import (
    BinanceShape,
    KrakenShape,
    OkxShape,
    UnifiedShape,
    optional_amount,
    parse_amount,
    shape_for,
)
from balance_manager.exceptions import ProtocolError

D = Decimal


def code(name: str) -> str:
    """A stand-in for ccxt's currency codes."""
    return {"XXBT": "BTC", "XBT": "BTC", "ZUSD": "USD", "XETH": "ETH"}.get(name, name.upper())


# -- amounts ---------------------------------------------------------------------------


def test_strings_and_integers_are_exact_floats_are_not() -> None:
    """A string keeps its digits; an int is exact; a float reads through repr and is inexact."""
    assert parse_amount("1.2435000000", "$") == (D("1.2435000000"), True)
    assert parse_amount(250, "$") == (D(250), True)
    assert parse_amount(0.1, "$") == (D("0.1"), False)


def test_a_missing_or_empty_amount_is_not_zero() -> None:
    """A missing amount field is refused, not read as an exact zero (only optional ones are)."""
    for missing in (None, "", "  "):
        with pytest.raises(ProtocolError, match=r"missing|empty"):
            parse_amount(missing, "$.x")
        assert optional_amount(missing, "$.x") == (D(0), True)
    assert optional_amount("1.5", "$.x") == (D("1.5"), True)


@pytest.mark.parametrize(
    ("shape_read", "path"),
    [
        (
            lambda: BinanceShape().rest({"balances": [{"asset": "BTC", "locked": "0"}]}, code),
            "free",
        ),
        (
            lambda: BinanceShape().rest({"balances": [{"asset": "BTC", "free": "1"}]}, code),
            "locked",
        ),
        (
            lambda: (
                BinanceShape()
                .book()
                .feed({"e": "outboundAccountPosition", "B": [{"a": "BTC", "l": "0.5"}]}, code)
            ),
            "$.B[0].f",
        ),
        (
            lambda: OkxShape().rest(
                {"code": "0", "data": [{"details": [{"ccy": "BTC", "frozenBal": "0"}]}]}, code
            ),
            "cashBal",
        ),
        (
            lambda: OkxShape().rest(
                {
                    "code": "0",
                    "data": [{"details": [{"ccy": "BTC", "cashBal": "", "frozenBal": "0"}]}],
                },
                code,
            ),
            "cashBal",
        ),
        (
            lambda: KrakenShape().rest(
                {"error": [], "result": {"XXBT": {"hold_trade": "0"}}}, code
            ),
            "balance",
        ),
        (
            lambda: KrakenShape().rest({"error": [], "result": {"XXBT": {"balance": "1"}}}, code),
            "hold_trade",
        ),
    ],
)
def test_a_payload_without_its_amount_is_refused(shape_read: Any, path: str) -> None:
    """Every venue's main amount fields are required: missing is a ProtocolError naming them.

    Before, a payload that lost its amount set the asset to an exact zero.
    """
    with pytest.raises(ProtocolError) as info:
        shape_read()
    assert path in (info.value.path or "")


def test_kraken_credit_fields_are_optional() -> None:
    """Kraken sends credit and credit_used only for accounts with a credit line: absent is zero."""
    reading = KrakenShape().rest(
        {"error": [], "result": {"XXBT": {"balance": "1", "hold_trade": "0"}}}, code
    )
    assert (reading.balances["BTC"].credit, reading.balances["BTC"].credit_used) == (D(0), D(0))


def test_kraken_stream_entry_without_its_balance_is_refused() -> None:
    """A snapshot wallet or an update without ``balance`` is refused, not zero."""
    book = KrakenShape().book()
    snapshot = {
        "channel": "balances",
        "type": "snapshot",
        "sequence": 1,
        "data": [{"asset": "BTC", "wallets": [{"type": "spot", "id": "main"}]}],
    }
    with pytest.raises(ProtocolError, match="missing"):
        book.feed(snapshot, code)
    book.feed(KRAKEN_SNAPSHOT, code)
    update = kraken_update(2, 5010)
    data = update["data"]
    assert isinstance(data, list)
    del data[0]["balance"]
    with pytest.raises(ProtocolError, match="missing"):
        book.feed(update, code)


@pytest.mark.parametrize("bad", ["abc", "NaN", "1e", float("nan"), float("inf"), True, [1]])
def test_non_amounts_are_refused_naming_the_path(bad: object) -> None:
    """Text that is no number, NaN, infinity or a bool is a ProtocolError naming where."""
    with pytest.raises(ProtocolError) as info:
        parse_amount(bad, "$.balances[3].free")
    assert info.value.path == "$.balances[3].free"


@given(st.decimals(allow_nan=False, allow_infinity=False, places=10, max_value=10**12))
def test_any_decimal_string_round_trips(value: Decimal) -> None:
    """Whatever the venue writes as a decimal string comes back equal, exactly."""
    assert parse_amount(str(value), "$") == (value, True)


# -- Binance ---------------------------------------------------------------------------

# developers.binance.com, Spot API: "Account information (USER_DATA)", GET /api/v3/account.
BINANCE_ACCOUNT = {
    "makerCommission": 15,
    "takerCommission": 15,
    "canTrade": True,
    "updateTime": 1_700_000_000_123,
    "accountType": "SPOT",
    "balances": [
        {"asset": "BTC", "free": "4723846.89208129", "locked": "0.00000000"},
        {"asset": "LTC", "free": "4763368.68006011", "locked": "0.12000000"},
        {"asset": "USDT", "free": "0.00000001", "locked": "123456789012.12345678"},
    ],
    "permissions": ["SPOT"],
    "uid": 354937868,
}

# developers.binance.com, Spot API: "User Data Stream Events", Account Update.
BINANCE_POSITION = {
    "e": "outboundAccountPosition",
    "E": 1_564_034_571_105,
    "u": 1_564_034_571_073,
    "B": [{"a": "ETH", "f": "10000.000000", "l": "0.000000"}],
}
# Same page, Balance Update: a delta, followed by an outboundAccountPosition.
BINANCE_BALANCE_UPDATE = {
    "e": "balanceUpdate",
    "E": 1_573_200_697_110,
    "a": "BTC",
    "d": "100.00000000",
    "T": 1_573_200_697_068,
}


def test_binance_account_reads_free_plus_locked_exactly() -> None:
    """balance = free + locked, hold = locked, 20 significant digits kept."""
    reading = BinanceShape().rest(BINANCE_ACCOUNT, code)
    assert reading.complete
    assert reading.exchange_time == pytest.approx(1_700_000_000.123)
    usdt = reading.balances["USDT"]
    assert usdt.balance == D("123456789012.12345679")
    assert usdt.hold_trade == D("123456789012.12345678")
    assert usdt.exact
    ltc = reading.balances["LTC"]
    assert (ltc.balance, ltc.hold_trade) == (D("4763368.80006011"), D("0.12"))


def test_binance_stream_position_is_absolute_and_partial() -> None:
    """outboundAccountPosition sets the assets it lists; balanceUpdate deltas are not applied."""
    book = BinanceShape().book()
    reading = book.feed(BINANCE_POSITION, code)
    assert reading is not None
    assert not reading.complete
    assert reading.balances["ETH"].balance == D("10000.000000")
    assert reading.balances["ETH"].hold_trade == D(0)
    assert reading.exchange_time == pytest.approx(1_564_034_571.073)
    assert book.feed(BINANCE_BALANCE_UPDATE, code) is None


def test_binance_websocket_api_wraps_events() -> None:
    """The WebSocket API's user data subscription wraps the same event under "event"."""
    reading = BinanceShape().book().feed({"subscriptionId": 0, "event": BINANCE_POSITION}, code)
    assert reading is not None
    assert set(reading.balances) == {"ETH"}


def test_binance_bad_shape_names_the_path() -> None:
    """A balance without an amount string of a number is refused with its JSON path."""
    with pytest.raises(ProtocolError) as info:
        BinanceShape().rest({"balances": [{"asset": "BTC", "free": "x", "locked": "0"}]}, code)
    assert info.value.path == "$.balances[0].free"


def test_binance_capabilities() -> None:
    """Binance's stream is exact, has holds, and sends nothing until a change."""
    caps = shape_for("binance").capabilities
    assert (caps.exact_rest, caps.exact_stream, caps.holds) == (True, True, True)
    assert not caps.snapshot_on_subscribe


# -- OKX --------------------------------------------------------------------------------

# okx.com/docs-v5: "Trading Account: Get balance", GET /api/v5/account/balance.
OKX_BALANCE = {
    "code": "0",
    "data": [
        {
            "totalEq": "41624.32",
            "uTime": "1705474164160",
            "details": [
                {
                    "availBal": "4834.317093622894",
                    "cashBal": "4850.435693622894",
                    "ccy": "USDT",
                    "eq": "4992.890093622894",
                    "frozenBal": "16.1186",
                    "ordFrozen": "16.1186",
                    "uTime": "1705449605015",
                },
                {"availBal": "1", "cashBal": "1", "ccy": "BTC", "frozenBal": "0", "eq": "1"},
            ],
        }
    ],
    "msg": "",
}

# okx.com/docs-v5: "WebSocket Private Channel: Account channel", push data.
OKX_PUSH = {
    "arg": {"channel": "account", "uid": "44*********584"},
    "eventType": "event_update",
    "curPage": 1,
    "lastPage": True,
    "data": [
        {
            "uTime": "1705564223311",
            "details": [
                {"ccy": "USDT", "cashBal": "4850.4", "frozenBal": "0", "availBal": "4850.4"}
            ],
        }
    ],
}


def test_okx_balance_reads_cash_and_frozen_exactly() -> None:
    """balance = cashBal, hold = frozenBal, free = availBal, all exact."""
    reading = OkxShape().rest(OKX_BALANCE, code)
    usdt = reading.balances["USDT"]
    assert usdt.balance == D("4850.435693622894")
    assert usdt.hold_trade == D("16.1186")
    assert usdt.balance - usdt.hold_trade == D("4834.317093622894")
    assert usdt.exact
    assert reading.exchange_time == pytest.approx(1_705_474_164.160)


def test_okx_error_code_is_refused() -> None:
    """A non-zero OKX code is not read as an empty account."""
    with pytest.raises(ProtocolError, match="51000"):
        OkxShape().rest({"code": "51000", "data": [], "msg": "Parameter error"}, code)


def test_okx_stream_snapshot_then_updates() -> None:
    """The subscription's one-page snapshot is complete; later pushes are partial."""
    book = OkxShape().book()
    assert book.feed({"event": "subscribe", "arg": {"channel": "account"}}, code) is None
    snapshot = book.feed({**OKX_PUSH, "eventType": "snapshot", "data": OKX_BALANCE["data"]}, code)
    assert snapshot is not None
    assert snapshot.complete
    assert set(snapshot.balances) == {"USDT", "BTC"}
    update = book.feed(OKX_PUSH, code)
    assert update is not None
    assert not update.complete
    assert update.balances["USDT"].balance == D("4850.4")


def okx_page(current: int, last: bool, ccy: str, cash: str) -> dict[str, object]:
    """One page of an OKX ``account`` snapshot (okx.com/docs-v5: Account channel)."""
    return {
        **OKX_PUSH,
        "eventType": "snapshot",
        "curPage": current,
        "lastPage": last,
        "data": [
            {"uTime": "1705564223311", "details": [{"ccy": ccy, "cashBal": cash, "frozenBal": "0"}]}
        ],
    }


def test_okx_paged_snapshot_is_one_complete_reading() -> None:
    """Pages are collected until the last one, then read as one complete snapshot.

    Before, no page was complete: a venue sending its snapshot in pages never
    streamed (the source waited for a complete one until it timed out).
    """
    book = OkxShape().book()
    assert book.feed(okx_page(1, False, "BTC", "1.5"), code) is None
    assert book.feed(okx_page(2, False, "ETH", "3"), code) is None
    reading = book.feed(okx_page(3, True, "USDT", "100"), code)
    assert reading is not None
    assert reading.complete
    assert {a: v.balance for a, v in reading.balances.items()} == {
        "BTC": D("1.5"),
        "ETH": D(3),
        "USDT": D(100),
    }


def test_okx_event_between_pages_is_newer_than_the_snapshot() -> None:
    """An event between two pages is read at once; the snapshot it interrupts keeps it."""
    book = OkxShape().book()
    assert book.feed(okx_page(1, False, "USDT", "100"), code) is None
    event = book.feed(OKX_PUSH, code)
    assert event is not None
    assert not event.complete
    assert event.balances["USDT"].balance == D("4850.4")
    reading = book.feed(okx_page(2, True, "USDT", "100"), code)
    assert reading is not None
    assert reading.complete
    assert reading.balances["USDT"].balance == D("4850.4")


def test_okx_page_out_of_turn_is_refused() -> None:
    """A lost page (2 after nothing, 3 after 1) resyncs rather than give a partial account."""
    book = OkxShape().book()
    with pytest.raises(ProtocolError, match="page 2 out of turn"):
        book.feed(okx_page(2, True, "BTC", "1"), code)
    book.feed(okx_page(1, False, "BTC", "1"), code)
    with pytest.raises(ProtocolError, match="page 3 out of turn"):
        book.feed(okx_page(3, True, "ETH", "1"), code)


# -- Kraken ---------------------------------------------------------------------------

# docs.kraken.com: Spot REST "Get Extended Balance" (BalanceEx).
KRAKEN_BALANCE_EX = {
    "error": [],
    "result": {
        "XXBT": {"balance": "1.2435000000", "hold_trade": "0.2500000000"},
        "XBT.F": {"balance": "0.0100000000", "hold_trade": "0.0000000000"},
        "DOT.S": {"balance": "50.0000000000", "hold_trade": "0.0000000000"},
        "ZUSD": {"balance": "25435.2100", "hold_trade": "0.0000", "credit": "100.0000"},
    },
}

# docs.kraken.com: Spot WebSocket v2 "Balances": a snapshot, then an update.
KRAKEN_SNAPSHOT = {
    "channel": "balances",
    "type": "snapshot",
    "sequence": 1,
    "data": [
        {
            "asset": "USDT",
            "asset_class": "currency",
            "balance": 6000,
            "wallets": [
                {"type": "spot", "id": "main", "balance": 5000},
                {"type": "earn", "id": "liquid", "balance": 1000},
                {"type": "earn", "id": "bonded", "balance": 2.5},
            ],
        }
    ],
}


def test_kraken_balance_ex_folds_suffixes_exactly() -> None:
    """.F is tradable, other suffixes are earn; holds and credit are kept."""
    reading = KrakenShape().rest(KRAKEN_BALANCE_EX, code)
    btc = reading.balances["BTC"]
    assert (btc.balance, btc.hold_trade, btc.earn) == (D("1.2535"), D("0.25"), D(0))
    assert reading.balances["DOT"].earn == D(50)
    assert reading.balances["DOT"].balance == D(0)
    assert reading.balances["USD"].credit == D(100)
    assert all(v.exact for v in reading.balances.values())


def test_kraken_stream_wallets_and_floats() -> None:
    """Spot and liquid are tradable, bonded is earn; a float wallet makes the asset inexact."""
    book = KrakenShape().book()
    snapshot = book.feed(KRAKEN_SNAPSHOT, code)
    assert snapshot is not None
    assert snapshot.complete
    usdt = snapshot.balances["USDT"]
    assert (usdt.balance, usdt.earn, usdt.hold_trade) == (D(6000), D("2.5"), None)
    assert not usdt.exact


def test_kraken_stream_update_of_one_wallet_keeps_the_others() -> None:
    """An update carries one wallet's balance after the entry: other wallets stay."""
    book = KrakenShape().book()
    book.feed(KRAKEN_SNAPSHOT, code)
    update = {
        "channel": "balances",
        "type": "update",
        "sequence": 2,
        "data": [
            {
                "asset": "USDT",
                "amount": 10,
                "fee": 0,
                "balance": 5010,
                "wallet_type": "spot",
                "wallet_id": "main",
                "type": "deposit",
            }
        ],
    }
    reading = book.feed(update, code)
    assert reading is not None
    assert not reading.complete
    assert reading.balances["USDT"].balance == D(6010)
    assert reading.balances["USDT"].earn == D("2.5")


def test_kraken_update_carrying_the_all_wallet_total_is_understood() -> None:
    """When the update's balance is the asset's all-wallet total, the wallet is derived."""
    book = KrakenShape().book()
    book.feed(KRAKEN_SNAPSHOT, code)
    total = {
        "channel": "balances",
        "type": "update",
        "sequence": 2,
        "data": [
            {
                "asset": "USDT",
                "amount": "10",
                "fee": "0",
                "balance": "6012.5",
                "wallet_type": "spot",
                "wallet_id": "main",
            }
        ],
    }
    reading = book.feed(total, code)
    assert reading is not None
    assert reading.balances["USDT"].balance == D(6010)


def kraken_update(sequence: int, balance: int, ledger_id: str = "L1") -> dict[str, object]:
    """A Kraken balances update of USDT's spot wallet (docs.kraken.com: Balances)."""
    return {
        "channel": "balances",
        "type": "update",
        "sequence": sequence,
        "data": [
            {
                "asset": "USDT",
                "amount": 10,
                "fee": 0,
                "balance": balance,
                "wallet_type": "spot",
                "wallet_id": "main",
                "ledger_id": ledger_id,
            }
        ],
    }


def test_kraken_sequence_gap_step_back_and_changed_repeat_are_refused() -> None:
    """A lost frame (gap), a reordered one (step back) or a repeat with other content resyncs."""
    book = KrakenShape().book()
    book.feed(KRAKEN_SNAPSHOT, code)
    assert book.feed(kraken_update(2, 5010), code) is not None
    with pytest.raises(ProtocolError, match="gap: got 4 after 2"):
        book.feed(kraken_update(4, 5030), code)
    book = KrakenShape().book()
    book.feed(KRAKEN_SNAPSHOT, code)
    book.feed(kraken_update(2, 5010), code)
    book.feed(kraken_update(3, 5020, "L2"), code)
    with pytest.raises(ProtocolError, match="out of order: got 1 after 3"):
        book.feed(kraken_update(1, 5000, "L0"), code)
    with pytest.raises(ProtocolError, match="out of order: got 2 after 3"):
        book.feed(kraken_update(2, 5011), code)


def test_kraken_exact_repeat_is_dropped() -> None:
    """The same message twice (same sequence, same content) is read once."""
    book = KrakenShape().book()
    book.feed(KRAKEN_SNAPSHOT, code)
    assert book.feed(kraken_update(2, 5010), code) is not None
    assert book.feed(kraken_update(2, 5010), code) is None
    reading = book.feed(kraken_update(3, 5020, "L2"), code)
    assert reading is not None
    assert reading.balances["USDT"].balance == D(6020)


def test_kraken_balances_message_without_a_sequence_is_refused() -> None:
    """Kraken documents a sequence on every balances message: without one, order is unknown."""
    book = KrakenShape().book()
    message = {k: v for k, v in KRAKEN_SNAPSHOT.items() if k != "sequence"}
    with pytest.raises(ProtocolError, match="without a sequence"):
        book.feed(message, code)


def test_other_messages_are_not_balances() -> None:
    """Heartbeats and other channels read as nothing."""
    book = KrakenShape().book()
    assert book.feed({"channel": "heartbeat"}, code) is None
    assert book.feed("pong", code) is None


# -- any other venue ---------------------------------------------------------------------


def test_unknown_venues_read_ccxt_floats_marked_inexact() -> None:
    """A venue without a raw reader is read from ccxt's unified floats, inexact."""
    shape = shape_for("bitstamp")
    assert isinstance(shape, UnifiedShape)
    assert not shape.reads_raw
    unified = {
        "info": {},
        "timestamp": None,
        "BTC": {"free": 0.75, "used": 0.25, "total": 1.0},
        "XRP": {"free": None, "used": None, "total": 12.5},
        "total": {"BTC": 1.0, "XRP": 12.5},
    }
    reading = shape.unified(unified, code)
    assert reading.balances["BTC"].hold_trade == D("0.25")
    assert not reading.balances["BTC"].exact
    assert reading.balances["XRP"].hold_trade is None


def test_unified_asset_without_total_is_read_from_its_parts_or_refused() -> None:
    """No total: free + used when ccxt gives both; else the reading is refused, never partial.

    Before, the asset was skipped from a reading called complete, and REST then
    zeroed a held asset (BTC 2.5 -> 0).
    """
    parts = {
        "total": {"BTC": None, "USD": 100.0},
        "BTC": {"free": 2.0, "used": 0.5, "total": None},
        "USD": {"free": 100.0, "used": 0.0, "total": 100.0},
    }
    reading = UnifiedShape("bitstamp").unified(parts, code)
    assert reading.balances["BTC"].balance == D("2.5")
    assert reading.balances["BTC"].hold_trade == D("0.5")
    free_only = {**parts, "BTC": {"free": 2.5, "used": None, "total": None}}
    with pytest.raises(ProtocolError, match="BTC: no total"):
        UnifiedShape("bitstamp").unified(free_only, code)


@pytest.mark.parametrize(
    ("account", "match"),
    [
        ({"free": 3.0, "used": 5.0, "total": 1.0}, "used 5.0 > total 1.0"),
        ({"free": 3.0, "used": 0.5, "total": 1.0}, "!= total"),
    ],
)
def test_unified_parts_that_contradict_the_total_are_refused(
    account: dict[str, float], match: str
) -> None:
    """used > total, or free + used != total: the reading is refused."""
    with pytest.raises(ProtocolError, match=match):
        UnifiedShape("bitstamp").unified({"total": {"BTC": 1.0}, "BTC": account}, code)


@pytest.mark.parametrize(
    ("free", "used", "total"),
    [("1000000000", "0", "1000000000.0001"), ("1", "1", "2.00000000000000000001")],
)
def test_exact_unified_parts_must_add_up_exactly(free: str, used: str, total: str) -> None:
    """Exact parts (strings) get no float tolerance: a total 0.0001 above free + used is
    refused, not read as an exact balance with more free than the venue has."""
    account = {"free": free, "used": used, "total": total}
    with pytest.raises(ProtocolError, match="!= total"):
        UnifiedShape("bitstamp").unified({"total": {"BTC": total}, "BTC": account}, code)


def test_unified_parts_added_as_floats_are_accepted() -> None:
    """ccxt adds free and used in binary floats: 0.1 + 0.2 is its total of 0.3."""
    account = {"free": 0.1, "used": 0.2, "total": 0.1 + 0.2}
    reading = UnifiedShape("bitstamp").unified({"total": {"BTC": 0.1 + 0.2}, "BTC": account}, code)
    assert reading.balances["BTC"].hold_trade == D("0.2")
