"""A follower: the manager's read API in any process or machine, fed by the leader through Redis.

:class:`SharedFollower` keeps a local mirror of the account's balances. It
loads the whole account at once (one script: values, confirmations and the
stream position at one instant), then follows the ``events`` stream with a
blocking ``XREAD`` from that position: updates arrive by push, in order, each
with a sequence number. A gap (entries trimmed while it was away), a reset (a
new leader republished) or a new generation (Redis lost its data) makes it
reload the whole account; a new generation is also told to callbacks as a
``connection_state`` with state ``reset``. A sequence number going back (Redis
returned to an older copy of its data) makes it reload too, and a load from a
Redis restarted since the leader last wrote takes nothing as current: the
follower keeps what it had, with the times it had, or serves what it loaded as
``cache`` until the leader has republished under a new generation.

**Staleness is measured on Redis's clock.** Each value carries the Redis time
(ms) up to which the leader knew it current; the leader's beats (every
``shared_stale_after / 4``) confirm every value up to a later Redis time, in
stream order. The follower maps Redis's clock onto its own monotonic clock
with one ``TIME`` call now and then, erring late (the time the reply took is
counted as elapsed), so an age is never under-estimated and no cross-machine
clock skew enters. A value older than ``shared_stale_after`` is served with
source ``cache`` (stale), never as fresh; ``max_age`` works as the manager's:
the value must have been known current no earlier than ``max_age`` seconds
before the call, else the follower reloads from Redis once and, if still too
old, raises :class:`~balance_manager.exceptions.StaleBalanceError`.

When Redis cannot be reached the mirror keeps serving, and its values turn
stale by the same clock (nothing confirms them any more). A follower never
writes history and never talks to the exchange.
"""

from __future__ import annotations

import asyncio
import logging
import math
from decimal import Decimal
from types import TracebackType
from typing import Any, TypedDict

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.changes import ChangeDetector
from balance_manager.core.freshness import ServingMode
from balance_manager.core.models import Balance, BalanceChange, Source, check_asset_name
from balance_manager.core.sources import AssetNaming, PlainNames
from balance_manager.core.validation.validator import BalanceValidator
from balance_manager.exceptions import (
    ConfigError,
    ProtocolError,
    SharedStateError,
    StaleBalanceError,
)
from balance_manager.runtime.aio import cancel_and_wait
from balance_manager.runtime.clock import Clock, SystemClock
from balance_manager.service.dispatch import Callback, EventDispatcher
from balance_manager.service.status import EVENTS, ConnectionState, EventName, SourceChanged
from balance_manager.shared.codec import (
    BeatEntry,
    ConnectionEntry,
    ResetEntry,
    StreamEntry,
    ValueEntry,
    decode_balance,
    parse_entry,
    text,
)
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.reservations import Reservations

__all__ = ["FollowerStatus", "SharedFollower", "SharedSyncView"]

logger = logging.getLogger(__name__)

#: Seconds between two readings of Redis's clock.
TIME_EVERY = 2.0


class FollowerStatus(TypedDict):
    """What :meth:`SharedFollower.get_status` returns."""

    initialized: bool
    role: str
    exchange: str
    account: str
    source: str
    redis: str
    redis_connected: bool
    last_error: str | None
    leader_epoch: int | None
    generation: str | None
    leader_mode: str | None
    confirmed_age: float | None
    stale_after: float
    tracked_assets: int
    assets: list[str]
    entries: int
    resyncs: int


def _pairs(flat: list[Any]) -> dict[str, str]:
    """``HGETALL``'s flat list as a dict of text."""
    return {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


class SharedFollower:
    """The shared balances of one account, read like a :class:`BalanceManager`.

    Args:
        redis: the account's Redis connection and keys.
        config: ``shared_stale_after``, ``redis_timeout``, thresholds, validation...
        names: asset naming (``XBT`` → ``BTC``); plain upper-casing by default.
        clock: time source (monotonic: ages; the follower never trusts its wall clock).

    Use it as an async context manager, or :meth:`initialize` and :meth:`close`.
    """

    def __init__(
        self,
        redis: SharedRedis,
        config: BalanceManagerConfig | None = None,
        *,
        names: AssetNaming | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.redis = redis
        self.config = config or BalanceManagerConfig()
        self.names: AssetNaming = names or PlainNames()
        self.clock: Clock = clock or SystemClock()
        self.stale_after = self.config.shared_stale_after
        self.exchange = "unknown"
        """The leader's exchange (``kraken``, ``simulator``), as it published it."""
        self.account = ""
        """The exchange account's fingerprint, as the leader published it."""
        self.validator: BalanceValidator | None = (
            BalanceValidator.from_config(self.config) if self.config.enable_validation else None
        )
        self.reservations = Reservations(redis, self.config, names=self.names)
        """Fund reservations of this account (same Redis connection)."""
        self._changes = ChangeDetector.from_config(self.config)
        self._events = EventDispatcher(EVENTS)
        self._mirror: dict[str, Balance] = {}
        self._known: dict[str, int] = {}
        self._confirmed: int | None = None
        self._generation: str | None = None
        self._epoch: int | None = None
        self._leader_mode: str | None = None
        self._seq = 0
        self._position = "0-0"
        self._redis_ms: int | None = None
        self._redis_at = 0.0
        self._time_read_at = -math.inf
        self._connected = False
        self._last_error: str | None = None
        self._mode = ServingMode.CACHE
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._initialized = False
        self._closed = False
        self._entries = 0
        self._resyncs = 0

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> SharedFollower:
        await self.initialize()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def initialize(self) -> None:
        """Load the account from Redis and start following its updates.

        Raises:
            SharedStateError: Redis could not be reached.
        """
        if self._initialized:
            return
        if self._closed:
            raise RuntimeError("this SharedFollower was closed; make a new one")
        await self._resync("start")
        self._initialized = True
        self._task = asyncio.create_task(self._follow(), name="shared-follower")

    async def close(self) -> None:
        """Stop following, deliver pending events, close the Redis connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await cancel_and_wait(self._task)
        self._task = None
        await self._events.aclose()
        await self.redis.close()

    # -- Redis's clock ---------------------------------------------------------------------

    async def _read_time(self) -> None:
        sent = self.clock.monotonic()
        self._redis_ms = await self.redis.time_ms()
        self._redis_at = sent  # counts the reply's travel as elapsed: never too young
        self._time_read_at = sent

    def redis_now_ms(self) -> float | None:
        """Redis's clock now (ms) estimated on ours, erring late; ``None`` before any reading."""
        if self._redis_ms is None:
            return None
        return self._redis_ms + (self.clock.monotonic() - self._redis_at) * 1000.0

    # -- loading and following ---------------------------------------------------------------

    async def _resync(self, reason: str) -> None:
        """Reload every value, confirmation and the stream position at one instant."""
        sent = self.clock.monotonic()
        reply = await self.redis.run("snapshot", operation="load the shared balances")
        generation, meta_flat, balances_flat, known_flat, last_id, now_ms, doubt = reply
        async with self._lock:
            self._redis_ms, self._redis_at, self._time_read_at = int(now_ms), sent, sent
            meta = _pairs(meta_flat)
            known = {asset: int(ms) for asset, ms in _pairs(known_flat).items()}
            mirror: dict[str, Balance] = {}
            for asset, raw in _pairs(balances_flat).items():
                try:
                    mirror[asset] = decode_balance(raw)
                except ProtocolError as exc:
                    logger.error("ignoring a bad stored value of %s: %s", asset, exc)
            old_generation = self._generation
            generation = text(generation) or None
            doubt = text(doubt)
            old = self._mirror
            confirmed = meta.get("confirmed")
            confirmed_ms = int(confirmed) if confirmed else None
            if doubt:
                # Redis restarted from an older copy (or failed over) since the leader
                # last wrote: what it holds may be older than what was published, and
                # its times would pass it off as current. Keep what this follower had
                # (with the times it had), or take the values as known current never.
                logger.warning("shared balances not taken as current: %s", doubt)
                if old:
                    mirror, known, confirmed_ms = dict(old), dict(self._known), self._confirmed
                else:
                    known, confirmed_ms = {}, None
            elif generation is None and old:
                # Redis is empty (restarted without its data, no leader yet): keep
                # the last values, which nothing confirms any more (they turn stale).
                mirror, known = dict(old), dict(self._known)
            elif generation is None:
                known, confirmed_ms = {}, None  # no generation: nothing in it is current
            self._mirror, self._known = mirror, known
            self._confirmed = confirmed_ms
            self._generation = generation
            self._epoch = int(meta["epoch"]) if meta.get("epoch") else None
            self._leader_mode = meta.get("mode") or None
            self._seq = int(meta.get("seq") or 0)
            self._position = text(last_id) or "0-0"
            self.exchange = meta.get("exchange") or self.exchange
            self.account = meta.get("fingerprint") or self.account
            self._resyncs += 1
            self._connected = True
        if old_generation is not None and generation != old_generation:
            logger.warning(
                "new generation (Redis lost its data or went back to an older copy): "
                "shared state reloaded"
            )
            self._tell_connection(
                "reset",
                "Redis lost its data or went back to an older copy: reservations void, "
                "state reloaded",
            )
        for asset, value in mirror.items():
            previous = old.get(asset)
            if reason != "start" and (previous is None or previous != value):
                self._publish_change(value, previous, "snapshot", None)
        self._update_mode()

    async def _follow(self) -> None:
        """Follow the stream until closed; on any trouble, reload and go on."""
        delay = 0.05
        block_ms = max(10, int(self.redis.timeout * 500))
        while not self._closed:
            try:
                if self.clock.monotonic() - self._time_read_at >= TIME_EVERY:
                    await self._read_time()
                reply = await self.redis.client.xread(
                    {self.redis.keys.key("events"): self._position}, count=1000, block=block_ms
                )
                if not self._connected:
                    await self._resync("reconnected")
                else:
                    await self._apply_reply(reply)
                delay = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down, or a bug: never stop following
                error = exc if isinstance(exc, SharedStateError) else self.redis.error("XREAD", exc)
                if self._connected:
                    logger.warning("shared balances: %s", error)
                    self._tell_connection("disconnected", str(error))
                self._connected = False
                self._last_error = str(error)
                self._update_mode()
                await self.clock.sleep(delay)
                delay = min(1.0, delay * 2)
            self._update_mode()

    async def _apply_reply(self, reply: Any) -> None:
        for _stream, entries in reply or []:
            for stream_id, fields in entries:
                try:
                    entry = parse_entry(stream_id, fields)
                except ProtocolError as exc:
                    logger.error("skipping a stream entry: %s", exc)
                    self._position = text(stream_id)
                    continue
                if not await self._apply(entry):
                    return  # reloaded: the rest of this reply is old

    async def _apply(self, entry: StreamEntry) -> bool:
        """Apply one entry in order; returns False when it made the follower reload instead."""
        if entry.generation != self._generation:
            await self._resync("new generation")
            return False
        if entry.seq <= self._seq:
            if _stream_order(entry.stream_id) <= _stream_order(self._position):
                return True  # already applied (a reload overlapped)
            # A new entry numbered as an old one: Redis went back to an older copy.
            logger.warning(
                "stream sequence went back (%s after %s): reloading", entry.seq, self._seq
            )
            await self._resync("sequence went back")
            return False
        if entry.seq != self._seq + 1:
            logger.warning("stream gap (%s after %s): reloading", entry.seq, self._seq)
            await self._resync("gap")
            return False
        if isinstance(entry, ResetEntry):
            await self._resync(entry.reason or "reset")
            return False
        self._seq = entry.seq
        self._position = entry.stream_id
        self._epoch = entry.epoch
        self._entries += 1
        if isinstance(entry, ValueEntry):
            value = entry.balance
            old = self._mirror.get(value.asset)
            self._mirror[value.asset] = value
            self._known[value.asset] = entry.known_ms
            self._publish_change(value, old, entry.kind, entry.ledger_id)
        elif isinstance(entry, BeatEntry):
            self._leader_mode = entry.mode
            if entry.confirmed_ms is not None and (
                self._confirmed is None or entry.confirmed_ms > self._confirmed
            ):
                self._confirmed = entry.confirmed_ms
        elif isinstance(entry, ConnectionEntry):
            payload: ConnectionState = {
                "state": str(entry.payload.get("state", "")),
                "reason": str(entry.payload.get("reason", "")),
                "system": entry.payload.get("system"),
                "holds_live": bool(entry.payload.get("holds_live", False)),
            }
            self._events.publish("connection_state", payload)
        return True

    def _publish_change(
        self, new: Balance, old: Balance | None, kind: str, ledger_id: str | None
    ) -> None:
        if old is not None and old.balance == new.balance and old.free == new.free:
            return
        if self.validator is not None:
            result = self.validator.validate_balance(new)
            if result.issues:
                self._events.publish("validation_failed", result)
        if old is None or old.balance != new.balance:
            significant = self._changes.is_significant(old.balance if old else None, new.balance)
        else:
            significant = self._changes.is_significant(old.free, new.free)
        change = BalanceChange(
            new=new, old=old, significant=significant, kind=kind, ledger_id=ledger_id
        )
        self._events.publish("balance_update", change)
        if significant:
            self._events.publish("balance_change", change)

    def _tell_connection(self, state: str, reason: str) -> None:
        payload: ConnectionState = {
            "state": state,
            "reason": reason,
            "system": None,
            "holds_live": False,
        }
        self._events.publish("connection_state", payload)

    # -- freshness ------------------------------------------------------------------------------

    def _known_ms(self, value: Balance) -> int | None:
        known = self._known.get(value.asset)
        confirmed = self._confirmed
        if confirmed is not None and (known is None or confirmed > known):
            return confirmed
        return known

    def age_of(self, value: Balance | None) -> float | None:
        """Seconds (Redis's clock) since ``value`` was last known current; ``None`` for no value.

        ``math.inf`` when nothing says when it was current.
        """
        if value is None:
            return None
        now = self.redis_now_ms()
        known = self._known_ms(value)
        if now is None or known is None:
            return math.inf
        return max(0.0, (now - known) / 1000.0)

    def _fresh(self, value: Balance) -> bool:
        age = self.age_of(value)
        return age is not None and age <= self.stale_after

    def _serve(self, value: Balance) -> Balance:
        # Fresh only if the value itself is and the leader's confirmations still are
        # (as the manager marks every value cache when its serving mode is cache).
        if self._fresh(value) and self._update_mode() is not ServingMode.CACHE:
            return value
        return value if value.source is Source.CACHE else value.replace(source=Source.CACHE)

    def _update_mode(self) -> ServingMode:
        now = self.redis_now_ms()
        confirmed = self._confirmed
        fresh = (
            now is not None
            and confirmed is not None
            and (now - confirmed) / 1000.0 <= self.stale_after
            and self._leader_mode in ("websocket", "rest")
        )
        mode = ServingMode(self._leader_mode) if fresh and self._leader_mode else ServingMode.CACHE
        previous = self._mode
        if mode is not previous:
            self._mode = mode
            if self._initialized and not self._closed:
                changed: SourceChanged = {"source": mode.value, "previous": previous.value}
                self._events.publish("source_changed", changed)
        return mode

    @property
    def serving_mode(self) -> ServingMode:
        """``websocket`` or ``rest`` (the leader's, confirmed within the bound), else ``cache``."""
        return self._update_mode()

    # -- reads -----------------------------------------------------------------------------------

    def canonical(self, asset: str) -> str:
        """The canonical name of any spelling (``XBT`` → ``BTC`` with Kraken's naming).

        Raises:
            UnknownAssetError: not an asset name.
        """
        return self.names.canonical(check_asset_name(asset))

    async def get_balance(self, asset: str, *, max_age: float | None = None) -> Balance | None:
        """The shared balance of ``asset``, or ``None`` for an asset not held.

        Served with its source (``websocket``, ``rest``) while it was known
        current within ``shared_stale_after`` (Redis's clock), else marked ``cache``.

        Raises:
            StaleBalanceError: ``max_age`` was given and no value that young
                could be had, even after reloading from Redis.
            ConfigError: ``max_age`` is not a number of seconds >= 0.
        """
        name = self.canonical(asset)
        if max_age is not None:
            seconds = _checked_max_age(max_age)
            value = self._mirror.get(name)
            if value is None or (self.age_of(value) or 0.0) > seconds:
                await self._reload_for_read(name, seconds)
                value = self._mirror.get(name)
                age = self.age_of(value)
                if value is not None and age is not None and age > seconds:
                    raise StaleBalanceError(name, age, seconds, self._stale_cause())
        value = self._mirror.get(name)
        return None if value is None else self._serve(value)

    async def get_all_balances(self, *, max_age: float | None = None) -> dict[str, Balance]:
        """Every shared balance (same sources and staleness rule as :meth:`get_balance`).

        Raises:
            StaleBalanceError: ``max_age`` was given and some value was older.
            ConfigError: ``max_age`` is not a number of seconds >= 0.
        """
        if max_age is not None:
            seconds = _checked_max_age(max_age)
            if not self._mirror or any(
                (self.age_of(v) or 0.0) > seconds for v in self._mirror.values()
            ):
                await self._reload_for_read("*", seconds)
                for value in self._mirror.values():
                    age = self.age_of(value)
                    if age is not None and age > seconds:
                        raise StaleBalanceError(value.asset, age, seconds, self._stale_cause())
        self._update_mode()
        return {asset: self._serve(value) for asset, value in self._mirror.copy().items()}

    async def _reload_for_read(self, name: str, max_age: float) -> None:
        try:
            await self._resync("read with max_age")
        except SharedStateError as exc:
            value = self._mirror.get(name)
            raise StaleBalanceError(name, self.age_of(value), max_age, str(exc)) from exc

    def _stale_cause(self) -> str:
        if not self._connected:
            return f"Redis unreachable: {self._last_error}"
        if self._leader_mode in (None, "cache"):
            return "no leader is confirming the values"
        return "the leader's last confirmation is that old"

    def sync_view(self) -> SharedSyncView:
        """A thread-safe, synchronous read view (for strategies running in threads)."""
        return SharedSyncView(self)

    # -- callbacks ----------------------------------------------------------------------------

    def register_callback(self, event: EventName, callback: Callback) -> None:
        """Call ``callback(payload)`` on ``event``, as :meth:`BalanceManager.register_callback`.

        Raises:
            UnknownEventError: ``event`` is not one of the manager's events.
        """
        self._events.register_callback(event, callback)

    def unregister_callback(self, event: str, callback: Callback) -> bool:
        """Remove a callback; returns whether it was registered."""
        return self._events.unregister_callback(event, callback)

    async def drain_callbacks(self) -> None:
        """Wait until every event published so far has reached its callbacks."""
        await self._events.drain()

    # -- status ------------------------------------------------------------------------------

    def get_status(self) -> FollowerStatus:
        """Where the follower stands: Redis, the leader, freshness, assets."""
        mode = self._update_mode()
        now = self.redis_now_ms()
        confirmed_age = (
            None
            if now is None or self._confirmed is None
            else max(0.0, (now - self._confirmed) / 1000.0)
        )
        return {
            "initialized": self._initialized and not self._closed,
            "role": "follower",
            "exchange": self.exchange,
            "account": self.account,
            "source": mode.value,
            "redis": self.redis.shown_url,
            "redis_connected": self._connected,
            "last_error": self._last_error,
            "leader_epoch": self._epoch,
            "generation": self._generation,
            "leader_mode": self._leader_mode,
            "confirmed_age": confirmed_age,
            "stale_after": self.stale_after,
            "tracked_assets": len(self._mirror),
            "assets": sorted(self._mirror),
            "entries": self._entries,
            "resyncs": self._resyncs,
        }

    def __repr__(self) -> str:
        return (
            f"SharedFollower({self.redis.shown_url}, {self.redis.keys.prefix}, "
            f"source={self._mode.value}, assets={len(self._mirror)})"
        )


class SharedSyncView:
    """Synchronous, thread-safe reads of a follower's mirror (values are immutable)."""

    __slots__ = ("_follower",)

    def __init__(self, follower: SharedFollower) -> None:
        self._follower = follower

    def get_balance(self, asset: str, *, max_age: float | None = None) -> Balance | None:
        """The mirrored balance of ``asset`` (marked ``cache`` when stale).

        Raises:
            StaleBalanceError: it was not known current within ``max_age`` seconds.
        """
        follower = self._follower
        name = follower.canonical(asset)
        value = follower._mirror.get(name)
        if max_age is not None:
            seconds = _checked_max_age(max_age)
            age = follower.age_of(value)
            if value is not None and age is not None and age > seconds:
                raise StaleBalanceError(name, age, seconds, "no reload from a thread")
        return None if value is None else follower._serve(value)

    def get_all_balances(self) -> dict[str, Balance]:
        """Every mirrored balance (a consistent copy)."""
        follower = self._follower
        return {a: follower._serve(v) for a, v in follower._mirror.copy().items()}


def _stream_order(stream_id: str) -> tuple[int, int]:
    """A stream entry id (``<ms>-<n>``) as a pair that sorts as Redis sorts ids."""
    ms, _, n = stream_id.partition("-")
    try:
        return int(ms), int(n or 0)
    except ValueError:
        return (0, 0)


def _checked_max_age(max_age: object) -> float:
    """``max_age`` as seconds >= 0 (NaN, negatives, bools and non-numbers refused).

    Raises:
        ConfigError: naming ``max_age`` and the value.
    """
    if isinstance(max_age, bool) or not isinstance(max_age, int | float | Decimal):
        raise ConfigError("max_age", max_age, "must be a number of seconds (int or float)")
    try:
        seconds = float(max_age)
    except OverflowError:
        seconds = math.inf
    if math.isnan(seconds) or seconds < 0:
        raise ConfigError("max_age", max_age, "must be a number of seconds >= 0")
    return seconds
