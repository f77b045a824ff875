"""A TTL + LRU cache of balances, sans-I/O and thread-safe.

:class:`BalanceCache` keeps the last known value of each key (an asset name)
for a time-to-live, and drops the least recently used entry when it is full.
It never reads a clock: a monotonic ``time`` function is handed to it at
construction, so tests drive it with a fake one.

Storage. One :class:`collections.OrderedDict` maps each key to a two-field
``_Entry(value, expires_at)``; the dict's order *is* the LRU order (oldest
first), so a lookup, a touch (``move_to_end``) and an eviction (``popitem``)
are all O(1). ``_Entry`` is a ``msgspec.Struct`` with ``gc=False``: 32 bytes,
against 56 for a ``(value, expires_at)`` tuple and 48 for a ``__slots__``
class, which matters for the memory target (see ``docs/cache.md`` and
``bench/bench_cache.py``). Expiry times are rounded up to the millisecond, so
the puts of one burst (a snapshot of every asset) get equal expiry times, and
consecutive equal ones share one float object instead of 24 bytes each.

Why not ``cachetools``: per-entry TTL needs its ``TLRUCache``, which keeps
several structures per entry (its data and size dicts, an LRU order dict, a
timer item object per key and a heap ordering them). Measured with
``bench/bench_cache.py`` over 100,000 balances (cachetools 8.0.1): 218 bytes
of its own per entry, against 124 here (499 against 405 bytes per cached
``Balance``, Balance included). It also has no hooks for expiry and eviction
and no hit/miss statistics, which the original specification asks for (events and
``get_statistics()``), so we would wrap it and subclass its private methods
anyway. This whole module is shorter than that wrapper would be.

Expiry is lazy: an expired entry is dropped when it is looked up (counted as
an expiration and a miss), when it reaches the LRU end of a full cache
(counted as an expiration, not an eviction), or by :meth:`BalanceCache.expire`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Generic, TypedDict, TypeVar

import msgspec

from balance_manager.core.stats import Counters, callable_name
from balance_manager.exceptions import ConfigError, UnknownEventError

if TYPE_CHECKING:
    from balance_manager.config import BalanceManagerConfig

__all__ = ["CACHE_EVENTS", "BalanceCache", "CacheEvent", "CacheStatistics"]

logger = logging.getLogger(__name__)

V = TypeVar("V")

#: Event names accepted by :meth:`BalanceCache.register_callback`.
CACHE_EVENTS: Final = ("hit", "miss", "put", "evict", "expire", "delete", "clear")

_MS_PER_S = 1000.0

_COUNTER_NAMES = ("hits", "misses", "puts", "evictions", "expirations", "callback_errors")


class CacheStatistics(TypedDict):
    """What :meth:`BalanceCache.get_statistics` returns."""

    hits: int
    misses: int
    hit_rate_percent: float
    evictions: int
    expirations: int
    size: int
    max_size: int
    puts: int
    default_ttl: float
    callback_errors: int


class CacheEvent(msgspec.Struct, Generic[V], frozen=True):
    """What a cache callback receives.

    Attributes:
        event: one of :data:`CACHE_EVENTS`.
        key: the key concerned (``None`` for ``clear``).
        value: the value concerned (``None`` for ``miss`` and ``clear``).
    """

    event: str
    key: str | None
    value: V | None


class _Entry(msgspec.Struct, Generic[V], gc=False):
    """One cached value and its monotonic expiry time (32 bytes).

    ``gc=False``: entries are never part of a reference cycle of their own (a
    value that referred back to its cache would be; do not cache such values).
    """

    value: V
    expires_at: float


_Callback = Callable[[CacheEvent[V]], object]


class BalanceCache(Generic[V]):
    """TTL + LRU cache: ``key`` (asset name) → value (a ``Balance`` by default).

    Thread safety: one :class:`threading.Lock` guards the dict and the
    counters. It is held only for the dict operations themselves, never while
    a callback runs and never across an ``await`` (no method is a coroutine),
    so the cache is safe to share between many asyncio tasks and between
    threads, and a callback may use the cache again without deadlocking.
    Callbacks run after the lock is released, in the thread that made the
    call, in registration order. The two hot paths (:meth:`get`, and a put
    that replaces a held entry) take the lock with ``acquire()`` / ``try`` /
    ``finally: release()`` rather than ``with``: the same guarantee at about
    half the cost on CPython 3.11 (every ``get_balance`` and every streamed
    update takes one of them).

    Args:
        max_size: the most entries held; a put beyond it drops the least
            recently used entry.
        default_ttl: seconds an entry lives unless :meth:`put` says otherwise
            (``math.inf`` for never).
        time: a monotonic seconds source, e.g. ``time.monotonic`` or
            ``clock.monotonic``. The cache never reads a clock by itself.

    Raises:
        ConfigError: ``max_size`` is not a positive int or ``default_ttl`` not
            a positive number.

    Example:
        >>> now = [0.0]
        >>> cache: BalanceCache[str] = BalanceCache(2, 10.0, time=lambda: now[0])
        >>> cache.put("BTC", "1.5")
        >>> cache.get("BTC")
        '1.5'
        >>> now[0] = 10.0
        >>> cache.get("BTC") is None
        True
    """

    def __init__(
        self,
        max_size: int = 1000,
        default_ttl: float = 300.0,
        *,
        time: Callable[[], float],
    ) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size <= 0:
            raise ConfigError("max_size", max_size, "must be a positive int")
        self._max_size = max_size
        self._default_ttl = _check_ttl("default_ttl", default_ttl)
        self._time = time
        self._lock = threading.Lock()
        self._data: OrderedDict[str, _Entry[V]] = OrderedDict()
        self._counters = Counters(_COUNTER_NAMES)
        # The counters' own dict, incremented in place on the hot paths (under the lock).
        self._counts = self._counters.live
        self._callbacks: dict[str, tuple[_Callback[V], ...]] = {e: () for e in CACHE_EVENTS}
        # Events with at least one callback: the hot paths test this set and
        # build no CacheEvent at all when nobody listens.
        self._listened: frozenset[str] = frozenset()
        # The last expiry float handed out, reused by puts at the same instant.
        self._last_expiry = -math.inf

    @classmethod
    def from_config(
        cls, config: BalanceManagerConfig, *, time: Callable[[], float]
    ) -> BalanceCache[V]:
        """A cache sized by ``config.cache_max_size`` and ``config.cache_default_ttl``."""
        return cls(config.cache_max_size, config.cache_default_ttl, time=time)

    # -- properties ------------------------------------------------------------

    @property
    def max_size(self) -> int:
        """The most entries held."""
        return self._max_size

    @property
    def default_ttl(self) -> float:
        """Seconds an entry lives when :meth:`put` gives no ``ttl``."""
        return self._default_ttl

    # -- lookups -----------------------------------------------------------------

    def get(self, key: str) -> V | None:
        """The live value of ``key``, or ``None``; counts a hit or a miss.

        A hit makes ``key`` the most recently used entry. An expired entry is
        dropped and counts as an expiration and a miss.
        """
        now = self._time()
        lock = self._lock
        lock.acquire()  # not ``with``: see the class docstring
        try:
            entry = self._data.get(key)
            if entry is not None and now < entry.expires_at:
                self._data.move_to_end(key)
                self._counts["hits"] += 1
                value: V | None = entry.value
                if "hit" not in self._listened:
                    return value
                hit, expired = True, None
            else:
                if entry is not None:
                    del self._data[key]
                    self._counts["expirations"] += 1
                self._counts["misses"] += 1
                if not self._listened:
                    return None
                hit, expired, value = False, entry, None
        finally:
            lock.release()
        # Outside the lock: a callback may use the cache again.
        if hit:
            self._emit("hit", key, value)
            return value
        if expired is not None:
            self._emit("expire", key, expired.value)
        self._emit("miss", key, None)
        return None

    def peek(self, key: str) -> V | None:
        """The live value of ``key``, or ``None``, without counting or touching the LRU order."""
        now = self._time()
        with self._lock:
            entry = self._data.get(key)
        if entry is None or now >= entry.expires_at:
            return None
        return entry.value

    def ttl_remaining(self, key: str) -> float | None:
        """Seconds until ``key`` expires, or ``None`` if it is absent or expired."""
        now = self._time()
        with self._lock:
            entry = self._data.get(key)
        if entry is None or now >= entry.expires_at:
            return None
        return entry.expires_at - now

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` has a live entry (no counting, no LRU touch)."""
        return isinstance(key, str) and self.peek(key) is not None

    def __len__(self) -> int:
        """Entries held, including expired ones not dropped yet (call :meth:`expire` first)."""
        return len(self._data)

    def keys(self) -> list[str]:
        """Keys of live entries, least recently used first (a snapshot)."""
        return [key for key, _ in self.items()]

    def values(self) -> list[V]:
        """Live values, least recently used first (a snapshot)."""
        return [value for _, value in self.items()]

    def items(self) -> list[tuple[str, V]]:
        """``(key, value)`` of live entries, least recently used first (a snapshot)."""
        now = self._time()
        with self._lock:
            return [(k, e.value) for k, e in self._data.items() if now < e.expires_at]

    # -- changes -------------------------------------------------------------------

    def put(self, key: str, value: V, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (default: ``default_ttl``).

        ``key`` becomes the most recently used entry. When a new key finds the
        cache full, the least recently used entry is dropped first: an
        ``evict`` (or an ``expire`` if it had already expired).

        Raises:
            ConfigError: ``ttl`` is not a positive number.
        """
        lifetime = self._default_ttl if ttl is None else _check_ttl("ttl", ttl)
        self._store(key, value, lifetime, evict=True)

    def refresh(self, key: str, value: V) -> None:
        """Like :meth:`put` with the default TTL, but never evicts: a write, not a read.

        A held ``key`` gets ``value`` (and becomes the most recently used entry); a new
        one is added only while the cache has room. So writes of many assets (a stream
        of 10,000 assets into a cache of 1,000) keep what was *read* recently instead
        of evicting an entry on every write; a later :meth:`put` on a read miss brings
        the asset in. Nothing stale can be left behind: a key that is not added holds
        no entry at all.
        """
        self._store(key, value, self._default_ttl, evict=False)

    def _store(self, key: str, value: V, lifetime: float, *, evict: bool) -> None:
        if type(key) is not str:
            raise TypeError(f"cache keys are str (asset names), got {type(key).__name__}")
        now = self._time()
        deadline = now + lifetime
        last = self._last_expiry
        # Within the millisecond that ``last`` rounds up to: the same expiry
        # (see _expiry), without recomputing it.
        if last - 0.001 < deadline <= last and not self._listened:
            # Fast path (every streamed update): replace a held entry in place.
            lock = self._lock
            lock.acquire()
            try:
                entry = self._data.get(key)
                if entry is not None:
                    self._data.move_to_end(key)
                    entry.value = value
                    entry.expires_at = last
                    self._counts["puts"] += 1
                    return
            finally:
                lock.release()
        expires_at = _expiry(now, lifetime)
        dropped: list[tuple[str, str, V]] = []
        with self._lock:
            if expires_at == self._last_expiry:
                expires_at = self._last_expiry  # share one float object (24 bytes)
            else:
                self._last_expiry = expires_at
            data = self._data
            if key in data:
                data.move_to_end(key)
            elif not evict and len(data) >= self._max_size:
                return  # refresh(): no room, and a write never evicts
            else:
                while len(data) >= self._max_size:
                    old_key, old = data.popitem(last=False)
                    if now >= old.expires_at:
                        self._counters.incr("expirations")
                        dropped.append(("expire", old_key, old.value))
                    else:
                        self._counters.incr("evictions")
                        dropped.append(("evict", old_key, old.value))
            data[key] = _Entry(value, expires_at)
            self._counters.incr("puts")
            if not self._listened:
                return
        for event, old_key, old_value in dropped:
            self._emit(event, old_key, old_value)
        self._emit("put", key, value)

    def delete(self, key: str) -> bool:
        """Drop ``key``; ``True`` if it held a live value.

        An expired entry is dropped too, as an expiration, and gives ``False``.
        """
        now = self._time()
        with self._lock:
            entry = self._data.pop(key, None)
            if entry is None:
                return False
            live = now < entry.expires_at
            if not live:
                self._counters.incr("expirations")
        self._emit("delete" if live else "expire", key, entry.value)
        return live

    def clear(self) -> None:
        """Drop every entry (statistics are kept; see :meth:`reset_statistics`)."""
        with self._lock:
            self._data.clear()
        self._emit("clear", None, None)

    def expire(self) -> int:
        """Drop every expired entry now; returns how many were dropped (O(size))."""
        now = self._time()
        with self._lock:
            gone = [(k, e) for k, e in self._data.items() if now >= e.expires_at]
            for key, _ in gone:
                del self._data[key]
            self._counters.incr("expirations", len(gone))
        for key, entry in gone:
            self._emit("expire", key, entry.value)
        return len(gone)

    # -- statistics ----------------------------------------------------------------

    def get_statistics(self) -> CacheStatistics:
        """Counters since creation (or :meth:`reset_statistics`) and the current size.

        ``hit_rate_percent`` is ``100 * hits / (hits + misses)``, 0.0 before any lookup.
        """
        with self._lock:
            counts = self._counters.snapshot()
            size = len(self._data)
        lookups = counts["hits"] + counts["misses"]
        return {
            "hits": counts["hits"],
            "misses": counts["misses"],
            "hit_rate_percent": 100.0 * counts["hits"] / lookups if lookups else 0.0,
            "evictions": counts["evictions"],
            "expirations": counts["expirations"],
            "size": size,
            "max_size": self._max_size,
            "puts": counts["puts"],
            "default_ttl": self._default_ttl,
            "callback_errors": counts["callback_errors"],
        }

    def reset_statistics(self) -> None:
        """Set every counter back to zero (entries are kept)."""
        with self._lock:
            self._counters.reset()

    # -- callbacks -------------------------------------------------------------------

    def register_callback(self, event: str, fn: Callable[[CacheEvent[V]], object]) -> None:
        """Call ``fn(CacheEvent)`` after each ``event`` (see :data:`CACHE_EVENTS`).

        ``fn`` runs synchronously, after the cache's lock is released, in the
        thread that caused the event. If it raises, the error is logged and
        counted in ``callback_errors``; it never reaches the cache's caller.

        Raises:
            UnknownEventError: ``event`` is not one of :data:`CACHE_EVENTS`.
            TypeError: ``fn`` is not callable.
        """
        self._check_event(event)
        if not callable(fn):
            raise TypeError(f"callback must be callable, got {type(fn).__name__}")
        with self._lock:
            # Copy-on-write tuples: _emit iterates a snapshot without the lock.
            self._callbacks[event] = (*self._callbacks[event], fn)
            self._listened = frozenset(e for e, fns in self._callbacks.items() if fns)

    def unregister_callback(self, event: str, fn: Callable[[CacheEvent[V]], object]) -> bool:
        """Remove ``fn`` from ``event``; ``True`` if it was registered.

        Raises:
            UnknownEventError: ``event`` is not one of :data:`CACHE_EVENTS`.
        """
        self._check_event(event)
        with self._lock:
            fns = self._callbacks[event]
            if fn not in fns:
                return False
            index = fns.index(fn)
            self._callbacks[event] = fns[:index] + fns[index + 1 :]
            self._listened = frozenset(e for e, fns in self._callbacks.items() if fns)
            return True

    def _check_event(self, event: str) -> None:
        if event not in CACHE_EVENTS:
            raise UnknownEventError(event, CACHE_EVENTS)

    def _emit(self, event: str, key: str | None, value: V | None) -> None:
        fns = self._callbacks[event]
        if not fns:
            return
        payload: CacheEvent[V] = CacheEvent(event, key, value)
        for fn in fns:
            try:
                fn(payload)
            except Exception:
                # A broken listener must not break a balance read or write.
                logger.exception("cache callback %s failed on %r", callable_name(fn), event)
                with self._lock:
                    self._counters.incr("callback_errors")

    def __repr__(self) -> str:
        return (
            f"BalanceCache(size={len(self._data)}, max_size={self._max_size}, "
            f"default_ttl={self._default_ttl:g})"
        )


_INF = math.inf
ceil = math.ceil


def _expiry(now: float, lifetime: float) -> float:
    """``now + lifetime`` rounded up to the next millisecond (``inf`` stays ``inf``).

    Rounding *up* never shortens a TTL, and a millisecond is nothing next to
    a TTL in seconds; in exchange, every put of the same burst (a whole
    snapshot takes well under a millisecond) gets an equal expiry, which the
    cache then stores as one shared float instead of one float per entry.
    """
    deadline = now + lifetime
    if deadline == _INF:
        return deadline
    return ceil(deadline * _MS_PER_S) / _MS_PER_S


def _check_ttl(name: str, ttl: object) -> float:
    """A TTL as a positive float (``math.inf`` allowed), or :class:`ConfigError`."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise ConfigError(name, ttl, "must be a number of seconds")
    seconds = float(ttl)
    if math.isnan(seconds) or seconds <= 0:
        raise ConfigError(name, ttl, "must be > 0 seconds")
    return seconds
