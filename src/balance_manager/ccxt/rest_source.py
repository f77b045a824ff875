"""A venue's REST balances through ccxt's ``fetch_balance``, read exactly.

:class:`CcxtRestSource` implements :class:`~balance_manager.core.sources.RestSource`
on any ccxt (``ccxt.pro``) exchange instance: the call goes through ccxt (its
signing, its rate limiting), the amounts come from the venue's raw answer
(``info``) read by :mod:`balance_manager.ccxt.shapes`, never from ccxt's floats
where the venue wrote strings. ccxt's exceptions never leave this package: they
become :mod:`balance_manager.exceptions`, with messages scrubbed of anything
secret.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from typing import Any

import ccxt.async_support as ccxt_async

from balance_manager.ccxt.shapes import VenueShape, shape_for
from balance_manager.config import BalanceManagerConfig
from balance_manager.core.breaker import CircuitBreaker
from balance_manager.core.sources import RestSnapshot
from balance_manager.core.stats import Counters
from balance_manager.credentials import SIMULATED_KEY_PREFIX, mask_key
from balance_manager.exceptions import (
    AuthenticationError,
    BalanceManagerError,
    ExchangeError,
    ExchangeUnavailableError,
    InvalidNonceError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    TransportError,
)
from balance_manager.runtime.aio import with_timeout
from balance_manager.runtime.clock import Clock, SystemClock

__all__ = ["CcxtNames", "CcxtRestSource", "translate_error"]

logger = logging.getLogger(__name__)

_COUNTER_NAMES = (
    "rest_api_calls",
    "transport_errors",
    "exchange_errors",
    "timeouts",
    "circuit_rejections",
)

#: Query parameters and JSON fields that carry authentication material.
_SECRET_FIELDS = re.compile(
    r"(?i)(signature|sign|listenkey|token|apikey|api-key|secret|passphrase)"
    r"([\"']?\s*[=:]\s*[\"']?)[^&\s\"',}]+"
)


#: Error texts that mean the credentials were refused, whatever class ccxt gave them
#: (ccxt maps Kraken's ``EAPI:Invalid signature`` to a plain ``ExchangeError``).
_REFUSED = re.compile(r"(?i)invalid (api[- ]?)?(key|signature)|permission denied|bad signature")


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` without any secret, signature, token or key, cut to 200 characters."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _SECRET_FIELDS.sub(r"\1\2***", text)
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:199] + "…"


def translate_error(
    exc: BaseException,
    *,
    venue: str,
    method: str,
    secrets: tuple[str, ...] = (),
    timeout: float | None = None,
) -> BalanceManagerError:
    """The :mod:`balance_manager.exceptions` error a ccxt exception stands for.

    The message names the venue, the call and ccxt's error class; ccxt's own
    text is kept only with every secret, signature and token taken out.
    ``timeout`` is ccxt's request timeout in seconds (the instance's
    ``timeout``), named by a timeout's message; ``None``: not known.
    """
    detail = _scrub(str(exc), secrets)
    code = f"{venue} {type(exc).__name__}: {detail}" if detail else f"{venue} {type(exc).__name__}"
    if isinstance(exc, ccxt_async.RequestTimeout):
        operation = f"{venue} {method}"
        error = RequestTimeoutError(operation, timeout or 0.0)
        if not timeout:
            error.args = (f"{operation} got no answer in time (ccxt's timeout)",)
        return error
    if isinstance(exc, ccxt_async.AuthenticationError | ccxt_async.AccountSuspended):
        if isinstance(exc, ccxt_async.InvalidNonce):
            return InvalidNonceError(code, method=method)
        return AuthenticationError(code, method=method, retryable=False)
    if isinstance(exc, ccxt_async.PermissionDenied) or (
        type(exc) is ccxt_async.ExchangeError and _REFUSED.search(detail)
    ):
        return AuthenticationError(code, method=method, retryable=False)
    if isinstance(exc, ccxt_async.RateLimitExceeded | ccxt_async.DDoSProtection):
        return RateLimitedError(code, method=method)
    if isinstance(exc, ccxt_async.OnMaintenance | ccxt_async.ExchangeNotAvailable):
        return ExchangeUnavailableError(code, method=method)
    if isinstance(exc, ccxt_async.NetworkError):
        return TransportError(f"{venue} {method}: {detail or type(exc).__name__}")
    if isinstance(exc, ccxt_async.BadResponse | ccxt_async.NullResponse):
        return ProtocolError(f"{venue} {method}: {detail}", raw=detail)
    if isinstance(exc, ccxt_async.BaseError):
        return ExchangeError(code, method=method)
    return TransportError(f"{venue} {method}: {type(exc).__name__}: {detail}")


class CcxtNames:
    """Asset naming through ccxt: any spelling the venue or ccxt uses → ccxt's unified code.

    ``XBT`` and ``XXBT`` are ``BTC`` on Kraken as ccxt maps them. Decimals are
    not claimed (ccxt's currency precisions describe withdrawals and order
    sizes, not the ledger), so the ``precision_overflow`` rule stays quiet.
    """

    def __init__(self, exchange: Any) -> None:
        self._exchange = exchange
        self._cache: dict[str, str] = {}

    def canonical(self, name: str) -> str:
        """ccxt's unified code of ``name`` (stripped; upper-cased when ccxt does not know it)."""
        found = self._cache.get(name)
        if found is not None:
            return found
        text = name.strip()
        code = str(self._exchange.safe_currency_code(text) or text)
        if code == text:
            code = str(self._exchange.safe_currency_code(text.upper()) or text.upper())
        code = code.upper()
        if len(self._cache) < 4096:
            self._cache[name] = code
        return code

    def decimals(self, name: str) -> int | None:
        """Not known (see the class docstring)."""
        del name
        return None

    def display_decimals(self, name: str) -> int | None:
        """Not known."""
        del name
        return None

    def forget(self) -> None:
        """Drop remembered names (after ccxt loaded the venue's currencies)."""
        self._cache.clear()


class CcxtRestSource:
    """Reads every balance of one account of a ccxt venue (a ``RestSource``).

    Args:
        exchange: a ccxt exchange instance (``ccxt.pro.binance({...})``), with
            the credentials set; this source closes it when released.
        config: timeouts and the circuit breaker.
        clock: time source (``ManualClock`` in tests).
        shape: the venue's raw reader; by default the one for ``exchange.id``.
        exchange_name: what :attr:`exchange` reports; by default ccxt's id, or
            ``"simulator"`` for a key issued by the built-in simulator.

    The venue's own pacing is ccxt's (``enableRateLimit``); this source adds a
    deadline on the injected clock and a circuit breaker.
    """

    def __init__(
        self,
        exchange: Any,
        *,
        config: BalanceManagerConfig | None = None,
        clock: Clock | None = None,
        shape: VenueShape | None = None,
        exchange_name: str | None = None,
    ) -> None:
        self.client = exchange
        """The ccxt exchange instance."""
        self.venue: str = str(exchange.id)
        self.shape = shape or shape_for(self.venue)
        self.config = config or BalanceManagerConfig()
        self.clock: Clock = clock or SystemClock()
        self.breaker = CircuitBreaker.from_config(self.config, f"{self.venue}-rest")
        self._names = CcxtNames(exchange)
        self._counters = Counters(_COUNTER_NAMES)
        self._users = 0
        self._closed = False
        key = str(getattr(exchange, "apiKey", "") or "")
        self._secrets = tuple(
            str(value)
            for value in (key, getattr(exchange, "secret", ""), getattr(exchange, "password", ""))
            if value
        )
        self._masked_key = mask_key(key) if key else None
        simulated = key.startswith(SIMULATED_KEY_PREFIX)
        self._exchange_name = exchange_name or ("simulator" if simulated else self.venue)
        digest = hashlib.sha256(f"balance-manager/account/v1:{self.venue}:{key}".encode())
        self._account = digest.hexdigest()[:16] if key else ""

    # -- the RestSource interface ------------------------------------------------------

    @property
    def names(self) -> CcxtNames:
        """Asset naming through ccxt's currency codes."""
        return self._names

    @property
    def exchange(self) -> str:
        """ccxt's id of the venue (``"binance"``...), or ``"simulator"``."""
        return self._exchange_name

    @property
    def account(self) -> str:
        """A fingerprint of the venue and key (never the key)."""
        return self._account

    def __repr__(self) -> str:
        return (
            f"CcxtRestSource(venue={self.venue!r}, api_key={self._masked_key!r}, {self.breaker!r})"
        )

    async def load_assets(self) -> None:
        """Load the venue's markets and currencies (ccxt's ``load_markets``)."""
        await self._call("load_markets", self.client.load_markets())
        self._names.forget()

    async def fetch_balances(self) -> RestSnapshot:
        """Every balance of the account (one ``fetch_balance``), exact where the venue is.

        Raises:
            SourceError: the call failed (``TransportError``, ``ExchangeError``...).
            ProtocolError: the venue's answer does not have its documented shape.
        """
        # Before the call: ccxt may wait for its rate limiter before sending, so this
        # is no later than the request's departure (the reading is current from then).
        requested_at = self.clock.time()
        result = await self._call("fetch_balance", self.client.fetch_balance())
        received_at = self.clock.time()
        if not isinstance(result, Mapping):
            raise ProtocolError("fetch_balance returned no balance structure", raw=repr(result))
        code = self._names.canonical
        if self.shape.reads_raw:
            reading = self.shape.rest(result.get("info"), code)
        else:
            reading = self.shape.unified(result, code)
        return RestSnapshot(
            balances=reading.balances, received_at=received_at, requested_at=requested_at
        )

    def get_statistics(self) -> dict[str, Any]:
        """Call counters and the circuit breaker's state."""
        stats: dict[str, Any] = dict(self._counters.snapshot())
        stats["circuit_state"] = self.breaker.state.value
        stats["venue"] = self.venue
        return stats

    def acquire(self) -> None:
        """One more manager uses this source (see :meth:`release`)."""
        self._users += 1

    async def release(self) -> None:
        """One manager fewer; the last one to release closes the source."""
        self._users -= 1
        if self._users <= 0:
            self._users = 0
            await self.close()

    async def close(self) -> None:
        """Close the ccxt instance (its HTTP session and WebSockets); idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.client.close()
        except Exception as exc:  # closing must not fail the caller's shutdown
            logger.warning("closing %s failed: %s", self.venue, type(exc).__name__)

    # -- mechanism ------------------------------------------------------------------------

    def translate(self, exc: BaseException, method: str) -> BalanceManagerError:
        """A ccxt exception as ours (see :func:`translate_error`)."""
        return translate_error(
            exc, venue=self.venue, method=method, secrets=self._secrets, timeout=self._timeout()
        )

    def _timeout(self) -> float | None:
        """ccxt's request timeout in seconds (its ``timeout`` is in milliseconds), if set."""
        millis = getattr(self.client, "timeout", None)
        if isinstance(millis, int | float) and not isinstance(millis, bool) and millis > 0:
            return float(millis) / 1000.0
        return None

    async def _call(self, method: str, awaitable: Any) -> Any:
        """One ccxt call behind the breaker and a deadline; errors translated."""
        try:
            self.breaker.check(self.clock.monotonic())
        except BalanceManagerError:
            awaitable.close()
            self._counters.incr("circuit_rejections")
            raise
        if self._closed:
            awaitable.close()
            raise TransportError(f"the {self.venue} REST source is closed")
        self._counters.incr("rest_api_calls")
        try:
            result = await with_timeout(
                self.clock, self.config.rest_api_timeout, awaitable, f"{self.venue} {method}"
            )
        except RequestTimeoutError as exc:
            self._counters.incr("timeouts")
            self._counters.incr("transport_errors")
            self.breaker.record_failure(self.clock.monotonic(), exc)
            raise
        except BalanceManagerError:
            raise
        except Exception as exc:
            error = self.translate(exc, method)
            if isinstance(error, TransportError | ExchangeUnavailableError):
                self._counters.incr("transport_errors")
                self.breaker.record_failure(self.clock.monotonic(), error)
            else:
                self._counters.incr("exchange_errors")
                self.breaker.record_success(self.clock.monotonic())  # it answered
            # ``from None``: ccxt's exception text may hold a signed URL or a token.
            raise error from None
        self.breaker.record_success(self.clock.monotonic())
        return result
