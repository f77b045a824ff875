"""Named events delivered to callbacks off the caller's path.

:class:`EventDispatcher` is what ``BalanceManager.register_callback`` stands on
(``balance_manager.register_callback('balance_update', on_balance_update)``
with ``async def on_balance_update(balance_data)``). The code that produces an
event calls :meth:`EventDispatcher.publish`, which only appends the payload to
a queue and returns: no callback ever runs inside it. So a callback that is
slow, blocks, raises, reads a balance that needs a REST refresh, or
unregisters itself cannot delay reading the stream, trip its silence
watchdog, or wait on a lock its own caller holds.

Delivery:

* every registered callback has its own queue and its own asyncio task, so a
  slow callback delays only itself; each callback receives its events in the
  order they were published (hence in order per asset);
* sync and ``async`` callables alike; a callback that raises (anything,
  ``CancelledError`` included, unless its delivery task is itself being
  cancelled) is logged with its name and counted in ``callback_errors``, and
  its next event is delivered as usual;
* a sync callback that holds the event loop longer than ``slow_callback``
  seconds is logged with its name and counted (``blocking_calls``): it delays
  everything on the loop, and only its author can fix that.

Overflow, per callback (its queue holds ``max_pending`` events): a new
``balance_update`` for an asset that already has one waiting is merged into
it (``old`` of the waiting one, ``new`` of the latest: the chain of values
stays intact) and counted as ``coalesced``; other events are never merged.
Beyond ``4 * max_pending`` waiting events the oldest are dropped, counted as
``dropped`` and logged: a callback that never returns cannot exhaust memory.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from types import CoroutineType
from typing import Any, TypedDict

from balance_manager.core.models import BalanceChange
from balance_manager.core.stats import callable_name
from balance_manager.exceptions import ConfigError, UnknownEventError

__all__ = [
    "Callback",
    "CallbackStatistics",
    "DispatcherStatistics",
    "EventDispatcher",
]

logger = logging.getLogger(__name__)

#: A callback: ``fn(payload)``, returning nothing or an awaitable (``async def``).
Callback = Callable[[Any], Awaitable[object] | object]

#: Events whose waiting payloads may be merged per asset at overflow.
COALESCED_EVENTS = frozenset({"balance_update"})


class CallbackStatistics(TypedDict):
    """Delivery figures of one registered callback."""

    event: str
    name: str
    calls: int
    errors: int
    pending: int
    max_pending: int
    coalesced: int
    dropped: int
    blocking_calls: int
    max_seconds: float
    total_seconds: float


class DispatcherStatistics(TypedDict):
    """What :meth:`EventDispatcher.get_statistics` returns."""

    published: int
    delivered: int
    callback_errors: int
    coalesced: int
    dropped: int
    blocking_calls: int
    pending: int
    registered: dict[str, int]
    callbacks: list[CallbackStatistics]


class _Subscriber:
    """One callback of one event: its queue, its delivery task and its figures."""

    __slots__ = (
        "active",
        "blocking_calls",
        "calls",
        "coalesced",
        "dropped",
        "errors",
        "event",
        "fn",
        "max_pending",
        "max_seconds",
        "name",
        "queue",
        "task",
        "total_seconds",
        "waiting",
        "wakeup",
    )

    def __init__(self, event: str, fn: Callback) -> None:
        self.event = event
        self.fn = fn
        self.name = callable_name(fn)
        # Entries are one-item lists so a waiting balance_update can be merged in place.
        self.queue: deque[list[Any]] = deque()
        self.waiting: dict[str, list[Any]] = {}  # asset → its last waiting balance_update
        self.task: asyncio.Task[None] | None = None
        self.wakeup: asyncio.Event | None = None
        self.active = True
        self.calls = 0
        self.errors = 0
        self.coalesced = 0
        self.dropped = 0
        self.blocking_calls = 0
        self.max_pending = 0
        self.max_seconds = 0.0
        self.total_seconds = 0.0

    def statistics(self) -> CallbackStatistics:
        return {
            "event": self.event,
            "name": self.name,
            "calls": self.calls,
            "errors": self.errors,
            "pending": len(self.queue),
            "max_pending": self.max_pending,
            "coalesced": self.coalesced,
            "dropped": self.dropped,
            "blocking_calls": self.blocking_calls,
            "max_seconds": self.max_seconds,
            "total_seconds": self.total_seconds,
        }


class EventDispatcher:
    """Callbacks per event name, each fed from its own queue by its own task.

    Registering the same callable twice for an event is a no-op; bound methods
    compare equal, so ``obj.method`` can be registered and unregistered freely.
    Registration and unregistration may happen from any thread; :meth:`publish`
    runs on the event loop.

    Args:
        events: the event names accepted, e.g. ``("balance_update", "balance_change")``.
        max_pending: events waiting per callback before ``balance_update`` is
            coalesced (see the module docstring).
        slow_callback: seconds a sync callback may hold the loop before it is
            reported as blocking.

    Example:
        >>> import asyncio
        >>> async def main():
        ...     dispatcher = EventDispatcher(["balance_update"])
        ...     seen = []
        ...     dispatcher.register_callback("balance_update", seen.append)
        ...     dispatcher.publish("balance_update", "BTC")
        ...     await dispatcher.drain()
        ...     await dispatcher.aclose()
        ...     return seen
        >>> asyncio.run(main())
        ['BTC']
    """

    def __init__(
        self, events: Iterable[str], *, max_pending: int = 10_000, slow_callback: float = 0.1
    ) -> None:
        names = tuple(dict.fromkeys(events))
        if not names:
            raise ConfigError("events", names, "an EventDispatcher needs at least one event name")
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ConfigError("max_pending", max_pending, "must be an int >= 1")
        self._events = names
        self._subscribers: dict[str, tuple[_Subscriber, ...]] = {name: () for name in names}
        self._lock = threading.Lock()  # serialises registrations from several threads
        self._max_pending = max_pending
        self._hard_limit = 4 * max_pending
        self._slow_callback = slow_callback
        self._published = 0
        self._delivered = 0
        self._retired = _Totals()  # figures of callbacks since unregistered
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy = 0  # events queued or being delivered, all callbacks together
        self._progress: asyncio.Event | None = None  # set at each delivery while aclose waits
        self._closed = False

    @property
    def events(self) -> tuple[str, ...]:
        """The accepted event names, in the order given."""
        return self._events

    @property
    def callback_errors(self) -> int:
        """How many callback calls have raised so far."""
        return self._retired.errors + sum(s.errors for s in self._all())

    # -- registration ------------------------------------------------------------

    def register_callback(self, event: str, fn: Callback) -> None:
        """Call ``fn(payload)`` on every ``event``; ``fn`` may be ``async``.

        Raises:
            UnknownEventError: ``event`` is not one of :attr:`events` (the message lists them).
            TypeError: ``fn`` is not callable.
        """
        self._check_event(event)
        if not callable(fn):
            raise TypeError(f"callback for {event!r} must be callable, got {type(fn).__name__}")
        with self._lock:
            current = self._subscribers[event]
            if any(s.fn == fn for s in current):
                return
            self._subscribers[event] = (*current, _Subscriber(event, fn))

    def unregister_callback(self, event: str, fn: Callback) -> bool:
        """Stop calling ``fn`` on ``event`` (its waiting events are dropped); ``True`` if found.

        Safe from inside the callback itself: the call in progress finishes, no
        further one starts.

        Raises:
            UnknownEventError: ``event`` is not one of :attr:`events`.
        """
        self._check_event(event)
        with self._lock:
            current = self._subscribers[event]
            found = [s for s in current if s.fn == fn]
            if not found:
                return False
            self._subscribers[event] = tuple(s for s in current if s.fn != fn)
        for subscriber in found:
            task = subscriber.task
            loop = task.get_loop() if task is not None and not task.done() else None
            if loop is not None and not _running(loop):
                # Another thread: its queue, task and events belong to the loop.
                loop.call_soon_threadsafe(self._retire, subscriber)
            else:
                self._retire(subscriber)
        return True

    def callbacks(self, event: str) -> tuple[Callback, ...]:
        """The callbacks of ``event``, in registration order.

        Raises:
            UnknownEventError: ``event`` is not one of :attr:`events`.
        """
        self._check_event(event)
        return tuple(s.fn for s in self._subscribers[event])

    def has_callbacks(self, event: str) -> bool:
        """Whether anything listens to ``event`` (to skip building a payload nobody reads)."""
        return bool(self._subscribers.get(event))

    # -- publishing ----------------------------------------------------------------

    def publish(self, event: str, payload: Any) -> None:
        """Queue ``payload`` for every callback of ``event`` and return at once.

        Must be called on the event loop (delivery tasks start there).

        Raises:
            UnknownEventError: ``event`` is not one of :attr:`events`.
        """
        subscribers = self._subscribers.get(event)
        if subscribers is None:
            raise UnknownEventError(event, self._events)
        self._published += 1
        if not subscribers or self._closed:
            return
        coalesce = event in COALESCED_EVENTS and type(payload) is BalanceChange
        for subscriber in subscribers:
            self._push(subscriber, payload, coalesce)

    def _push(self, subscriber: _Subscriber, payload: Any, coalesce: bool) -> None:
        queue = subscriber.queue
        if coalesce:
            asset = payload.new.asset
            if len(queue) >= self._max_pending:
                waiting = subscriber.waiting.get(asset)
                if waiting is not None:
                    first: BalanceChange = waiting[0]
                    waiting[0] = BalanceChange(
                        new=payload.new,
                        old=first.old,
                        significant=first.significant or payload.significant,
                        kind=payload.kind,
                        ledger_id=payload.ledger_id,
                    )
                    subscriber.coalesced += 1
                    return
            entry = [payload]
            subscriber.waiting[asset] = entry
        else:
            entry = [payload]
        queue.append(entry)
        self._busy += 1
        self._idle.clear()
        if len(queue) > subscriber.max_pending:
            subscriber.max_pending = len(queue)
        if len(queue) > self._hard_limit:
            self._drop_oldest(subscriber)
        if subscriber.task is None:
            subscriber.wakeup = asyncio.Event()
            subscriber.task = asyncio.get_running_loop().create_task(
                self._deliver(subscriber), name=f"callbacks:{subscriber.event}:{subscriber.name}"
            )
        elif subscriber.wakeup is not None:
            subscriber.wakeup.set()

    def _drop_oldest(self, subscriber: _Subscriber) -> None:
        entry = subscriber.queue.popleft()
        self._forget(subscriber, entry)
        subscriber.dropped += 1
        self._done_one()
        if subscriber.dropped == 1 or subscriber.dropped % 1000 == 0:
            logger.warning(
                "callback %s for %r is not keeping up: %d events dropped so far",
                subscriber.name,
                subscriber.event,
                subscriber.dropped,
            )

    @staticmethod
    def _forget(subscriber: _Subscriber, entry: list[Any]) -> None:
        payload = entry[0]
        if type(payload) is BalanceChange:
            asset = payload.new.asset
            if subscriber.waiting.get(asset) is entry:
                del subscriber.waiting[asset]

    def _done_one(self) -> None:
        self._busy -= 1
        if self._progress is not None:
            self._progress.set()
        if self._busy <= 0:
            self._busy = 0
            self._idle.set()

    # -- delivery --------------------------------------------------------------------

    async def _deliver(self, subscriber: _Subscriber) -> None:
        queue = subscriber.queue
        wakeup = subscriber.wakeup or asyncio.Event()
        while subscriber.active:
            if not queue:
                wakeup.clear()
                await wakeup.wait()
                continue
            entry = queue.popleft()
            self._forget(subscriber, entry)
            try:
                await self._call(subscriber, entry[0])
            finally:
                self._delivered += 1
                self._done_one()

    async def _call(self, subscriber: _Subscriber, payload: Any) -> None:
        subscriber.calls += 1
        started = time.perf_counter()
        try:
            result = subscriber.fn(payload)
            held = time.perf_counter() - started
            if held > self._slow_callback:
                subscriber.blocking_calls += 1
                logger.warning(
                    "callback %s for %r blocked the event loop for %.3f s; "
                    "make it async or hand its work to a thread",
                    subscriber.name,
                    subscriber.event,
                    held,
                )
            # A coroutine is the common async case; test its type before the
            # general (slower) awaitable check.
            if result is not None and (
                type(result) is CoroutineType or inspect.isawaitable(result)
            ):
                await result
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this delivery task is being stopped
            subscriber.errors += 1
            logger.error(
                "callback %s for event %r raised CancelledError (counted as its error)",
                subscriber.name,
                subscriber.event,
            )
        except Exception:
            subscriber.errors += 1
            logger.exception("callback %s for event %r failed", subscriber.name, subscriber.event)
        finally:
            seconds = time.perf_counter() - started
            subscriber.total_seconds += seconds
            if seconds > subscriber.max_seconds:
                subscriber.max_seconds = seconds

    # -- waiting and stopping ----------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every published event has been delivered (or dropped)."""
        await self._idle.wait()

    async def aclose(self, grace: float = 5.0) -> None:
        """Deliver what is waiting (for up to ``grace`` real seconds), then stop.

        Events published afterwards are not delivered. Idempotent.
        """
        current = asyncio.current_task()
        if not self._closed:
            self._closed = True
            # Called from inside a callback: its own events (the one it is
            # handling, those queued behind) cannot be delivered before this
            # returns; wait for every other callback's only.
            own = sum(1 + len(s.queue) for s in self._all() if s.task is current)
            try:
                await asyncio.wait_for(self._idle_but(own), grace)
            except TimeoutError:
                logger.warning("callbacks still busy after %g s; stopping them", grace)
        for subscriber in self._all():
            self._stop(subscriber)
            task = subscriber.task
            if task is not None and not task.done() and task is not current:
                try:
                    await task
                except asyncio.CancelledError:
                    if (current := asyncio.current_task()) is not None and current.cancelling():
                        raise

    async def _idle_but(self, own: int) -> None:
        """Wait until at most ``own`` events are still queued or being delivered."""
        if not own:
            await self._idle.wait()
            return
        try:
            while self._busy > own:
                self._progress = asyncio.Event()
                await self._progress.wait()
        finally:
            self._progress = None

    def _retire(self, subscriber: _Subscriber) -> None:
        """Stop delivering to an unregistered ``subscriber``, keeping its figures."""
        if subscriber.active:
            self._stop(subscriber)
            self._retired.add(subscriber)

    def _stop(self, subscriber: _Subscriber) -> None:
        """Drop ``subscriber``'s waiting events and end its task (after a call in progress)."""
        if not subscriber.active:
            return
        subscriber.active = False
        for _ in range(len(subscriber.queue)):
            self._done_one()
        subscriber.queue.clear()
        subscriber.waiting.clear()
        task = subscriber.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    # -- figures ------------------------------------------------------------------------

    def get_statistics(self) -> DispatcherStatistics:
        """Counts since creation, per callback and together."""
        live = self._all()
        per = [s.statistics() for s in live]
        retired = self._retired
        return {
            "published": self._published,
            "delivered": self._delivered,
            "callback_errors": retired.errors + sum(s.errors for s in live),
            "coalesced": retired.coalesced + sum(s.coalesced for s in live),
            "dropped": retired.dropped + sum(s.dropped for s in live),
            "blocking_calls": retired.blocking_calls + sum(s.blocking_calls for s in live),
            "pending": sum(len(s.queue) for s in live),
            "registered": {name: len(subs) for name, subs in self._subscribers.items()},
            "callbacks": per,
        }

    def _all(self) -> list[_Subscriber]:
        return [s for subs in self._subscribers.values() for s in subs]

    def _check_event(self, event: str) -> None:
        if event not in self._subscribers:
            raise UnknownEventError(event, self._events)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={len(subs)}" for name, subs in self._subscribers.items())
        return f"EventDispatcher({inner})"


def _running(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` is the one running in this thread."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class _Totals:
    """Figures kept from callbacks that were unregistered."""

    __slots__ = ("blocking_calls", "coalesced", "dropped", "errors")

    def __init__(self) -> None:
        self.errors = 0
        self.coalesced = 0
        self.dropped = 0
        self.blocking_calls = 0

    def add(self, subscriber: _Subscriber) -> None:
        self.errors += subscriber.errors
        self.coalesced += subscriber.coalesced
        self.dropped += subscriber.dropped
        self.blocking_calls += subscriber.blocking_calls
