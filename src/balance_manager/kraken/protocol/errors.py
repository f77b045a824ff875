"""Kraken error strings → the exception tree, with the retry decision attached.

Kraken reports API failures as strings in the response's ``error`` array
(REST) or ``error`` field (WebSocket v2), shaped ``<E|W><Category>:<text>[:<extra>]``
(see docs/kraken.md, 'Error strings'). :func:`exception_for` turns one into the matching
:mod:`balance_manager.exceptions` class, keeping the string as ``code`` so the
caller can log exactly what Kraken said. Whether to retry is a property of the
class (``retryable``):

* authentication problems are never retried (repeats lead to a lockout);
* ``EAPI:Invalid nonce`` is not retried: with one increasing nonce per client it
  means another user of the key, and repeats lead to a lockout (docs/kraken.md,
  'Nonces');
* rate limits are retried after ``retry_after`` seconds;
* ``EGeneral:Temporary lockout`` stops everything and is surfaced;
* service trouble (unavailable, busy, maintenance modes, deadlines) backs off
  and retries;
* anything else (bad arguments, unknown asset, unknown strings) is a bug or a
  misconfiguration on our side and is not retried.

The mapping is one table (:data:`ERROR_TABLE`) plus two category rules, so a
new string is one line. Strings beginning with ``W`` are warnings, not errors;
:func:`split_messages` separates them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from balance_manager.exceptions import (
    AuthenticationError,
    ExchangeError,
    ExchangeUnavailableError,
    InvalidNonceError,
    LockoutError,
    RateLimitedError,
)

__all__ = [
    "CATEGORY_TABLE",
    "DEFAULT_RATE_LIMIT_WAIT",
    "ERROR_TABLE",
    "THROTTLED_PREFIX",
    "error_class",
    "exception_for",
    "is_warning",
    "split_messages",
]

#: Seconds to wait after a rate-limit error that names no time. Kraken says calls
#: are refused "for a few seconds" and its CLI hints 5-15 s (docs/kraken.md,
#: 'The private call counter'); we start at the low end and let the caller's
#: backoff grow it.
DEFAULT_RATE_LIMIT_WAIT = 5.0

#: ``EService: Throttled: <unix ts>`` (note the space after the first colon).
THROTTLED_PREFIX = "EService: Throttled"

#: Exact error strings (without any trailing ``:<extra>``) and their class.
ERROR_TABLE: dict[str, type[ExchangeError]] = {
    # Credentials and permissions: retrying cannot help and repeats lock the key.
    "EAPI:Invalid key": AuthenticationError,
    "EAPI:Invalid signature": AuthenticationError,
    "EGeneral:Permission denied": AuthenticationError,
    # Token invalidated server-side; the fix is a new token
    # (docs/kraken.md, 'Token lifetime').
    "ESession:Invalid session": AuthenticationError,
    # Nonce not above the last accepted one: another user of the key; not retried
    # (docs/kraken.md, 'Nonces').
    "EAPI:Invalid nonce": InvalidNonceError,
    # Call counter full (docs/kraken.md, 'The private call counter'). The EAuth
    # ones sit in the EAuth category but are rate limits, so they are listed here
    # to win over the category rule below.
    "EAPI:Rate limit exceeded": RateLimitedError,
    "EAuth:Rate limit exceeded": RateLimitedError,
    "EAuth:Too many requests": RateLimitedError,
    # Too many failed calls: about 15 minutes; stop and surface.
    "EGeneral:Temporary lockout": LockoutError,
    # Service trouble: back off and retry (docs/kraken.md,
    # 'Maintenance and cancel_only'). EService:Busy is not in the current docs and
    # its meaning is UNCONFIRMED; every client treats it as a temporary overload,
    # and a retry with backoff is right either way.
    "EService:Unavailable": ExchangeUnavailableError,
    "EService:Busy": ExchangeUnavailableError,
    "EGeneral:Internal error": ExchangeUnavailableError,
    "EDatabase:Internal error": ExchangeUnavailableError,
    "EService:Market in cancel_only mode": ExchangeUnavailableError,
    "EService:Market in post_only mode": ExchangeUnavailableError,
    "EService:Market in limit_only mode": ExchangeUnavailableError,
    "EService:Deadline elapsed": ExchangeUnavailableError,
    # Our request is wrong: not retryable. Listed for documentation; anything
    # unknown lands on ExchangeError too. EAPI:Bad request and EAPI:Feature
    # disabled have undocumented meanings; not retrying is safe either way (docs/kraken.md,
    # 'What Kraken does not document, and our choices').
    "EGeneral:Invalid arguments": ExchangeError,
    "EQuery:Unknown asset": ExchangeError,
    "EQuery:Unknown asset pair": ExchangeError,
    "EAPI:Bad request": ExchangeError,
    "EAPI:Feature disabled": ExchangeError,
}

#: Whole categories (the part before the first colon) and their class, used when
#: the exact string is not in :data:`ERROR_TABLE`. Kraken lists these strings
#: "without explanation" (docs/kraken.md, 'Error strings'); all of them refuse the
#: account or the key.
CATEGORY_TABLE: dict[str, type[ExchangeError]] = {
    "EAccount": AuthenticationError,
    "EAuth": AuthenticationError,
}


def is_warning(message: str) -> bool:
    """Whether a Kraken message string is a warning (``W...``), not an error.

    See docs/kraken.md, 'REST envelope and HTTP status'.
    """
    return message.startswith("W")


def split_messages(messages: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` of a REST ``error`` array, order kept."""
    errors: list[str] = []
    warnings: list[str] = []
    for message in messages:
        (warnings if is_warning(message) else errors).append(message)
    return errors, warnings


def error_class(code: str) -> type[ExchangeError]:
    """The exception class for an error string (see the module docs).

    Trailing ``:<extra>`` parts (``EGeneral:Invalid arguments:ordertype``,
    ``EGeneral:Internal error:12345``) are dropped one at a time until the
    string is found in :data:`ERROR_TABLE`; then the category decides; then
    :class:`~balance_manager.exceptions.ExchangeError`.
    """
    text = code.strip()
    if _is_throttled(text):
        return RateLimitedError
    probe = text
    while True:
        found = ERROR_TABLE.get(probe)
        if found is not None:
            return found
        head, colon, _ = probe.rpartition(":")
        # Stop at "<Category>": a category alone is not an error string.
        if not colon or ":" not in head:
            break
        probe = head
    category = text.partition(":")[0]
    return CATEGORY_TABLE.get(category, ExchangeError)


def exception_for(code: str, *, method: str = "", now: float | None = None) -> ExchangeError:
    """The exception to raise for Kraken error string ``code``.

    Args:
        code: the error string exactly as Kraken sent it.
        method: the API method that failed, for the message (``"BalanceEx"``).
        now: current Unix time; turns the timestamp of ``EService: Throttled: <ts>``
            into ``retry_after`` seconds. Without it (or without a timestamp),
            rate limits wait :data:`DEFAULT_RATE_LIMIT_WAIT`.

    Raises:
        ValueError: ``code`` is a warning (``W...``), which is not an error.
    """
    if is_warning(code):
        raise ValueError(f"{code!r} is a Kraken warning, not an error")
    cls = error_class(code)
    if cls is RateLimitedError:
        return RateLimitedError(code, method=method, retry_after=_retry_after(code, now))
    return cls(code, method=method)


def _is_throttled(text: str) -> bool:
    # Accept the documented spelling and the same without the space.
    return text.startswith((THROTTLED_PREFIX, "EService:Throttled"))


def _retry_after(code: str, now: float | None) -> float:
    """Seconds to wait: until the ``Throttled`` timestamp if both are known."""
    if now is None or not _is_throttled(code.strip()):
        return DEFAULT_RATE_LIMIT_WAIT
    stamp = code.strip().rpartition(":")[2].strip()
    try:
        until = float(stamp)
    except ValueError:
        return DEFAULT_RATE_LIMIT_WAIT
    if not math.isfinite(until):
        return DEFAULT_RATE_LIMIT_WAIT
    return max(0.0, until - now)
