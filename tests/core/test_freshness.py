"""SourceTracker: which source serves, and how fresh values are."""

from __future__ import annotations

from balance_manager.core.freshness import ServingMode, SourceTracker


def make() -> SourceTracker:
    return SourceTracker(stream_timeout=10.0, rest_fresh_for=15.0, poll_interval=5.0)


def test_nothing_known_is_cache_mode() -> None:
    """Before any source answered, values are served as stale cache."""
    tracker = make()
    assert tracker.mode(100.0) is ServingMode.CACHE
    assert tracker.confirmed_at(100.0) is None
    assert tracker.poll_due(100.0)


def test_healthy_stream_serves_websocket_and_needs_no_poll() -> None:
    """A subscribed stream heard from recently confirms values; no REST poll is due."""
    tracker = make()
    tracker.holds_live(True)
    tracker.stream_up(100.0)
    tracker.stream_message(105.0)
    assert tracker.mode(114.0) is ServingMode.WEBSOCKET
    assert tracker.confirmed_at(114.0) == 105.0
    assert not tracker.poll_due(114.0)


def test_silent_stream_falls_back() -> None:
    """A stream silent for longer than the timeout no longer counts as healthy."""
    tracker = make()
    tracker.stream_up(100.0)
    assert tracker.mode(110.0) is ServingMode.WEBSOCKET
    assert tracker.mode(110.5) is ServingMode.CACHE
    assert tracker.poll_due(110.5)


def test_rest_success_keeps_values_fresh_for_a_while() -> None:
    """With the stream down, a REST read keeps values fresh for rest_fresh_for seconds."""
    tracker = make()
    tracker.rest_attempt(200.0)
    tracker.rest_success(200.5)
    assert tracker.mode(215.5) is ServingMode.REST
    assert tracker.confirmed_at(215.5) == 200.5
    assert tracker.mode(215.6) is ServingMode.CACHE


def test_poll_interval_is_respected() -> None:
    """REST polls are spaced by poll_interval from the last attempt."""
    tracker = make()
    tracker.rest_attempt(300.0)
    tracker.rest_failure()
    assert not tracker.poll_due(304.9)
    assert tracker.poll_due(305.0)
    assert tracker.rest_failures == 1
    tracker.rest_success(305.0)
    assert tracker.rest_failures == 0


def test_stream_down_stops_confirmation() -> None:
    """After stream_down the stream confirms nothing, even if it spoke recently."""
    tracker = make()
    tracker.stream_up(100.0)
    tracker.stream_down()
    assert tracker.mode(100.0) is ServingMode.CACHE
    assert "stream_up=False" in repr(tracker)


def test_without_live_holds_values_are_as_recent_as_rest() -> None:
    """A stream that does not follow holds confirms them only as of the last REST read."""
    tracker = SourceTracker(
        stream_timeout=10.0, rest_fresh_for=15.0, poll_interval=5.0, poll_for_holds=True
    )
    tracker.rest_success(99.0)
    tracker.stream_up(100.0)
    tracker.stream_message(105.0)
    assert tracker.confirmed_at(106.0) == 99.0
    assert tracker.mode(106.0) is ServingMode.WEBSOCKET
    tracker.rest_attempt(99.0)
    assert tracker.poll_due(106.0)  # holds should be live: REST polls meanwhile
    tracker.holds_live(True)
    assert tracker.confirmed_at(106.0) == 105.0
    assert not tracker.poll_due(106.0)


def test_an_interrupted_stream_confirms_only_up_to_its_silence() -> None:
    """stream_down(quiet_since): values are confirmed up to the silence, not the late message."""
    tracker = make()
    tracker.holds_live(True)
    tracker.stream_up(100.0)
    tracker.stream_message(104.0)
    tracker.stream_down(quiet_since=102.0)
    assert tracker.confirmed_at(104.5) == 102.0
    tracker.stream_message(106.0)  # messages of a stream that is down confirm nothing
    assert tracker.confirmed_at(106.5) == 102.0
    tracker.rest_success(107.0)
    assert tracker.confirmed_at(107.5) == 107.0
    tracker.stream_up(108.0)
    assert tracker.confirmed_at(108.5) == 108.0


def test_quiet_for_counts_from_the_last_message_of_a_stream_that_is_up() -> None:
    """stream_quiet_for is None unless the stream is up; else the seconds since it spoke."""
    tracker = make()
    assert tracker.stream_quiet_for(100.0) is None
    tracker.stream_up(100.0)
    assert tracker.stream_quiet_for(102.5) == 2.5
    tracker.stream_down()
    assert tracker.stream_quiet_for(103.0) is None


def test_the_stream_alone_confirms_holds_only_while_it_follows_them() -> None:
    """holds_confirmed_at: the last message while holds are live, then when they stopped."""
    tracker = make()
    tracker.rest_success(99.0)
    tracker.stream_up(100.0)
    assert tracker.holds_confirmed_at() is None  # never followed: REST's (counted by the caller)
    assert tracker.stream_confirmed_at() == 100.0
    tracker.holds_live(True)
    tracker.stream_message(103.0)
    assert tracker.holds_confirmed_at() == 103.0
    tracker.holds_live(False)  # e.g. executions resyncing
    tracker.stream_message(105.0)
    assert tracker.holds_confirmed_at() == 103.0
    assert tracker.stream_confirmed_at() == 105.0
    tracker.holds_live(True)
    tracker.stream_message(106.0)
    tracker.holds_live(False)
    tracker.stream_down(quiet_since=104.0)  # an interruption: not even up to 106
    assert tracker.holds_confirmed_at() == 104.0
    assert tracker.stream_confirmed_at() == 104.0
