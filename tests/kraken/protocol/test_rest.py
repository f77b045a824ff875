"""Tests of balance_manager.kraken.protocol.rest: signed requests, envelopes, decoders, encoders."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, strategies as st

from balance_manager import __version__
from balance_manager.credentials import Credentials, Secret
from balance_manager.exceptions import (
    AuthenticationError,
    ExchangeError,
    InvalidNonceError,
    LockoutError,
    ProtocolError,
    RateLimitedError,
    TransportError,
)
from balance_manager.kraken.protocol.assets import AssetNames, RestBalanceEntry
from balance_manager.kraken.protocol.rest import (
    AssetRecord,
    PreparedRequest,
    asset_fields,
    balance_ex_result,
    balance_result,
    build_private_request,
    build_public_request,
    decode_add_order,
    decode_assets,
    decode_balance,
    decode_balance_ex,
    decode_cancel_order,
    decode_open_orders,
    decode_system_status,
    decode_time,
    decode_trade_balance,
    decode_ws_token,
    encode_envelope,
    format_amount,
    parse_envelope,
    read_envelope,
)
from balance_manager.kraken.protocol.signing import verify

SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
API_KEY = "my-public-api-key-0123456789"

FixtureBytes = Callable[[str], bytes]


@pytest.fixture
def credentials() -> Credentials:
    """Test credentials (the secret of Kraken's documented signing example)."""
    return Credentials.of(API_KEY, SECRET)


def ok(raw: msgspec.Raw | bytes, method: str = "Test") -> msgspec.Raw:
    """The result of a 200 response body."""
    return parse_envelope(bytes(raw), method=method, status=200)


# -- requests -----------------------------------------------------------------------


def test_private_form_request_is_signed_over_its_exact_body(credentials: Credentials) -> None:
    """The form body starts with the nonce and API-Sign verifies over exactly those bytes."""
    request = build_private_request(
        "AddOrder",
        {"ordertype": "limit", "pair": "XBTUSD", "price": "37500", "type": "buy", "volume": "1.25"},
        nonce=1616492376594,
        credentials=credentials,
    )
    assert request.method == "POST"
    assert request.path == "/0/private/AddOrder"
    assert request.body == (
        b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    )
    # Kraken's documented signature for this exact request (fixtures/signing_vectors.json).
    assert request.headers["API-Sign"] == (
        "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
    )
    assert request.headers["API-Key"] == API_KEY
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["User-Agent"] == f"balance-manager/{__version__}"


def test_private_json_request_puts_the_nonce_first_as_a_string(credentials: Credentials) -> None:
    """A JSON body is compact, nonce first as a string, and signed over its bytes."""
    request = build_private_request(
        "TradeBalance", {"asset": "ZUSD"}, nonce=42, credentials=credentials, encoding="json"
    )
    assert request.body == b'{"nonce":"42","asset":"ZUSD"}'
    assert request.headers["Content-Type"] == "application/json"
    assert verify(request.path, 42, request.body, SECRET, request.headers["API-Sign"])


def test_private_request_without_params_has_only_the_nonce(credentials: Credentials) -> None:
    """Balance needs nothing but the nonce."""
    request = build_private_request("Balance", None, nonce=7, credentials=credentials)
    assert urllib.parse.parse_qsl(request.body.decode()) == [("nonce", "7")]


def test_nonce_in_params_is_refused(credentials: Credentials) -> None:
    """The nonce comes only from the argument, so two nonces can never disagree."""
    with pytest.raises(ValueError, match="nonce"):
        build_private_request("Balance", {"nonce": 1}, nonce=2, credentials=credentials)


def test_unknown_encoding_is_refused(credentials: Credentials) -> None:
    """Only form and json bodies exist."""
    with pytest.raises(ValueError, match="encoding"):
        build_private_request("Balance", None, nonce=1, credentials=credentials, encoding="xml")  # type: ignore[arg-type]


def test_request_repr_masks_the_signature_and_key(credentials: Credentials) -> None:
    """The repr shows neither API-Sign nor the full API-Key nor the secret."""
    request = build_private_request("Balance", None, nonce=1, credentials=credentials)
    text = repr(request)
    assert request.headers["API-Sign"] not in text
    assert API_KEY not in text
    assert SECRET not in text
    assert "'API-Sign': '***'" in text
    assert "PreparedRequest(method='POST', path='/0/private/Balance'" in text


def test_user_agent_can_be_given(credentials: Credentials) -> None:
    """A caller-chosen User-Agent replaces the default."""
    request = build_private_request(
        "Balance", None, nonce=1, credentials=credentials, user_agent="bot/1"
    )
    assert request.headers["User-Agent"] == "bot/1"


def test_public_request_builds_a_get_with_comma_lists() -> None:
    """Public calls are GETs; list values become Kraken's comma lists."""
    request = build_public_request("Assets", {"asset": ["XBT", "ETH"], "aclass": "currency"})
    assert request.method == "GET"
    assert request.body == b""
    assert "API-Sign" not in request.headers
    assert request.url("https://api.kraken.com/") == (
        "https://api.kraken.com/0/public/Assets?asset=XBT%2CETH&aclass=currency"
    )
    assert build_public_request("Time").url("http://127.0.0.1:8080") == (
        "http://127.0.0.1:8080/0/public/Time"
    )


def test_prepared_request_is_frozen() -> None:
    """A prepared request cannot be altered after signing."""
    request = PreparedRequest("GET", "/0/public/Time", {})
    with pytest.raises(AttributeError):
        request.path = "/0/public/Other"  # type: ignore[misc]


# -- envelopes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls", "code"),
    [
        ("rest_error_invalid_key.json", AuthenticationError, "EAPI:Invalid key"),
        ("rest_error_invalid_nonce.json", InvalidNonceError, "EAPI:Invalid nonce"),
        ("rest_error_rate_limit_mock.json", RateLimitedError, "EAPI:Rate limit exceeded"),
        ("rest_error_temporary_lockout.json", LockoutError, "EGeneral:Temporary lockout"),
        (
            "rest_error_invalid_arguments.json",
            ExchangeError,
            "EGeneral:Invalid arguments:ordertype",
        ),
    ],
)
def test_error_fixtures_raise_their_class(
    fixture_bytes: FixtureBytes, name: str, cls: type[ExchangeError], code: str
) -> None:
    """Error bodies (result absent, {} or null) raise the mapped class with the code."""
    with pytest.raises(cls) as info:
        parse_envelope(fixture_bytes(name), method="Balance", status=200)
    assert type(info.value) is cls
    assert info.value.code == code
    assert info.value.method == "Balance"


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "body",
    [DEEP, b'{"error":[],"result":' + DEEP + b"}", b'{"error":' + DEEP + b"}"],
    ids=["bare", "result", "error"],
)
def test_deeply_nested_bodies_raise_protocol_error(body: bytes) -> None:
    """100,000 levels of nesting are a malformed answer: ProtocolError, not RecursionError."""
    with pytest.raises(ProtocolError):
        parse_envelope(body, method="Balance", status=200)


def test_deeply_nested_results_raise_protocol_error() -> None:
    """A result decoder given a deeply nested value raises ProtocolError too."""
    with pytest.raises(ProtocolError):
        decode_balance(msgspec.Raw(b'{"ZUSD":' + DEEP + b"}"))


def test_first_error_decides_and_warnings_do_not() -> None:
    """With warnings and errors together, the first E-string decides the class."""
    body = b'{"error":["WGeneral:Note","EAPI:Invalid nonce","EAPI:Invalid key"]}'
    with pytest.raises(InvalidNonceError):
        parse_envelope(body, method="Balance", status=200)


def test_warnings_come_back_beside_the_result() -> None:
    """A result with W-strings succeeds; read_envelope returns the warnings."""
    body = b'{"error":["WAPI:Deprecated endpoint"],"result":{"ZUSD":"1.0000"}}'
    envelope = read_envelope(body, method="Balance", status=200)
    assert envelope.warnings == ("WAPI:Deprecated endpoint",)
    assert decode_balance(envelope.result)["ZUSD"].balance == Decimal("1.0000")


def test_throttled_error_uses_now_for_retry_after() -> None:
    """The throttle timestamp turns into a wait relative to `now`."""
    body = b'{"error":["EService: Throttled: 1700000030"]}'
    with pytest.raises(RateLimitedError) as info:
        parse_envelope(body, method="Balance", status=200, now=1_700_000_000.0)
    assert info.value.retry_after == 30.0


def test_cloudflare_html_page_is_a_transport_error() -> None:
    """An HTML error page (Cloudflare 520) is a TransportError with a short message."""
    page = (
        b"<!DOCTYPE html><html><head><title>api.kraken.com | 520: Web server is returning an "
        b"unknown error</title></head><body>" + b"x" * 5000 + b"</body></html>"
    )
    with pytest.raises(TransportError) as info:
        parse_envelope(page, method="Balance", status=520, content_type="text/html; charset=UTF-8")
    assert info.value.status == 520
    assert info.value.retryable
    message = str(info.value)
    assert message.startswith("Balance: HTTP 520 (text/html): api.kraken.com | 520")
    assert len(message) < 160


def test_html_body_with_status_200_is_a_transport_error() -> None:
    """Maintenance HTML served with 200 is not a Kraken answer either."""
    with pytest.raises(TransportError) as info:
        parse_envelope(b"<html><body>Down for maintenance</body></html>", method="X", status=200)
    assert info.value.status == 200
    assert "Down for maintenance" in str(info.value)


def test_non_200_with_a_kraken_error_maps_the_error() -> None:
    """HTTP 429 with EAPI:Rate limit exceeded (undocumented) maps to RateLimitedError."""
    with pytest.raises(RateLimitedError):
        parse_envelope(b'{"error":["EAPI:Rate limit exceeded"]}', method="Balance", status=429)


def test_non_200_without_an_error_is_a_transport_error() -> None:
    """A non-200 status with a body that is no Kraken error is a TransportError."""
    with pytest.raises(TransportError) as info:
        parse_envelope(b'{"error":[],"result":{}}', method="Balance", status=502)
    assert info.value.status == 502
    with pytest.raises(TransportError):
        parse_envelope(b'{"message":"bad gateway"}', method="Balance", status=502)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b'{"result":{}}', "$"),
        (b"[]", "$"),
        (b'{"error":"EAPI:Invalid key"}', "$.error"),
        (b'{"error":[]}', "$.result"),
    ],
)
def test_json_of_the_wrong_shape_is_a_protocol_error(body: bytes, path: str) -> None:
    """JSON without an error array, or success without a result, is a ProtocolError."""
    with pytest.raises(ProtocolError) as info:
        parse_envelope(body, method="Balance", status=200)
    assert info.value.path == path


# -- decoders -----------------------------------------------------------------------------


def test_decode_balance_fixture(fixture_bytes: FixtureBytes) -> None:
    """Balance strings decode exactly, trailing zeros kept."""
    entries = decode_balance(ok(fixture_bytes("rest_balance.json")))
    assert entries["XXBT"] == RestBalanceEntry(Decimal("1011.1908877900"))
    assert str(entries["XXBT"].balance) == "1011.1908877900"
    assert entries["ETH2.S"].balance == Decimal("198.3970800000")
    assert all(e.hold_trade == 0 for e in entries.values())


def test_decode_balance_ex_accepts_numbers(fixture_bytes: FixtureBytes) -> None:
    """The docs' BalanceEx example uses JSON numbers: they decode exactly."""
    entries = decode_balance_ex(ok(fixture_bytes("rest_balanceex.json")))
    assert entries["ZUSD"] == RestBalanceEntry(Decimal("25435.21"), Decimal("8249.76"))
    assert entries["XXBT"].hold_trade == Decimal("0.8423")


def test_decode_balance_ex_accepts_strings_and_credit() -> None:
    """The schema's strings (and optional credit fields) decode exactly."""
    raw = (
        b'{"XXBT":{"balance":"0.0000000030","hold_trade":"0.0000000000"},'
        b'"ZUSD":{"balance":"21.9050","hold_trade":"1.0000","credit":"100.0000",'
        b'"credit_used":"5.5000"},"KFEE":{"balance":"7328.19","hold_trade":"0.00"}}'
    )
    entries = decode_balance_ex(raw)
    assert str(entries["XXBT"].balance) == "3.0E-9"
    assert entries["XXBT"].balance == Decimal("0.0000000030")
    assert entries["ZUSD"].credit == Decimal("100")
    assert entries["ZUSD"].credit_used == Decimal("5.5")
    assert entries["KFEE"].balance == Decimal("7328.19")


def test_decode_balance_ex_missing_fields_count_as_zero() -> None:
    """Absent hold_trade/credit fields count as 0 (the documented formula)."""
    entries = decode_balance_ex(b'{"DOT":{"balance":"2.5"}}')
    assert entries["DOT"] == RestBalanceEntry(Decimal("2.5"))


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b'{"XXBT":{"balance":true}}', "$.result[...].balance"),
        (b'{"XXBT":{"hold_trade":"1"}}', "$.result[...]"),
        (b'{"XXBT":{"balance":"one"}}', "$.result[...].balance"),
        (b'{"XXBT":{"balance":"NaN"}}', "$.result[...].balance"),
        (b'{"XXBT":{"balance":"1","hold_trade":"-Infinity"}}', "$.result[...].hold_trade"),
        (b'["XXBT"]', "$.result"),
    ],
)
def test_bad_balance_ex_shapes_name_the_path(raw: bytes, path: str) -> None:
    """A wrong type, a missing field or a non-finite amount raises ProtocolError at its path."""
    with pytest.raises(ProtocolError) as info:
        decode_balance_ex(raw)
    assert info.value.path == path
    assert str(info.value).startswith("BalanceEx: ")


def test_decode_balance_refuses_non_finite_values() -> None:
    """NaN in a Balance result is refused with the key in the path."""
    with pytest.raises(ProtocolError) as info:
        decode_balance(b'{"ZUSD":"NaN"}')
    assert info.value.path == "$.result.ZUSD"


def test_decode_ws_token_hides_the_token(fixture_bytes: FixtureBytes) -> None:
    """The token is a Secret: usable via reveal(), never printed."""
    token = decode_ws_token(ok(fixture_bytes("rest_getwebsocketstoken.json")))
    assert token.token.reveal() == "1Dwc4lzSwNWOAwkMdqhssNNFhs1ed606d1WcF3XfEMw"
    assert token.expires == 900
    assert "1Dwc4lz" not in repr(token)
    assert "1Dwc4lz" not in str(token)


def test_decode_ws_token_unescapes_slashes() -> None:
    """Tokens with / and + survive JSON's \\/ escape."""
    token = decode_ws_token(b'{"token":"ab\\/cd+ef","expires":900}')
    assert token.token == Secret("ab/cd+ef")


def test_decode_ws_token_error_does_not_leak_the_token() -> None:
    """A bad token result raises without quoting the body."""
    with pytest.raises(ProtocolError) as info:
        decode_ws_token(b'{"token":"SECRET-TOKEN-VALUE","expires":"soon"}')
    assert "SECRET-TOKEN-VALUE" not in str(info.value)
    assert "SECRET-TOKEN-VALUE" not in info.value.raw
    assert info.value.path == "$.result.expires"


def test_decode_assets_fixture(fixture_bytes: FixtureBytes) -> None:
    """Assets records decode, and feed AssetNames through asset_fields()."""
    records = decode_assets(ok(fixture_bytes("rest_assets.json")))
    assert records["XXBT"] == AssetRecord(
        aclass="currency",
        altname="XBT",
        decimals=10,
        display_decimals=5,
        collateral_value=Decimal(1),
        status="enabled",
    )
    names = AssetNames([])
    names.update_from_assets(asset_fields(records))
    assert names.decimals("BTC") == 10
    assert names.rest_key("EUR") == "ZEUR"


def test_decode_time_and_status_fixtures(fixture_bytes: FixtureBytes) -> None:
    """Time and SystemStatus decode to their documented fields."""
    time = decode_time(ok(fixture_bytes("rest_time.json")))
    assert (time.unixtime, time.rfc1123) == (1688669448, "Thu, 06 Jul 23 18:50:48 +0000")
    status = decode_system_status(ok(fixture_bytes("rest_systemstatus.json")))
    assert status.status == "online"
    assert status.online
    assert status.timestamp == "2021-03-22T17:18:03Z"
    other = decode_system_status(b'{"status":"cancel_only","timestamp":"2021-03-22T17:18:03Z"}')
    assert not other.online


def test_decode_trade_balance_fixture(fixture_bytes: FixtureBytes) -> None:
    """TradeBalance strings decode exactly; ml and uv are optional."""
    balance = decode_trade_balance(ok(fixture_bytes("rest_tradebalance.json")))
    assert balance.eb == Decimal("1101.3425")
    assert balance.n == Decimal("-10.0232")
    assert balance.ml == Decimal("5432.57")
    assert balance.uv is None


def test_decode_open_orders() -> None:
    """OpenOrders entries decode with descr, volumes and the remaining volume."""
    raw = json.dumps(
        {
            "open": {
                "OQCLML-BW3P3-BUCMWZ": {
                    "refid": None,
                    "userref": 0,
                    "status": "open",
                    "opentm": 1688666559.8974,
                    "starttm": 0,
                    "expiretm": 0,
                    "descr": {
                        "pair": "XBTUSD",
                        "type": "buy",
                        "ordertype": "limit",
                        "price": "30010.0",
                        "price2": "0",
                        "leverage": "none",
                        "order": "buy 1.25000000 XBTUSD @ limit 30010.0",
                        "close": "",
                    },
                    "vol": "1.25000000",
                    "vol_exec": "0.37500000",
                    "cost": "0.00000",
                    "fee": "0.00000",
                    "price": "0.00000",
                    "stopprice": "0.00000",
                    "limitprice": "0.00000",
                    "misc": "",
                    "oflags": "fciq",
                    "trades": ["TCCCTY-WE2O6-P3NB37"],
                }
            }
        }
    ).encode()
    orders = decode_open_orders(raw)
    order = orders["OQCLML-BW3P3-BUCMWZ"]
    assert order.descr.type == "buy"
    assert order.descr.price == Decimal("30010.0")
    assert order.remaining == Decimal("0.875")
    assert order.oflags == "fciq"


def test_decode_add_and_cancel_order() -> None:
    """AddOrder and CancelOrder results decode to their fields."""
    added = decode_add_order(
        b'{"descr":{"order":"buy 1.25000000 XBTUSD @ limit 27500.0"},'
        b'"txid":["OU22CG-KLAF2-FWUDD7"]}'
    )
    assert added.txid == ["OU22CG-KLAF2-FWUDD7"]
    assert added.descr.close is None
    canceled = decode_cancel_order(b'{"count":1}')
    assert (canceled.count, canceled.pending) == (1, False)


# -- server side ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (Decimal("3E-9"), 10, "0.0000000030"),
        (Decimal("21.905"), 4, "21.9050"),
        (Decimal("7328.19"), 2, "7328.19"),
        (Decimal("1E+3"), 2, "1000.00"),
        (Decimal("-0.00001"), 4, "0.0000"),
        (Decimal("0.00005"), 4, "0.0000"),  # banker's rounding: half to even
        (Decimal("0.00015"), 4, "0.0002"),
        (Decimal("123456789012345678901234567890.5"), 2, "123456789012345678901234567890.50"),
        (Decimal(5), 0, "5"),
    ],
)
def test_format_amount(value: Decimal, decimals: int, text: str) -> None:
    """Amounts are written with exactly the asset's decimals, no exponent, no -0."""
    assert format_amount(value, decimals) == text


def test_format_amount_refuses_nonsense() -> None:
    """NaN and negative decimals are refused."""
    with pytest.raises(ValueError, match="finite"):
        format_amount(Decimal("NaN"), 2)
    with pytest.raises(ValueError, match="decimals"):
        format_amount(Decimal(1), -1)


def test_encode_envelope_shapes() -> None:
    """Success has error [] and result; failure has only error (fixture shapes)."""
    assert encode_envelope({"unixtime": 1}) == b'{"error":[],"result":{"unixtime":1}}'
    assert encode_envelope(errors=["EAPI:Invalid nonce"]) == b'{"error":["EAPI:Invalid nonce"]}'
    assert (
        encode_envelope({}, ["EAPI:Invalid key"]) == b'{"error":["EAPI:Invalid key"],"result":{}}'
    )


def test_balance_result_round_trips_through_the_client(
    fixture_json: Callable[[str], object],
) -> None:
    """The simulator's Balance body decodes back to the same exact amounts."""
    decimals = {"XXBT": 10, "ZUSD": 4}
    body = encode_envelope(balance_result({"XXBT": Decimal("1.5"), "ZUSD": Decimal(2)}, decimals))
    assert json.loads(body) == {"error": [], "result": {"XXBT": "1.5000000000", "ZUSD": "2.0000"}}
    entries = decode_balance(ok(body))
    assert entries["XXBT"].balance == Decimal("1.5")


def test_balance_ex_result_writes_credit_only_with_a_credit_line() -> None:
    """credit/credit_used appear only for assets that have a credit line."""
    result = balance_ex_result(
        {
            "XXBT": RestBalanceEntry(Decimal("1.2435"), Decimal("0.8423")),
            "ZUSD": RestBalanceEntry(Decimal(10), credit=Decimal(100), credit_used=Decimal(1)),
        },
        {"XXBT": 10},
        default=4,
    )
    assert result == {
        "XXBT": {"balance": "1.2435000000", "hold_trade": "0.8423000000"},
        "ZUSD": {
            "balance": "10.0000",
            "hold_trade": "0.0000",
            "credit": "100.0000",
            "credit_used": "1.0000",
        },
    }
    with pytest.raises(ValueError, match="no decimals"):
        balance_ex_result({"DOT": RestBalanceEntry(Decimal(1))}, {})


@given(
    st.dictionaries(
        st.sampled_from(["XXBT", "ZUSD", "USDT", "XBT.F"]),
        st.tuples(
            st.decimals(min_value=0, max_value=10**12, places=8, allow_nan=False),
            st.decimals(min_value=0, max_value=10**12, places=8, allow_nan=False),
        ),
    )
)
def test_balance_ex_round_trip(values: dict[str, tuple[Decimal, Decimal]]) -> None:
    """Anything the simulator writes at 8+ decimals, the client reads back exactly."""
    entries = {k: RestBalanceEntry(balance=b, hold_trade=h) for k, (b, h) in values.items()}
    body = encode_envelope(balance_ex_result(entries, {}, default=10))
    assert decode_balance_ex(ok(body)) == entries
