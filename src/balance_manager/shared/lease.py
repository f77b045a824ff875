"""The leader's own view of its lease, on its own monotonic clock (sans-I/O).

Leadership of an account is a Redis key set with ``SET NX PX ttl`` together
with an epoch incremented at each acquisition (the fencing token). Redis
expires the key on its own clock; the leader cannot read that clock, so it
proves its lease from its side only:

* an acquisition or a renewal sent at monotonic time ``t`` (before Redis saw
  it) sets an expiry in Redis no earlier than ``t + ttl`` by any clock that
  runs at the rate of ours;
* the leader therefore holds the lease until ``t + ttl * (1 - margin)``, the
  margin covering clock rates and the time it takes to stop;
* it renews every ``ttl / 3`` (so two renewals may fail before it must stop);
* past its validity without a successful renewal it must stop writing and
  close its exchange connection: :meth:`LeaseTimer.holds` turns false.

Every write is a script that checks the lease's ``<epoch>:<owner>`` first, so
even a leader wrong about its own lease (paused for longer than the TTL and
resumed) has its writes refused: this timer only decides when to stop
*trying*.
"""

from __future__ import annotations

import enum
import math

from balance_manager.exceptions import ConfigError

__all__ = ["DEFAULT_MARGIN", "LeaseState", "LeaseTimer"]

#: The part of the TTL the leader gives up, at the end, for clock rates and stopping.
DEFAULT_MARGIN = 0.2


class LeaseState(enum.Enum):
    """Where a leader candidate stands."""

    CANDIDATE = "candidate"
    """Waiting for the lease (another process leads, or nobody yet)."""
    LEADING = "leading"
    """Holds the lease: owns the exchange connection and writes."""
    LOST = "lost"
    """Held it, could not prove it any longer: stopped writing, closing its connection."""

    def __str__(self) -> str:
        return self.value


class LeaseTimer:
    """When the lease holds, when to renew, and when to look again for it.

    Args:
        ttl: the lease's time to live in Redis (seconds).
        margin: the part of ``ttl`` given up at its end (0 <= margin < 1).

    Raises:
        ConfigError: ``ttl`` is not a positive finite number, or ``margin`` is out of range.
    """

    __slots__ = ("_last_renew", "_state", "_valid_until", "epoch", "margin", "token", "ttl")

    def __init__(self, ttl: float, *, margin: float = DEFAULT_MARGIN) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl < math.inf:
            raise ConfigError("lease_ttl", ttl, "must be a positive number of seconds")
        if not 0 <= margin < 1:
            raise ConfigError("margin", margin, "must be at least 0 and below 1")
        self.ttl = float(ttl)
        self.margin = margin
        self.epoch: int | None = None
        self.token: str | None = None
        self._state = LeaseState.CANDIDATE
        self._valid_until: float | None = None
        self._last_renew: float | None = None

    @property
    def state(self) -> LeaseState:
        """Where this candidate stands."""
        return self._state

    @property
    def renew_interval(self) -> float:
        """Seconds between renewals: a third of the TTL."""
        return self.ttl / 3

    @property
    def poll_interval(self) -> float:
        """Seconds between a candidate's attempts: a fifth of the TTL."""
        return self.ttl / 5

    @property
    def ttl_ms(self) -> int:
        """The TTL in whole milliseconds, as ``PX`` takes it (at least 1)."""
        return max(1, round(self.ttl * 1000))

    def acquired(self, epoch: int, token: str, sent_at: float) -> None:
        """The acquisition sent at monotonic ``sent_at`` succeeded with ``epoch``."""
        self._state = LeaseState.LEADING
        self.epoch = epoch
        self.token = token
        self._last_renew = sent_at
        self._valid_until = sent_at + self.ttl * (1 - self.margin)

    def renew_due(self, now: float) -> bool:
        """Whether a renewal should be sent at ``now``."""
        return (
            self._state is LeaseState.LEADING
            and self._last_renew is not None
            and now >= self._last_renew + self.renew_interval
        )

    def next_renewal(self, now: float) -> float:
        """Seconds from ``now`` to the next renewal (0 when due)."""
        if self._last_renew is None:
            return 0.0
        return max(0.0, self._last_renew + self.renew_interval - now)

    def renewed(self, sent_at: float) -> None:
        """The renewal sent at ``sent_at`` succeeded: the lease holds longer."""
        if self._state is not LeaseState.LEADING:
            return
        self._last_renew = sent_at
        until = sent_at + self.ttl * (1 - self.margin)
        if self._valid_until is None or until > self._valid_until:
            self._valid_until = until

    def renew_failed(self, now: float) -> None:
        """A renewal could not be sent or answered: retry soon, while the lease holds."""
        if self._state is LeaseState.LEADING:
            # Try again after a short pause rather than a whole interval.
            self._last_renew = now - self.renew_interval + min(self.ttl / 20, 0.25)

    def holds(self, now: float) -> bool:
        """Whether this leader can prove, at ``now``, that it still holds the lease."""
        return (
            self._state is LeaseState.LEADING
            and self._valid_until is not None
            and now < self._valid_until
        )

    def remaining(self, now: float) -> float:
        """Seconds the lease is still proven for at ``now`` (0 when not)."""
        if not self.holds(now) or self._valid_until is None:
            return 0.0
        return self._valid_until - now

    def lost(self) -> None:
        """The lease is gone (refused write, failed renewal, expired): stop."""
        if self._state is LeaseState.LEADING:
            self._state = LeaseState.LOST
        self._valid_until = None

    def reset(self) -> None:
        """Back to candidate (after stopping), ready for a new acquisition."""
        self._state = LeaseState.CANDIDATE
        self.token = None
        self._valid_until = None
        self._last_renew = None

    def __repr__(self) -> str:
        return f"LeaseTimer(state={self._state.value}, epoch={self.epoch}, ttl={self.ttl:g})"
