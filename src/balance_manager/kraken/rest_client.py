"""Kraken's REST API over aiohttp: the thin I/O layer around :mod:`.protocol.rest`.

:class:`KrakenRestClient` signs requests (fresh nonce per attempt), paces
private calls with Kraken's call counter so it never trips
``EAPI:Rate limit exceeded`` itself, retries retryable errors with backoff,
guards the exchange with a circuit breaker, and turns every network failure
into a :class:`~balance_manager.exceptions.TransportError`. aiohttp's own
exception types never leave this module.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp
import msgspec

from balance_manager.config import KRAKEN_REST_URL, BalanceManagerConfig
from balance_manager.core.amounts import AmountLike, to_amount
from balance_manager.core.backoff import backoff
from balance_manager.core.breaker import CircuitBreaker
from balance_manager.core.sources import AssetAmounts, RestSnapshot
from balance_manager.core.stats import Counters
from balance_manager.credentials import Credentials, Secret, mask_key
from balance_manager.exceptions import (
    AuthenticationError,
    BalanceManagerError,
    ConfigError,
    ExchangeError,
    ExchangeUnavailableError,
    InvalidNonceError,
    LockoutError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    TransportError,
)
from balance_manager.kraken.protocol import rest
from balance_manager.kraken.protocol.assets import AssetNames, RestBalanceEntry, fold_rest_balances
from balance_manager.kraken.protocol.limits import KrakenCallCounter, cost_of
from balance_manager.kraken.protocol.signing import NonceSource
from balance_manager.runtime.aio import describe_network_error, with_timeout
from balance_manager.runtime.clock import Clock, SystemClock
from balance_manager.runtime.retry import retry_call

__all__ = [
    "BALANCE_EX_UNAVAILABLE",
    "LOCKOUT_PROBE_INTERVAL",
    "KrakenRestClient",
]

logger = logging.getLogger(__name__)

_COUNTER_NAMES = (
    "rest_api_calls",
    "private_calls",
    "public_calls",
    "retries",
    "rate_limit_waits",
    "rate_limited",
    "transport_errors",
    "exchange_errors",
    "timeouts",
    "circuit_rejections",
    "lockout_refusals",
    "invalid_nonces",
)

#: Seconds between private calls while the key is locked out (see ``_check_lockout``).
LOCKOUT_PROBE_INTERVAL = 60.0

#: Errors meaning ``BalanceEx`` itself is not offered: only these fall back to ``Balance``.
BALANCE_EX_UNAVAILABLE = ("EGeneral:Unknown method", "EAPI:Feature disabled")

#: Invalid nonces within this many seconds that mean another process uses the key.
NONCE_BURST_WINDOW = 60.0
NONCE_BURST = 2


class KrakenRestClient:
    """Kraken Spot REST client for balances (and the few calls around them).

    Args:
        api_key: the public API key (``None``: public calls only).
        api_secret: the base64 API secret (a ``str`` or a
            :class:`~balance_manager.credentials.Secret`).
        base_url: Kraken's REST base (default) or a simulator's ``rest_url``.
        config: timeouts, retries, circuit breaker and rate-limit tier.
        clock: time source (``ManualClock`` in tests).
        rng: randomness for retry jitter.
        session: an aiohttp session to use (the client makes and owns one otherwise).
        nonces: the key's nonce source; share one per key across clients.
        names: asset names; learned from ``Assets`` by :meth:`load_assets`.
        encoding: request body encoding, ``"form"`` (Kraken's classic) or ``"json"``.

    Example::

        async with KrakenRestClient(api_key=key, api_secret=secret) as client:
            snapshot = await client.fetch_balances()
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | Secret | None = None,
        base_url: str = KRAKEN_REST_URL,
        *,
        config: BalanceManagerConfig | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        session: aiohttp.ClientSession | None = None,
        nonces: NonceSource | None = None,
        names: AssetNames | None = None,
        encoding: Literal["form", "json"] = "form",
    ) -> None:
        if (api_key is None) != (api_secret is None):
            raise ConfigError(
                "api_secret" if api_secret is None else "api_key",
                "***",
                "give both api_key and api_secret, or neither",
            )
        self._credentials = (
            Credentials.of(api_key, api_secret)
            if api_key is not None and api_secret is not None
            else None
        )
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError("base_url", base_url, "must be an http:// or https:// URL")
        self.base_url = base_url.rstrip("/")
        self.config = config or BalanceManagerConfig()
        self.clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._session = session
        self._owns_session = session is None
        self._nonces = nonces or NonceSource()
        self.names = names or AssetNames()
        self._encoding: Literal["form", "json"] = encoding
        self.limiter = KrakenCallCounter.from_config(self.config)
        self.breaker = CircuitBreaker.from_config(self.config, "kraken-rest")
        self._private_lock = asyncio.Lock()
        self._counters = Counters(_COUNTER_NAMES)
        # Wall-clock time each method's last request left (a reading is current from then).
        self._sent_at: dict[str, float] = {}
        self._closed = False
        self._locked_until: float | None = None
        self._users = 0
        self._nonce_errors: list[float] = []  # monotonic times of recent invalid nonces
        creds = self._credentials
        self.exchange = "simulator" if creds is not None and creds.simulated else "kraken"
        """``"kraken"``, or ``"simulator"`` for a key issued by the built-in simulator."""
        self.account = creds.fingerprint if creds is not None else ""
        """The key's fingerprint (see :attr:`Credentials.fingerprint`); empty without a key."""

    @classmethod
    def from_credentials(
        cls, credentials: Credentials | None, base_url: str = KRAKEN_REST_URL, **kwargs: Any
    ) -> KrakenRestClient:
        """A client for ``credentials`` (``None``: public calls only)."""
        if credentials is None:
            return cls(None, None, base_url, **kwargs)
        return cls(credentials.api_key, credentials.api_secret, base_url, **kwargs)

    @property
    def has_credentials(self) -> bool:
        """Whether private calls can be made."""
        return self._credentials is not None

    def __repr__(self) -> str:
        key = mask_key(self._credentials.api_key) if self._credentials else None
        return f"KrakenRestClient(base_url={self.base_url!r}, api_key={key!r}, {self.breaker!r})"

    async def __aenter__(self) -> KrakenRestClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def acquire(self) -> None:
        """One more manager uses this client (see :meth:`release`).

        A client the last manager closed opens again for the next one.
        """
        self._users += 1
        self._closed = False

    async def release(self) -> None:
        """One manager fewer; the last one to release closes the client."""
        self._users -= 1
        if self._users <= 0:
            self._users = 0
            await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client made it (idempotent)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()

    # -- the calls (docs/kraken.md, 'REST endpoints we call') --------------------

    async def balance(self) -> dict[str, RestBalanceEntry]:
        """``Balance``: REST key → total."""
        return rest.decode_balance(await self.private("Balance"))

    async def balance_ex(self) -> dict[str, RestBalanceEntry]:
        """``BalanceEx``: REST key → balance, hold_trade, credit."""
        return rest.decode_balance_ex(await self.private("BalanceEx"))

    async def get_websockets_token(self) -> rest.WebSocketToken:
        """``GetWebSocketsToken``: a token for one WebSocket connection."""
        return rest.decode_ws_token(await self.private("GetWebSocketsToken"))

    async def assets(self) -> dict[str, rest.AssetRecord]:
        """``Assets``: REST key → altname, decimals..."""
        return rest.decode_assets(await self.public("Assets"))

    async def server_time(self) -> rest.ServerTime:
        """``Time``."""
        return rest.decode_time(await self.public("Time"))

    async def system_status(self) -> rest.SystemStatus:
        """``SystemStatus``: online, maintenance, cancel_only or post_only."""
        return rest.decode_system_status(await self.public("SystemStatus"))

    async def open_orders(self) -> dict[str, rest.OpenOrder]:
        """``OpenOrders``: order id → open order."""
        return rest.decode_open_orders(await self.private("OpenOrders"))

    async def add_order(
        self,
        *,
        pair: str,
        side: Literal["buy", "sell"],
        order_type: str,
        volume: AmountLike,
        price: AmountLike | None = None,
        userref: int | None = None,
        cl_ord_id: str | None = None,
        validate: bool = False,
    ) -> rest.AddOrderResult:
        """``AddOrder``: place one order (never retried: it is not idempotent).

        Keyword arguments only, named as Kraken names them where Python allows
        (Kraken's ``type`` is ``side`` here, its ``ordertype`` is ``order_type``).

        Args:
            pair: the pair as Kraken's REST API names it (``XBTUSD``; the simulator
                also takes ``BTC/USD``).
            side: ``"buy"`` or ``"sell"``.
            order_type: ``"limit"``, ``"market"``, or another of Kraken's order types.
            volume: base quantity (``Decimal``, ``int`` or ``str``; a ``float`` is refused).
            price: the limit price (for ``limit`` orders).
            userref: a numeric reference of your own.
            cl_ord_id: a client order id of your own (unique among your open orders;
                shared reservations settle on it, see ``Reservations.hold``).
            validate: ask Kraken to check the order without placing it.

        Returns:
            The order's description and its id (``txid``).

        Raises:
            ConfigError: ``side`` is neither ``buy`` nor ``sell``.
            FloatAmountError: ``volume`` or ``price`` is a ``float``.
            ExchangeError: Kraken refused the order (``EOrder:Insufficient funds``...).
        """
        if side not in ("buy", "sell"):
            raise ConfigError("side", side, "must be 'buy' or 'sell'")
        params: dict[str, object] = {
            "pair": pair,
            "type": side,
            "ordertype": order_type,
            "volume": f"{to_amount(volume, name='volume'):f}",
        }
        if price is not None:
            params["price"] = f"{to_amount(price, name='price'):f}"
        if userref is not None:
            params["userref"] = userref
        if cl_ord_id is not None:
            params["cl_ord_id"] = cl_ord_id
        if validate:
            params["validate"] = "true"
        return rest.decode_add_order(await self.private("AddOrder", params, retry=False))

    async def cancel_order(self, txid: str) -> rest.CancelOrderResult:
        """``CancelOrder`` of one order id."""
        return rest.decode_cancel_order(await self.private("CancelOrder", {"txid": txid}))

    # -- the RestSource interface --------------------------------------------------

    async def load_assets(self) -> None:
        """Learn asset names and decimals from ``Assets``."""
        records = await self.assets()
        self.names.update_from_assets(rest.asset_fields(records))

    async def fetch_balances(self) -> RestSnapshot:
        """Every balance with holds, folded into canonical assets (one ``BalanceEx`` call).

        Falls back to ``Balance`` (holds then unknown) only when ``BalanceEx``
        itself is not available (:data:`BALANCE_EX_UNAVAILABLE`); any other
        error is raised, never turned into more private calls.
        """
        holds_known = True
        method = "BalanceEx"
        try:
            entries = await self.balance_ex()
        except ExchangeError as exc:
            if not exc.code.startswith(BALANCE_EX_UNAVAILABLE):
                raise
            logger.warning("BalanceEx refused (%s); falling back to Balance", exc.code)
            method = "Balance"
            entries = await self.balance()
            holds_known = False
        received_at = self.clock.time()
        # When the answered request left (no await since it came back: this call's).
        requested_at = self._sent_at.get(method)
        folded = fold_rest_balances(entries, self.names)
        balances = {
            asset: AssetAmounts(
                asset=asset,
                balance=item.balance,
                earn=item.earn,
                hold_trade=item.hold_trade if holds_known else None,
                credit=item.credit,
                credit_used=item.credit_used,
            )
            for asset, item in folded.items()
        }
        return RestSnapshot(balances=balances, received_at=received_at, requested_at=requested_at)

    def get_statistics(self) -> dict[str, Any]:
        """Call counters, the rate limiter's and the circuit breaker's state."""
        stats: dict[str, Any] = dict(self._counters.snapshot())
        stats["circuit_state"] = self.breaker.state.value
        stats["rate_limiter"] = dict(self.limiter.get_statistics())
        return stats

    # -- mechanism -------------------------------------------------------------------

    async def private(
        self, method: str, params: Mapping[str, object] | None = None, *, retry: bool = True
    ) -> msgspec.Raw:
        """Call private ``method``; returns the raw ``result``.

        Each attempt waits for the call counter, takes a fresh nonce and is
        signed anew. Retryable errors are retried ``rest_max_retries`` times
        (``retry=False`` for calls that are not idempotent, such as ``AddOrder``).
        """
        credentials = self._credentials
        if credentials is None:
            raise AuthenticationError("EAPI:Invalid key", method=method, retryable=False)

        async def attempt() -> msgspec.Raw:
            self._check_breaker()
            self._check_lockout(method)
            cost = cost_of(method)
            # Calls the counter does not charge (AddOrder, CancelOrder) wait for nothing.
            wait = self.limiter.reserve(self.clock.monotonic(), cost) if cost > 0 else 0.0
            if wait > 0:
                self._counters.incr("rate_limit_waits")
                await self.clock.sleep(wait)
            async with self._private_lock:
                # Nonce taken under the lock, right before sending: requests
                # reach Kraken in nonce order (docs/kraken.md, 'Nonces').
                request = rest.build_private_request(
                    method,
                    params,
                    nonce=self._nonces(),
                    credentials=credentials,
                    encoding=self._encoding,
                )
                self._counters.incr("private_calls")
                return await self._send(request, method)

        return await self._with_retries(attempt, retry=retry)

    async def public(self, method: str, query: Mapping[str, object] | None = None) -> msgspec.Raw:
        """Call public ``method`` (GET); returns the raw ``result``."""

        async def attempt() -> msgspec.Raw:
            self._check_breaker()
            self._counters.incr("public_calls")
            return await self._send(rest.build_public_request(method, query), method)

        return await self._with_retries(attempt, retry=True)

    def _note_invalid_nonce(self) -> None:
        """Count an invalid nonce; log a burst (another user of the key) once as an error."""
        now = self.clock.monotonic()
        recent = [t for t in self._nonce_errors if now - t <= NONCE_BURST_WINDOW]
        recent.append(now)
        self._nonce_errors = recent[-NONCE_BURST:]
        if len(recent) == NONCE_BURST:
            logger.error(
                "Kraken refused %d nonces within %g s: another process or program is "
                "probably using this API key; give each process its own key",
                NONCE_BURST,
                NONCE_BURST_WINDOW,
            )

    def _check_lockout(self, method: str) -> None:
        """Refuse private calls for a while after ``EGeneral:Temporary lockout``.

        Kraken's lockouts last about 15 minutes and failing calls made meanwhile
        may prolong them (docs/kraken.md, 'The private call counter'): after one,
        at most one private call per :data:`LOCKOUT_PROBE_INTERVAL` goes out, as a
        probe.
        """
        until = self._locked_until
        if until is not None:
            wait = until - self.clock.monotonic()
            if wait > 0:
                self._counters.incr("lockout_refusals")
                raise LockoutError(
                    f"EGeneral:Temporary lockout (next probe in {wait:.0f} s)", method=method
                )
            self._locked_until = None

    def _check_breaker(self) -> None:
        try:
            self.breaker.check(self.clock.monotonic())
        except BalanceManagerError:
            self._counters.incr("circuit_rejections")
            raise

    async def _with_retries(self, attempt: Any, *, retry: bool) -> msgspec.Raw:
        def on_retry(number: int, error: BaseException, delay: float) -> None:
            self._counters.incr("retries")
            logger.info(
                "Kraken REST attempt %d failed (%s); retrying in %.2f s", number, error, delay
            )

        result: msgspec.Raw = await retry_call(
            attempt,
            attempts=1 + (self.config.rest_max_retries if retry else 0),
            delays=backoff(
                initial=0.5, maximum=max(0.5, self.config.reconnect_max_delay), rng=self._rng
            ),
            clock=self.clock,
            on_retry=on_retry,
        )
        return result

    async def _session_for_request(self) -> aiohttp.ClientSession:
        if self._closed:
            raise TransportError("the REST client is closed")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # A real-time backstop only; the deadline that counts is on self.clock.
                timeout=aiohttp.ClientTimeout(total=self.config.rest_api_timeout * 2),
            )
            self._owns_session = True
        return self._session

    async def _send(self, request: rest.PreparedRequest, method: str) -> msgspec.Raw:
        """One HTTP exchange; records the outcome on the breaker and counters."""
        session = await self._session_for_request()
        self._counters.incr("rest_api_calls")
        url = request.url(self.base_url)
        self._sent_at[method] = self.clock.time()
        try:
            status, content_type, body = await with_timeout(
                self.clock,
                self.config.rest_api_timeout,
                self._http(session, request, url),
                f"Kraken {method}",
            )
            result = rest.parse_envelope(
                body,
                method=method,
                status=status,
                content_type=content_type,
                now=self.clock.time(),
            )
        except RateLimitedError as exc:
            # The exchange answered (it is up): a success for the breaker.
            self.breaker.record_success(self.clock.monotonic())
            self._counters.incr("rate_limited")
            wait = self.limiter.penalize(self.clock.monotonic())
            exc.retry_after = max(exc.retry_after, wait)
            raise
        except TransportError as exc:
            self._counters.incr("transport_errors")
            if isinstance(exc, RequestTimeoutError):
                self._counters.incr("timeouts")
            self.breaker.record_failure(self.clock.monotonic(), exc)
            raise
        except LockoutError:
            self._counters.incr("exchange_errors")
            self._locked_until = self.clock.monotonic() + LOCKOUT_PROBE_INTERVAL
            self.breaker.record_success(self.clock.monotonic())  # it answered
            raise
        except InvalidNonceError:
            self._counters.incr("exchange_errors")
            self._counters.incr("invalid_nonces")
            self._note_invalid_nonce()
            self.breaker.record_success(self.clock.monotonic())  # it answered
            raise
        except ExchangeUnavailableError as exc:
            self._counters.incr("exchange_errors")
            self.breaker.record_failure(self.clock.monotonic(), exc)
            raise
        except (ExchangeError, ProtocolError):
            # The exchange answered: it is up, whatever it thought of the request.
            self._counters.incr("exchange_errors")
            self.breaker.record_success(self.clock.monotonic())
            raise
        self.breaker.record_success(self.clock.monotonic())
        return result

    @staticmethod
    async def _http(
        session: aiohttp.ClientSession, request: rest.PreparedRequest, url: str
    ) -> tuple[int, str | None, bytes]:
        try:
            async with session.request(
                request.method, url, data=request.body or None, headers=request.headers
            ) as response:
                body = await response.read()
                return response.status, response.headers.get("Content-Type"), body
        except TimeoutError:
            raise RequestTimeoutError(f"{request.method} {request.path}", 0.0) from None
        except aiohttp.ClientError as exc:
            # The message names the failure, never the request (it holds API-Sign).
            raise TransportError(
                f"{request.method} {request.path}: {describe_network_error(exc)}"
            ) from exc
