"""Server-side authentication: keys, signatures, nonces, lockout, call counter and tokens."""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given, strategies as st

from balance_manager.exceptions import ConfigError, ExchangeError
from balance_manager.kraken.protocol.signing import encode_form, encode_json, sign
from balance_manager.simulator.model.auth import TOKEN_ERROR, Authenticator, parse_body

PATH = "/0/private/Balance"


def make_auth(**kwargs: object) -> tuple[Authenticator, str, str]:
    """An authenticator with one key; returns it, the key and the secret."""
    auth = Authenticator(random.Random(5), **kwargs)  # type: ignore[arg-type]  # test options
    credentials = auth.new_credentials("acct")
    return auth, credentials.api_key, credentials.api_secret.reveal()


def call(
    auth: Authenticator,
    key: str,
    secret: str,
    nonce: int,
    *,
    now: float = 0.0,
    method: str = "Balance",
    tamper: bool = False,
) -> tuple[str, dict[str, str]]:
    """One signed form call."""
    body = encode_form({"nonce": nonce})
    signature = sign(f"/0/private/{method}", nonce, body, secret)
    if tamper:
        body += "&extra=1"
    headers = {"API-Key": key, "API-Sign": signature}
    return auth.authenticate(method, f"/0/private/{method}", headers, body.encode(), now=now)


def code_of(excinfo: pytest.ExceptionInfo[ExchangeError]) -> str:
    """The Kraken error string of a caught refusal."""
    return excinfo.value.code


def test_new_credentials_look_like_krakens() -> None:
    """Keys are ``sim-`` + 56 base64 characters (never a real key); secrets base64 of 64 bytes."""
    _, key, secret = make_auth()
    assert key.startswith("sim-")
    assert len(key) == 4 + 56
    assert len(base64.b64decode(key.removeprefix("sim-"))) == 42
    assert len(base64.b64decode(secret, validate=True)) == 64


def test_good_call_returns_key_and_fields() -> None:
    """A correctly signed call with a fresh nonce is accepted and its fields parsed."""
    auth, key, secret = make_auth()
    api_key, fields = call(auth, key, secret, 10)
    assert api_key == key
    assert fields == {"nonce": "10"}


def test_unknown_key_is_refused() -> None:
    """An unknown API-Key gives EAPI:Invalid key."""
    auth, _, secret = make_auth()
    with pytest.raises(ExchangeError) as info:
        call(auth, "nobody", secret, 1)
    assert code_of(info) == "EAPI:Invalid key"


def test_body_that_differs_from_the_signed_one_is_refused() -> None:
    """A body changed after signing gives EAPI:Invalid signature."""
    auth, key, secret = make_auth()
    with pytest.raises(ExchangeError) as info:
        call(auth, key, secret, 1, tamper=True)
    assert code_of(info) == "EAPI:Invalid signature"


def test_json_bodies_are_verified_byte_for_byte() -> None:
    """A JSON body signed as sent is accepted; its nonce is read from the JSON."""
    auth, key, secret = make_auth()
    body = encode_json({"nonce": 77, "asset": "XBT"})
    headers = {"API-Key": key, "API-Sign": sign(PATH, 77, body, secret)}
    _, fields = auth.authenticate(
        "Balance", PATH, headers, body, now=0.0, content_type="application/json"
    )
    assert fields == {"nonce": "77", "asset": "XBT"}


def test_nonce_must_increase() -> None:
    """A nonce equal to or below the last accepted one gives EAPI:Invalid nonce."""
    auth, key, secret = make_auth()
    call(auth, key, secret, 100)
    for stale in (100, 99):
        with pytest.raises(ExchangeError) as info:
            call(auth, key, secret, stale)
        assert code_of(info) == "EAPI:Invalid nonce"
    call(auth, key, secret, 101)


def test_repeated_failures_lock_the_key_out_until_the_period_ends() -> None:
    """Five failures within a minute lock the key out (even good calls) for the lockout period."""
    auth, key, secret = make_auth(lockout_threshold=5, lockout_duration=900.0)
    call(auth, key, secret, 50)
    for t in range(5):
        with pytest.raises(ExchangeError):
            call(auth, key, secret, 10, now=float(t))
    with pytest.raises(ExchangeError) as info:
        call(auth, key, secret, 60, now=5.0)
    assert code_of(info) == "EGeneral:Temporary lockout"
    api_key, _ = call(auth, key, secret, 61, now=4.0 + 900.0)
    assert api_key == key


def test_failures_spread_beyond_the_window_do_not_lock_out() -> None:
    """Failures further apart than the window never reach the threshold."""
    auth, key, secret = make_auth(lockout_threshold=3, lockout_window=60.0)
    call(auth, key, secret, 50)
    for t in range(6):
        with pytest.raises(ExchangeError) as info:
            call(auth, key, secret, 10, now=t * 61.0)
        assert code_of(info) == "EAPI:Invalid nonce"


def test_call_counter_refuses_a_burst_then_recovers_with_decay() -> None:
    """Starter allows 15 calls at once; the 16th is rate limited until the counter decays."""
    auth, key, secret = make_auth(tier="starter")
    for n in range(15):
        call(auth, key, secret, n + 1, now=0.0)
    with pytest.raises(ExchangeError) as info:
        call(auth, key, secret, 100, now=0.0)
    assert code_of(info) == "EAPI:Rate limit exceeded"
    with pytest.raises(ExchangeError):
        call(auth, key, secret, 101, now=2.0)  # 15 - 0.66 + 1 > 15
    call(auth, key, secret, 102, now=1 / 0.33 + 0.01)
    assert auth.counter(key, 1 / 0.33 + 0.01) == pytest.approx(15.0, abs=0.01)


def test_add_order_does_not_use_the_call_counter() -> None:
    """AddOrder and CancelOrder are metered by the matching engine, not this counter."""
    auth, key, secret = make_auth()
    for n in range(40):
        call(auth, key, secret, n + 1, method="AddOrder")
    assert auth.counter(key, 0.0) == 0.0


@pytest.mark.parametrize(("tier", "burst"), [("intermediate", 20), ("pro", 20)])
def test_tiers_have_their_documented_maximum(tier: str, burst: int) -> None:
    """Intermediate and pro allow 20 calls in a burst."""
    auth, key, secret = make_auth(tier=tier)
    for n in range(burst):
        call(auth, key, secret, n + 1)
    with pytest.raises(ExchangeError):
        call(auth, key, secret, burst + 1)


def test_unknown_tier_is_a_config_error() -> None:
    """An unknown tier name is refused at construction."""
    with pytest.raises(ConfigError):
        Authenticator(random.Random(0), tier="whale")


def test_token_must_be_used_within_its_ttl() -> None:
    """A token unused for more than 15 minutes is refused; a fresh one works."""
    auth, key, _ = make_auth()
    token = auth.issue_token(key, now=0.0)
    with pytest.raises(ExchangeError) as info:
        auth.redeem_token(token, 900.5, set())
    assert code_of(info) == TOKEN_ERROR
    fresh = auth.issue_token(key, now=900.5)
    assert auth.redeem_token(fresh, 901.0, set()) == key


def test_used_token_stays_valid_on_its_connection_only() -> None:
    """After a subscription, the token keeps working on that connection past the TTL."""
    auth, key, _ = make_auth()
    token = auth.issue_token(key, now=0.0)
    connection: set[str] = set()
    auth.redeem_token(token, 10.0, connection)
    assert auth.redeem_token(token, 5000.0, connection) == key
    with pytest.raises(ExchangeError):
        auth.redeem_token(token, 5000.0, set())


def test_revoked_tokens_are_refused_everywhere() -> None:
    """Revoking tokens invalidates them even on the connection that used them."""
    auth, key, _ = make_auth()
    token = auth.issue_token(key, now=0.0)
    connection: set[str] = set()
    auth.redeem_token(token, 1.0, connection)
    assert auth.revoke_tokens() == 1
    with pytest.raises(ExchangeError):
        auth.redeem_token(token, 2.0, connection)


def test_tokens_are_43_base64_characters() -> None:
    """Tokens look like Kraken's (43 chars of base64, possibly with / and +)."""
    auth, key, _ = make_auth()
    tokens = [auth.issue_token(key, now=0.0) for _ in range(50)]
    assert all(len(token) == 43 for token in tokens)
    assert len(set(tokens)) == 50


@given(st.dictionaries(st.sampled_from(["nonce", "pair", "volume", "asset"]), st.text(max_size=8)))
def test_form_bodies_parse_back_to_their_fields(fields: dict[str, str]) -> None:
    """Any form-encoded body parses back to the fields that made it."""
    assert parse_body(encode_form(fields).encode()) == fields


def test_json_numbers_are_read_exactly() -> None:
    """A JSON number such as 1.10 reaches the handlers as the text 1.10, not a float."""
    assert parse_body(b'{"nonce":1,"volume":1.10}', "application/json") == {
        "nonce": "1",
        "volume": "1.10",
    }


def test_garbage_json_is_invalid_arguments() -> None:
    """A body that claims JSON but is not gives EGeneral:Invalid arguments."""
    with pytest.raises(ExchangeError) as info:
        parse_body(b"{nonce", "application/json")
    assert code_of(info) == "EGeneral:Invalid arguments"
