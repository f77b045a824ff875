"""Bad input: garbage and mutated exchange messages, and wrong arguments at the public API.

Exchange side (hypothesis): arbitrary bytes and mutations of Kraken's own
example messages (``tests/kraken/protocol/fixtures``: a value swapped for another JSON
value, a key dropped, a number made huge, tiny, negative, NaN; bytes cut,
flipped or inserted) fed to the WebSocket decoder and session and to the REST
envelope parser and decoders. They may only raise the documented errors
(:class:`ProtocolError`, :class:`TransportError`, :class:`ExchangeError`
subclasses), are counted, and never corrupt what the session holds: after
garbage, the normal protocol path (a fresh snapshot, then an update) still
gives the right balances. The strategies and checks live in ``mutations.py``
(shared with ``fuzz/fuzz_decoders.py``, which runs them at scale).

Caller side: wrong types, floats, NaN, negative or absurd amounts, unknown
assets and bad options each give an error naming what was wrong.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import example, given, settings, strategies as st

from balance_manager import BalanceManager, BalanceManagerConfig, KrakenRestClient
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
from balance_manager.kraken.protocol import rest
from balance_manager.kraken.protocol.ws_messages import decode_message
from balance_manager.kraken.protocol.ws_session import (
    MessageRejected,
)
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive, drive_until_done

from .harness import build_manager, reliability_config, start_streaming
from .mutations import (
    FIXTURES,
    GOOD_UPDATE,
    NOW,
    REST_BODIES,
    REST_DECODERS,
    WS_FRAMES,
    check_rest_body,
    check_session_frames,
    check_ws_frame,
    streaming_session,
    tradable,
)

# -- WebSocket -------------------------------------------------------------------------------


@settings(max_examples=250, deadline=None)
@given(WS_FRAMES)
@example(b'{"channel":"\xff"}')  # invalid UTF-8 inside a string (raised UnicodeDecodeError)
@example(b'{"method":"\xf3ubscribe","success":true}')
def test_ws_decoder_raises_only_protocol_error(frame: bytes) -> None:
    """decode_message refuses anything malformed with ProtocolError, nothing else."""
    check_ws_frame(frame)


@settings(max_examples=150, deadline=None)
@given(st.lists(WS_FRAMES, min_size=1, max_size=8))
def test_ws_session_survives_any_frames_and_counts_them(frames: list[bytes]) -> None:
    """The session never raises on server frames, counts every frame and rejection, recovers."""
    rejected = check_session_frames(frames)
    assert 0 <= rejected <= len(frames)


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


# -- REST --------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    REST_BODIES,
    st.sampled_from(sorted(REST_DECODERS)),
    st.sampled_from([200, 200, 200, 403, 500, 502, 520]),
    st.sampled_from(["application/json", "text/html", "text/plain", None]),
)
@example(b'{"error":["EGeneral:\xff"]}', "BalanceEx", 200, "application/json")
@example(b'{"error":[],"result":{"XXBT":"\xff"}}', "Balance", 200, "application/json")
def test_rest_bodies_raise_only_documented_errors(
    body: bytes, method: str, status: int, content_type: str | None
) -> None:
    """Any body with any status decodes or raises ProtocolError/TransportError/ExchangeError."""
    check_rest_body(body, method, status, content_type)


class _CannedRestClient(KrakenRestClient):
    """A REST client whose HTTP exchange answers canned bodies per method (no network)."""

    def __init__(self, bodies: dict[str, bytes], **kwargs: Any) -> None:
        super().__init__(
            api_key="key-for-a-canned-exchange",
            api_secret="c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2Vjcg==",
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
@pytest.mark.parametrize(
    "asset",
    [123, None, "", "   ", b"BTC", 1.5, ["BTC"], {"BTC": 1}, {"BTC"}, bytearray(b"BTC")],
    ids=["int", "None", "empty", "blank", "bytes", "float", "list", "dict", "set", "bytearray"],
)
async def test_asset_names_of_the_wrong_type_are_refused(
    manager: BalanceManager, asset: Any
) -> None:
    """An asset that is not a non-empty str (unhashable ones too) raises UnknownAssetError."""
    with pytest.raises(UnknownAssetError, match="non-empty str"):
        await manager.get_balance(asset)
    with pytest.raises(UnknownAssetError, match="non-empty str"):
        manager.sync_view().get_balance(asset)
    with pytest.raises(UnknownAssetError, match="non-empty str"):
        manager.canonical(asset)


@pytest.mark.network
@pytest.mark.asyncio
@pytest.mark.parametrize(
    "asset",
    ["X" * 65, "B" * 1_000_000, "BT\x00C", "BT\nC", "\x1b[31mBTC"],
    ids=["65-chars", "megabyte", "nul", "newline", "escape"],
)
async def test_absurd_asset_names_are_refused(manager: BalanceManager, asset: str) -> None:
    """Names longer than 64 characters or with control characters: UnknownAssetError, briefly."""
    with pytest.raises(UnknownAssetError) as info:
        await manager.get_balance(asset)
    assert len(str(info.value)) < 400
    with pytest.raises(UnknownAssetError):
        manager.sync_view().get_balance(asset)


@pytest.mark.network
@pytest.mark.asyncio
async def test_the_name_cache_stays_small(manager: BalanceManager) -> None:
    """20,000 distinct well-formed names of 64 characters leave at most 4,096 cached spellings."""
    for i in range(20_000):
        assert await manager.get_balance(f"{i:064d}") is None
    assert len(manager._canonical) <= 4096  # the cache's bound, not a speed or memory figure
    btc = await manager.get_balance("xbt")
    assert btc is not None
    assert btc.asset == "BTC"


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
