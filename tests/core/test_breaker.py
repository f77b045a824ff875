"""Tests of balance_manager.core.breaker: states, transitions, backoff of the open period."""

from __future__ import annotations

import itertools
import logging

import pytest
from hypothesis import given, settings, strategies as st

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.breaker import (
    TRANSITIONS,
    BreakerSignal,
    BreakerState,
    CircuitBreaker,
    next_state,
)
from balance_manager.exceptions import CircuitOpenError, ConfigError, SourceError

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def opened(breaker: CircuitBreaker, now: float = 0.0) -> CircuitBreaker:
    """Drive ``breaker`` to OPEN with consecutive failures at ``now``."""
    for _ in range(breaker.failure_threshold):
        breaker.record_failure(now)
    assert breaker.state is OPEN
    return breaker


# -- the transition table ---------------------------------------------------------


def test_transition_table_is_exactly_the_documented_one() -> None:
    """TRANSITIONS holds the seven documented moves and nothing else."""
    assert dict(TRANSITIONS) == {
        (CLOSED, BreakerSignal.FAILURE_THRESHOLD_REACHED): OPEN,
        (OPEN, BreakerSignal.RECOVERY_TIMEOUT_ELAPSED): HALF_OPEN,
        (HALF_OPEN, BreakerSignal.PROBE_SUCCEEDED): CLOSED,
        (HALF_OPEN, BreakerSignal.PROBE_FAILED): OPEN,
        (CLOSED, BreakerSignal.RESET): CLOSED,
        (OPEN, BreakerSignal.RESET): CLOSED,
        (HALF_OPEN, BreakerSignal.RESET): CLOSED,
    }


@pytest.mark.parametrize(
    ("state", "signal"),
    [pair for pair in itertools.product(BreakerState, BreakerSignal) if pair not in TRANSITIONS],
)
def test_illegal_transition_raises(state: BreakerState, signal: BreakerSignal) -> None:
    """Every (state, signal) pair outside the table raises, naming both."""
    with pytest.raises(RuntimeError, match="illegal") as info:
        next_state(state, signal)
    assert state.value in str(info.value)
    assert signal.value in str(info.value)


def test_transition_table_is_read_only() -> None:
    """The table cannot be changed at run time."""
    with pytest.raises(TypeError):
        TRANSITIONS[CLOSED, BreakerSignal.PROBE_FAILED] = OPEN  # type: ignore[index]  # on purpose


# -- CLOSED -------------------------------------------------------------------------


def test_new_breaker_is_closed_and_allows() -> None:
    """A new breaker is CLOSED and lets calls through."""
    breaker = CircuitBreaker("rest")
    assert breaker.state is CLOSED
    assert breaker.allow(0.0) is True
    assert breaker.retry_after(0.0) == 0.0
    breaker.check(0.0)


def test_opens_after_threshold_consecutive_failures() -> None:
    """failure_threshold consecutive failures open the circuit, one fewer does not."""
    breaker = CircuitBreaker("rest", failure_threshold=3)
    breaker.record_failure(1.0)
    breaker.record_failure(1.0)
    assert breaker.state is CLOSED
    breaker.record_failure(1.0)
    assert breaker.state is OPEN


def test_success_resets_the_consecutive_failure_count() -> None:
    """A success between failures restarts the count."""
    breaker = CircuitBreaker("rest", failure_threshold=3)
    for _ in range(2):
        breaker.record_failure(0.0)
    breaker.record_success(0.0)
    for _ in range(2):
        breaker.record_failure(0.0)
    assert breaker.state is CLOSED
    assert breaker.get_statistics()["consecutive_failures"] == 2


# -- OPEN ---------------------------------------------------------------------------


def test_open_refuses_until_the_recovery_timeout() -> None:
    """OPEN refuses calls (counted) and says how long until the next attempt."""
    breaker = opened(CircuitBreaker("rest", failure_threshold=2, recovery_timeout=30.0), now=10.0)
    assert breaker.allow(20.0) is False
    assert breaker.retry_after(20.0) == pytest.approx(20.0)
    assert breaker.allow(39.999) is False
    assert breaker.get_statistics()["rejected"] == 2
    assert breaker.state is OPEN


def test_check_raises_circuit_open_error_with_retry_after() -> None:
    """check() on an open circuit raises CircuitOpenError with the name and time left."""
    breaker = opened(CircuitBreaker("kraken-rest", recovery_timeout=30.0), now=0.0)
    with pytest.raises(CircuitOpenError) as info:
        breaker.check(12.0)
    assert isinstance(info.value, SourceError)
    assert info.value.name == "kraken-rest"
    assert info.value.retry_after == pytest.approx(18.0)
    assert "kraken-rest" in str(info.value)


def test_outcomes_recorded_while_open_change_nothing() -> None:
    """A late success or failure while OPEN is counted but leaves the circuit open as it was."""
    breaker = opened(CircuitBreaker("rest", failure_threshold=1, recovery_timeout=10.0))
    breaker.record_success(1.0)
    breaker.record_failure(2.0)
    assert breaker.state is OPEN
    assert breaker.retry_after(5.0) == pytest.approx(5.0)
    stats = breaker.get_statistics()
    assert (stats["successes"], stats["failures"], stats["opened_count"]) == (1, 2, 1)


# -- HALF_OPEN --------------------------------------------------------------------------


def test_recovery_timeout_leads_to_half_open_with_one_probe() -> None:
    """After the timeout the next allow() moves to HALF_OPEN and lets exactly one probe through."""
    breaker = opened(CircuitBreaker("rest", failure_threshold=1, recovery_timeout=5.0))
    assert breaker.allow(5.0) is True
    assert breaker.state is HALF_OPEN
    assert breaker.allow(5.1) is False
    with pytest.raises(CircuitOpenError) as info:
        breaker.check(5.2)
    assert info.value.retry_after == pytest.approx(4.8)  # until the probe is written off


def test_probe_that_never_reports_is_written_off(caplog: pytest.LogCaptureFixture) -> None:
    """A probe with no recorded outcome frees its slot after the recovery timeout."""
    breaker = opened(CircuitBreaker("rest", failure_threshold=1, recovery_timeout=5.0))
    assert breaker.allow(5.0) is True  # this probe's task is cancelled: no outcome ever
    assert breaker.allow(9.9) is False
    assert breaker.retry_after(9.9) == pytest.approx(0.1)
    with caplog.at_level(logging.WARNING, logger="balance_manager.core.breaker"):
        assert breaker.allow(10.0) is True
    assert "never reported" in caplog.text
    assert breaker.state is HALF_OPEN
    breaker.record_success(10.5)
    assert breaker.state is CLOSED


def test_half_open_max_calls_limits_concurrent_probes() -> None:
    """half_open_max_calls probes may be in flight at once, not more."""
    breaker = opened(CircuitBreaker("rest", failure_threshold=1, half_open_max_calls=3))
    assert [breaker.allow(30.0) for _ in range(4)] == [True, True, True, False]


def test_probe_success_closes_the_circuit() -> None:
    """A successful probe closes the circuit and calls flow again."""
    breaker = opened(CircuitBreaker("rest", failure_threshold=1, recovery_timeout=5.0))
    assert breaker.allow(5.0)
    breaker.record_success(5.5)
    assert breaker.state is CLOSED
    assert all(breaker.allow(6.0) for _ in range(10))


def test_failed_probes_double_the_open_period_up_to_the_cap() -> None:
    """Each failed probe doubles the recovery timeout, capped at max_recovery_timeout."""
    breaker = CircuitBreaker(
        "rest", failure_threshold=1, recovery_timeout=10.0, max_recovery_timeout=35.0
    )
    breaker.record_failure(0.0)
    now = 0.0
    open_periods = []
    for _ in range(4):
        now += breaker.retry_after(now)
        assert breaker.allow(now)
        breaker.record_failure(now)
        open_periods.append(breaker.retry_after(now))
    assert open_periods == [20.0, 35.0, 35.0, 35.0]
    assert breaker.get_statistics()["opened_count"] == 5


def test_probe_success_resets_the_open_period() -> None:
    """After a successful probe, the next opening lasts recovery_timeout again."""
    breaker = CircuitBreaker("rest", failure_threshold=1, recovery_timeout=10.0)
    breaker.record_failure(0.0)
    assert breaker.allow(10.0)
    breaker.record_failure(10.0)
    assert breaker.current_recovery_timeout == 20.0
    assert breaker.allow(30.0)
    breaker.record_success(30.0)
    assert breaker.current_recovery_timeout == 10.0
    breaker.record_failure(31.0)
    assert breaker.retry_after(31.0) == pytest.approx(10.0)


def test_default_cap_is_ten_times_the_recovery_timeout() -> None:
    """Without max_recovery_timeout the open period stops growing at 10x recovery_timeout."""
    assert CircuitBreaker("rest", recovery_timeout=30.0).max_recovery_timeout == 300.0


# -- reset, listeners, statistics ---------------------------------------------------------


@pytest.mark.parametrize("target", [CLOSED, OPEN, HALF_OPEN])
def test_reset_closes_from_any_state(target: BreakerState) -> None:
    """reset() brings the breaker to CLOSED with no failures and the base timeout."""
    breaker = CircuitBreaker("rest", failure_threshold=1, recovery_timeout=5.0)
    if target is not CLOSED:
        breaker.record_failure(0.0)
    if target is HALF_OPEN:
        assert breaker.allow(5.0)
    assert breaker.state is target
    breaker.reset()
    assert breaker.state is CLOSED
    assert breaker.get_statistics()["consecutive_failures"] == 0
    assert breaker.current_recovery_timeout == 5.0
    assert breaker.allow(5.0)


def test_listeners_see_every_transition_in_order() -> None:
    """on_transition listeners get (old, new) for each change, and can be unregistered."""
    breaker = CircuitBreaker("rest", failure_threshold=1, recovery_timeout=1.0)
    seen: list[tuple[BreakerState, BreakerState]] = []
    unregister = breaker.on_transition(lambda old, new: seen.append((old, new)))
    breaker.record_failure(0.0)
    breaker.allow(1.0)
    breaker.record_failure(1.0)
    breaker.allow(3.0)
    breaker.record_success(3.0)
    breaker.reset()  # CLOSED -> CLOSED is not a change
    unregister()
    breaker.record_failure(4.0)
    assert seen == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]


def test_raising_listener_is_logged_and_contained(caplog: pytest.LogCaptureFixture) -> None:
    """A listener that raises is logged; the breaker still changes state and other listeners run."""
    breaker = CircuitBreaker("rest", failure_threshold=1)
    seen: list[BreakerState] = []

    def broken(old: BreakerState, new: BreakerState) -> None:
        raise ValueError("listener bug")

    breaker.on_transition(broken)
    breaker.on_transition(lambda old, new: seen.append(new))
    with caplog.at_level(logging.ERROR, logger="balance_manager.core.breaker"):
        breaker.record_failure(0.0)
    assert breaker.state is OPEN
    assert seen == [OPEN]
    assert "broken" in caplog.text


def test_non_callable_listener_is_refused() -> None:
    """on_transition() with something not callable raises TypeError."""
    with pytest.raises(TypeError):
        CircuitBreaker("rest").on_transition(42)  # type: ignore[arg-type]  # on purpose


def test_statistics_count_outcomes_and_refusals() -> None:
    """get_statistics() reports opened_count, failures, successes, rejected and the state."""
    breaker = CircuitBreaker("rest", failure_threshold=2, recovery_timeout=10.0)
    breaker.record_success(0.0)
    breaker.record_failure(0.0)
    breaker.record_failure(0.0)
    breaker.allow(1.0)
    breaker.allow(2.0)
    assert breaker.get_statistics() == {
        "name": "rest",
        "state": "open",
        "opened_count": 1,
        "failures": 2,
        "successes": 1,
        "rejected": 2,
        "consecutive_failures": 2,
        "recovery_timeout": 10.0,
    }


def test_repr_shows_name_and_state() -> None:
    """repr() shows the name, the state and the failure count."""
    breaker = CircuitBreaker("kraken-rest", failure_threshold=2)
    breaker.record_failure(0.0)
    assert repr(breaker) == "<CircuitBreaker 'kraken-rest' CLOSED failures=1/2>"
    breaker.record_failure(0.0)
    assert "OPEN" in repr(breaker)
    assert str(BreakerState.HALF_OPEN) == "half_open"


def test_from_config_uses_the_circuit_options() -> None:
    """from_config() takes circuit_failure_threshold, _recovery_timeout, _half_open_max_calls."""
    config = BalanceManagerConfig(
        circuit_failure_threshold=7,
        circuit_recovery_timeout=12.0,
        circuit_half_open_max_calls=2,
        history_db_path=None,
    )
    breaker = CircuitBreaker.from_config(config, "ws")
    assert (breaker.name, breaker.failure_threshold) == ("ws", 7)
    assert (breaker.recovery_timeout, breaker.half_open_max_calls) == (12.0, 2)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"recovery_timeout": 0.0}, "recovery_timeout"),
        ({"recovery_timeout": float("inf")}, "recovery_timeout"),
        ({"recovery_timeout": "30"}, "recovery_timeout"),
        ({"recovery_timeout": 30.0, "max_recovery_timeout": 10.0}, "max_recovery_timeout"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs: dict[str, object], option: str) -> None:
    """An out-of-range argument raises ConfigError naming it."""
    with pytest.raises(ConfigError) as info:
        CircuitBreaker("rest", **kwargs)  # type: ignore[arg-type]  # bad on purpose
    assert info.value.option == option


# -- property ---------------------------------------------------------------------------------

OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["allow", "success", "failure", "reset"]),
        st.floats(min_value=0.0, max_value=50.0),
    ),
    max_size=60,
)


@given(ops=OPERATIONS, threshold=st.integers(1, 4), probes=st.integers(1, 3))
@settings(deadline=None)
def test_any_sequence_follows_the_table_and_bounds(
    ops: list[tuple[str, float]], threshold: int, probes: int
) -> None:
    """For any call sequence, every transition is in the table and the open period is bounded."""
    breaker = CircuitBreaker(
        "rest",
        failure_threshold=threshold,
        recovery_timeout=5.0,
        half_open_max_calls=probes,
        max_recovery_timeout=40.0,
    )
    allowed_moves = {(state, new) for (state, _), new in TRANSITIONS.items()}
    moves: list[tuple[BreakerState, BreakerState]] = []
    breaker.on_transition(lambda old, new: moves.append((old, new)))
    now = 0.0
    for op, step in ops:
        now += step
        if op == "allow":
            was_open_early = breaker.state is OPEN and breaker.retry_after(now) > 0
            allowed = breaker.allow(now)
            if was_open_early:
                assert not allowed
        elif op == "success":
            breaker.record_success(now)
        elif op == "failure":
            breaker.record_failure(now)
        else:
            breaker.reset()
        assert 5.0 <= breaker.current_recovery_timeout <= 40.0
        assert 0.0 <= breaker.retry_after(now) <= 40.0
    assert set(moves) <= allowed_moves


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"recovery_timeout": 10**400}, "recovery_timeout"),
        ({"recovery_timeout": 1e300}, "recovery_timeout"),
        ({"recovery_timeout": 1e-9}, "recovery_timeout"),
        ({"max_recovery_timeout": 10**400}, "max_recovery_timeout"),
    ],
    ids=["int-1e400", "1e300", "1ns", "cap-int-1e400"],
)
def test_absurd_durations_are_refused_by_name(kwargs: dict[str, object], option: str) -> None:
    """A recovery timeout beyond a year (10**400 included) or under 1 ms is a ConfigError."""
    with pytest.raises(ConfigError) as info:
        CircuitBreaker("rest", **kwargs)  # type: ignore[arg-type]  # bad on purpose
    assert info.value.option == option


def test_default_cap_stays_within_a_year() -> None:
    """With a long recovery timeout the default cap (10x) is held to a year, not refused."""
    breaker = CircuitBreaker("rest", recovery_timeout=100 * 86400.0)
    assert breaker.max_recovery_timeout == 365 * 86400.0


# -- the cause of an open circuit ------------------------------------------------------


def test_open_circuit_error_carries_the_last_failure() -> None:
    """The refusal names the failure that opened the circuit, not just the circuit."""
    breaker = CircuitBreaker("kraken-rest", failure_threshold=2, recovery_timeout=30.0)
    breaker.record_failure(0.0, cause=TimeoutError("first"))
    breaker.record_failure(1.0, cause="connection refused by 127.0.0.1:9")
    with pytest.raises(CircuitOpenError) as info:
        breaker.check(2.0)
    assert info.value.cause == "connection refused by 127.0.0.1:9"
    assert str(info.value).startswith("connection refused by 127.0.0.1:9")
    assert breaker.last_failure == "connection refused by 127.0.0.1:9"


def test_a_failed_probe_updates_the_cause_and_a_success_clears_it() -> None:
    """The cause shown is the latest failure; once a call succeeds there is none."""
    breaker = CircuitBreaker("rest", failure_threshold=1, recovery_timeout=1.0)
    breaker.record_failure(0.0, cause="DNS")
    assert breaker.allow(1.5)  # the probe
    breaker.record_failure(1.5, cause=ValueError("TLS"))
    with pytest.raises(CircuitOpenError) as info:
        breaker.check(1.6)
    assert info.value.cause == "TLS"
    breaker.reset()
    assert breaker.last_failure is None
    breaker.record_failure(5.0)
    with pytest.raises(CircuitOpenError) as info:
        breaker.check(5.1)
    assert info.value.cause is None
    assert str(info.value).startswith("circuit 'rest' is open")
