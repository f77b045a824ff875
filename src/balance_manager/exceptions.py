"""Every error balance-manager raises, in one tree.

Catch :class:`BalanceManagerError` for everything, one branch for a layer, or
one leaf for a cause::

    BalanceManagerError
    ├── ConfigError                    a configuration option is missing or invalid
    ├── InvalidAmountError             an amount is not a finite exact number (ValueError)
    │   └── FloatAmountError           a float was given where an exact amount is needed (TypeError)
    ├── BalanceStateError              a Balance would be impossible (NaN, negative hold...)
    ├── UnknownAssetError              an asset name that nothing knows (KeyError)
    ├── UnknownEventError              register_callback() with an event name that does not exist
    ├── ProtocolError                  an exchange message does not have the documented shape
    ├── SourceError                    a balance source (WebSocket, REST) could not answer
    │   ├── TransportError             network failure, timeout, HTTP 5xx, non-JSON body
    │   │   └── RequestTimeoutError    no answer within the configured timeout
    │   ├── ExchangeError              the exchange answered with an error string (``code``)
    │   │   ├── AuthenticationError    bad key, bad signature, permission denied, bad token
    │   │   ├── InvalidNonceError      nonce not above the last one accepted for this key
    │   │   ├── RateLimitedError       the call counter is full; ``retry_after`` seconds
    │   │   ├── LockoutError           too many failed calls; stop and surface
    │   │   └── ExchangeUnavailableError   service unavailable, busy or in maintenance
    │   ├── CircuitOpenError           the circuit breaker refuses calls for ``retry_after`` seconds
    │   └── StaleBalanceError          no value young enough for the ``max_age`` asked for
    ├── PersistenceError               the history database cannot be read or written
    ├── SharedStateError               the shared state (Redis) cannot be reached or used
    │   └── LeaseLostError             this leader's lease is gone: its write was refused (fenced)
    └── ReservationError               a fund reservation could not be made or changed
        ├── InsufficientFundsError     free minus what is reserved does not cover the amount
        ├── ReservationCapError        the owner's cap for the asset would be exceeded
        └── ReservationLostError       the reservation no longer exists (expired, voided...)

Every exception carries the structured fields it names (``field``, ``value``,
``code``, ``retry_after``...) and builds its message from them, so a log line
says what was wrong. A value is shown by its ``repr``, cut to a few hundred
characters (a megabyte of bad input does not make a megabyte of log line) and
never failing (an ``int`` of 5,000 digits, an object whose ``repr`` raises).
Messages never contain secrets: credentials are only ever held by
:class:`balance_manager.credentials.Secret`, whose ``str`` is masked.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "AuthenticationError",
    "BalanceManagerError",
    "BalanceStateError",
    "CircuitOpenError",
    "ConfigError",
    "ExchangeError",
    "ExchangeUnavailableError",
    "FloatAmountError",
    "InsufficientFundsError",
    "InvalidAmountError",
    "InvalidNonceError",
    "LeaseLostError",
    "LockoutError",
    "PersistenceError",
    "ProtocolError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ReservationCapError",
    "ReservationError",
    "ReservationLostError",
    "SharedStateError",
    "SourceError",
    "StaleBalanceError",
    "TransportError",
    "UnknownAssetError",
    "UnknownEventError",
]


#: The longest ``repr`` of a value that a message shows.
_MAX_SHOWN = 200


def _shown(value: object) -> str:
    """``repr(value)``, shortened to about :data:`_MAX_SHOWN` characters; never raises."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 600:
        digits = math.floor(value.bit_length() * math.log10(2)) + 1
        return f"<int of about {digits:,} digits>"  # str() refuses more than 4300 digits
    try:
        text = repr(value)
    except Exception:  # a hostile or broken __repr__: say what it is, not what it says
        return f"<{type(value).__name__} object>"
    if len(text) > _MAX_SHOWN:
        return f"{text[: _MAX_SHOWN - 30]}... ({len(text):,} characters)"
    return text


class BalanceManagerError(Exception):
    """Root of every error raised by balance-manager."""

    #: Whether retrying the same operation later may succeed.
    retryable: bool = False


class ConfigError(BalanceManagerError, ValueError):
    """A configuration option is invalid.

    Args:
        option: the option's name, e.g. ``"cache_max_size"``.
        value: the value given (never a secret: secrets are masked by the caller).
        reason: what is wrong with it.
    """

    def __init__(self, option: str, value: object, reason: str) -> None:
        self.option = option
        self.value = value
        self.reason = reason
        super().__init__(f"invalid config option {option}={_shown(value)}: {reason}")


class InvalidAmountError(BalanceManagerError, ValueError):
    """An amount is not a finite, exact number.

    Args:
        field: the name of the argument or field, e.g. ``"hold_trade"``.
        value: the value given.
        reason: what is wrong with it.
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={_shown(value)}: {reason}")


class FloatAmountError(InvalidAmountError, TypeError):
    """A ``float`` was passed where an exact amount is required.

    ``Decimal(0.1)`` is ``0.1000000000000000055511151231257827...``: a float
    cannot carry an exchange balance exactly, so it is refused rather than
    rounded silently. Pass a ``str``, an ``int`` or a ``Decimal``.
    """

    def __init__(self, field: str, value: float) -> None:
        super().__init__(
            field,
            value,
            "floats are refused because they are inexact (Decimal(0.1) is not 0.1); "
            f"pass a str, int or Decimal instead, e.g. Decimal({str(value)!r})",
        )


class BalanceStateError(BalanceManagerError, ValueError):
    """A balance value would be impossible (not finite, negative hold...).

    Args:
        asset: the asset the value belongs to.
        field: the offending field.
        value: its value.
        reason: why it is impossible.
    """

    def __init__(self, asset: str, field: str, value: object, reason: str) -> None:
        self.asset = asset
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"impossible balance for {asset}: {field}={_shown(value)}: {reason}")


class UnknownAssetError(BalanceManagerError, KeyError):
    """An asset name that is not known to the exchange or the manager."""

    def __init__(self, asset: object, detail: str = "") -> None:
        self.asset = asset
        self.detail = detail
        super().__init__(asset)

    def __str__(self) -> str:
        message = f"unknown asset {_shown(self.asset)}"
        return f"{message}: {self.detail}" if self.detail else message


class UnknownEventError(BalanceManagerError, ValueError):
    """A callback was registered for an event name that does not exist."""

    def __init__(self, event: str, known: tuple[str, ...]) -> None:
        self.event = event
        self.known = known
        super().__init__(f"unknown event {_shown(event)}; known events: {', '.join(known)}")


class ProtocolError(BalanceManagerError):
    """A message does not have the documented shape.

    Args:
        message: what is wrong, e.g. ``"Expected `str`, got `int`"``.
        path: JSON path of the bad field, e.g. ``"$.data[0].balance"``.
        raw: a short excerpt of the offending message (for logs).
    """

    def __init__(self, message: str, *, path: str = "$", raw: str = "") -> None:
        self.path = path
        self.raw = raw[:200]
        self.detail = message
        super().__init__(f"{message} - at `{path}`" if path not in message else message)


class SourceError(BalanceManagerError):
    """A balance source could not answer."""


class TransportError(SourceError):
    """The request did not complete: network failure, HTTP 5xx, non-JSON body."""

    retryable = True

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class RequestTimeoutError(TransportError):
    """No answer within the configured timeout."""

    def __init__(self, operation: str, timeout: float) -> None:
        self.operation = operation
        self.timeout = timeout
        super().__init__(f"{operation} got no answer within {timeout:g} s")


class ExchangeError(SourceError):
    """The exchange answered with an error string.

    Args:
        code: the exchange's error string, e.g. ``"EGeneral:Invalid arguments:ordertype"``.
        method: the API method that failed, e.g. ``"BalanceEx"``.
    """

    def __init__(self, code: str, *, method: str = "", retryable: bool | None = None) -> None:
        self.code = code
        self.method = method
        if retryable is not None:
            self.retryable = retryable
        where = f"{method}: " if method else ""
        super().__init__(f"{where}{code}")


class AuthenticationError(ExchangeError):
    """The credentials or the WebSocket token were refused."""


class InvalidNonceError(ExchangeError):
    """The nonce was not above the last one the exchange accepted for this key.

    One client's nonces only ever increase, so this means another process or
    program uses the same key. It is not retried: a retry would race the other
    user again, and repeated failures lock the key out. The message says so.
    """

    retryable = False

    def __str__(self) -> str:
        return (
            f"{super().__str__()} (another process or program is probably using this API "
            "key: Kraken needs strictly increasing nonces per key, so give each process its "
            "own key)"
        )


class RateLimitedError(ExchangeError):
    """The call counter is full; ``retry_after`` says how long to wait (seconds)."""

    retryable = True

    def __init__(
        self, code: str = "EAPI:Rate limit exceeded", *, method: str = "", retry_after: float = 0.0
    ) -> None:
        self.retry_after = retry_after
        super().__init__(code, method=method)

    def __str__(self) -> str:
        return f"{super().__str__()} (retry after {self.retry_after:.2f} s)"


class LockoutError(ExchangeError):
    """Too many failed calls: the key is locked out (about 15 minutes). Not retried."""


class ExchangeUnavailableError(ExchangeError):
    """The exchange is unavailable, busy or in maintenance; back off and retry."""

    retryable = True


class CircuitOpenError(SourceError):
    """The circuit breaker refuses calls to ``name`` for ``retry_after`` more seconds.

    Args:
        name: the circuit, e.g. ``"kraken-rest"``.
        retry_after: seconds until the next attempt may go.
        cause: the failure that opened the circuit (the last one recorded), one
            line; the message leads with it, since it is what the user can act on.
    """

    def __init__(self, name: str, retry_after: float, *, cause: str | None = None) -> None:
        self.name = name
        self.retry_after = retry_after
        self.cause = cause
        if cause:
            message = f"{cause} (circuit {name!r} open; next attempt in {retry_after:.2f} s)"
        else:
            message = f"circuit {name!r} is open; next attempt in {retry_after:.2f} s"
        super().__init__(message)


class StaleBalanceError(SourceError):
    """No value of ``asset`` is younger than ``max_age`` and no source can refresh it."""

    def __init__(self, asset: str, age: float | None, max_age: float, cause: str = "") -> None:
        self.asset = asset
        self.age = age
        self.max_age = max_age
        held = "no value held" if age is None else f"held value is {age:.3f} s old"
        because = f" ({cause})" if cause else ""
        super().__init__(
            f"{asset}: {held}, max_age={max_age:g} s, and no source could refresh it{because}"
        )


class PersistenceError(BalanceManagerError):
    """The history database cannot be opened, read or written."""

    def __init__(self, message: str, *, path: str = "", **context: Any) -> None:
        self.path = path
        self.context = context
        where = f" ({path})" if path else ""
        super().__init__(f"{message}{where}")


class SharedStateError(BalanceManagerError):
    """The shared state (Redis) cannot be reached, or refused what was asked.

    Reservations fail closed with this error while Redis is unreachable: no
    reservation is ever granted without the shared ledger of reservations.
    Messages name the operation and never contain a password (Redis URLs are
    shown masked).

    Args:
        operation: what was being done, e.g. ``"reserve"``.
        reason: why it failed.
    """

    retryable = True

    def __init__(self, operation: str, reason: str) -> None:
        self.operation = operation
        self.reason = reason
        super().__init__(f"{operation}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses process boundaries (multiprocessing) with its fields.
        return (type(self), (self.operation, self.reason))


class LeaseLostError(SharedStateError):
    """This leader no longer holds the lease: its write was refused (fenced).

    Args:
        operation: the refused write.
        epoch: the lease epoch this leader held.
        reason: what Redis found instead (another epoch, no lease, lost data).
    """

    retryable = False

    def __init__(self, operation: str, epoch: int, reason: str) -> None:
        self.epoch = epoch
        self.cause = reason
        super().__init__(operation, f"lease of epoch {epoch} lost ({reason})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.operation, self.epoch, self.cause))


class ReservationError(BalanceManagerError):
    """A fund reservation could not be made, committed or released.

    Args:
        reservation_id: the reservation's id.
        reason: why.
    """

    def __init__(self, reservation_id: str, reason: str) -> None:
        self.reservation_id = reservation_id
        self.reason = reason
        super().__init__(f"reservation {_shown(reservation_id)}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (ReservationError, (self.reservation_id, self.reason))


class InsufficientFundsError(ReservationError):
    """Free minus everything already reserved does not cover the amount asked for.

    Args:
        reservation_id: the refused reservation's id.
        asset: the asset.
        requested: the amount asked for (exact text).
        available: free minus reserved at that moment (exact text).
    """

    def __init__(self, reservation_id: str, asset: str, requested: str, available: str) -> None:
        self.asset = asset
        self.requested = requested
        self.available = available
        super().__init__(
            reservation_id, f"{asset} {requested} asked, only {available} free and unreserved"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reservation_id, self.asset, self.requested, self.available))


class ReservationCapError(ReservationError):
    """The owner's cap on an asset would be exceeded.

    Args:
        reservation_id: the refused reservation's id.
        owner: the owner.
        asset: the asset.
        cap: the owner's cap (exact text).
        reserved: what the owner already has reserved (exact text).
    """

    def __init__(
        self, reservation_id: str, owner: str, asset: str, cap: str, reserved: str
    ) -> None:
        self.owner = owner
        self.asset = asset
        self.cap = cap
        self.reserved = reserved
        self._args = (reservation_id, owner, asset, cap, reserved)
        super().__init__(
            reservation_id,
            f"owner {_shown(owner)} may reserve at most {cap} {asset}; {reserved} already reserved",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._args)


class ReservationLostError(ReservationError):
    """The reservation no longer exists: expired and reaped, released, settled, or voided.

    Committing a lost reservation fails with this error, so an order is never
    sent on funds that are no longer set aside.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reservation_id, self.reason))
