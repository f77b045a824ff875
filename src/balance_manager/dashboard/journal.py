"""The dashboard's event journal: numbered events and a bounded replay buffer.

Every event the page is told about (a balance changed, the serving source
changed, the stream's state changed, a validation finding) gets the next number
of this dashboard *run* and is kept in a bounded buffer. An event id reads
``<run>.<number>``; the run is a random word drawn when the dashboard starts,
so an id handed out by another process (a restarted dashboard) is never taken
for one of ours.

A page that reconnects says the last id it saw; :meth:`EventJournal.after`
answers with every event since, in order, or says that it cannot (the id is
from another run, or older than the buffer reaches back): then the page must
reload the whole state (``/api/balances``) instead, so nothing is ever lost
silently.

Sans-I/O: no asyncio, no sockets; the server wakes its streams itself.
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from balance_manager.exceptions import ConfigError

__all__ = ["DEFAULT_CAPACITY", "EventJournal", "JournalEvent", "Replay"]

#: Events kept for replay by default.
DEFAULT_CAPACITY = 2000


@dataclass(frozen=True, slots=True)
class JournalEvent:
    """One numbered event.

    Attributes:
        number: its position in this run (1, 2, 3...).
        kind: what happened: ``balance``, ``source``, ``connection`` or ``validation``.
        data: its JSON-ready payload.
        id: ``<run>.<number>``, what the page echoes back on reconnect.
    """

    number: int
    kind: str
    data: dict[str, Any]
    id: str


@dataclass(frozen=True, slots=True)
class Replay:
    """What to send a page that reconnects.

    Attributes:
        events: the events it missed, oldest first (empty when ``reset``).
        reset: the missed events cannot be replayed: reload the whole state.
        reason: why a reset is needed (for the page's log), else ``""``.
    """

    events: tuple[JournalEvent, ...]
    reset: bool = False
    reason: str = ""


class EventJournal:
    """Numbered events, the newest ``capacity`` of them kept for replay.

    Args:
        capacity: events kept (at least 1).
        run: this run's id (random by default; tests pass one).

    Raises:
        ConfigError: ``capacity`` is not a positive int, or ``run`` is not a
            non-empty word of letters and digits.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, *, run: str | None = None) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ConfigError("capacity", capacity, "must be an int >= 1")
        if run is None:
            run = secrets.token_hex(4)
        if not isinstance(run, str) or not run.isalnum():
            raise ConfigError("run", run, "must be a non-empty word of letters and digits")
        self.run = run
        self.capacity = capacity
        self._events: deque[JournalEvent] = deque(maxlen=capacity)
        self._last = 0
        self._listeners: list[Callable[[], None]] = []

    @property
    def last_number(self) -> int:
        """The number of the newest event (0 before the first)."""
        return self._last

    @property
    def last_id(self) -> str:
        """The id of the newest event (``<run>.0`` before the first)."""
        return f"{self.run}.{self._last}"

    def __len__(self) -> int:
        return len(self._events)

    def on_append(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every append (the server wakes its streams)."""
        self._listeners.append(listener)

    def append(self, kind: str, data: dict[str, Any]) -> JournalEvent:
        """Number ``data`` as the next event and keep it (the oldest may go)."""
        self._last += 1
        event = JournalEvent(self._last, kind, data, f"{self.run}.{self._last}")
        self._events.append(event)
        for listener in self._listeners:
            listener()
        return event

    def recent(self, limit: int) -> list[JournalEvent]:
        """The newest ``limit`` events, oldest first."""
        if limit <= 0:
            return []
        start = max(0, len(self._events) - limit)
        return list(itertools.islice(self._events, start, None))

    def parse(self, event_id: str | None) -> int | None:
        """The number in ``event_id`` if it is one of this run's ids, else ``None``."""
        if not event_id:
            return None
        run, dot, number = event_id.strip().partition(".")
        if not dot or run != self.run or not number.isdigit() or len(number) > 18:
            return None
        value = int(number)
        return value if value <= self._last else None

    def after(self, event_id: str | None) -> Replay:
        """The events after ``event_id``, or a reset when they cannot all be given.

        ``None`` or ``""`` (a page that has seen nothing yet) is a reset too:
        the page has no state to bring up to date.
        """
        if not event_id:
            return Replay((), reset=True, reason="no state yet")
        number = self.parse(event_id)
        if number is None:
            return Replay((), reset=True, reason="the dashboard restarted")
        return self.since(number)

    def since(self, number: int) -> Replay:
        """The events numbered above ``number`` (a reset if some were dropped)."""
        if number >= self._last:
            return Replay(())
        oldest = self._events[0].number if self._events else self._last + 1
        if number + 1 < oldest:
            return Replay(
                (), reset=True, reason=f"{oldest - number - 1} events were missed while away"
            )
        skip = number + 1 - oldest
        return Replay(tuple(itertools.islice(self._events, skip, None)))

    def __repr__(self) -> str:
        return f"EventJournal(run={self.run!r}, last={self._last}, kept={len(self._events)})"
