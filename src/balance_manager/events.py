"""Named events and their callbacks, for the asyncio layer.

:class:`CallbackRegistry` is what ``BalanceManager.register_callback`` stands
on (the seed: ``balance_manager.register_callback('balance_update',
on_balance_update)`` with ``async def on_balance_update(balance_data)``). It
takes plain functions and coroutine functions alike, checks event names when a
callback is registered (a typo fails at once, not silently never), and isolates
callbacks from each other and from the code that emits: a callback that raises
is logged and counted, and the next one still runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from types import CoroutineType
from typing import Any, TypedDict

from balance_manager.core.stats import Counters, callable_name
from balance_manager.exceptions import ConfigError, UnknownEventError

__all__ = ["Callback", "CallbackRegistry", "CallbackStatistics"]

logger = logging.getLogger(__name__)

#: A callback: ``fn(payload)``, returning nothing or an awaitable (``async def``).
Callback = Callable[[Any], Awaitable[object] | object]


class CallbackStatistics(TypedDict):
    """What :meth:`CallbackRegistry.get_statistics` returns."""

    emitted: int
    callbacks_called: int
    callback_errors: int
    registered: dict[str, int]


class CallbackRegistry:
    """Callbacks per event name, called in registration order.

    Registering the same callable twice for an event is a no-op (it is called
    once per emit); bound methods compare equal, so ``obj.method`` can be
    registered and unregistered freely.

    Registration may happen from any thread (the tuples of callbacks are
    replaced, never changed in place, so an emit in progress keeps the list it
    started with). :meth:`emit` runs on the event loop;
    :meth:`emit_threadsafe` hands an emit to it from another thread.

    Args:
        events: the event names this registry accepts, e.g.
            ``("balance_update", "balance_change")``.

    Example:
        >>> import asyncio
        >>> registry = CallbackRegistry(["balance_update"])
        >>> seen = []
        >>> async def on_update(data):
        ...     seen.append(data["asset"])
        >>> registry.register_callback("balance_update", on_update)
        >>> asyncio.run(registry.emit("balance_update", {"asset": "BTC"}))
        0
        >>> seen
        ['BTC']
    """

    def __init__(self, events: Iterable[str]) -> None:
        names = tuple(dict.fromkeys(events))
        if not names:
            raise ConfigError("events", names, "a CallbackRegistry needs at least one event name")
        self._events = names
        self._callbacks: dict[str, tuple[Callback, ...]] = {name: () for name in names}
        self._lock = threading.Lock()  # serialises registrations from several threads
        self._counters = Counters(("emitted", "callbacks_called", "callback_errors"))
        self._counts = self._counters.live  # incremented in place on the hot path

    @property
    def events(self) -> tuple[str, ...]:
        """The accepted event names, in the order given."""
        return self._events

    @property
    def callback_errors(self) -> int:
        """How many callback calls have raised so far."""
        return self._counters.get("callback_errors")

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
            current = self._callbacks[event]
            if fn not in current:
                self._callbacks[event] = (*current, fn)

    def unregister_callback(self, event: str, fn: Callback) -> bool:
        """Stop calling ``fn`` on ``event``; ``True`` if it was registered.

        Raises:
            UnknownEventError: ``event`` is not one of :attr:`events`.
        """
        self._check_event(event)
        with self._lock:
            current = self._callbacks[event]
            if fn not in current:
                return False
            self._callbacks[event] = tuple(cb for cb in current if cb != fn)
            return True

    def callbacks(self, event: str) -> tuple[Callback, ...]:
        """The callbacks of ``event``, in call order.

        Raises:
            UnknownEventError: ``event`` is not one of :attr:`events`.
        """
        self._check_event(event)
        return self._callbacks[event]

    def has_callbacks(self, event: str) -> bool:
        """Whether anything listens to ``event`` (to skip building a payload nobody reads)."""
        return bool(self._callbacks.get(event))

    async def emit(self, event: str, payload: Any) -> int:
        """Call every callback of ``event`` with ``payload``; returns how many failed.

        Callbacks run one after another in registration order; an ``async``
        one is awaited before the next starts. A callback that raises is
        logged (with its name, not the payload) and counted in
        ``callback_errors``; the others still run and ``emit`` itself does not
        raise. Cancellation of the emitting task is not swallowed.

        Raises:
            UnknownEventError: ``event`` is not one of :attr:`events`.
        """
        callbacks = self._callbacks.get(event)
        if callbacks is None:
            raise UnknownEventError(event, self._events)
        counts = self._counts
        counts["emitted"] += 1
        failures = 0
        for fn in callbacks:
            counts["callbacks_called"] += 1
            try:
                result = fn(payload)
                # A coroutine is the common async case; test its type before the
                # general (slower) awaitable check.
                if result is not None and (
                    type(result) is CoroutineType or inspect.isawaitable(result)
                ):
                    await result
            except Exception:
                failures += 1
                counts["callback_errors"] += 1
                logger.exception("callback %s for event %r failed", callable_name(fn), event)
        return failures

    def emit_threadsafe(
        self, loop: asyncio.AbstractEventLoop, event: str, payload: Any
    ) -> concurrent.futures.Future[int]:
        """Schedule :meth:`emit` on ``loop`` from another thread.

        The event name is checked at once, in the calling thread. The returned
        future gives the number of failed callbacks.

        Raises:
            UnknownEventError: ``event`` is not one of :attr:`events`.
        """
        self._check_event(event)
        return asyncio.run_coroutine_threadsafe(self.emit(event, payload), loop)

    def get_statistics(self) -> CallbackStatistics:
        """Counts since creation and the number of callbacks per event."""
        counts = self._counters.snapshot()
        return {
            "emitted": counts["emitted"],
            "callbacks_called": counts["callbacks_called"],
            "callback_errors": counts["callback_errors"],
            "registered": {name: len(fns) for name, fns in self._callbacks.items()},
        }

    def _check_event(self, event: str) -> None:
        if event not in self._callbacks:
            raise UnknownEventError(event, self._events)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={len(fns)}" for name, fns in self._callbacks.items())
        return f"CallbackRegistry({inner})"
