"""Tests of balance_manager.core.cache: TTL, LRU, statistics, callbacks, threads."""

from __future__ import annotations

import logging
import math
import random
import threading
from decimal import Decimal

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.cache import CACHE_EVENTS, BalanceCache, CacheEvent
from balance_manager.core.models import Balance
from balance_manager.exceptions import ConfigError, UnknownEventError


class FakeTime:
    """A monotonic time source that moves only when told to."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def cache(clock: FakeTime) -> BalanceCache[str]:
    return BalanceCache(3, 10.0, time=clock)


# -- lookups and TTL ------------------------------------------------------------


def test_get_missing_key_is_a_miss(cache: BalanceCache[str]) -> None:
    """get() of an absent key returns None and counts one miss."""
    assert cache.get("BTC") is None
    stats = cache.get_statistics()
    assert (stats["hits"], stats["misses"]) == (0, 1)


def test_put_then_get_is_a_hit(cache: BalanceCache[str]) -> None:
    """A value put is returned by get() and counted as a hit."""
    cache.put("BTC", "1.5")
    assert cache.get("BTC") == "1.5"
    stats = cache.get_statistics()
    assert (stats["hits"], stats["misses"], stats["puts"]) == (1, 0, 1)


def test_entry_expires_exactly_at_its_ttl(cache: BalanceCache[str], clock: FakeTime) -> None:
    """An entry is live just before put-time + TTL and gone (expiration + miss) at it."""
    cache.put("BTC", "1")
    clock.advance(9.999)
    assert cache.get("BTC") == "1"
    clock.advance(0.001)
    assert cache.get("BTC") is None
    stats = cache.get_statistics()
    assert (stats["hits"], stats["misses"], stats["expirations"]) == (1, 1, 1)
    assert len(cache) == 0


def test_per_entry_ttl_overrides_the_default(cache: BalanceCache[str], clock: FakeTime) -> None:
    """put(ttl=...) sets that entry's lifetime, longer or shorter than the default."""
    cache.put("short", "s", ttl=1.0)
    cache.put("long", "l", ttl=50.0)
    cache.put("default", "d")
    clock.advance(20.0)
    assert cache.get("short") is None
    assert cache.get("default") is None
    assert cache.get("long") == "l"


def test_expiry_is_rounded_up_to_the_millisecond(cache: BalanceCache[str], clock: FakeTime) -> None:
    """Expiry is put time + TTL rounded up to the next millisecond: never early, < 1 ms late."""
    clock.now = 100.0002
    cache.put("A", "a", ttl=1.0)
    cache.put("B", "b", ttl=1.0)
    assert cache.ttl_remaining("A") == pytest.approx(1.0008)
    assert cache.ttl_remaining("A") == cache.ttl_remaining("B")
    clock.now = 101.0002
    assert cache.get("A") == "a"
    clock.now = 101.001
    assert cache.get("A") is None


def test_infinite_ttl_never_expires(cache: BalanceCache[str], clock: FakeTime) -> None:
    """ttl=math.inf keeps an entry however much time passes."""
    cache.put("BTC", "1", ttl=math.inf)
    clock.advance(1e12)
    assert cache.get("BTC") == "1"
    assert cache.ttl_remaining("BTC") == math.inf


def test_get_does_not_extend_the_ttl(cache: BalanceCache[str], clock: FakeTime) -> None:
    """A hit refreshes LRU order but not the expiry time."""
    cache.put("BTC", "1")
    clock.advance(6.0)
    assert cache.get("BTC") == "1"
    clock.advance(4.0)
    assert cache.get("BTC") is None


def test_put_on_existing_key_replaces_value_and_ttl(
    cache: BalanceCache[str], clock: FakeTime
) -> None:
    """Putting an existing key replaces its value, restarts its TTL and evicts nothing."""
    cache.put("BTC", "1")
    clock.advance(8.0)
    cache.put("BTC", "2")
    clock.advance(8.0)
    assert cache.get("BTC") == "2"
    stats = cache.get_statistics()
    assert (stats["size"], stats["evictions"], stats["puts"]) == (1, 0, 2)


def test_ttl_remaining(cache: BalanceCache[str], clock: FakeTime) -> None:
    """ttl_remaining() counts down and is None for absent or expired keys."""
    assert cache.ttl_remaining("BTC") is None
    cache.put("BTC", "1")
    clock.advance(2.5)
    assert cache.ttl_remaining("BTC") == pytest.approx(7.5)
    clock.advance(7.5)
    assert cache.ttl_remaining("BTC") is None


def test_peek_neither_counts_nor_touches_lru(cache: BalanceCache[str]) -> None:
    """peek() returns the value without counting a hit and without refreshing LRU order."""
    cache.put("A", "a")
    cache.put("B", "b")
    cache.put("C", "c")
    assert cache.peek("A") == "a"
    assert cache.peek("Z") is None
    cache.put("D", "d")  # A is still the least recently used
    assert cache.peek("A") is None
    stats = cache.get_statistics()
    assert (stats["hits"], stats["misses"]) == (0, 0)


def test_peek_of_expired_entry_is_none_and_keeps_it(
    cache: BalanceCache[str], clock: FakeTime
) -> None:
    """peek() of an expired entry gives None and does not drop or count it."""
    cache.put("A", "a")
    clock.advance(10.0)
    assert cache.peek("A") is None
    assert len(cache) == 1
    assert cache.get_statistics()["expirations"] == 0


def test_contains_and_len(cache: BalanceCache[str], clock: FakeTime) -> None:
    """`in` is true only for live entries; len() counts held entries until they are dropped."""
    cache.put("A", "a", ttl=1.0)
    cache.put("B", "b")
    clock.advance(1.0)
    assert "A" not in cache
    assert "B" in cache
    assert 42 not in cache
    assert len(cache) == 2
    assert cache.expire() == 1
    assert len(cache) == 1


def test_keys_values_items_are_live_snapshots_in_lru_order(
    cache: BalanceCache[str], clock: FakeTime
) -> None:
    """keys/values/items list live entries only, least recently used first, as new lists."""
    cache.put("A", "a")
    cache.put("B", "b", ttl=1.0)
    cache.put("C", "c")
    cache.get("A")
    clock.advance(1.0)
    assert cache.keys() == ["C", "A"]
    assert cache.values() == ["c", "a"]
    items = cache.items()
    assert items == [("C", "c"), ("A", "a")]
    items.clear()
    assert cache.keys() == ["C", "A"]


# -- LRU -------------------------------------------------------------------------


def test_full_cache_evicts_least_recently_used(cache: BalanceCache[str]) -> None:
    """A new key in a full cache evicts the least recently used entry."""
    for key in "ABC":
        cache.put(key, key.lower())
    cache.get("A")  # B is now the least recently used
    cache.put("D", "d")
    assert cache.keys() == ["C", "A", "D"]
    assert cache.get_statistics()["evictions"] == 1


def test_put_refreshes_lru_order(cache: BalanceCache[str]) -> None:
    """Putting an existing key makes it the most recently used."""
    for key in "ABC":
        cache.put(key, key)
    cache.put("A", "a2")
    cache.put("D", "d")
    assert "B" not in cache
    assert cache.keys() == ["C", "A", "D"]


def test_expired_lru_entry_counts_as_expiration_not_eviction(
    cache: BalanceCache[str], clock: FakeTime
) -> None:
    """When the entry dropped for room had expired, it is an expiration, not an eviction."""
    cache.put("A", "a", ttl=1.0)
    cache.put("B", "b")
    cache.put("C", "c")
    clock.advance(1.0)
    cache.put("D", "d")
    stats = cache.get_statistics()
    assert (stats["expirations"], stats["evictions"], stats["size"]) == (1, 0, 3)


def test_refresh_replaces_held_keys_and_fills_room_but_never_evicts(
    cache: BalanceCache[str], clock: FakeTime
) -> None:
    """refresh() updates a held key (new TTL), adds while there is room, and never evicts."""
    cache.refresh("A", "a")
    cache.put("B", "b")
    cache.put("C", "c")
    clock.advance(5.0)
    cache.refresh("A", "a2")  # held: replaced, TTL renewed, most recently used
    cache.refresh("D", "d")  # full: not added, nothing evicted
    assert cache.keys() == ["B", "C", "A"]
    assert "D" not in cache
    assert cache.ttl_remaining("A") == 10.0
    stats = cache.get_statistics()
    assert (stats["evictions"], stats["puts"], stats["size"]) == (0, 4, 3)
    cache.put("D", "d")  # a read miss's put still brings a key in, evicting
    assert cache.keys() == ["C", "A", "D"]


def test_refresh_of_many_keys_into_a_small_cache_evicts_nothing(clock: FakeTime) -> None:
    """Writing 10,000 keys through refresh() into a cache of 1,000 makes no eviction at all."""
    cache: BalanceCache[int] = BalanceCache(1000, 10.0, time=clock)
    for round_ in range(3):
        for i in range(10_000):
            cache.refresh(f"K{i}", round_)
    stats = cache.get_statistics()
    assert (stats["evictions"], stats["size"]) == (0, 1000)
    assert cache.values() == [2] * 1000  # the held keys carry the newest writes


def test_size_never_exceeds_max_size(clock: FakeTime) -> None:
    """However many keys are put, size stays at max_size."""
    cache: BalanceCache[int] = BalanceCache(5, 10.0, time=clock)
    for i in range(100):
        cache.put(f"K{i}", i)
        assert len(cache) <= 5
    assert cache.keys() == [f"K{i}" for i in range(95, 100)]
    assert cache.get_statistics()["evictions"] == 95


# -- delete, clear, expire ----------------------------------------------------------


def test_delete(cache: BalanceCache[str], clock: FakeTime) -> None:
    """delete() is True for a live key, False for an absent or expired one (an expiration)."""
    cache.put("A", "a")
    cache.put("B", "b", ttl=1.0)
    assert cache.delete("A") is True
    assert cache.delete("A") is False
    clock.advance(1.0)
    assert cache.delete("B") is False
    assert len(cache) == 0
    assert cache.get_statistics()["expirations"] == 1


def test_clear_drops_entries_and_keeps_statistics(cache: BalanceCache[str]) -> None:
    """clear() empties the cache but keeps the counters."""
    cache.put("A", "a")
    cache.get("A")
    cache.clear()
    assert len(cache) == 0
    assert cache.get("A") is None
    stats = cache.get_statistics()
    assert (stats["hits"], stats["misses"], stats["puts"], stats["size"]) == (1, 1, 1, 0)


def test_reset_statistics_keeps_entries(cache: BalanceCache[str]) -> None:
    """reset_statistics() zeroes the counters but keeps entries."""
    cache.put("A", "a")
    cache.get("A")
    cache.reset_statistics()
    stats = cache.get_statistics()
    assert (stats["hits"], stats["puts"], stats["size"]) == (0, 0, 1)
    assert cache.get("A") == "a"


def test_expire_purges_only_expired(cache: BalanceCache[str], clock: FakeTime) -> None:
    """expire() drops the expired entries, returns their number and counts them."""
    cache.put("A", "a", ttl=1.0)
    cache.put("B", "b", ttl=2.0)
    cache.put("C", "c", ttl=3.0)
    clock.advance(2.0)
    assert cache.expire() == 2
    assert cache.keys() == ["C"]
    assert cache.get_statistics()["expirations"] == 2
    assert cache.expire() == 0


# -- statistics ---------------------------------------------------------------------


def test_statistics_shape_and_defaults(cache: BalanceCache[str]) -> None:
    """A fresh cache reports every counter at zero, its settings and a 0.0 hit rate."""
    assert cache.get_statistics() == {
        "hits": 0,
        "misses": 0,
        "hit_rate_percent": 0.0,
        "evictions": 0,
        "expirations": 0,
        "size": 0,
        "max_size": 3,
        "puts": 0,
        "default_ttl": 10.0,
        "callback_errors": 0,
    }


def test_hit_rate_percent_reads_like_the_seed(cache: BalanceCache[str]) -> None:
    """hit_rate_percent is a float percentage usable as the seed does (`< 50`, `:.1f`)."""
    cache.put("A", "a")
    for _ in range(2):
        cache.get("A")
    cache.get("missing")
    rate = cache.get_statistics()["hit_rate_percent"]
    assert isinstance(rate, float)
    assert f"{rate:.1f}" == "66.7"
    assert not rate < 50


def test_caches_balances(clock: FakeTime) -> None:
    """The default use: asset name to Balance, returned as the very same object."""
    cache: BalanceCache[Balance] = BalanceCache(time=clock)
    btc = Balance(asset="BTC", balance=Decimal("0.1234567890"))
    cache.put(btc.asset, btc)
    got = cache.get("BTC")
    assert got is btc
    assert got["free"] == Decimal("0.1234567890")
    assert cache.get_statistics()["max_size"] == 1000


# -- construction --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"max_size": 0}, "max_size"),
        ({"max_size": -1}, "max_size"),
        ({"max_size": True}, "max_size"),
        ({"max_size": 2.0}, "max_size"),
        ({"default_ttl": 0}, "default_ttl"),
        ({"default_ttl": -5.0}, "default_ttl"),
        ({"default_ttl": math.nan}, "default_ttl"),
        ({"default_ttl": "300"}, "default_ttl"),
    ],
)
def test_bad_settings_are_refused_by_name(
    clock: FakeTime, kwargs: dict[str, object], option: str
) -> None:
    """An invalid max_size or default_ttl raises ConfigError naming it."""
    with pytest.raises(ConfigError) as info:
        BalanceCache(time=clock, **kwargs)  # type: ignore[arg-type]  # bad on purpose
    assert info.value.option == option
    assert option in str(info.value)


@pytest.mark.parametrize("ttl", [0, -1.0, math.nan, True, "5"])
def test_bad_put_ttl_is_refused(cache: BalanceCache[str], ttl: object) -> None:
    """put() with a ttl that is not a positive number raises ConfigError naming ttl."""
    with pytest.raises(ConfigError, match="ttl"):
        cache.put("A", "a", ttl=ttl)  # type: ignore[arg-type]  # bad on purpose
    assert len(cache) == 0


def test_non_str_key_is_refused(cache: BalanceCache[str]) -> None:
    """Keys are asset names: a non-str key raises TypeError."""
    with pytest.raises(TypeError, match="str"):
        cache.put(1, "a")  # type: ignore[arg-type]  # bad on purpose


def test_from_config_uses_the_cache_options(clock: FakeTime) -> None:
    """from_config() takes cache_max_size and cache_default_ttl."""
    config = BalanceManagerConfig(cache_max_size=7, cache_default_ttl=12.5, history_db_path=None)
    cache: BalanceCache[str] = BalanceCache.from_config(config, time=clock)
    assert (cache.max_size, cache.default_ttl) == (7, 12.5)


def test_repr_shows_size_and_settings(cache: BalanceCache[str]) -> None:
    """repr() shows size, max_size and default_ttl, not the values."""
    cache.put("A", "secret-looking-value")
    text = repr(cache)
    assert text == "BalanceCache(size=1, max_size=3, default_ttl=10)"


# -- callbacks --------------------------------------------------------------------------


class Recorder:
    """Records every CacheEvent it is given."""

    def __init__(self) -> None:
        self.events: list[CacheEvent[str]] = []

    def __call__(self, event: CacheEvent[str]) -> None:
        self.events.append(event)

    def summary(self) -> list[tuple[str, str | None, str | None]]:
        return [(e.event, e.key, e.value) for e in self.events]


def listen_all(cache: BalanceCache[str]) -> Recorder:
    recorder = Recorder()
    for event in CACHE_EVENTS:
        cache.register_callback(event, recorder)
    return recorder


def test_callbacks_receive_every_event(cache: BalanceCache[str], clock: FakeTime) -> None:
    """Each operation fires its events, in order, with key and value."""
    recorder = listen_all(cache)
    cache.put("A", "a")
    cache.get("A")
    cache.get("Z")
    cache.put("B", "b", ttl=1.0)
    cache.put("C", "c")
    cache.put("D", "d")  # evicts A
    clock.advance(1.0)
    cache.get("B")  # expired
    cache.delete("C")
    cache.clear()
    assert recorder.summary() == [
        ("put", "A", "a"),
        ("hit", "A", "a"),
        ("miss", "Z", None),
        ("put", "B", "b"),
        ("put", "C", "c"),
        ("evict", "A", "a"),
        ("put", "D", "d"),
        ("expire", "B", "b"),
        ("miss", "B", None),
        ("delete", "C", "c"),
        ("clear", None, None),
    ]


def test_expire_and_full_cache_fire_expire_events(
    cache: BalanceCache[str], clock: FakeTime
) -> None:
    """expire() and room-making drops of expired entries fire `expire`, not `evict`."""
    recorder = Recorder()
    cache.register_callback("expire", recorder)
    cache.register_callback("evict", recorder)
    cache.put("A", "a", ttl=1.0)
    cache.put("B", "b", ttl=1.0)
    cache.put("C", "c")
    clock.advance(1.0)
    cache.put("D", "d")  # drops expired A
    cache.expire()  # drops expired B
    assert recorder.summary() == [("expire", "A", "a"), ("expire", "B", "b")]


def test_cache_event_is_frozen() -> None:
    """A CacheEvent cannot be changed by one callback under the feet of the next."""
    event: CacheEvent[str] = CacheEvent("put", "A", "a")
    with pytest.raises(AttributeError):
        event.key = "B"  # type: ignore[misc]  # frozen on purpose


def test_unknown_event_name_is_refused(cache: BalanceCache[str]) -> None:
    """register/unregister with an unknown event raise UnknownEventError listing known ones."""
    with pytest.raises(UnknownEventError, match="evict") as info:
        cache.register_callback("evicted", print)
    assert info.value.event == "evicted"
    assert info.value.known == CACHE_EVENTS
    with pytest.raises(UnknownEventError):
        cache.unregister_callback("nope", print)


def test_non_callable_callback_is_refused(cache: BalanceCache[str]) -> None:
    """register_callback() with something not callable raises TypeError."""
    with pytest.raises(TypeError, match="callable"):
        cache.register_callback("put", "not a function")  # type: ignore[arg-type]  # on purpose


def test_unregister_callback(cache: BalanceCache[str]) -> None:
    """unregister_callback() stops the calls and says whether the callback was there."""
    recorder = Recorder()
    cache.register_callback("put", recorder)
    cache.put("A", "a")
    assert cache.unregister_callback("put", recorder) is True
    assert cache.unregister_callback("put", recorder) is False
    cache.put("B", "b")
    assert recorder.summary() == [("put", "A", "a")]


def test_raising_callback_is_logged_counted_and_contained(
    cache: BalanceCache[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A raising callback never reaches the caller; it is logged and counted, others still run."""

    def broken(event: CacheEvent[str]) -> None:
        raise RuntimeError("boom")

    recorder = Recorder()
    cache.register_callback("put", broken)
    cache.register_callback("put", recorder)
    with caplog.at_level(logging.ERROR, logger="balance_manager.core.cache"):
        cache.put("A", "a")
    assert cache.get("A") == "a"
    assert recorder.summary() == [("put", "A", "a")]
    assert cache.get_statistics()["callback_errors"] == 1
    assert "broken" in caplog.text
    assert "boom" in caplog.text


def test_callback_may_use_the_cache(cache: BalanceCache[str]) -> None:
    """Callbacks run after the lock is released, so they can call the cache without deadlock."""
    seen: list[str | None] = []

    def on_put(event: CacheEvent[str]) -> None:
        assert event.key is not None
        seen.append(cache.get(event.key))
        if event.key == "A":
            cache.put("B", "b")

    cache.register_callback("put", on_put)
    worker = threading.Thread(target=cache.put, args=("A", "a"), daemon=True)
    worker.start()
    worker.join(timeout=10)  # a deadlock would leave the thread alive
    assert not worker.is_alive()
    assert seen == ["a", "b"]


# -- threads ------------------------------------------------------------------------------


def test_many_threads_share_one_cache_safely() -> None:
    """Threads hammering put/get/delete never raise, keep size <= max_size and exact counters."""
    lock = threading.Lock()
    ticks = [0.0]

    def time_source() -> float:
        with lock:
            ticks[0] += 0.001
            return ticks[0]

    cache: BalanceCache[int] = BalanceCache(50, 1.0, time=time_source)
    errors: list[BaseException] = []
    oversize: list[int] = []
    gets_done = [0] * 4
    puts_done = [0] * 4

    def work(index: int) -> None:
        rng = random.Random(index)
        try:
            for i in range(3000):
                key = f"K{rng.randrange(120)}"
                action = rng.random()
                if action < 0.45:
                    cache.put(key, i)
                    puts_done[index] += 1
                elif action < 0.9:
                    cache.get(key)
                    gets_done[index] += 1
                elif action < 0.97:
                    cache.delete(key)
                else:
                    cache.expire()
                size = len(cache)
                if size > 50:
                    oversize.append(size)
        except BaseException as exc:  # collected and re-checked in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert oversize == []
    stats = cache.get_statistics()
    assert stats["hits"] + stats["misses"] == sum(gets_done)
    assert stats["puts"] == sum(puts_done)
    assert stats["size"] <= 50


# -- model-based state machine ----------------------------------------------------------------

KEYS = st.sampled_from(["A", "B", "C", "D", "E"])


class CacheMachine(RuleBasedStateMachine):
    """The cache against a reference model: dict + explicit LRU list + expiry times + counters."""

    DEFAULT_TTL = 2.0

    @initialize(max_size=st.integers(min_value=1, max_value=4))
    def setup(self, max_size: int) -> None:
        self.now = 0.0
        self.max_size = max_size
        self.cache: BalanceCache[int] = BalanceCache(
            max_size, self.DEFAULT_TTL, time=lambda: self.now
        )
        self.values: dict[str, int] = {}
        self.expires: dict[str, float] = {}
        self.order: list[str] = []  # least recently used first
        self.counts = dict.fromkeys(("hits", "misses", "puts", "evictions", "expirations"), 0)

    def _drop(self, key: str) -> None:
        del self.values[key]
        del self.expires[key]
        self.order.remove(key)

    def _live(self, key: str) -> bool:
        return key in self.values and self.now < self.expires[key]

    @rule(key=KEYS, value=st.integers(), ttl=st.sampled_from([None, 0.5, 1.0, 3.0]))
    def put(self, key: str, value: int, ttl: float | None) -> None:
        self.cache.put(key, value, ttl)
        if key in self.values:
            self.order.remove(key)
        else:
            while len(self.values) >= self.max_size:
                oldest = self.order[0]
                self.counts["expirations" if not self._live(oldest) else "evictions"] += 1
                self._drop(oldest)
        self.values[key] = value
        self.expires[key] = self.now + (self.DEFAULT_TTL if ttl is None else ttl)
        self.order.append(key)
        self.counts["puts"] += 1

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        got = self.cache.get(key)
        if self._live(key):
            assert got == self.values[key]
            self.counts["hits"] += 1
            self.order.remove(key)
            self.order.append(key)
        else:
            assert got is None
            if key in self.values:
                self._drop(key)
                self.counts["expirations"] += 1
            self.counts["misses"] += 1

    @rule(key=KEYS)
    def peek(self, key: str) -> None:
        expected = self.values[key] if self._live(key) else None
        assert self.cache.peek(key) == expected

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        live = self._live(key)
        held = key in self.values
        assert self.cache.delete(key) is live
        if held:
            self._drop(key)
            if not live:
                self.counts["expirations"] += 1

    @rule(seconds=st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def expire(self) -> None:
        gone = [key for key in self.order if not self._live(key)]
        assert self.cache.expire() == len(gone)
        for key in gone:
            self._drop(key)
        self.counts["expirations"] += len(gone)

    @invariant()
    def matches_model(self) -> None:
        live = [key for key in self.order if self._live(key)]
        assert self.cache.keys() == live
        assert self.cache.values() == [self.values[key] for key in live]
        assert len(self.cache) == len(self.values) <= self.max_size
        stats = self.cache.get_statistics()
        for name, expected in self.counts.items():
            assert stats[name] == expected, name  # type: ignore[literal-required]
        lookups = self.counts["hits"] + self.counts["misses"]
        expected_rate = 100.0 * self.counts["hits"] / lookups if lookups else 0.0
        assert stats["hit_rate_percent"] == pytest.approx(expected_rate)
        for key in self.values:
            remaining = self.cache.ttl_remaining(key)
            if self._live(key):
                assert remaining == pytest.approx(self.expires[key] - self.now)
            else:
                assert remaining is None


CacheMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_cache_matches_reference_model = CacheMachine.TestCase
