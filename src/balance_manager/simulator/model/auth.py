"""The server side of Kraken's authentication: keys, signatures, nonces, limits, tokens.

What a private REST call goes through, in order (docs/kraken.md, 'REST authentication
and the signature', 'Nonces', 'Error strings', 'The private call counter'):

1. **Lockout.** A key with too many recent failures (``lockout_threshold``
   invalid key / signature / nonce errors within ``lockout_window`` seconds)
   gets ``EGeneral:Temporary lockout`` for ``lockout_duration`` seconds
   (Kraken's support article says about 15 minutes).
2. **Key.** ``API-Key`` must name a known key: ``EAPI:Invalid key``.
3. **Signature.** ``API-Sign`` must equal
   :func:`balance_manager.kraken.protocol.signing.sign` over the exact body bytes:
   ``EAPI:Invalid signature``.
4. **Nonce.** The body's ``nonce`` (form or JSON) must be an unsigned
   64-bit integer above the last one accepted for the key: ``EAPI:Invalid nonce``.
5. **Call counter.** Each key has a counter that each call raises by its cost
   and that decays continuously at the tier's rate (starter 15 / -0.33 per s,
   intermediate 20 / -0.5, pro 20 / -1). A call that would take it above
   the maximum is refused with ``EAPI:Rate limit exceeded`` (and does not
   count). ``AddOrder``/``CancelOrder`` cost nothing here: Kraken meters them
   with the matching engine's limiter.

WebSocket tokens (docs/kraken.md, 'Token lifetime'): ``GetWebSocketsToken`` issues a random token
(``expires: 900``). It must be used by a private subscription within
``token_ttl`` seconds of its creation; once a connection has subscribed with
it, it stays valid for that connection. Tokens can be revoked (the
"token expired" fault).

Times are monotonic seconds given by the caller (``now``); randomness comes
from an injected :class:`random.Random`.
"""

from __future__ import annotations

import collections
import math
import random
import urllib.parse
from collections.abc import Mapping, MutableSet
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, TypeAlias

import msgspec

from balance_manager.credentials import SIMULATED_KEY_PREFIX, Credentials, Secret
from balance_manager.exceptions import ConfigError, ExchangeError
from balance_manager.kraken.protocol.limits import TIERS, cost_of
from balance_manager.kraken.protocol.signing import decode_secret, verify
from balance_manager.simulator.model.ids import random_b64

__all__ = [
    "TOKEN_ERROR",
    "Authenticator",
    "TierName",
    "parse_body",
]

TierName: TypeAlias = Literal["starter", "intermediate", "pro"]

#: The error sent for an unknown, expired or revoked WebSocket token. Kraken's
#: exact v2 text is not documented; this is the simulator's choice.
TOKEN_ERROR = "EAPI:Invalid token"  # noqa: S105 - an error text, not a password

_MAX_NONCE = 2**64 - 1


_json_decoder = msgspec.json.Decoder(float_hook=Decimal)


def parse_body(body: bytes, content_type: str = "") -> dict[str, str]:
    """The fields of a private request body, form-encoded or JSON.

    JSON numbers are read as ``Decimal`` and every value comes back as text,
    so ``{"volume": 1.25}`` and ``volume=1.25`` give the same field.

    Raises:
        ExchangeError: ``EGeneral:Invalid arguments`` when the body is not
            valid for its encoding.
    """
    text = body.strip()
    if "json" in content_type.lower() or text.startswith(b"{"):
        try:
            decoded: Any = _json_decoder.decode(text or b"{}")
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            # RecursionError: nested deeper than the decoder parses.
            raise ExchangeError("EGeneral:Invalid arguments") from None
        if not isinstance(decoded, dict):
            raise ExchangeError("EGeneral:Invalid arguments")
        fields: dict[str, str] = {}
        for key, value in decoded.items():
            if isinstance(value, bool):
                fields[str(key)] = "true" if value else "false"
            elif isinstance(value, str | int | Decimal):
                fields[str(key)] = str(value)
            elif isinstance(value, list):
                fields[str(key)] = ",".join(str(item) for item in value)
            elif value is not None:
                fields[str(key)] = msgspec.json.encode(value).decode()
        return fields
    try:
        pairs = urllib.parse.parse_qsl(
            text.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(text)
        )
    except (UnicodeDecodeError, ValueError):
        raise ExchangeError("EGeneral:Invalid arguments") from None
    return dict(pairs)


@dataclass(slots=True)
class _KeyState:
    """What the server remembers of one API key (or one unknown key string)."""

    last_nonce: int = 0
    counter: float = 0.0
    counter_at: float = 0.0
    failures: collections.deque[float] = field(default_factory=collections.deque)
    locked_until: float = -math.inf


@dataclass(slots=True)
class _Token:
    api_key: str
    created: float
    used: bool = False


class Authenticator:
    """Checks private REST calls and WebSocket tokens as Kraken does (see module docs).

    Args:
        rng: source of keys and secrets; tokens come from a stream seeded from
            it, so the keys of accounts added later do not depend on how many
            tokens were issued before.
        tier: verification tier of every key (``starter``, ``intermediate``, ``pro``).
        lockout_threshold: failures within ``lockout_window`` that lock a key out.
        lockout_window: seconds over which failures are counted.
        lockout_duration: seconds a lockout lasts.
        token_ttl: seconds a new WebSocket token may wait for its first use.
    """

    def __init__(
        self,
        rng: random.Random,
        *,
        tier: str = "starter",
        lockout_threshold: int = 5,
        lockout_window: float = 60.0,
        lockout_duration: float = 900.0,
        token_ttl: float = 900.0,
    ) -> None:
        if tier not in TIERS:
            raise ConfigError("tier", tier, f"must be one of {', '.join(TIERS)}")
        if lockout_threshold < 1:
            raise ConfigError("lockout_threshold", lockout_threshold, "must be at least 1")
        self._rng = rng
        # Seeded from rng's state without drawing from it: the keys stay those of the seed.
        self._token_rng = random.Random(f"tokens/{rng.getstate()[1][:8]}")
        self.tier = tier
        self.limits = TIERS[tier]
        self.lockout_threshold = lockout_threshold
        self.lockout_window = lockout_window
        self.lockout_duration = lockout_duration
        self.token_ttl = token_ttl
        self._secrets: dict[str, bytes] = {}
        self._accounts: dict[str, str] = {}
        self._state: dict[str, _KeyState] = {}
        self._tokens: dict[str, _Token] = {}

    # -- keys ------------------------------------------------------------------

    def add_key(self, api_key: str, api_secret: str | Secret, account: str) -> None:
        """Accept ``api_key`` (signed with ``api_secret``, base64) for ``account``."""
        secret = api_secret.reveal() if isinstance(api_secret, Secret) else api_secret
        self._secrets[api_key] = decode_secret(secret)
        self._accounts[api_key] = account

    def new_credentials(self, account: str) -> Credentials:
        """A fresh key pair for ``account``: a Kraken-shaped 56-char key behind
        ``sim-`` (so it can never pass for a real key, see
        :attr:`~balance_manager.credentials.Credentials.simulated`) and a 64-byte secret.
        """
        api_key = SIMULATED_KEY_PREFIX + random_b64(self._rng, 42)
        while api_key in self._secrets:
            api_key = SIMULATED_KEY_PREFIX + random_b64(self._rng, 42)
        secret = random_b64(self._rng, 64)
        self.add_key(api_key, secret, account)
        return Credentials.of(api_key, secret)

    def account_of(self, api_key: str) -> str:
        """The account a key belongs to.

        Raises:
            ExchangeError: ``EAPI:Invalid key``.
        """
        try:
            return self._accounts[api_key]
        except KeyError:
            raise ExchangeError("EAPI:Invalid key") from None

    def keys(self) -> list[str]:
        """Every accepted API key."""
        return list(self._secrets)

    # -- private calls ---------------------------------------------------------

    def authenticate(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float,
        content_type: str = "",
    ) -> tuple[str, dict[str, str]]:
        """Check one private call; returns its API key and body fields.

        Args:
            method: the private method's name (``Balance``), for the call cost.
            path: the request path (``/0/private/Balance``) that was signed.
            headers: the request headers (``API-Key``, ``API-Sign``).
            body: the raw body bytes, exactly as received.
            now: monotonic seconds.
            content_type: the request's ``Content-Type``.

        Raises:
            ExchangeError: with Kraken's error string (see module docs).
        """
        api_key = (headers.get("API-Key") or "").strip()
        state = self._state.setdefault(api_key, _KeyState())
        if now < state.locked_until:
            raise ExchangeError("EGeneral:Temporary lockout", method=method)
        secret = self._secrets.get(api_key)
        if secret is None:
            self._fail(state, now)
            raise ExchangeError("EAPI:Invalid key", method=method)
        try:
            fields = parse_body(body, content_type)
        except ExchangeError:
            self._fail(state, now)
            raise
        nonce_text = fields.get("nonce", "")
        signature = (headers.get("API-Sign") or "").strip()
        if not signature or not verify(path, nonce_text, body, secret, signature):
            self._fail(state, now)
            raise ExchangeError("EAPI:Invalid signature", method=method)
        nonce = _parse_nonce(nonce_text)
        if nonce is None or nonce <= state.last_nonce:
            self._fail(state, now)
            raise ExchangeError("EAPI:Invalid nonce", method=method)
        state.last_nonce = nonce
        self._charge(state, cost_of(method, conservative=False), now, method)
        return api_key, fields

    def counter(self, api_key: str, now: float) -> float:
        """A key's call counter at ``now`` (after decay)."""
        state = self._state.get(api_key)
        if state is None:
            return 0.0
        self._decay(state, now)
        return state.counter

    def lock_out(self, api_key: str, now: float) -> None:
        """Lock ``api_key`` out for ``lockout_duration`` from ``now``."""
        self._state.setdefault(api_key, _KeyState()).locked_until = now + self.lockout_duration

    def locked_until(self, api_key: str) -> float | None:
        """Monotonic end of a key's lockout, or ``None`` when it is not locked."""
        state = self._state.get(api_key)
        if state is None or state.locked_until == -math.inf:
            return None
        return state.locked_until

    def _fail(self, state: _KeyState, now: float) -> None:
        """Count a failed call; enough of them within the window lock the key out."""
        state.failures.append(now)
        while state.failures and state.failures[0] <= now - self.lockout_window:
            state.failures.popleft()
        if len(state.failures) >= self.lockout_threshold:
            state.locked_until = now + self.lockout_duration
            state.failures.clear()

    def _decay(self, state: _KeyState, now: float) -> None:
        elapsed = max(0.0, now - state.counter_at)
        state.counter = max(0.0, state.counter - elapsed * self.limits.decay_per_second)
        state.counter_at = now

    def _charge(self, state: _KeyState, cost: int, now: float, method: str) -> None:
        if cost <= 0:
            return
        self._decay(state, now)
        # A small tolerance keeps float decay from refusing a call that is exactly due.
        if state.counter + cost > self.limits.max_counter + 1e-9:
            raise ExchangeError("EAPI:Rate limit exceeded", method=method)
        state.counter += cost

    # -- WebSocket tokens ------------------------------------------------------

    def issue_token(self, api_key: str, now: float) -> str:
        """A new WebSocket token for ``api_key`` (valid for a first use for ``token_ttl`` s)."""
        stale = [
            value
            for value, token in self._tokens.items()
            if not token.used and now - token.created > self.token_ttl
        ]
        for value in stale:
            del self._tokens[value]
        value = random_b64(self._token_rng, 32, padded=False)
        self._tokens[value] = _Token(api_key=api_key, created=now)
        return value

    def redeem_token(self, token: str, now: float, connection_tokens: MutableSet[str]) -> str:
        """Check a token for a private subscription; returns its API key.

        A token already accepted on this connection (``connection_tokens``)
        stays valid there; otherwise it must be younger than ``token_ttl``.
        On success the token joins ``connection_tokens``.

        Raises:
            ExchangeError: :data:`TOKEN_ERROR` (unknown, expired or revoked).
        """
        found = self._tokens.get(token)
        if found is None:
            raise ExchangeError(TOKEN_ERROR)
        if token not in connection_tokens and now - found.created > self.token_ttl:
            raise ExchangeError(TOKEN_ERROR)
        found.used = True
        connection_tokens.add(token)
        return found.api_key

    def revoke_tokens(self, api_key: str | None = None) -> int:
        """Invalidate every token (of one key, or of all); returns how many."""
        doomed = [v for v, t in self._tokens.items() if api_key is None or t.api_key == api_key]
        for value in doomed:
            del self._tokens[value]
        return len(doomed)

    def __repr__(self) -> str:
        return f"Authenticator(tier={self.tier!r}, keys={len(self._secrets)})"


def _parse_nonce(text: str) -> int | None:
    if not text.isdigit() or not text.isascii():
        return None
    value = int(text)
    return value if 0 < value <= _MAX_NONCE else None
