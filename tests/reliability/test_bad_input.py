"""Bad input: garbage and mutated exchange messages, and wrong arguments at the public API.

Exchange side (hypothesis): arbitrary bytes and mutations of Kraken's own
example messages (``tests/kraken/fixtures``: a value swapped for another JSON
value, a key dropped, a number made huge, tiny, negative, NaN; bytes cut,
flipped or inserted) fed to the WebSocket decoder and session and to the REST
envelope parser and decoders. They may only raise the documented errors
(:class:`ProtocolError`, :class:`TransportError`, :class:`ExchangeError`
subclasses), are counted, and never corrupt what the session holds: after
garbage, the normal protocol path (a fresh snapshot, then an update) still
gives the right balances.

Caller side: wrong types, floats, NaN, negative or absurd amounts, unknown
assets and bad options each give an error naming what was wrong.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import random
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from hypothesis import example, given, settings, strategies as st

from balance_manager import BalanceManager, BalanceManagerConfig, KrakenRestClient
from balance_manager.clock import ManualClock
from balance_manager.core.models import Balance
from balance_manager.exceptions import (
    BalanceStateError,
    ConfigError,
    ExchangeError,
    FloatAmountError,
    InvalidAmountError,
    ProtocolError,
    TransportError,
    UnknownAssetError,
    UnknownEventError,
)
from balance_manager.kraken import rest
from balance_manager.kraken.assets import AssetNames, fold_rest_balances
from balance_manager.kraken.ws_messages import decode_message
from balance_manager.kraken.ws_session import (
    KrakenSession,
    MessageRejected,
    SessionState,
)
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import drive, drive_until_done

from .harness import build_manager, reliability_config, start_streaming

FIXTURES = Path(__file__).parent.parent / "kraken" / "fixtures"
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


# -- strategies ----------------------------------------------------------------------------


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


# -- WebSocket -------------------------------------------------------------------------------


@settings(max_examples=250, deadline=None)
@given(WS_FRAMES)
@example(b'{"channel":"\xff"}')  # invalid UTF-8 inside a string (raised UnicodeDecodeError)
@example(b'{"method":"\xf3ubscribe","success":true}')
def test_ws_decoder_raises_only_protocol_error(frame: bytes) -> None:
    """decode_message refuses anything malformed with ProtocolError, nothing else."""
    try:
        decode_message(frame)
    except ProtocolError as error:
        refused: ProtocolError | None = error
    else:
        refused = None
    assert refused is None or str(refused)  # an error says what was wrong


@settings(max_examples=150, deadline=None)
@given(st.lists(WS_FRAMES, min_size=1, max_size=8))
def test_ws_session_survives_any_frames_and_counts_them(frames: list[bytes]) -> None:
    """The session never raises on frames from the server, and counts every frame and rejection."""
    session = streaming_session()
    before = session.counters.messages
    rejected = 0
    for frame in frames:
        events = session.feed(frame, NOW)
        rejected += sum(isinstance(e, MessageRejected) for e in events)
    assert session.counters.messages - before == len(frames)
    assert session.counters.rejected == rejected


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=5))
def test_undecodable_frames_change_nothing(frames: list[bytes]) -> None:
    """Frames that do not decode leave state, sequence and balances exactly as they were."""
    session = streaming_session()
    state, sequence, balances = session.state, session.sequence(), tradable(session)
    for frame in frames:
        try:
            decode_message(frame)
        except ProtocolError:
            assert session.feed(frame, NOW)[0].__class__ is MessageRejected
        else:
            return  # a random frame that happens to decode is another test's business
    assert (session.state, session.sequence(), tradable(session)) == (state, sequence, balances)
    session.feed(GOOD_UPDATE, NOW)
    assert tradable(session) == {"BTC": Decimal("1.75"), "USD": Decimal(100)}


@settings(max_examples=150, deadline=None)
@given(st.lists(WS_FRAMES, min_size=1, max_size=6))
def test_after_garbage_the_normal_path_gives_the_right_balances(frames: list[bytes]) -> None:
    """Whatever garbage came, reconnect, snapshot and update give exactly the right balances."""
    session = streaming_session()
    for frame in frames:
        session.feed(frame, NOW)
    # The client's path after anything: a new connection, token, subscribe, snapshot.
    if session.state is not SessionState.CONNECTING:
        session.connection_lost("test")
    session.token_received(TOKEN)
    session.connection_opened()
    session.data_to_send()
    session.feed(GOOD_SNAPSHOT, NOW)
    assert session.state is SessionState.STREAMING
    session.feed(GOOD_UPDATE, NOW)
    balances = tradable(session)
    assert balances["BTC"] == Decimal("1.75")
    assert balances["USD"] == Decimal(100)


# -- REST --------------------------------------------------------------------------------------

_REST_DECODERS: dict[str, Callable[[msgspec.Raw], object]] = {
    "Balance": rest.decode_balance,
    "BalanceEx": rest.decode_balance_ex,
    "GetWebSocketsToken": rest.decode_ws_token,
    "Assets": rest.decode_assets,
    "Time": rest.decode_time,
    "SystemStatus": rest.decode_system_status,
    "TradeBalance": rest.decode_trade_balance,
}


def _rest_pipeline(body: bytes, method: str, status: int, content_type: str | None) -> None:
    """What the REST client does with a body: envelope, decoder, and folding balances."""
    raw = rest.parse_envelope(
        body, method=method, status=status, content_type=content_type, now=NOW
    )
    decoded = _REST_DECODERS[method](raw)
    if method in ("Balance", "BalanceEx"):
        assert isinstance(decoded, dict)
        folded = fold_rest_balances(decoded, AssetNames())
        for amounts in folded.values():
            assert amounts.balance.is_finite()


@settings(max_examples=300, deadline=None)
@given(
    REST_BODIES,
    st.sampled_from(sorted(_REST_DECODERS)),
    st.sampled_from([200, 200, 200, 403, 500, 502, 520]),
    st.sampled_from(["application/json", "text/html", "text/plain", None]),
)
@example(b'{"error":["EGeneral:\xff"]}', "BalanceEx", 200, "application/json")
@example(b'{"error":[],"result":{"XXBT":"\xff"}}', "Balance", 200, "application/json")
def test_rest_bodies_raise_only_documented_errors(
    body: bytes, method: str, status: int, content_type: str | None
) -> None:
    """Any body with any status decodes or raises ProtocolError/TransportError/ExchangeError."""
    message = ""
    try:
        _rest_pipeline(body, method, status, content_type)
    except DOCUMENTED as error:
        message = str(error)
        assert message  # an error says what was wrong


class _CannedRestClient(KrakenRestClient):
    """A REST client whose HTTP exchange answers canned bodies per method (no network)."""

    def __init__(self, bodies: dict[str, bytes], **kwargs: Any) -> None:
        super().__init__(
            api_key="key-for-a-canned-exchange",
            api_secret="c2VjcmV0",
            base_url="http://127.0.0.1:9",
            **kwargs,
        )
        self.bodies = bodies

    async def _session_for_request(self) -> Any:
        return None

    async def _http(  # type: ignore[override]  # an instance method: it reads self.bodies
        self, session: Any, request: rest.PreparedRequest, url: str
    ) -> tuple[int, str | None, bytes]:
        method = url.rsplit("/", 1)[-1].split("?")[0]
        return 200, "application/json", self.bodies.get(method, self.bodies["*"])


@settings(max_examples=60, deadline=None)
@given(st.lists(REST_BODIES, min_size=1, max_size=8))
def test_rest_client_counts_every_answer_and_refusal(bodies: list[bytes]) -> None:
    """Every answer is counted as a call; refusals as exchange, transport or rate-limit errors."""
    clock = ManualClock()
    config = reliability_config(None, rest_max_retries=0, circuit_failure_threshold=10_000)
    client = _CannedRestClient({"*": b""}, config=config, clock=clock, rng=random.Random(1))

    async def run() -> tuple[int, int]:
        refused = failed = 0
        for body in bodies:
            client.bodies["*"] = body
            try:
                # A rate-limit answer makes the next call wait on the clock: drive it.
                await drive_until_done(clock, client.fetch_balances(), seconds=3600, step=5)
            except ProtocolError as error:
                failed += 1
                refused += not error.path.startswith("$.result")
            except (TransportError, ExchangeError):
                failed += 1
                refused += 1
        return refused, failed

    refused, failed = asyncio.run(run())
    stats = client.get_statistics()
    # fetch_balances falls back to Balance when BalanceEx is refused: one or two calls each.
    assert len(bodies) <= stats["rest_api_calls"] <= 2 * len(bodies)
    counted = stats["exchange_errors"] + stats["transport_errors"] + stats["rate_limited"]
    assert counted >= refused
    assert failed <= len(bodies)


BALANCE_EX = (FIXTURES / "rest_balanceex.json").read_bytes()
ASSETS = (FIXTURES / "rest_assets.json").read_bytes()


@pytest.mark.asyncio
async def test_a_malformed_rest_result_is_a_counted_failure_and_polling_goes_on(
    clock: ManualClock,
) -> None:
    """A BalanceEx result of the wrong shape is a counted failed read; polling goes on."""
    client = _CannedRestClient(
        {"BalanceEx": BALANCE_EX, "Assets": ASSETS, "*": b'{"error":["EGeneral:Unknown method"]}'},
        config=reliability_config(None),
        clock=clock,
        rng=random.Random(2),
    )
    manager = BalanceManager(
        websocket_client=None, rest_client=client, config=client.config, clock=clock
    )
    try:
        await drive_until_done(clock, manager.initialize(), seconds=60)
        usd = await manager.get_balance("USD")
        assert usd is not None
        assert usd.balance == Decimal("25435.21")
        client.bodies["BalanceEx"] = b'{"error":[],"result":{"ZUSD":{"balance":[1]}}}'
        await drive(clock, 16.0, step=1.0)
        stats = manager.get_statistics()
        assert stats["rest_failures"] >= 3  # each poll (every 5 s) failed and was counted
        assert "balance" in (manager.get_status()["rest"]["last_error"] or "")
        client.bodies["BalanceEx"] = BALANCE_EX.replace(b"25435.21", b"25500.5")
        await drive(clock, 6.0, step=1.0)
        usd = await manager.get_balance("USD")
        assert usd is not None
        assert usd.balance == Decimal("25500.5")  # polling went on
    finally:
        await drive_until_done(clock, manager.close(), seconds=60)


# -- the public API ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "kwargs", "error"),
    [
        ("balance", {"balance": 0.1}, FloatAmountError),
        ("balance", {"balance": Decimal("NaN")}, BalanceStateError),
        ("balance", {"balance": "Infinity"}, BalanceStateError),
        ("balance", {"balance": "ten"}, BalanceStateError),
        ("hold_trade", {"balance": Decimal(1), "hold_trade": Decimal(-1)}, BalanceStateError),
        ("hold_trade", {"balance": Decimal(1), "hold_trade": 0.5}, FloatAmountError),
        ("credit", {"balance": Decimal(1), "credit": float("nan")}, FloatAmountError),
        ("asset", {"asset": "", "balance": Decimal(1)}, BalanceStateError),
        ("asset", {"asset": 7, "balance": Decimal(1)}, BalanceStateError),
    ],
)
def test_impossible_balances_are_refused_naming_the_field(
    field: str, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    """A Balance refuses floats, NaN, infinities, text, negative holds and bad names, by field."""
    arguments = {"asset": "BTC", **kwargs}
    with pytest.raises((error, InvalidAmountError, BalanceStateError)) as info:
        Balance(**arguments)
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("cache_max_size", -1),
        ("cache_max_size", "many"),
        ("cache_max_size", 2.5),
        ("cache_max_size", True),
        ("cache_default_ttl", float("nan")),
        ("cache_default_ttl", float("inf")),
        ("cache_default_ttl", -300.0),
        ("websocket_timeout", 0),
        ("websocket_ping_interval", 60.0),
        ("rest_api_timeout", "fast"),
        ("kraken_tier", "gold"),
        ("rest_url", "ftp://api.kraken.com"),
        ("ws_url", "http://ws.kraken.com"),
        ("change_threshold_absolute", "-1"),
        ("unrealistic_balance_threshold", "NaN"),
        ("history_max_entries", 0),
        ("history_db_path", 5),
        ("rest_max_retries", -1),
        ("circuit_failure_threshold", 0),
        ("disabled_rules", ("no_such_rule",)),
        ("metrics_port", 70_000),
    ],
)
def test_bad_config_values_name_the_option(option: str, value: object) -> None:
    """Every bad option value raises ConfigError naming the option and the value."""
    with pytest.raises(ConfigError) as info:
        BalanceManagerConfig.from_mapping({option: value})
    assert info.value.option == option
    assert option in str(info.value)


def test_unknown_config_option_is_named() -> None:
    """An option that does not exist is refused by name (a typo fails at once)."""
    with pytest.raises(ConfigError, match="cache_max_sise"):
        BalanceManagerConfig.from_mapping({"cache_max_sise": 10})


@pytest_asyncio.fixture
async def manager(clock: ManualClock) -> AsyncIterator[BalanceManager]:
    """A manager streaming from a simulator on loopback."""
    async with SimulatedKraken(clock=clock, seed=3) as sim:
        started = build_manager(sim, clock, reliability_config(None))
        try:
            await start_streaming(started)
            yield started
        finally:
            await started.close()


@pytest.mark.network
@pytest.mark.asyncio
@pytest.mark.parametrize("asset", [123, None, "", "   ", b"BTC", 1.5])
async def test_asset_names_of_the_wrong_type_are_refused(
    manager: BalanceManager, asset: Any
) -> None:
    """An asset that is not a non-empty str raises UnknownAssetError saying so."""
    with pytest.raises(UnknownAssetError, match="non-empty str"):
        await manager.get_balance(asset)
    with pytest.raises(UnknownAssetError):
        manager.sync_view().get_balance(asset)


@pytest.mark.network
@pytest.mark.asyncio
async def test_an_unknown_asset_is_not_held(manager: BalanceManager) -> None:
    """A well-formed but unknown asset is simply not held (None), never an invented zero."""
    assert await manager.get_balance("NOSUCHCOIN") is None
    assert manager.sync_view().get_balance("NOSUCHCOIN") is None


@pytest.mark.network
@pytest.mark.asyncio
@pytest.mark.parametrize("max_age", [float("nan"), -1, -0.5, "5", True, [5], Decimal("NaN")])
async def test_bad_max_age_is_refused_everywhere(manager: BalanceManager, max_age: Any) -> None:
    """max_age that is NaN, negative or not a number raises ConfigError naming max_age.

    A NaN compares false with every age: accepted, it would serve any stale value.
    """
    with pytest.raises(ConfigError, match="max_age") as info:
        await manager.get_balance("BTC", max_age=max_age)
    assert info.value.option == "max_age"
    with pytest.raises(ConfigError, match="max_age"):
        await manager.get_all_balances(max_age=max_age)
    with pytest.raises(ConfigError, match="max_age"):
        manager.sync_view().get_balance("BTC", max_age=max_age)


@pytest.mark.network
@pytest.mark.asyncio
async def test_good_max_age_values_work(manager: BalanceManager) -> None:
    """Ints, floats, Decimals and infinity are fine max_age values; zero asks for a refresh."""
    good: tuple[Any, ...] = (5, 5.0, Decimal(5), float("inf"), 10**400)
    for max_age in good:
        value = await manager.get_balance("BTC", max_age=max_age)
        assert value is not None
    clock = manager.clock
    assert isinstance(clock, ManualClock)
    clock.advance(0.5)
    # 0 s asks for a REST read now; the answer is as young as that read.
    fresh = await manager.get_balance("BTC", max_age=0)
    assert fresh is not None
    assert manager.age_of(fresh) == 0


@pytest.mark.network
@pytest.mark.asyncio
async def test_callbacks_and_validation_refuse_bad_arguments(manager: BalanceManager) -> None:
    """Unknown events, non-callables and float or text amounts are refused, by name."""
    with pytest.raises(UnknownEventError, match="balance_updated"):
        manager.register_callback("balance_updated", print)
    with pytest.raises(TypeError, match="callable"):
        manager.register_callback("balance_update", 42)  # type: ignore[arg-type]
    validator = manager.validator
    assert validator is not None
    with pytest.raises(FloatAmountError, match=r"balance=0\.5"):
        validator.validate_single_balance("USDT", 0.5, Decimal(0))  # type: ignore[arg-type]
    with pytest.raises(InvalidAmountError, match="not a decimal number"):
        validator.validate_single_balance("USDT", "abc", Decimal(0))
    with pytest.raises(ConfigError, match="analysis_hours"):
        await manager.history.analyze_balance_trend("USDT", analysis_hours=float("nan"))


@pytest.mark.network
@pytest.mark.asyncio
async def test_absurd_amounts_are_flagged_not_trusted(manager: BalanceManager) -> None:
    """Negative and absurdly large balances validate as errors or warnings, by rule name."""
    validator = manager.validator
    assert validator is not None
    negative = validator.validate_single_balance("USDT", Decimal(-5), Decimal(0))
    assert not negative.is_valid
    assert "negative_balance" in negative.report()
    absurd = validator.validate_single_balance("USDT", Decimal("1e30"), Decimal(0))
    assert "unrealistic_balance" in absurd.report()
    held_too_much = validator.validate_single_balance("USDT", Decimal(1), Decimal(2))
    assert not held_too_much.is_valid
    assert "hold_exceeds_balance" in held_too_much.report()
