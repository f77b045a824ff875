"""A circuit breaker: stop calling a failing source, probe it again later.

Sans-I/O: every method that depends on time takes ``now`` (monotonic
seconds), so tests need no clock at all. States and transitions are one table,
:data:`TRANSITIONS`; a move that is not in it raises instead of drifting::

    CLOSED ──failure_threshold_reached──▶ OPEN ──recovery_timeout_elapsed──▶ HALF_OPEN
      ▲                                    ▲                                     │
      │                                    └──────────probe_failed───────────────┤
      └──────────────────────────────────────────────probe_succeeded─────────────┘
    (any state) ──reset──▶ CLOSED

The original specification asks for "circuit breaker protection with exponential
backoff": each
failed probe doubles the time the circuit stays open, up to
``max_recovery_timeout``; a successful probe (or :meth:`CircuitBreaker.reset`)
brings it back to ``recovery_timeout``.

Not thread-safe: a breaker belongs to one adapter running on one event loop.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, TypedDict

from balance_manager.core.bounds import MAX_SECONDS, seconds
from balance_manager.core.stats import Counters, callable_name
from balance_manager.exceptions import CircuitOpenError, ConfigError

if TYPE_CHECKING:
    from balance_manager.config import BalanceManagerConfig

__all__ = [
    "TRANSITIONS",
    "BreakerSignal",
    "BreakerState",
    "BreakerStatistics",
    "CircuitBreaker",
    "next_state",
]

logger = logging.getLogger(__name__)


class BreakerState(enum.Enum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"
    """Calls go through; consecutive failures are counted."""
    OPEN = "open"
    """Calls are refused until the recovery timeout has elapsed."""
    HALF_OPEN = "half_open"
    """A limited number of probe calls go through; their outcome decides."""

    def __str__(self) -> str:
        return self.value


class BreakerSignal(enum.Enum):
    """What can happen to a circuit breaker."""

    FAILURE_THRESHOLD_REACHED = "failure_threshold_reached"
    RECOVERY_TIMEOUT_ELAPSED = "recovery_timeout_elapsed"
    PROBE_SUCCEEDED = "probe_succeeded"
    PROBE_FAILED = "probe_failed"
    RESET = "reset"


_S = BreakerState
_G = BreakerSignal

#: Every allowed move: ``(state, signal) → next state``. Anything else is a bug.
TRANSITIONS: Final[Mapping[tuple[BreakerState, BreakerSignal], BreakerState]] = MappingProxyType(
    {
        (_S.CLOSED, _G.FAILURE_THRESHOLD_REACHED): _S.OPEN,
        (_S.OPEN, _G.RECOVERY_TIMEOUT_ELAPSED): _S.HALF_OPEN,
        (_S.HALF_OPEN, _G.PROBE_SUCCEEDED): _S.CLOSED,
        (_S.HALF_OPEN, _G.PROBE_FAILED): _S.OPEN,
        (_S.CLOSED, _G.RESET): _S.CLOSED,
        (_S.OPEN, _G.RESET): _S.CLOSED,
        (_S.HALF_OPEN, _G.RESET): _S.CLOSED,
    }
)


def next_state(state: BreakerState, signal: BreakerSignal) -> BreakerState:
    """The state after ``signal`` in ``state``, per :data:`TRANSITIONS`.

    Raises:
        RuntimeError: the move is not in the table (a bug in the caller).
    """
    try:
        return TRANSITIONS[state, signal]
    except KeyError:
        raise RuntimeError(
            f"illegal circuit breaker transition: {signal.value} in state {state.value}"
        ) from None


class BreakerStatistics(TypedDict):
    """What :meth:`CircuitBreaker.get_statistics` returns."""

    name: str
    state: str
    opened_count: int
    failures: int
    successes: int
    rejected: int
    consecutive_failures: int
    recovery_timeout: float


TransitionListener = Callable[[BreakerState, BreakerState], object]


class CircuitBreaker:
    """Refuses calls to a source after repeated failures, then probes it.

    Use it around each call::

        if not breaker.allow(now):             # or breaker.check(now) to raise
            ...                                # serve from elsewhere
        try:
            result = await call()
        except TransportError:
            breaker.record_failure(clock.monotonic())
            raise
        breaker.record_success(clock.monotonic())

    * CLOSED: every call is allowed; ``failure_threshold`` consecutive
      failures open the circuit.
    * OPEN: calls are refused (``rejected``) until the recovery timeout has
      elapsed; the next :meth:`allow` then moves to HALF_OPEN.
    * HALF_OPEN: up to ``half_open_max_calls`` probe calls are allowed at
      once. The first probe to succeed closes the circuit; a probe that fails
      re-opens it with the recovery timeout doubled (up to
      ``max_recovery_timeout``).

    An outcome recorded while OPEN (a call that started before the circuit
    opened) is counted but changes nothing.

    Args:
        name: what the breaker protects, e.g. ``"kraken-rest"`` (in errors and logs).
        failure_threshold: consecutive failures that open the circuit.
        recovery_timeout: seconds the circuit first stays open.
        half_open_max_calls: probe calls allowed at once while half-open.
        max_recovery_timeout: cap of the doubled open period; default
            ``10 * recovery_timeout``, at most a year. Durations are checked
            by :func:`balance_manager.core.bounds.seconds` (1 ms to a year).

    Raises:
        ConfigError: an argument is out of range.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        max_recovery_timeout: float | None = None,
    ) -> None:
        _check_positive_int("failure_threshold", failure_threshold)
        _check_positive_int("half_open_max_calls", half_open_max_calls)
        recovery = seconds("recovery_timeout", recovery_timeout)
        cap = (
            min(10.0 * recovery, MAX_SECONDS)
            if max_recovery_timeout is None
            else seconds("max_recovery_timeout", max_recovery_timeout)
        )
        if cap < recovery:
            raise ConfigError(
                "max_recovery_timeout", cap, f"must be >= recovery_timeout ({recovery:g})"
            )
        self.name = name
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery
        self.half_open_max_calls = half_open_max_calls
        self.max_recovery_timeout = cap
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._current_timeout = self.recovery_timeout
        self._open_until = 0.0
        self._probes_in_flight = 0
        self._last_probe_at = -math.inf
        self._listeners: list[TransitionListener] = []
        self._counters = Counters(("opened_count", "failures", "successes", "rejected"))
        self._last_failure: str | None = None

    @classmethod
    def from_config(cls, config: BalanceManagerConfig, name: str) -> CircuitBreaker:
        """A breaker set by ``config.circuit_*``."""
        return cls(
            name,
            failure_threshold=config.circuit_failure_threshold,
            recovery_timeout=config.circuit_recovery_timeout,
            half_open_max_calls=config.circuit_half_open_max_calls,
        )

    # -- state -----------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The current state.

        OPEN turns into HALF_OPEN on the first :meth:`allow` after the recovery
        timeout, not by itself: a sans-I/O object only moves when called.
        """
        return self._state

    @property
    def last_failure(self) -> str | None:
        """The last failure recorded since the last success or reset (one line), if any."""
        return self._last_failure

    @property
    def current_recovery_timeout(self) -> float:
        """Seconds the next opening lasts (doubled after each failed probe)."""
        return self._current_timeout

    def retry_after(self, now: float) -> float:
        """Seconds until a call may be allowed (0 if one may go now).

        OPEN: the time left of the open period. HALF_OPEN with every probe
        slot taken: the time until those probes are written off (see
        :meth:`allow`).
        """
        if self._state is BreakerState.OPEN:
            return max(0.0, self._open_until - now)
        if (
            self._state is BreakerState.HALF_OPEN
            and self._probes_in_flight >= self.half_open_max_calls
        ):
            return max(0.0, self._last_probe_at + self._current_timeout - now)
        return 0.0

    # -- gating ----------------------------------------------------------------

    def allow(self, now: float) -> bool:
        """Whether a call may go now; counts a refusal in ``rejected``.

        A ``True`` while HALF_OPEN takes a probe slot: the caller must report
        the outcome with :meth:`record_success` or :meth:`record_failure`. A
        probe whose outcome never comes (its task was cancelled, or it ended in
        an error the caller does not record) would hold its slot forever, so
        probes are written off once the current recovery timeout has passed
        since the last one started, and a new probe may go.
        """
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if now < self._open_until:
                self._counters.incr("rejected")
                return False
            self._fire(BreakerSignal.RECOVERY_TIMEOUT_ELAPSED)
            self._probes_in_flight = 0
        elif (
            self._probes_in_flight >= self.half_open_max_calls
            and now >= self._last_probe_at + self._current_timeout
        ):
            logger.warning(
                "circuit %r: %d half-open probe(s) never reported; allowing a new one",
                self.name,
                self._probes_in_flight,
            )
            self._probes_in_flight = 0
        if self._probes_in_flight < self.half_open_max_calls:
            self._probes_in_flight += 1
            self._last_probe_at = now
            return True
        self._counters.incr("rejected")
        return False

    def check(self, now: float) -> None:
        """Like :meth:`allow`, but raises instead of returning ``False``.

        Raises:
            CircuitOpenError: the call is refused; ``retry_after`` says for how long
                and ``cause`` what failed last (see :meth:`record_failure`).
        """
        if not self.allow(now):
            raise CircuitOpenError(self.name, self.retry_after(now), cause=self._last_failure)

    # -- outcomes --------------------------------------------------------------

    def record_success(self, now: float) -> None:
        """A call succeeded: clears the failure count; a probe success closes the circuit."""
        self._counters.incr("successes")
        self._last_failure = None
        if self._state is BreakerState.CLOSED:
            self._consecutive_failures = 0
        elif self._state is BreakerState.HALF_OPEN:
            self._consecutive_failures = 0
            self._current_timeout = self.recovery_timeout
            self._probes_in_flight = 0
            self._fire(BreakerSignal.PROBE_SUCCEEDED)

    def record_failure(self, now: float, cause: BaseException | str | None = None) -> None:
        """A call failed: may open the circuit (CLOSED) or re-open it for longer (HALF_OPEN).

        Args:
            now: monotonic seconds.
            cause: what failed (an exception or a line); an open circuit's
                :class:`~balance_manager.exceptions.CircuitOpenError` shows the
                last one, so a refusal still names the real problem.
        """
        self._counters.incr("failures")
        self._last_failure = (
            None if cause is None else " ".join(str(cause).split()) or type(cause).__name__
        )
        if self._state is BreakerState.CLOSED:
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.failure_threshold:
                self._open(now)
                self._fire(BreakerSignal.FAILURE_THRESHOLD_REACHED)
        elif self._state is BreakerState.HALF_OPEN:
            self._consecutive_failures += 1
            self._current_timeout = min(self._current_timeout * 2.0, self.max_recovery_timeout)
            self._probes_in_flight = 0
            self._open(now)
            self._fire(BreakerSignal.PROBE_FAILED)

    def reset(self) -> None:
        """Close the circuit and forget failures and backoff (e.g. after new credentials)."""
        self._consecutive_failures = 0
        self._current_timeout = self.recovery_timeout
        self._probes_in_flight = 0
        self._open_until = 0.0
        self._last_failure = None
        self._fire(BreakerSignal.RESET)

    def _open(self, now: float) -> None:
        self._open_until = now + self._current_timeout
        self._counters.incr("opened_count")

    # -- listeners and statistics ------------------------------------------------

    def on_transition(self, fn: TransitionListener) -> Callable[[], None]:
        """Call ``fn(old, new)`` after every state change; returns a function that unregisters it.

        A listener that raises is logged; it never breaks the breaker.
        """
        if not callable(fn):
            raise TypeError(f"listener must be callable, got {type(fn).__name__}")
        self._listeners.append(fn)

        def unregister() -> None:
            if fn in self._listeners:
                self._listeners.remove(fn)

        return unregister

    def get_statistics(self) -> BreakerStatistics:
        """Counters since creation and the current state."""
        counts = self._counters.snapshot()
        return {
            "name": self.name,
            "state": self._state.value,
            "opened_count": counts["opened_count"],
            "failures": counts["failures"],
            "successes": counts["successes"],
            "rejected": counts["rejected"],
            "consecutive_failures": self._consecutive_failures,
            "recovery_timeout": self._current_timeout,
        }

    def _fire(self, signal: BreakerSignal) -> None:
        old = self._state
        new = next_state(old, signal)
        self._state = new
        if new is not old:
            logger.info("circuit %r: %s -> %s (%s)", self.name, old, new, signal.value)
            for fn in tuple(self._listeners):
                try:
                    fn(old, new)
                except Exception:
                    logger.exception(
                        "circuit %r: transition listener %s failed", self.name, callable_name(fn)
                    )

    def __repr__(self) -> str:
        return (
            f"<CircuitBreaker {self.name!r} {self._state.name} "
            f"failures={self._consecutive_failures}/{self.failure_threshold}>"
        )


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(name, value, "must be a positive int")
