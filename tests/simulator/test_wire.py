"""Number formatting for the wire: plain decimals and raw JSON number tokens."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from balance_manager.simulator.model.wire import encode_json, plain, wire_number


@pytest.mark.parametrize(
    ("value", "token"),
    [("0.0050000000", b"0.005"), ("0", b"0.0"), ("500", b"500"), ("1E-8", b"0.00000001")],
)
def test_ws_numbers_look_like_the_documented_ones(value: str, token: bytes) -> None:
    """Raw number tokens are written plainly, like the fixtures: 0.005, 0.0, 500."""
    assert bytes(wire_number(Decimal(value))) == token


@pytest.mark.parametrize(
    ("value", "text"),
    [("0.0050000000", "0.005"), ("0E-10", "0.0"), ("500.0000", "500"), ("-132.99950", "-132.9995")],
)
def test_plain_drops_trailing_zeros_and_exponents(value: str, text: str) -> None:
    """plain() keeps every significant digit and writes them the way Kraken's examples do."""
    assert str(plain(Decimal(value))) == text


decimals = st.decimals(
    allow_nan=False, allow_infinity=False, places=10, min_value=-(10**9), max_value=10**9
)


@given(decimals)
def test_ws_numbers_round_trip_exactly(value: Decimal) -> None:
    """Any amount written as a JSON number token decodes back to the same value."""
    decoded = json.loads(encode_json({"v": wire_number(value)}), parse_float=Decimal)
    assert Decimal(decoded["v"]) == value


@given(decimals)
def test_plain_is_the_same_number(value: Decimal) -> None:
    """plain() never changes the value."""
    assert plain(value) == value


def test_big_connection_ids_survive_json() -> None:
    """Integers above 2**63 are written exactly."""
    assert json.loads(encode_json({"id": 13834774380200032777}))["id"] == 13834774380200032777
