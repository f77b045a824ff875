"""Tests of kraken.protocol.ws_messages: every fixture, exact decimals, errors, encoders."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from balance_manager.credentials import Secret
from balance_manager.exceptions import ProtocolError
from balance_manager.kraken.protocol import ws_messages as wsm
from balance_manager.kraken.protocol.ws_messages import (
    HEARTBEAT,
    AssetBalance,
    BalancesSnapshotMessage,
    BalancesUpdateMessage,
    ErrorMessage,
    Execution,
    ExecutionFee,
    ExecutionsMessage,
    InstrumentMessage,
    LedgerEntry,
    MethodResponse,
    PongMessage,
    StatusMessage,
    UnknownMessage,
    WalletBalance,
    decode_message,
    decode_request,
    encode_balances_snapshot,
    encode_balances_update,
    encode_executions,
    encode_heartbeat,
    encode_method_response,
    encode_pong,
    encode_status,
    ping_request,
    subscribe_request,
    unsubscribe_request,
)

FixtureBytes = Callable[[str], bytes]


def exact_json(data: bytes | str) -> Any:
    """Parse JSON with every number as Decimal (so comparisons are exact)."""
    return json.loads(data, parse_float=Decimal, parse_int=Decimal)


# -- fixtures decode ----------------------------------------------------------------


def test_status_fixture(fixture_bytes: FixtureBytes) -> None:
    """status decodes, with a connection_id above 2**63 kept exactly."""
    message = decode_message(fixture_bytes("ws_status.json"))
    assert isinstance(message, StatusMessage)
    (info,) = message.data
    assert info.connection_id == 13834774380200032777
    assert info.connection_id > 2**63
    assert (info.system, info.api_version, info.version) == ("online", "v2", "2.0.0")


def test_heartbeat_fixture(fixture_bytes: FixtureBytes) -> None:
    """heartbeat decodes to the shared HEARTBEAT instance."""
    assert decode_message(fixture_bytes("ws_heartbeat.json")) is HEARTBEAT


def test_balances_snapshot_fixture(fixture_bytes: FixtureBytes) -> None:
    """The snapshot decodes every asset and wallet exactly."""
    message = decode_message(fixture_bytes("ws_balances_snapshot.json"))
    assert isinstance(message, BalancesSnapshotMessage)
    assert message.sequence == 1
    assets = {item.asset: item for item in message.data}
    assert set(assets) == {"BTC", "MATIC", "USD"}
    assert assets["USD"].balance == Decimal("80595.4943")
    assert assets["MATIC"].wallets == (
        WalletBalance("spot", "main", Decimal(300)),
        WalletBalance("earn", "flex", Decimal(200)),
    )
    assert type(assets["MATIC"].balance) is Decimal


def test_balances_update_deposit_fixture(fixture_bytes: FixtureBytes) -> None:
    """The deposit update decodes every ledger field."""
    message = decode_message(fixture_bytes("ws_balances_update_deposit.json"))
    assert isinstance(message, BalancesUpdateMessage)
    assert message.sequence == 2
    (entry,) = message.data
    assert entry == LedgerEntry(
        ledger_id="ADKKFF-WEA5A-CNUBHG",
        ref_id="AGBWUJRU-LAREZ-W3UFAN",
        timestamp="2023-09-22T10:23:42.925034Z",
        type="deposit",
        asset="BTC",
        asset_class="currency",
        category="deposit",
        wallet_type="spot",
        wallet_id="main",
        amount=Decimal("0.01"),
        fee=Decimal("0.0"),
        balance=Decimal("0.02"),
    )
    assert entry.time == 1695378222.925034


@pytest.mark.parametrize(
    ("name", "asset", "amount", "fee", "balance", "sequence"),
    [
        ("ws_balances_update_trade_btc_leg.json", "BTC", "-0.005", "0.0", "0.005", 9),
        ("ws_balances_update_trade_usd_leg.json", "USD", "132.9995", "0.3458", "500", 10),
    ],
)
def test_trade_leg_fixtures(
    fixture_bytes: FixtureBytes,
    name: str,
    asset: str,
    amount: str,
    fee: str,
    balance: str,
    sequence: int,
) -> None:
    """Both legs of a trade decode with their amounts and the shared ref_id."""
    message = decode_message(fixture_bytes(name))
    assert isinstance(message, BalancesUpdateMessage)
    (entry,) = message.data
    assert (entry.asset, entry.amount, entry.fee, entry.balance) == (
        asset,
        Decimal(amount),
        Decimal(fee),
        Decimal(balance),
    )
    assert entry.ref_id == "AGBB7L-HT5LX-J3BB4A"
    assert message.sequence == sequence


def test_executions_fixture(fixture_bytes: FixtureBytes) -> None:
    """The executions trade decodes its order and fill fields."""
    message = decode_message(fixture_bytes("ws_executions_update_trade.json"))
    assert isinstance(message, ExecutionsMessage)
    assert (message.type, message.sequence) == ("update", 10)
    (item,) = message.data
    assert item.order_id == "OK4GJX-KSTLS-7DZZO5"
    assert (item.exec_type, item.order_status) == ("trade", "partially_filled")
    assert (item.symbol, item.side, item.order_type) == ("BTC/USD", "sell", "limit")
    assert item.cum_qty == Decimal("0.005")
    assert item.last_price == Decimal("26599.9")
    assert item.trade_id == 62887576
    assert item.fees == (ExecutionFee("USD", Decimal("0.3458")),)
    assert item.order_qty is None  # not in a trade event


def test_instrument_fixture(fixture_bytes: FixtureBytes) -> None:
    """The instrument snapshot decodes assets (precision) and pairs (1e-08 exactly)."""
    message = decode_message(fixture_bytes("ws_instrument_snapshot.json"))
    assert isinstance(message, InstrumentMessage)
    precision = {asset.id: asset.precision for asset in message.data.assets}
    assert precision == {"USD": 4, "BTC": 10, "XRP": 8}
    btc_usd = message.data.pairs[0]
    assert (btc_usd.base, btc_usd.quote) == ("BTC", "USD")
    assert btc_usd.qty_increment == Decimal("1E-8")
    assert str(btc_usd.qty_increment) == "1E-8"
    assert message.data.pairs[1].position_limit_long is None


def test_subscribe_ack_fixture(fixture_bytes: FixtureBytes) -> None:
    """The balances subscribe acknowledgement decodes with its result."""
    message = decode_message(fixture_bytes("ws_balances_subscribe_ack.json"))
    assert isinstance(message, MethodResponse)
    assert (message.method, message.success) == ("subscribe", True)
    assert message.result is not None
    assert (message.result.channel, message.result.snapshot) == ("balances", True)
    assert message.time_in == "2023-10-16T13:29:13.111530Z"
    assert message.req_id is None


def test_unsubscribe_ack_fixture(fixture_bytes: FixtureBytes) -> None:
    """The unsubscribe acknowledgement decodes."""
    message = decode_message(fixture_bytes("ws_balances_unsubscribe_ack.json"))
    assert isinstance(message, MethodResponse)
    assert message.method == "unsubscribe"
    assert message.result is not None
    assert message.result.channel == "balances"


def test_pong_fixture(fixture_bytes: FixtureBytes) -> None:
    """The pong decodes with its req_id and times."""
    message = decode_message(fixture_bytes("ws_pong.json"))
    assert isinstance(message, PongMessage)
    assert message.req_id == 101
    assert message.time_out == "2023-09-24T14:10:23.799703Z"
    assert message.warnings == ()


@pytest.mark.parametrize(
    ("name", "method", "channel"),
    [
        ("ws_balances_subscribe_request.json", "subscribe", "balances"),
        ("ws_balances_unsubscribe_request.json", "unsubscribe", "balances"),
        ("ws_ping.json", "ping", None),
    ],
)
def test_request_fixtures_decode_as_requests(
    fixture_bytes: FixtureBytes, name: str, method: str, channel: str | None
) -> None:
    """Client requests decode with decode_request; the token is kept as a Secret."""
    request = decode_request(fixture_bytes(name))
    assert (request.method, request.channel) == (method, channel)
    if channel is not None:
        assert request.token == Secret("G38a1tGFzqGiUCmnegBcm8d4nfP3tytiNQz6tkCBYXY")
        assert "G38a1t" not in repr(request)
    else:
        assert request.req_id == 101


# -- exact numbers ----------------------------------------------------------------------


def update_frame(**overrides: Any) -> str:
    """A compact balances update frame with one entry, fields overridable (raw JSON text)."""
    fields = {
        "ledger_id": '"L1"',
        "ref_id": '"R1"',
        "timestamp": '"2023-09-22T10:23:42.925034Z"',
        "type": '"deposit"',
        "asset": '"BTC"',
        "asset_class": '"currency"',
        "category": '"deposit"',
        "wallet_type": '"spot"',
        "wallet_id": '"main"',
        "amount": "0.01",
        "fee": "0.0",
        "balance": "0.02",
    }
    fields.update(overrides)
    entry = ",".join(f'"{key}":{value}' for key, value in fields.items() if value is not None)
    return f'{{"channel":"balances","type":"update","data":[{{{entry}}}],"sequence":2}}'


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("1e-08", Decimal("1E-8")),
        ("0.1", Decimal("0.1")),
        ("500", Decimal(500)),
        ("0.0", Decimal("0.0")),
        ("-0.005", Decimal("-0.005")),
        ("1234567890.12345678901234567890", Decimal("1234567890.12345678901234567890")),
        ("0.123456789012345678901234567890", Decimal("0.123456789012345678901234567890")),
        ("123456789012345678901234567890", Decimal("123456789012345678901234567890")),
    ],
)
def test_numbers_decode_exactly(literal: str, expected: Decimal) -> None:
    """JSON numbers become Decimals with every digit, never via float."""
    message = decode_message(update_frame(balance=literal))
    assert isinstance(message, BalancesUpdateMessage)
    value = message.data[0].balance
    assert value == expected
    assert value.as_tuple() == expected.as_tuple()


def test_strings_are_also_exact() -> None:
    """A balance sent as a string (not Kraken's v2 form) still decodes exactly."""
    message = decode_message(update_frame(balance='"0.02"'))
    assert isinstance(message, BalancesUpdateMessage)
    assert message.data[0].balance == Decimal("0.02")


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "path", "words"),
    [
        (update_frame(balance="true"), "$.data[0].balance", "Expected `decimal`, got `bool`"),
        (update_frame(balance='"NaN"'), "$.data[0].balance", "finite"),
        (update_frame(amount='"Infinity"'), "$.data[0].amount", "finite"),
        (update_frame(balance=None), "$.data[0]", "missing required field `balance`"),
        (update_frame(asset="5"), "$.data[0].asset", "Expected `str`, got `int`"),
        (
            '{"channel":"balances","type":"update","data":[],"sequence":"2"}',
            "$.sequence",
            "Expected `int | null`, got `str`",
        ),
        ('{"channel":"balances","type":"update","data":{},"sequence":2}', "$.data", "array"),
        ('{"channel":"balances","type":"update","sequence":2}', "$", "`data`"),
        ('{"channel":"balances","type":"update","data":[]}', "$", "`sequence`"),
        ('{"channel":"balances","type":"delta","data":[],"sequence":2}', "$.type", "delta"),
        ('{"channel":"executions","data":[]}', "$", "`type`"),
        (
            '{"channel":"executions","type":"update","data":[{"exec_type":"new"}]}',
            "$.data[0]",
            "`order_id`",
        ),
        ('{"channel":"status","type":"update","data":[{}]}', "$.data[0]", "`system`"),
        ('{"method":"subscribe","success":"yes"}', "$.success", "Expected `bool`"),
        ('{"method":"pong","req_id":"x"}', "$.req_id", "Expected `int | null`"),
        ('{"method":"add_order","success":true,"req_id":1.5}', "$.req_id", "Expected"),
        ('{"hello":"world"}', "$", "`channel` or a `method`"),
        ("[1,2,3]", "$", "Expected `object`, got `array`"),
        ("", "$", "truncated"),
        ("{not json", "$", "malformed"),
        (b"\xff\xfe", "$", "malformed"),
    ],
)
def test_bad_frames_raise_protocol_error_with_the_path(
    frame: str | bytes, path: str, words: str
) -> None:
    """Malformed or mis-shaped frames raise ProtocolError naming the JSON path."""
    with pytest.raises(ProtocolError) as info:
        decode_message(frame)
    assert info.value.path == path
    assert words in str(info.value)
    assert f"`{path}`" in str(info.value)


def test_protocol_error_keeps_a_short_excerpt() -> None:
    """The error carries at most 200 characters of the frame, for logs."""
    frame = update_frame(balance="true", ledger_id='"' + "L" * 500 + '"')
    with pytest.raises(ProtocolError) as info:
        decode_message(frame)
    assert info.value.raw == frame[:200]


def test_unknown_fields_are_ignored() -> None:
    """Fields Kraken adds later do not break decoding."""
    frame = update_frame(new_field='{"nested":[1,2]}', another="3")
    message = decode_message(frame)
    assert isinstance(message, BalancesUpdateMessage)


def test_open_value_lists_are_plain_strings() -> None:
    """Ledger type, category and wallet ids outside the documented lists decode."""
    frame = update_frame(type='"new_kind"', category='"new-category"', wallet_id='"vault"')
    message = decode_message(frame)
    assert isinstance(message, BalancesUpdateMessage)
    assert (message.data[0].type, message.data[0].wallet_id) == ("new_kind", "vault")


def test_optional_ledger_fields() -> None:
    """subtype and user (users: all) are decoded when present."""
    message = decode_message(update_frame(subtype='"spottostaking"', user='"AA96N74GCGEFN8KI"'))
    assert isinstance(message, BalancesUpdateMessage)
    assert message.data[0].subtype == "spottostaking"
    assert message.data[0].user == "AA96N74GCGEFN8KI"


def test_unknown_channel_is_not_an_error() -> None:
    """A channel we do not know decodes to UnknownMessage."""
    message = decode_message('{"channel":"level3","type":"snapshot","data":[{"x":1}]}')
    assert message == UnknownMessage("level3", "snapshot")


def test_bare_error_frames() -> None:
    """{"Error": ...} frames (not documented by Kraken) decode to ErrorMessage."""
    assert decode_message('{"Error":"Exceeded msg rate"}') == ErrorMessage("Exceeded msg rate")
    assert decode_message('{"error":"oops"}') == ErrorMessage("oops")


def test_subscription_failure_and_other_methods() -> None:
    """A failed subscribe carries its error; other methods decode without their result."""
    failure = decode_message(
        '{"error":"EGeneral:Invalid arguments","method":"subscribe","success":false,'
        '"time_in":"2023-10-16T13:29:13.111530Z","time_out":"2023-10-16T13:29:13.111775Z",'
        '"req_id":7,"warnings":["deprecated"]}'
    )
    assert isinstance(failure, MethodResponse)
    assert (failure.success, failure.error, failure.req_id) == (
        False,
        "EGeneral:Invalid arguments",
        7,
    )
    assert failure.warnings == ("deprecated",)
    other = decode_message('{"method":"add_order","success":true,"result":{"order_id":"O1"}}')
    assert isinstance(other, MethodResponse)
    assert (other.method, other.result) == ("add_order", None)


def test_pong_with_warnings() -> None:
    """A pong's result.warnings are exposed."""
    pong = decode_message('{"method":"pong","req_id":1,"result":{"warnings":["w"]}}')
    assert isinstance(pong, PongMessage)
    assert pong.warnings == ("w",)


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_arbitrary_bytes_only_ever_raise_protocol_error(frame: bytes) -> None:
    """Any bytes either decode or raise ProtocolError, nothing else."""
    with contextlib.suppress(ProtocolError):
        decode_message(frame)


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "frame",
    [
        DEEP,
        b'{"channel":"balances","type":"update","data":' + DEEP + b"}",
        b'{"method":"pong","result":' + DEEP + b"}",
        b'{"channel":"status","type":"update","data":[{"system":' + DEEP + b"}]}",
    ],
    ids=["bare", "balances-data", "pong-result", "status-field"],
)
def test_deeply_nested_frames_raise_protocol_error(frame: bytes) -> None:
    """100,000 levels of nesting are malformed JSON to us: ProtocolError, not RecursionError."""
    with pytest.raises(ProtocolError):
        decode_message(frame)


def test_deeply_nested_requests_raise_protocol_error() -> None:
    """The simulator's request decoder refuses a deeply nested parameter with ProtocolError."""
    with pytest.raises(ProtocolError):
        decode_request(b'{"method":"ping","params":{"x":' + DEEP + b"}}")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


@given(
    channel=st.sampled_from(["balances", "executions", "status", "instrument", "heartbeat", "x"]),
    kind=st.sampled_from(["snapshot", "update", "other", None]),
    data=json_values,
    sequence=json_values,
)
@settings(max_examples=300)
def test_json_of_any_shape_only_ever_raises_protocol_error(
    channel: str, kind: str | None, data: Any, sequence: Any
) -> None:
    """Well-formed JSON with wrong shapes under known channels raises only ProtocolError."""
    frame = json.dumps({"channel": channel, "type": kind, "data": data, "sequence": sequence})
    with contextlib.suppress(ProtocolError):
        decode_message(frame)


# -- requests --------------------------------------------------------------------------


def test_subscribe_request_matches_the_fixture(fixture_bytes: FixtureBytes) -> None:
    """subscribe_request writes the documented request."""
    frame = subscribe_request(
        "balances", token="G38a1tGFzqGiUCmnegBcm8d4nfP3tytiNQz6tkCBYXY", snapshot=None
    )
    assert json.loads(frame) == json.loads(fixture_bytes("ws_balances_subscribe_request.json"))


def test_subscribe_request_options() -> None:
    """snapshot, req_id (top level), extra params and a Secret token are written."""
    frame = subscribe_request(
        "executions",
        token=Secret("tok"),
        snapshot=None,
        req_id=3,
        params={"snap_orders": True, "snap_trades": False},
    )
    assert json.loads(frame) == {
        "method": "subscribe",
        "params": {
            "channel": "executions",
            "token": "tok",
            "snap_orders": True,
            "snap_trades": False,
        },
        "req_id": 3,
    }
    balances = json.loads(subscribe_request("balances", token="t", req_id=1))
    assert balances["params"]["snapshot"] is True


def test_unsubscribe_and_ping_requests_match_the_fixtures(fixture_bytes: FixtureBytes) -> None:
    """unsubscribe_request and ping_request write the documented requests."""
    frame = unsubscribe_request("balances", token="G38a1tGFzqGiUCmnegBcm8d4nfP3tytiNQz6tkCBYXY")
    assert json.loads(frame) == json.loads(fixture_bytes("ws_balances_unsubscribe_request.json"))
    assert json.loads(ping_request(101)) == json.loads(fixture_bytes("ws_ping.json"))
    assert json.loads(ping_request()) == {"method": "ping"}


def test_decode_request_round_trip() -> None:
    """What the client sends, the simulator reads back field by field."""
    frame = subscribe_request(
        "executions", token="tok", snapshot=None, req_id=9, params={"snap_orders": True}
    )
    request = decode_request(frame)
    assert (request.method, request.channel, request.req_id) == ("subscribe", "executions", 9)
    assert request.token is not None
    assert request.token.reveal() == "tok"
    assert request.snapshot is None
    assert request.params == {"snap_orders": True}


@pytest.mark.parametrize(
    ("frame", "path"),
    [
        (b'{"params":{}}', "$"),
        (b'{"method":"subscribe","params":{"channel":5}}', "$.params.channel"),
        (b'{"method":"subscribe","params":{"channel":"b","token":5}}', "$.params.token"),
        (b'{"method":"subscribe","params":{"channel":"b","snapshot":"y"}}', "$.params.snapshot"),
        (b"nope", "$"),
    ],
)
def test_decode_request_errors(frame: bytes, path: str) -> None:
    """Bad requests raise ProtocolError with the path and no token in the message."""
    with pytest.raises(ProtocolError) as info:
        decode_request(frame)
    assert info.value.path == path


# -- server encoders ------------------------------------------------------------------


def same_shape(encoded: bytes, fixture: bytes) -> None:
    """Equal JSON with exact numbers, and the same top-level key order."""
    assert exact_json(encoded) == exact_json(fixture)
    assert list(json.loads(encoded)) == list(json.loads(fixture))


def test_encode_status_matches_fixture(fixture_bytes: FixtureBytes) -> None:
    """encode_status writes ws_status.json's shape (a connection id above 2**63 too)."""
    same_shape(encode_status(connection_id=13834774380200032777), fixture_bytes("ws_status.json"))


def test_encode_heartbeat_matches_fixture(fixture_bytes: FixtureBytes) -> None:
    """encode_heartbeat writes the heartbeat frame."""
    same_shape(encode_heartbeat(), fixture_bytes("ws_heartbeat.json"))


def test_encode_pong_matches_fixture(fixture_bytes: FixtureBytes) -> None:
    """encode_pong writes ws_pong.json from Unix times (µs) or text."""
    same_shape(
        encode_pong(101, 1695564623.799685, "2023-09-24T14:10:23.799703Z"),
        fixture_bytes("ws_pong.json"),
    )


def test_encode_method_response_matches_fixtures(fixture_bytes: FixtureBytes) -> None:
    """Acknowledgements and failures have the documented shapes."""
    ack = encode_method_response(
        "subscribe",
        success=True,
        result={"channel": "balances", "snapshot": True},
        time_in="2023-10-16T13:29:13.111530Z",
        time_out="2023-10-16T13:29:13.111775Z",
    )
    same_shape(ack, fixture_bytes("ws_balances_subscribe_ack.json"))
    failure = encode_method_response(
        "subscribe",
        success=False,
        error="EGeneral:Invalid arguments",
        req_id=4,
        time_in=0.0,
        time_out=0.5,
        warnings=["w"],
    )
    assert json.loads(failure) == {
        "error": "EGeneral:Invalid arguments",
        "method": "subscribe",
        "success": False,
        "time_in": "1970-01-01T00:00:00.000000Z",
        "time_out": "1970-01-01T00:00:00.500000Z",
        "req_id": 4,
        "warnings": ["w"],
    }
    decoded = decode_message(failure)
    assert isinstance(decoded, MethodResponse)
    assert decoded.error == "EGeneral:Invalid arguments"


@pytest.mark.parametrize(
    "name",
    [
        "ws_balances_snapshot.json",
        "ws_balances_update_deposit.json",
        "ws_balances_update_trade_btc_leg.json",
        "ws_balances_update_trade_usd_leg.json",
        "ws_executions_update_trade.json",
    ],
)
def test_encoders_reproduce_data_fixtures(fixture_bytes: FixtureBytes, name: str) -> None:
    """Decoding a fixture and encoding it again gives the same JSON, numbers exact."""
    original = fixture_bytes(name)
    message = decode_message(original)
    if isinstance(message, BalancesSnapshotMessage):
        encoded = encode_balances_snapshot(message.data, message.sequence)
    elif isinstance(message, BalancesUpdateMessage):
        encoded = encode_balances_update(message.data, message.sequence)
    else:
        assert isinstance(message, ExecutionsMessage)
        assert message.sequence is not None
        encoded = encode_executions("update", message.data, message.sequence)
    same_shape(encoded, original)
    # ... and each data item has the fixture's fields in the fixture's order.
    for mine, theirs in zip(json.loads(encoded)["data"], json.loads(original)["data"], strict=True):
        if name != "ws_executions_update_trade.json":  # executions: our struct's order
            assert list(mine) == list(theirs)


decimals = st.decimals(
    allow_nan=False, allow_infinity=False, places=10, min_value=-(10**15), max_value=10**15
)
names = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)


@given(
    entries=st.lists(
        st.builds(
            LedgerEntry,
            ledger_id=names,
            ref_id=names,
            timestamp=st.just("2023-09-22T10:23:42.925034Z"),
            type=names,
            asset=names,
            asset_class=st.just("currency"),
            category=names,
            wallet_type=st.sampled_from(["spot", "earn"]),
            wallet_id=names,
            amount=decimals,
            fee=decimals,
            balance=decimals,
            subtype=st.none() | names,
            user=st.none() | names,
        ),
        max_size=4,
    ),
    sequence=st.integers(min_value=0, max_value=2**63),
)
def test_update_round_trip(entries: list[LedgerEntry], sequence: int) -> None:
    """encode_balances_update → decode_message gives back equal entries, digits and all."""
    message = decode_message(encode_balances_update(entries, sequence))
    assert message == BalancesUpdateMessage(tuple(entries), sequence)
    assert isinstance(message, BalancesUpdateMessage)
    for got, sent in zip(message.data, entries, strict=True):
        assert got.balance.as_tuple() == sent.balance.as_tuple()


@given(
    assets=st.lists(
        st.builds(
            AssetBalance,
            asset=names,
            asset_class=st.just("currency"),
            balance=decimals,
            wallets=st.lists(
                st.builds(WalletBalance, type=names, id=names, balance=decimals), max_size=3
            ).map(tuple),
        ),
        max_size=4,
    ),
    sequence=st.integers(min_value=0, max_value=2**63),
)
def test_snapshot_round_trip(assets: list[AssetBalance], sequence: int) -> None:
    """encode_balances_snapshot → decode_message gives back equal assets."""
    assert decode_message(encode_balances_snapshot(assets, sequence)) == BalancesSnapshotMessage(
        tuple(assets), sequence
    )


@given(
    items=st.lists(
        st.builds(
            Execution,
            order_id=names,
            exec_type=st.sampled_from(["new", "trade", "canceled", "filled", "amended"]),
            symbol=st.none() | st.just("BTC/USD"),
            side=st.none() | st.sampled_from(["buy", "sell"]),
            order_qty=st.none() | decimals,
            limit_price=st.none() | decimals,
            cum_qty=st.none() | decimals,
            order_status=st.none() | st.sampled_from(["new", "partially_filled", "filled"]),
            fees=st.none()
            | st.lists(st.builds(ExecutionFee, asset=names, qty=decimals), max_size=2).map(tuple),
        ),
        max_size=3,
    ),
    kind=st.sampled_from(["snapshot", "update"]),
)
def test_executions_round_trip(items: list[Execution], kind: str) -> None:
    """encode_executions → decode_message gives back equal executions (absent stays absent)."""
    frame = encode_executions(kind, items, 5)  # type: ignore[arg-type]
    assert decode_message(frame) == ExecutionsMessage(kind, tuple(items), 5)
    for item in json.loads(frame)["data"]:
        assert None not in item.values()  # optional fields are omitted, not null


# -- the one-pass decoding of updates ------------------------------------------------------

_amounts = st.decimals(
    allow_nan=False, allow_infinity=False, places=10, min_value=-(10**12), max_value=10**12
)


@settings(max_examples=60)
@given(
    entries=st.lists(
        st.builds(
            LedgerEntry,
            ledger_id=st.text("ABCDEF-0123456789", min_size=1, max_size=19),
            ref_id=st.text("ABCDEF-0123456789", min_size=1, max_size=19),
            timestamp=st.just("2023-09-22T10:23:42.925034Z"),
            type=st.sampled_from(["deposit", "trade", "staking"]),
            asset=st.sampled_from(["BTC", "USD", "DOT"]),
            asset_class=st.just("currency"),
            category=st.sampled_from(["deposit", "trade"]),
            wallet_type=st.sampled_from(["spot", "earn"]),
            wallet_id=st.sampled_from(["main", "bonded", "flexible"]),
            amount=_amounts,
            fee=_amounts,
            balance=_amounts,
            subtype=st.none() | st.just("spottostaking"),
        ),
        max_size=3,
    ),
    sequence=st.integers(min_value=0, max_value=2**62),
)
def test_updates_decode_in_one_pass_as_the_general_path_does(
    entries: list[LedgerEntry], sequence: int
) -> None:
    """A balances update decoded in one pass equals the envelope-first decoding of it."""
    frame = encode_balances_update(entries, sequence)
    one_pass = decode_message(frame)
    assert one_pass == wsm._decode_other(frame)
    assert one_pass == BalancesUpdateMessage(tuple(entries), sequence)


def test_an_update_with_extra_keys_or_string_numbers_still_decodes_in_one_pass() -> None:
    """Unknown keys are ignored and numbers written as strings are exact, as elsewhere."""
    frame = (
        '{"channel":"balances","type":"update","sequence":7,"extra":{"x":1},"data":[{'
        '"ledger_id":"L","ref_id":"R","timestamp":"2023-09-22T10:23:42.925034Z",'
        '"type":"deposit","asset":"BTC","asset_class":"currency","category":"deposit",'
        '"wallet_type":"spot","wallet_id":"main","amount":"0.1","fee":0,"balance":"1.10"}]}'
    )
    message = decode_message(frame)
    assert message == wsm._decode_other(frame)
    assert isinstance(message, BalancesUpdateMessage)
    assert (message.sequence, message.data[0].balance) == (7, Decimal("1.10"))
