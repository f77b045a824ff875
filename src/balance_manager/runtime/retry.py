"""Retrying an async call on retryable errors, on an injected clock.

:func:`retry_call` is the mechanism; the delays are the policy (an iterator
such as :func:`balance_manager.core.backoff.backoff`). What is retried is
decided by the error itself: every :class:`~balance_manager.exceptions.BalanceManagerError`
carries ``retryable``. The rules (Kraken's, see ``docs/kraken.md``):

* ``RateLimitedError``: wait at least its ``retry_after`` (the counter must
  drain), or the next delay if that is longer.
* ``LockoutError``, ``InvalidNonceError`` (another user of the key: a retry
  would race it again, and repeated failures lead to a lockout) and every
  error whose ``retryable`` is false (bad key, permission denied, protocol
  errors...) are raised at once.
* ``TransportError`` and ``ExchangeUnavailableError`` wait the next delay.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from balance_manager.core.stats import callable_name
from balance_manager.exceptions import ConfigError, RateLimitedError
from balance_manager.runtime.clock import Clock

__all__ = ["RetryHook", "retry_call"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: ``on_retry(attempt, error, delay)``: called before sleeping ``delay`` seconds
#: after attempt number ``attempt`` (from 1) failed with ``error``.
RetryHook = Callable[[int, BaseException, float], None]


async def retry_call(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    delays: Iterator[float],
    clock: Clock,
    on_retry: RetryHook | None = None,
) -> T:
    """Await ``fn()`` until it succeeds, retrying retryable errors up to ``attempts`` calls.

    Args:
        fn: makes the call; called afresh for every attempt.
        attempts: the most calls of ``fn`` in total (1 means no retry).
        delays: seconds to wait before each retry (one value taken per retry
            that waits); when it runs out, the last error is raised.
        clock: sleeps between attempts (``ManualClock`` in tests).
        on_retry: told about each retry before its wait; if it raises, the
            error is logged and the retry goes ahead.

    Returns:
        What ``fn()`` returned.

    Raises:
        ConfigError: ``attempts`` is not a positive int.
        Exception: the error of the last attempt, or the first non-retryable one.
    """
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ConfigError("attempts", attempts, "must be an int >= 1")
    attempt = 1
    while True:
        try:
            return await fn()
        except Exception as exc:
            if getattr(exc, "retryable", False) is not True or attempt >= attempts:
                raise
            planned = next(delays, None)
            if planned is None:
                raise  # the policy gave up: the caller sees the original error
            delay = planned
            if isinstance(exc, RateLimitedError):
                delay = max(exc.retry_after, delay)
            logger.info(
                "attempt %d/%d failed (%s: %s); retrying in %.2f s",
                attempt,
                attempts,
                type(exc).__name__,
                exc,
                delay,
            )
            if on_retry is not None:
                try:
                    on_retry(attempt, exc, delay)
                except Exception:
                    logger.exception("retry hook %s failed", callable_name(on_retry))
            if delay > 0:
                await clock.sleep(delay)
            attempt += 1
