"""Tests of shared/codec.py and shared/batch.py: exact wire values, and what one publish carries."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from balance_manager.core.models import Balance, Source
from balance_manager.exceptions import ProtocolError
from balance_manager.shared.batch import PublishQueue
from balance_manager.shared.codec import (
    BeatEntry,
    ConnectionEntry,
    ResetEntry,
    ValueEntry,
    decode_balance,
    encode_balance,
    parse_entry,
)

amounts = st.decimals(min_value=0, max_value=10**30, places=18, allow_nan=False)


@given(
    balance=amounts,
    hold=amounts,
    earn=amounts,
    source=st.sampled_from(list(Source)),
    exchange_time=st.none() | st.floats(0, 2e9),
)
def test_a_balance_survives_the_wire_exactly(
    balance: Decimal, hold: Decimal, earn: Decimal, source: Source, exchange_time: float | None
) -> None:
    """Every field of a Balance comes back equal, amounts digit for digit."""
    value = Balance(
        "BTC", balance, hold, source, exchange_time, 1_700_000_000.25, Decimal(0), Decimal(0), earn
    )
    back = decode_balance(encode_balance(value))
    assert back == value
    assert back.free == value.free


def test_amounts_are_text_on_the_wire() -> None:
    """No amount is a JSON number (a reader could parse it as a float)."""
    wire = json.loads(encode_balance(Balance("USD", Decimal("9007199254740993.000000001"))))
    assert wire["b"] == "9007199254740993.000000001"
    assert all(not isinstance(v, float) for k, v in wire.items() if k not in {"r", "x"})


@pytest.mark.parametrize(
    "bad",
    ['{"a": "X", "b": 1.5}', '{"a": "X", "b": "01"}', '{"a": "X", "b": "1", "s": "fax"}', "[]"],
)
def test_a_bad_stored_value_is_a_protocol_error(bad: str) -> None:
    """A value that is not ours (a float amount, a bad source) is refused, not guessed."""
    with pytest.raises(ProtocolError):
        decode_balance(bad)


def test_entries_parse_by_type() -> None:
    """Each entry type reads back with its fields; unknown types are refused."""
    common = {"q": "5", "g": "gen1", "e": "3"}
    value = encode_balance(Balance("BTC", Decimal("1.5")))
    v = parse_entry(
        "1-0", {**common, "t": "v", "a": "BTC", "v": value, "k": "update", "l": "L1", "n": "99"}
    )
    assert isinstance(v, ValueEntry)
    assert (v.seq, v.generation, v.epoch, v.ledger_id, v.known_ms) == (5, "gen1", 3, "L1", 99)
    b = parse_entry(
        b"2-0", {b"t": b"b", b"q": b"6", b"g": b"gen1", b"e": b"3", b"n": b"", b"m": b"rest"}
    )
    assert isinstance(b, BeatEntry)
    assert b.confirmed_ms is None
    assert b.mode == "rest"
    assert isinstance(parse_entry("3-0", {**common, "t": "r", "why": "x"}), ResetEntry)
    c = parse_entry("4-0", {**common, "t": "c", "p": '{"state": "streaming"}'})
    assert isinstance(c, ConnectionEntry)
    assert c.payload == {"state": "streaming"}
    with pytest.raises(ProtocolError, match="unknown"):
        parse_entry("5-0", {**common, "t": "z"})
    with pytest.raises(ProtocolError):
        parse_entry("6-0", {"t": "v"})


def _age(_: Balance) -> float:
    return 0.0015


def test_take_carries_values_tags_settlements_and_a_beat_once() -> None:
    """One take holds everything pending in order, tagged by the events that made it."""
    queue = PublishQueue()
    queue.value(Balance("USD", Decimal(100)))
    mark = queue.mark()
    queue.value(Balance("USD", Decimal(90), Decimal(10)))
    assert queue.tag(mark, kind="hold", assets={"USD"})
    queue.settle(["cl-1", "cl-1", "cl-2"])
    mark = queue.mark()
    assert not queue.tag(mark, kind="update", ledger_id="L9", assets={"USD"})
    queue.history_row(Balance("USD", Decimal(90), Decimal(10)), "L9")
    queue.beat()
    payload = queue.take(age_of=_age, confirmed_age=0.25, mode="websocket")
    body = json.loads(payload.json)
    assert [v[4] for v in body["values"]] == ["refresh", "hold"]
    assert body["values"][1][2] == "80"  # free, exact text
    assert body["values"][0][3] == 2  # ms, rounded up
    assert body["settle"] == ["cl-1", "cl-2"]
    assert body["hist"][0][2] == "L9"
    assert body["beat"] == 250
    assert (payload.values, payload.settled, payload.history) == (2, 2, 1)
    again = json.loads(queue.take(age_of=_age, confirmed_age=0.25, mode="websocket").json)
    assert again["values"] == []
    assert again["beat"] == -2


def test_a_beat_without_a_live_source_confirms_nothing() -> None:
    """With no live source the beat says so (-1) rather than confirm stale values."""
    queue = PublishQueue()
    queue.beat()
    assert json.loads(queue.take(age_of=_age, confirmed_age=None, mode="cache").json)["beat"] == -1


def test_overflow_collapses_to_the_latest_values_and_keeps_ledger_rows() -> None:
    """Past max_pending, only the latest value per asset stays, as a reset; ledger rows stay."""
    queue = PublishQueue(max_pending=3)
    for n in range(5):
        mark = queue.mark()
        queue.value(Balance("BTC", Decimal(n)))
        queue.tag(mark, kind="update", ledger_id=f"L{n}")
    body = json.loads(queue.take(age_of=_age, confirmed_age=None, mode="websocket").json)
    assert body["reset"].startswith("overflow")
    assert {v[0] for v in body["values"]} == {"BTC"}
    ledger_ids = [h[2] for h in body["hist"]] + [v[5] for v in body["values"] if v[5]]
    assert sorted(ledger_ids) == ["L0", "L1", "L2", "L3", "L4"]
    assert queue.dropped_events > 0


def test_reset_replaces_everything_pending() -> None:
    """A new leader's reset sends every current value, as snapshots."""
    queue = PublishQueue()
    queue.value(Balance("BTC", Decimal(1)))
    queue.reset({"ETH": Balance("ETH", Decimal(2))}, "new leader")
    body = json.loads(queue.take(age_of=_age, confirmed_age=0.0, mode="websocket").json)
    assert body["reset"] == "new leader"
    assert [(v[0], v[4]) for v in body["values"]] == [("ETH", "snapshot")]
