"""Which source is serving, and how fresh the held balances are (sans-I/O).

The manager serves every read from memory. What changes with the sources'
health is how much those values can be trusted, and where refreshes come from:

=========  =======================================  ==============================
mode       when                                     served values
=========  =======================================  ==============================
websocket  the stream is subscribed and has spoken  live; no REST call needed
           within ``stream_timeout``
rest       the stream is down or silent, and a REST  fresh as of the last REST read;
           read succeeded within ``rest_fresh_for``  REST is polled every
                                                     ``poll_interval``
cache      neither                                  last known values, marked with
                                                     source ``cache`` (stale)
=========  =======================================  ==============================

:class:`SourceTracker` holds the facts (stream up/down, last message, last
REST success) and answers those questions for a given monotonic ``now``.
"""

from __future__ import annotations

import enum

__all__ = ["ServingMode", "SourceTracker"]


class ServingMode(enum.Enum):
    """Where the values being served come from (see the module table)."""

    WEBSOCKET = "websocket"
    REST = "rest"
    CACHE = "cache"

    def __str__(self) -> str:
        return self.value


class SourceTracker:
    """Tracks source health; every method takes monotonic ``now`` (seconds).

    Args:
        stream_timeout: silence after which a connected stream is not trusted.
        rest_fresh_for: how long a successful REST read keeps values fresh when
            the stream is down.
        poll_interval: seconds between REST polls while the stream is down.
        poll_for_holds: also poll REST while the stream is up but its holds
            are not live (they should be: the hold channel failed or is resyncing).
    """

    __slots__ = (
        "_holds_confirmed",
        "_holds_live",
        "_last_rest_attempt",
        "_last_rest_success",
        "_last_stream_message",
        "_stream_confirmed",
        "_stream_up",
        "poll_for_holds",
        "poll_interval",
        "rest_failures",
        "rest_fresh_for",
        "stream_timeout",
    )

    def __init__(
        self,
        *,
        stream_timeout: float,
        rest_fresh_for: float,
        poll_interval: float,
        poll_for_holds: bool = False,
    ) -> None:
        self.stream_timeout = stream_timeout
        self.poll_for_holds = poll_for_holds
        self._holds_live = False
        self._holds_confirmed: float | None = None  # up to when holds it no longer follows were
        self.rest_fresh_for = rest_fresh_for
        self.poll_interval = poll_interval
        self._stream_up = False
        self._last_stream_message: float | None = None
        self._stream_confirmed: float | None = None  # up to when a stream now down confirmed
        self._last_rest_success: float | None = None
        self._last_rest_attempt: float | None = None
        self.rest_failures = 0
        """Consecutive REST failures."""

    # -- facts ---------------------------------------------------------------
    def stream_up(self, now: float) -> None:
        """The stream subscribed and delivered its snapshot."""
        self._stream_up = True
        self._last_stream_message = now

    def stream_down(self, quiet_since: float | None = None) -> None:
        """The stream disconnected, is resyncing or was stopped.

        What it delivered stays confirmed up to its last message before it went
        down, or up to ``quiet_since`` when it fell silent earlier than that
        (updates after that moment may have been lost).
        """
        if self._stream_up:
            last = self._last_stream_message
            if quiet_since is not None and (last is None or quiet_since < last):
                last = quiet_since
            self._stream_confirmed = last
            held = self._holds_confirmed
            if self._holds_live or (held is not None and (last is None or held > last)):
                self._holds_confirmed = last
        self._stream_up = False

    def stream_message(self, now: float) -> None:
        """The stream delivered something (data, heartbeat, pong).

        Only a stream that is up confirms anything: messages of a stream that is
        resyncing (or was interrupted) do not make its old values current.
        """
        if self._stream_up:
            self._last_stream_message = now

    def holds_live(self, live: bool) -> None:
        """Whether the stream follows holds in real time (else they are as old as REST's)."""
        if self._holds_live and not live and self._stream_up:
            self._holds_confirmed = self._last_stream_message
        self._holds_live = live

    def rest_attempt(self, now: float) -> None:
        """A REST read is starting."""
        self._last_rest_attempt = now

    def rest_success(self, now: float) -> None:
        """A REST read returned every balance."""
        self._last_rest_success = now
        self.rest_failures = 0

    def rest_failure(self) -> None:
        """A REST read failed."""
        self.rest_failures += 1

    # -- answers ---------------------------------------------------------------
    def stream_healthy(self, now: float) -> bool:
        """Subscribed, and heard from within ``stream_timeout``."""
        last = self._last_stream_message
        return self._stream_up and last is not None and now - last <= self.stream_timeout

    def rest_fresh(self, now: float) -> bool:
        """A REST read succeeded within ``rest_fresh_for``."""
        last = self._last_rest_success
        return last is not None and now - last <= self.rest_fresh_for

    def mode(self, now: float) -> ServingMode:
        """Which source the served values stand on right now."""
        if self.stream_healthy(now):
            return ServingMode.WEBSOCKET
        if self.rest_fresh(now):
            return ServingMode.REST
        return ServingMode.CACHE

    def confirmed_at(self, now: float) -> float | None:
        """Monotonic time up to which every held value is known current, if any.

        A healthy stream confirms every held value up to its last message (it
        would have pushed a change), holds included when it follows them;
        when it does not, holds are only as recent as the last REST read.
        Otherwise the later of the last REST read and the moment the stream
        stopped confirming.
        """
        if self.stream_healthy(now):
            last = self._last_stream_message
            if self._holds_live:
                return last
            rest = self._last_rest_success
            return rest if rest is None or last is None or rest < last else last
        # Down: up to when it stopped confirming; up but silent: up to its last message.
        stream = self._last_stream_message if self._stream_up else self._stream_confirmed
        rest = self._last_rest_success
        if stream is None:
            return rest
        return stream if rest is None or stream > rest else rest

    def stream_confirmed_at(self) -> float | None:
        """Monotonic time up to which the stream alone confirms every held balance.

        Up: its last message (however long ago); down: when it stopped
        confirming. REST is not counted: a REST read confirms only the assets
        it read (the caller knows which).
        """
        return self._last_stream_message if self._stream_up else self._stream_confirmed

    def holds_confirmed_at(self) -> float | None:
        """Monotonic time up to which the stream alone confirms every held hold.

        While it follows holds, its last message; after, up to when it
        stopped following them; ``None`` if it never did. REST is not counted.
        """
        if self._holds_live and self._stream_up:
            return self._last_stream_message
        return self._holds_confirmed

    def stream_quiet_for(self, now: float) -> float | None:
        """Seconds since a stream that is up last spoke (``None`` when it is not up)."""
        if not self._stream_up or self._last_stream_message is None:
            return None
        return max(0.0, now - self._last_stream_message)

    def poll_due(self, now: float) -> bool:
        """Whether a REST poll should run now (interval passed, and the stream not healthy
        or, with ``poll_for_holds``, not following holds)."""
        if self.stream_healthy(now) and (self._holds_live or not self.poll_for_holds):
            return False
        last = self._last_rest_attempt
        return last is None or now - last >= self.poll_interval

    @property
    def last_stream_message(self) -> float | None:
        """Monotonic time of the stream's last message, if any."""
        return self._last_stream_message

    @property
    def last_rest_success(self) -> float | None:
        """Monotonic time of the last successful REST read, if any."""
        return self._last_rest_success

    def __repr__(self) -> str:
        return (
            f"SourceTracker(stream_up={self._stream_up}, "
            f"last_stream_message={self._last_stream_message}, "
            f"last_rest_success={self._last_rest_success}, rest_failures={self.rest_failures})"
        )
