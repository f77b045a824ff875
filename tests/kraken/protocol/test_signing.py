"""Tests of balance_manager.kraken.protocol.signing: API-Sign, verify(), body encoders, nonces."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from balance_manager.exceptions import ConfigError
from balance_manager.kraken.protocol.signing import (
    NonceSource,
    decode_secret,
    encode_form,
    encode_json,
    sign,
    verify,
)

# A made-up 64-byte secret, base64 like Kraken's.
SECRET = base64.b64encode(bytes(range(64))).decode()


def reference_sign(path: str, nonce: str, body: bytes, secret_b64: str) -> str:
    """The documented algorithm, step by step, written independently of the module."""
    inner = hashlib.sha256(nonce.encode("utf-8") + body).digest()  # step 2
    message = path.encode("utf-8") + inner  # step 3
    key = base64.b64decode(secret_b64)  # step 4
    return base64.b64encode(hmac.new(key, message, hashlib.sha512).digest()).decode()  # step 5


@pytest.fixture
def docs_vector(fixture_json: Callable[[str], Any]) -> dict[str, str]:
    """Kraken's documented known-answer vector (fixtures/signing_vectors.json)."""
    vectors = fixture_json("signing_vectors.json")["vectors"]
    return next(v for v in vectors if v["id"] == "kraken-docs-addorder")


def test_sign_matches_kraken_docs_vector(docs_vector: dict[str, str]) -> None:
    """sign() reproduces the API-Sign of Kraken's own documentation example."""
    signature = sign(
        docs_vector["uri_path"],
        docs_vector["nonce"],
        docs_vector["post_data"],
        docs_vector["secret_b64"],
    )
    assert signature == docs_vector["expected_api_sign"]


def test_sign_accepts_int_nonce_and_bytes_body(docs_vector: dict[str, str]) -> None:
    """An int nonce and a bytes body sign exactly like their text forms."""
    signature = sign(
        docs_vector["uri_path"],
        int(docs_vector["nonce"]),
        docs_vector["post_data"].encode(),
        docs_vector["secret_b64"],
    )
    assert signature == docs_vector["expected_api_sign"]


def test_sign_accepts_decoded_key_bytes(docs_vector: dict[str, str]) -> None:
    """A secret already decoded to key bytes gives the same signature."""
    key = base64.b64decode(docs_vector["secret_b64"])
    signature = sign(docs_vector["uri_path"], docs_vector["nonce"], docs_vector["post_data"], key)
    assert signature == docs_vector["expected_api_sign"]


def test_json_body_vector_computed_from_the_algorithm() -> None:
    """A JSON body (nonce as a string) signs as the step-by-step algorithm says."""
    body = b'{"nonce":"1756856074101"}'
    expected = reference_sign("/0/private/Balance", "1756856074101", body, SECRET)
    assert sign("/0/private/Balance", 1756856074101, body, SECRET) == expected
    # The signature really depends on the JSON spacing: the same data spaced differently differs.
    spaced = b'{"nonce": "1756856074101"}'
    assert sign("/0/private/Balance", 1756856074101, spaced, SECRET) != expected


@given(
    path=st.sampled_from(["/0/private/Balance", "/0/private/BalanceEx", "/0/private/AddOrder"]),
    nonce=st.integers(min_value=0, max_value=2**64 - 1),
    body=st.binary(max_size=200),
)
@settings(max_examples=100)
def test_sign_equals_reference_for_any_body(path: str, nonce: int, body: bytes) -> None:
    """For any path, nonce and body bytes, sign() equals the reference algorithm."""
    assert sign(path, nonce, body, SECRET) == reference_sign(path, str(nonce), body, SECRET)


def test_verify_accepts_the_right_signature(docs_vector: dict[str, str]) -> None:
    """verify() is true for the documented signature."""
    assert verify(
        docs_vector["uri_path"],
        docs_vector["nonce"],
        docs_vector["post_data"],
        docs_vector["secret_b64"],
        docs_vector["expected_api_sign"],
    )


@pytest.mark.parametrize("change", ["path", "nonce", "body", "secret", "signature"])
def test_verify_rejects_any_changed_part(docs_vector: dict[str, str], change: str) -> None:
    """Changing the path, nonce, body, secret or signature makes verify() false."""
    args = {
        "path": docs_vector["uri_path"],
        "nonce": docs_vector["nonce"],
        "body": docs_vector["post_data"],
        "secret": docs_vector["secret_b64"],
        "signature": docs_vector["expected_api_sign"],
    }
    altered = {
        "path": "/0/private/Balance",
        "nonce": str(int(docs_vector["nonce"]) + 1),
        "body": docs_vector["post_data"] + "&otp=1",
        "secret": SECRET,
        "signature": "A" + docs_vector["expected_api_sign"][1:],
    }
    args[change] = altered[change]
    assert not verify(args["path"], args["nonce"], args["body"], args["secret"], args["signature"])


def test_decode_secret_rejects_bad_base64_without_showing_it() -> None:
    """A secret that is not base64 raises ConfigError whose message hides the value."""
    secret = "not*base64*at*all"
    with pytest.raises(ConfigError) as info:
        decode_secret(secret)
    assert secret not in str(info.value)
    assert info.value.option == "api_secret"


def test_encode_form_keeps_order_and_exact_decimals() -> None:
    """Form encoding keeps field order (nonce first) and Decimal digits."""
    from decimal import Decimal

    body = encode_form({"nonce": 1, "pair": "XBTUSD", "volume": Decimal("1.250"), "price": "37500"})
    assert body == "nonce=1&pair=XBTUSD&volume=1.250&price=37500"


def test_small_decimals_are_written_in_plain_notation() -> None:
    """Decimal parameters are written with plain digits, never in exponent notation."""
    from decimal import Decimal

    assert encode_form({"nonce": 1, "volume": Decimal("0.00000001")}) == "nonce=1&volume=0.00000001"
    assert encode_json({"nonce": 1, "volume": Decimal("1E-8")}) == (
        b'{"nonce":"1","volume":"0.00000001"}'
    )


def test_encode_form_matches_docs_vector_body(docs_vector: dict[str, str]) -> None:
    """The documented AddOrder body is what encode_form writes for its fields."""
    fields = dict(pair.split("=") for pair in docs_vector["post_data"].split("&"))
    assert encode_form(fields) == docs_vector["post_data"]


def test_encode_json_writes_the_nonce_as_a_string() -> None:
    """JSON bodies carry the nonce as a string, compact, fields in order."""
    body = encode_json({"nonce": 1756856074101, "asset": "ZUSD"})
    assert body == b'{"nonce":"1756856074101","asset":"ZUSD"}'
    assert json.loads(body)["nonce"] == "1756856074101"


def test_nonce_source_is_strictly_increasing_under_threads() -> None:
    """8 threads x 10,000 calls on one source never repeat or go back."""
    source = NonceSource()
    results: list[list[int]] = [[] for _ in range(8)]

    def work(out: list[int]) -> None:
        for _ in range(10_000):
            out.append(source())

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [nonce for out in results for nonce in out]
    assert len(set(every)) == 80_000
    for out in results:  # each thread saw its own nonces increase
        assert all(a < b for a, b in itertools.pairwise(out))
    assert source.last == max(every)


def test_nonce_source_survives_a_clock_going_backwards() -> None:
    """When the clock steps back, nonces still increase by at least one."""
    readings = iter([1_000, 2_000, 1_500, 1_500, 900, 5_000])
    source = NonceSource(lambda: next(readings))
    nonces = [source() for _ in range(6)]
    assert nonces == [1_000, 2_000, 2_001, 2_002, 2_003, 5_000]


def test_nonce_source_starts_above_its_floor() -> None:
    """A floor (a nonce already used with the key) is never reached again."""
    source = NonceSource(lambda: 10, floor=100)
    assert source() == 101
    assert source.next() == 102


def test_nonce_source_repr_shows_only_the_last_nonce() -> None:
    """The repr names the last nonce and nothing else."""
    source = NonceSource(lambda: 42)
    source()
    assert repr(source) == "NonceSource(last=42)"
