"""Reconnect and retry delays as injectable generators (policy apart from mechanism).

A delay policy is an infinite iterator of seconds; the code that waits (the
WebSocket adapter, :func:`balance_manager.runtime.retry.retry_call`) takes the next
value and sleeps on its clock. Tests replace the policy or seed its
``random.Random``, so every sequence is reproducible. A new iterator starts
the policy over: callers make a fresh one once a connection has been stable.

Jitter is "equal jitter": the nominal delay ``d`` (``initial``, multiplied by
``factor`` each time, capped at ``maximum``) becomes a uniform draw in
``[d/2, d]``. Half of the delay is kept, so a crowd of clients that lost the
exchange at the same moment still backs off, while the other half spreads
their reconnects apart. Full jitter (``[0, d]``) could give near-zero delays
and would break guidance such as Kraken's "no faster than once per 5 s" (see
:func:`balance_manager.kraken.protocol.limits.kraken_reconnect_delays`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Final

from balance_manager.core.bounds import seconds
from balance_manager.exceptions import ConfigError

__all__ = ["MAX_FACTOR", "backoff"]

#: The largest growth factor of :func:`backoff`.
MAX_FACTOR: Final = 1000.0


def backoff(
    *,
    initial: float = 1.0,
    maximum: float = 30.0,
    factor: float = 2.0,
    rng: random.Random,
) -> Iterator[float]:
    """Exponential delays with equal jitter, forever.

    The ``n``-th value (from 0) is drawn uniformly in ``[d/2, d]`` where
    ``d = min(maximum, initial * factor**n)``.

    Args:
        initial: the first nominal delay, seconds (1 ms to a year, as every
            duration: :func:`balance_manager.core.bounds.seconds`).
        maximum: the largest nominal delay (>= ``initial``, at most a year).
        factor: growth per step (1 to :data:`MAX_FACTOR`).
        rng: the source of jitter (seed it in tests).

    Raises:
        ConfigError: an argument is out of range (raised on the first ``next``).

    Example:
        >>> delays = backoff(initial=1.0, maximum=8.0, rng=random.Random(1))
        >>> [round(next(delays), 2) for _ in range(5)]
        [0.57, 1.85, 3.53, 5.02, 5.98]
    """
    nominal = seconds("initial", initial)
    cap = seconds("maximum", maximum)
    if cap < nominal:
        raise ConfigError("maximum", maximum, f"must be >= initial ({nominal:g})")
    if (
        isinstance(factor, bool)
        or not isinstance(factor, int | float)
        or not 1 <= factor <= MAX_FACTOR  # NaN fails too; 10**400 compares without overflow
    ):
        raise ConfigError("factor", factor, f"must be a number between 1 and {MAX_FACTOR:g}")
    growth = float(factor)
    while True:
        yield rng.uniform(nominal / 2.0, nominal)
        # Stop multiplying once capped: no overflow to inf, however long it runs.
        nominal = min(cap, nominal * growth)
