"""Tests of shared/lease.py: the leader proves its lease on its own clock, conservatively."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from balance_manager.exceptions import ConfigError
from balance_manager.shared.lease import LeaseState, LeaseTimer


def test_a_candidate_holds_nothing() -> None:
    """Before any acquisition the lease holds at no time."""
    timer = LeaseTimer(3.0)
    assert timer.state is LeaseState.CANDIDATE
    assert not timer.holds(0.0)
    assert not timer.renew_due(100.0)
    assert timer.remaining(0.0) == 0.0


def test_the_lease_holds_from_the_send_time_less_the_margin() -> None:
    """Validity runs from when the request left, minus the margin, never from when it returned."""
    timer = LeaseTimer(10.0, margin=0.2)
    timer.acquired(7, "7:me", sent_at=100.0)
    assert timer.holds(107.99)
    assert not timer.holds(108.0)
    assert timer.remaining(104.0) == pytest.approx(4.0)


def test_renewal_every_third_of_the_ttl_extends_it() -> None:
    """Renewals are due every ttl/3 and extend validity from their own send time."""
    timer = LeaseTimer(3.0, margin=0.2)
    timer.acquired(1, "1:me", sent_at=0.0)
    assert not timer.renew_due(0.99)
    assert timer.renew_due(1.0)
    timer.renewed(1.0)
    assert timer.holds(3.3)
    assert not timer.holds(3.41)
    assert timer.next_renewal(1.5) == pytest.approx(0.5)


def test_a_failed_renewal_is_retried_soon_and_the_lease_runs_out() -> None:
    """Without a successful renewal the lease stops holding at its validity's end."""
    timer = LeaseTimer(3.0, margin=0.2)
    timer.acquired(1, "1:me", sent_at=0.0)
    timer.renew_failed(1.0)
    assert timer.renew_due(1.15)
    assert timer.holds(2.39)
    assert not timer.holds(2.41)


def test_lost_stops_at_once_and_reset_makes_a_candidate() -> None:
    """A lost lease holds at no time, even within its former validity."""
    timer = LeaseTimer(3.0)
    timer.acquired(4, "4:me", sent_at=0.0)
    timer.lost()
    assert timer.state is LeaseState.LOST
    assert not timer.holds(0.1)
    timer.renewed(0.2)  # a late answer does not bring it back
    assert not timer.holds(0.3)
    timer.reset()
    assert timer.state is LeaseState.CANDIDATE
    assert timer.epoch == 4  # kept for messages


@given(
    ttl=st.floats(0.1, 100.0),
    margin=st.floats(0.0, 0.9),
    sends=st.lists(st.floats(0.0, 50.0), min_size=1, max_size=20),
    probe=st.floats(0.0, 200.0),
)
def test_never_holds_beyond_ttl_after_the_last_successful_send(
    ttl: float, margin: float, sends: list[float], probe: float
) -> None:
    """Whatever the renewals, the lease is never claimed past last send + ttl (Redis's expiry)."""
    timer = LeaseTimer(ttl, margin=margin)
    sends = sorted(sends)
    timer.acquired(1, "1:x", sent_at=sends[0])
    for sent in sends[1:]:
        timer.renewed(sent)
    if timer.holds(probe):
        assert probe < sends[-1] + ttl


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), True, "3"])
def test_bad_ttls_are_refused(ttl: object) -> None:
    """A TTL that is not a positive number of seconds is refused, naming the option."""
    with pytest.raises(ConfigError, match="lease_ttl"):
        LeaseTimer(ttl)  # type: ignore[arg-type]
