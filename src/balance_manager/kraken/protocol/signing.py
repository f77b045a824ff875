"""Kraken REST request signing and nonces, sans-I/O.

The algorithm and the nonce rules are in docs/kraken.md,
'REST authentication and the signature' and 'Nonces'.

The client signs with :func:`sign`; the simulator checks with :func:`verify`.
Both hash exactly the bytes that travel as the request body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from decimal import Decimal

import msgspec

from balance_manager.exceptions import ConfigError

__all__ = [
    "NonceSource",
    "decode_secret",
    "encode_form",
    "encode_json",
    "sign",
    "verify",
]


def decode_secret(secret_b64: str) -> bytes:
    """The HMAC key: the base64-decoded API secret.

    Raises:
        ConfigError: the secret is not valid base64 (the message never shows it).
    """
    try:
        return base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("api_secret", "***", "is not valid base64") from None


def sign(url_path: str, nonce: int | str, body: bytes | str, secret: str | bytes) -> str:
    """The ``API-Sign`` header for one private request.

    Args:
        url_path: the URI path, e.g. ``/0/private/Balance`` (no host, no query).
        nonce: the nonce as sent in the body.
        body: the exact request body (form-encoded or JSON text).
        secret: the base64 API secret, or the already decoded key bytes.

    Returns:
        ``base64(HMAC-SHA512(key, path_bytes + SHA256(nonce_text + body)))``.
    """
    key = secret if isinstance(secret, bytes) else decode_secret(secret)
    body_bytes = body.encode() if isinstance(body, str) else body
    inner = hashlib.sha256(str(nonce).encode() + body_bytes).digest()
    mac = hmac.new(key, url_path.encode() + inner, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def verify(
    url_path: str, nonce: int | str, body: bytes | str, secret: str | bytes, signature: str
) -> bool:
    """Whether ``signature`` is the right ``API-Sign`` for this request (constant time)."""
    expected = sign(url_path, nonce, body, secret)
    return hmac.compare_digest(expected.encode(), signature.encode())


def _wire_text(value: object) -> str:
    """A parameter as Kraken expects it: plain digits (never ``1E-8``), ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def encode_form(params: Mapping[str, object]) -> str:
    """Form-encode ``params`` in the given order (the nonce should come first).

    ``Decimal`` values keep their digits in plain notation (``0.00000001``).
    """
    return urllib.parse.urlencode([(key, _wire_text(value)) for key, value in params.items()])


_json_encoder = msgspec.json.Encoder()


def encode_json(params: Mapping[str, object]) -> bytes:
    """JSON-encode ``params`` compactly; the nonce and amounts are strings."""
    return _json_encoder.encode(
        {
            k: _wire_text(v) if k == "nonce" or isinstance(v, Decimal) else v
            for k, v in params.items()
        }
    )


class NonceSource:
    """Strictly increasing nonces, safe from many tasks and threads at once.

    Nonces are nanoseconds since the epoch (the resolution Kraken's docs
    recommend for bursts; docs/kraken.md, 'Nonces'), and never repeat or go
    back: each is ``max(now_ns, last + 1)`` under a lock, so a clock that steps
    backwards or two calls in the same nanosecond still get increasing values.
    Share one source per API key across every worker of a process.

    Args:
        time_ns: nanosecond clock (injectable for tests).
        floor: a nonce already used with this key; the next is above it.
    """

    __slots__ = ("_last", "_lock", "_time_ns")

    def __init__(self, time_ns: Callable[[], int] = time.time_ns, *, floor: int = 0) -> None:
        self._time_ns = time_ns
        self._last = floor
        self._lock = threading.Lock()

    def __call__(self) -> int:
        """The next nonce."""
        now = self._time_ns()
        with self._lock:
            nonce = now if now > self._last else self._last + 1
            self._last = nonce
        return nonce

    next = __call__

    @property
    def last(self) -> int:
        """The last nonce handed out (0 before the first)."""
        return self._last

    def __repr__(self) -> str:
        return f"NonceSource(last={self._last})"
