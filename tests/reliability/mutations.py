"""Mutated and garbage exchange messages, shared by ``test_bad_input.py`` and ``fuzz/``.

Strategies (hypothesis) start from Kraken's own example messages in
``tests/kraken/protocol/fixtures``: one to three structural mutations (a value replaced
by another JSON value, a key dropped, a number scaled to huge or tiny, signs
flipped, NaN and infinities), then maybe byte damage (truncated, a byte
flipped, bytes inserted); or plain arbitrary bytes and text. The ``check_*``
functions state what must hold for any input and raise ``AssertionError``
otherwise; the tests and the fuzz script both call them.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import strategies as st

from balance_manager.exceptions import ExchangeError, ProtocolError, TransportError
from balance_manager.kraken.protocol import rest
from balance_manager.kraken.protocol.assets import AssetNames, fold_rest_balances
from balance_manager.kraken.protocol.ws_messages import decode_message
from balance_manager.kraken.protocol.ws_session import KrakenSession, MessageRejected, SessionState

__all__ = [
    "DOCUMENTED",
    "FIXTURES",
    "GOOD_SNAPSHOT",
    "GOOD_UPDATE",
    "NOW",
    "REST_BODIES",
    "REST_DECODERS",
    "REST_FIXTURES",
    "WS_FIXTURES",
    "WS_FRAMES",
    "check_rest_body",
    "check_session_frames",
    "check_ws_frame",
    "mutated_json",
    "rest_pipeline",
    "streaming_session",
    "tradable",
]

FIXTURES = Path(__file__).resolve().parent.parent / "kraken" / "protocol" / "fixtures"
WS_FIXTURES = sorted(p.name for p in FIXTURES.glob("ws_*.json"))
REST_FIXTURES = sorted(p.name for p in FIXTURES.glob("rest_*.json"))
NOW = 1_700_000_000.0
TOKEN = "fuzz-token-0123456789"

#: What the decoders and parsers may raise for anything the exchange sends.
DOCUMENTED = (ProtocolError, TransportError, ExchangeError)

#: A snapshot and the update that follows it: the "normal path" after garbage.
GOOD_SNAPSHOT = (
    b'{"channel":"balances","type":"snapshot","sequence":1,"data":['
    b'{"asset":"BTC","asset_class":"currency","balance":1.5,'
    b'"wallets":[{"type":"spot","id":"main","balance":1.5}]},'
    b'{"asset":"USD","asset_class":"currency","balance":100,'
    b'"wallets":[{"type":"spot","id":"main","balance":100}]}]}'
)
GOOD_UPDATE = (
    b'{"channel":"balances","type":"update","sequence":2,"data":[{'
    b'"ledger_id":"LGOOD1","ref_id":"RGOOD1","timestamp":"2023-09-22T10:23:42.925034Z",'
    b'"type":"deposit","asset":"BTC","asset_class":"currency","category":"deposit",'
    b'"wallet_type":"spot","wallet_id":"main","amount":0.25,"fee":0,"balance":1.75}]}'
)


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        ["NaN", "Infinity", "-1", "1e999999", "1e-999999", "0E-30", "", "null", "1.0.0"]
    ),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a parsed JSON document."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _mutate(document: Any, draw: st.DrawFn) -> Any:
    """One structural mutation of a parsed JSON document."""
    doc = copy.deepcopy(document)
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return draw(JSON_VALUES)
    path = draw(st.sampled_from(paths))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    action = draw(st.sampled_from(["replace", "delete", "scale"]))
    if action == "delete":
        del parent[last]
    elif action == "scale" and isinstance(parent[last], int | float):
        exponent = draw(st.sampled_from([-40, -12, 12, 40, 400]))
        sign = draw(st.sampled_from([-1, 1]))
        parent[last] = sign * _scaled(parent[last], exponent)
    else:
        parent[last] = draw(JSON_VALUES)
    return doc


def _scaled(value: Any, exponent: int) -> Any:
    """``value * 10**exponent`` as a JSON number: exact ints upwards, floats downwards."""
    if isinstance(value, float) and not math.isfinite(value):
        return value
    if exponent > 0:
        return int(value) * 10**exponent
    try:
        return float(value) * 10.0**exponent
    except OverflowError:  # an int beyond float range
        return 10.0**exponent


@st.composite
def mutated_json(draw: st.DrawFn, names: list[str]) -> bytes:
    """A fixture with one to three structural mutations, then maybe byte damage."""
    document = _load(draw(st.sampled_from(names)))
    for _ in range(draw(st.integers(1, 3))):
        document = _mutate(document, draw)
    data = json.dumps(document, allow_nan=True).encode()
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip", "insert"]))
    if damage == "truncate" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "flip" and data:
        index = draw(st.integers(0, len(data) - 1))
        data = data[:index] + bytes([data[index] ^ draw(st.integers(1, 255))]) + data[index + 1 :]
    elif damage == "insert":
        index = draw(st.integers(0, len(data)))
        data = data[:index] + draw(st.binary(min_size=1, max_size=8)) + data[index:]
    return data


WS_FRAMES = st.one_of(
    mutated_json(WS_FIXTURES), st.binary(max_size=200), st.text(max_size=200).map(str.encode)
)
REST_BODIES = st.one_of(
    mutated_json(REST_FIXTURES), st.binary(max_size=200), st.text(max_size=200).map(str.encode)
)


def streaming_session() -> KrakenSession:
    """A session subscribed to balances (no executions), streaming from GOOD_SNAPSHOT."""
    session = KrakenSession(subscribe_executions=False)
    session.token_received(TOKEN)
    session.connection_opened()
    session.data_to_send()
    session.feed(
        b'{"method":"subscribe","result":{"channel":"balances","snapshot":true},'
        b'"success":true,"req_id":1,"time_in":"2023-09-22T10:23:42.925034Z",'
        b'"time_out":"2023-09-22T10:23:42.925034Z"}',
        NOW,
    )
    session.feed(GOOD_SNAPSHOT, NOW)
    assert session.state is SessionState.STREAMING
    return session


def tradable(session: KrakenSession) -> dict[str, Decimal]:
    """The session's tradable balance per asset."""
    return {asset: wallets.tradable for asset, wallets in session.wallets().items()}


REST_DECODERS: dict[str, Callable[[msgspec.Raw], object]] = {
    "Balance": rest.decode_balance,
    "BalanceEx": rest.decode_balance_ex,
    "GetWebSocketsToken": rest.decode_ws_token,
    "Assets": rest.decode_assets,
    "Time": rest.decode_time,
    "SystemStatus": rest.decode_system_status,
    "TradeBalance": rest.decode_trade_balance,
}


def rest_pipeline(body: bytes, method: str, status: int, content_type: str | None) -> None:
    """What the REST client does with a body: envelope, decoder, and folding balances."""
    raw = rest.parse_envelope(
        body, method=method, status=status, content_type=content_type, now=NOW
    )
    decoded = REST_DECODERS[method](raw)
    if method in ("Balance", "BalanceEx"):
        assert isinstance(decoded, dict)
        folded = fold_rest_balances(decoded, AssetNames())
        for amounts in folded.values():
            assert amounts.balance.is_finite()


def check_ws_frame(frame: bytes) -> None:
    """decode_message refuses a bad frame with ProtocolError (saying why), nothing else."""
    message = "ok"
    try:
        decode_message(frame)
    except ProtocolError as error:
        message = str(error)
    assert message


def check_session_frames(frames: list[bytes]) -> int:
    """The session takes any frames without raising, counts each, and recovers on the normal path.

    Returns:
        How many frames it rejected.
    """
    session = streaming_session()
    before = session.counters.messages
    rejected = 0
    for frame in frames:
        events = session.feed(frame, NOW)
        rejected += sum(isinstance(e, MessageRejected) for e in events)
    assert session.counters.messages - before == len(frames)
    assert session.counters.rejected == rejected
    # The client's path after anything: a new connection, token, subscribe, snapshot.
    if session.state is not SessionState.CONNECTING:
        session.connection_lost("check")
    session.token_received(TOKEN)
    session.connection_opened()
    session.data_to_send()
    session.feed(GOOD_SNAPSHOT, NOW)
    assert session.state is SessionState.STREAMING
    session.feed(GOOD_UPDATE, NOW)
    balances = tradable(session)
    assert balances["BTC"] == Decimal("1.75"), balances
    assert balances["USD"] == Decimal(100), balances
    return rejected


def check_rest_body(body: bytes, method: str, status: int, content_type: str | None) -> bool:
    """A body decodes, or raises a documented error that says why; returns whether it decoded."""
    decoded, message = True, ""
    try:
        rest_pipeline(body, method, status, content_type)
    except DOCUMENTED as error:
        decoded, message = False, str(error)
    assert decoded or message  # an error says what was wrong
    return decoded
