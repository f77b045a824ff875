"""Named integer counters behind every ``get_statistics()``.

Each component (cache, breaker, callback registry, adapters, manager) keeps a
:class:`Counters` and copies it into its statistics dict with
:meth:`Counters.snapshot`. Counting is deliberately tiny: a dict of ints, no
locks, no timestamps, so it costs nothing on hot paths.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Counters", "callable_name"]


class Counters:
    """A set of named ``int`` counters.

    Names given at construction start at zero and always appear in
    :meth:`snapshot`; other names appear once incremented.

    Thread safety: there is one writer at a time, by contract: the event-loop
    thread, or a component that increments only while holding its own lock
    (as :class:`~balance_manager.core.cache.BalanceCache` does). Under that
    contract any other thread may read at any time: :meth:`get` is a single
    ``dict.get`` and :meth:`snapshot` a single ``dict`` copy, each done by C
    code that holds the GIL (or, without a GIL, the dict's own lock)
    throughout, so a reader never sees a torn dict, only a value that may be
    one increment behind. Two *unsynchronised* writers could lose an
    increment, because ``incr`` is a read-modify-write.

    Args:
        names: counters that exist (at zero) from the start.

    Example:
        >>> counters = Counters(["hits", "misses"])
        >>> counters.incr("hits")
        >>> counters.incr("hits", 2)
        >>> counters.snapshot()
        {'hits': 3, 'misses': 0}
    """

    __slots__ = ("_initial", "_values")

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._initial: tuple[str, ...] = tuple(names)
        self._values: dict[str, int] = dict.fromkeys(self._initial, 0)

    def incr(self, name: str, n: int = 1) -> None:
        """Add ``n`` (default 1) to the counter ``name``, creating it at zero if new."""
        values = self._values
        values[name] = values.get(name, 0) + n

    def get(self, name: str) -> int:
        """The current value of ``name`` (0 for a counter never incremented)."""
        return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter, safe to keep, change or hand to another thread."""
        return dict(self._values)

    def reset(self) -> None:
        """Set every counter back to zero (names given at construction stay present)."""
        self._values.clear()
        self._values.update(dict.fromkeys(self._initial, 0))

    @property
    def live(self) -> dict[str, int]:
        """The counters' own dict, for hot paths: ``counts["hits"] += 1`` skips a call.

        Only for names given at construction (they always exist); the same
        single-writer contract applies. The dict object never changes, even
        across :meth:`reset`.
        """
        return self._values

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value}" for name, value in self._values.items())
        return f"Counters({inner})"


def callable_name(fn: object) -> str:
    """``module.qualname`` of a callable, for the log line of a failing callback.

    Only the name is used, never ``repr(fn)``: a ``functools.partial`` would
    show its bound arguments, which could hold anything.
    """
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    module = getattr(fn, "__module__", None)
    return f"{module}.{qualname}" if module else str(qualname)
