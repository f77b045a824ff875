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
