"""Wire formatting: REST amount strings, WebSocket number tokens, envelopes, holds."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from balance_manager.simulator.wire import (
    encode_json,
    format_amount,
    hold_for_order,
    rest_envelope,
    rfc1123,
    rfc3339,
    wire_number,
)


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        ("1.2435", 10, "1.2435000000"),
        ("25435.21", 4, "25435.2100"),
        ("3E-9", 10, "0.0000000030"),
        ("500000", 8, "500000.00000000"),
    ],
)
def test_rest_amounts_have_the_assets_decimals(value: str, decimals: int, text: str) -> None:
    """REST amounts are strings with exactly the asset's decimals (§4.2)."""
    assert format_amount(Decimal(value), decimals) == text


@pytest.mark.parametrize(
    ("value", "token"),
    [("0.0050000000", b"0.005"), ("0", b"0.0"), ("500", b"500"), ("1E-8", b"0.00000001")],
)
def test_ws_numbers_look_like_the_documented_ones(value: str, token: bytes) -> None:
    """Numbers are written plainly, like the fixtures: 0.005, 0.0, 500."""
    assert bytes(wire_number(Decimal(value))) == token


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=10, min_value=-(10**9), max_value=10**9
    )
)
def test_ws_numbers_round_trip_exactly(value: Decimal) -> None:
    """Any amount written as a JSON number decodes back to the same value."""
    decoded = json.loads(encode_json({"v": wire_number(value)}), parse_float=Decimal)
    assert Decimal(decoded["v"]) == value


def test_big_connection_ids_survive_json() -> None:
    """Integers above 2**63 are written exactly."""
    assert json.loads(encode_json({"id": 13834774380200032777}))["id"] == 13834774380200032777


def test_envelopes_match_krakens_shapes() -> None:
    """Success carries an empty error list and a result; errors carry only the error list."""
    assert json.loads(rest_envelope({"a": "1"})) == {"error": [], "result": {"a": "1"}}
    assert json.loads(rest_envelope(errors=["EAPI:Invalid nonce"])) == {
        "error": ["EAPI:Invalid nonce"]
    }


def test_times_are_formatted_like_krakens() -> None:
    """RFC3339 with microseconds and a Z; rfc1123 with a two-digit year."""
    assert rfc3339(1695378222.925034) == "2023-09-22T10:23:42.925034Z"
    assert rfc1123(1688669448) == "Thu, 06 Jul 23 18:50:48 +0000"


def test_hold_of_a_buy_covers_cost_and_fee_rounded_up() -> None:
    """A buy's hold is qty * price * (1 + fee), rounded up to the quote decimals."""
    fee = Decimal("0.0026")
    hold = hold_for_order("buy", "limit", Decimal("0.005"), Decimal("26599.9"), fee, 4)
    assert hold == Decimal("133.3453")
    assert hold_for_order("sell", "limit", Decimal("0.3"), Decimal(1), Decimal("0.0026"), 4) == (
        Decimal("0.3")
    )
    assert hold_for_order("buy", "limit", Decimal(0), Decimal(1), Decimal("0.0026"), 4) == 0
