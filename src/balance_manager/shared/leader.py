"""The leader: one process per account holds the exchange connection and publishes to Redis.

:class:`SharedLeader` is a leader *candidate*. It waits for the account's
lease (``SET NX PX`` with an epoch counter, see :mod:`balance_manager.shared.lease`);
once it holds it, it builds a :class:`~balance_manager.service.manager.BalanceManager`
from fresh exchange clients (the only ones in the deployment spending the
key's nonce and call counter), republishes every value, and from then on:

* publishes every new value, hold and stream state to Redis: the manager tells
  them to an observer on its ingest path, which only appends to a queue
  (:class:`~balance_manager.shared.batch.PublishQueue`); one task sends what is
  pending as one fenced script call, so ingest never waits on Redis;
* settles reservations: the stream tap names the client order ids whose holds
  an ``executions`` event applied, and the same script that writes the new
  hold deletes their reservations (never counted twice or zero times);
* renews the lease every ``lease_ttl / 3``; when it cannot prove it still
  holds the lease (a refused write, a failed renewal past its validity), it
  stops writing at once, closes the manager and its exchange clients, and
  becomes a candidate again. Its REST reads are gated on the lease too.

Redis's TTL runs on Redis's clock; the leader proves its lease on its own
monotonic clock, conservatively (see :mod:`~balance_manager.shared.lease`).

Every write carries the stream's sequence number after the leader's last
write: a Redis back from an older copy (a restart from its RDB or AOF, a
failover to a lagging replica) refuses it as *rolled back* and voids the data
set (see :mod:`~balance_manager.shared.lua`); the leader then stops, leads
again at once under a new generation (every reservation void) and republishes
every value, so no older value is ever confirmed as current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypedDict

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.freshness import ServingMode
from balance_manager.core.models import Balance
from balance_manager.core.sources import (
    AssetNaming,
    RestSnapshot,
    RestSource,
    StreamEvent,
    StreamHolds,
    StreamLedgerUpdate,
    StreamSink,
    StreamSnapshot,
    StreamSource,
    StreamStatus,
)
from balance_manager.exceptions import LeaseLostError, SharedStateError, SourceError
from balance_manager.runtime.aio import cancel_and_wait
from balance_manager.runtime.clock import Clock, SystemClock
from balance_manager.service.manager import BalanceManager
from balance_manager.shared.batch import Payload, PublishQueue
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.history_writer import HistoryWriter
from balance_manager.shared.lease import LeaseState, LeaseTimer
from balance_manager.storage.sqlite import HistoryStore

__all__ = [
    "LEDGER_IDS_KEPT",
    "LEDGER_MAX_LENGTH",
    "LeaderStatus",
    "LeaseGatedRest",
    "SharedLeader",
    "SourceFactory",
    "TappedStream",
    "TermHook",
]

logger = logging.getLogger(__name__)

#: Makes a fresh REST client and stream (or ``None``) for each term of leadership.
SourceFactory = Callable[[], tuple[RestSource, StreamSource | None]]
#: Makes what runs beside each term's manager while it leads (entered before
#: :attr:`SharedLeader.leading` is set, exited before the manager is closed).
TermHook = Callable[[BalanceManager], AbstractAsyncContextManager[object]]

#: Rows kept in the ``ledger`` stream for the history writer (approximately).
LEDGER_MAX_LENGTH = 1_000_000
#: Ledger ids remembered to put each ledger entry on the ``ledger`` stream once.
LEDGER_IDS_KEPT = 200_000


class LeaderStatus(TypedDict):
    """What :meth:`SharedLeader.get_status` returns."""

    role: str
    state: str
    owner: str
    epoch: int | None
    generation: str | None
    lease_remaining: float
    terms: int
    published_values: int
    published_batches: int
    settled: int
    publish_errors: int
    last_error: str | None
    redis: str


class TappedStream:
    """A :class:`StreamSource` that tells ``after(event, mark)`` once the manager applied ``event``.

    Args:
        inner: the real stream.
        mark: called before each event reaches the manager (returns a position).
        after: called with the event and that position right after the manager applied it.
    """

    def __init__(
        self,
        inner: StreamSource,
        *,
        mark: Callable[[], int],
        after: Callable[[StreamEvent, int], None],
    ) -> None:
        self.inner = inner
        self._mark = mark
        self._after = after
        self.quiet_after = inner.quiet_after

    async def start(self, sink: StreamSink) -> None:
        """Start the inner stream with a sink that tells ``after`` once ``sink`` is done."""
        mark, after = self._mark, self._after

        def tapped(event: StreamEvent) -> None:
            position = mark()
            sink(event)
            try:
                after(event, position)
            except Exception:  # never let publishing break ingest
                logger.exception("shared tap failed on %s", type(event).__name__)

        await self.inner.start(tapped)

    async def stop(self) -> None:
        """Stop the inner stream."""
        await self.inner.stop()

    @property
    def connected(self) -> bool:
        """The inner stream's ``connected``."""
        return self.inner.connected

    @property
    def last_message_at(self) -> float | None:
        """The inner stream's ``last_message_at``."""
        return self.inner.last_message_at

    @property
    def failed(self) -> bool:
        """The inner stream's ``failed``."""
        return self.inner.failed

    def request_resync(self, reason: str, *, balances: bool = True, holds: bool = False) -> None:
        """Ask the inner stream for a resync."""
        self.inner.request_resync(reason, balances=balances, holds=holds)

    def get_statistics(self) -> dict[str, Any]:
        """The inner stream's counters."""
        return self.inner.get_statistics()


class LeaseGatedRest:
    """A :class:`RestSource` that reads only while ``holds()`` says the lease is proven.

    A leader paused past its lease and resumed must not spend the key's nonce
    and call counter beside the new leader: its reads fail with a
    :class:`~balance_manager.exceptions.SourceError` until it has stopped.
    """

    def __init__(self, inner: RestSource, holds: Callable[[], bool]) -> None:
        self.inner = inner
        self._holds = holds
        self.clock: Clock | None = getattr(inner, "clock", None)

    @property
    def names(self) -> AssetNaming:
        """The inner source's naming."""
        return self.inner.names

    @property
    def exchange(self) -> str:
        """The inner source's exchange."""
        return self.inner.exchange

    @property
    def account(self) -> str:
        """The inner source's account fingerprint."""
        return self.inner.account

    def _check(self, what: str) -> None:
        if not self._holds():
            raise SourceError(f"{what} refused: this process no longer holds the leader lease")

    async def fetch_balances(self) -> RestSnapshot:
        """The inner source's balances, if the lease is proven."""
        self._check("fetch_balances")
        return await self.inner.fetch_balances()

    async def load_assets(self) -> None:
        """The inner source's asset info, if the lease is proven."""
        self._check("load_assets")
        await self.inner.load_assets()

    def get_statistics(self) -> dict[str, Any]:
        """The inner source's counters."""
        return self.inner.get_statistics()

    def acquire(self) -> None:
        """One more user of the inner source."""
        self.inner.acquire()

    async def release(self) -> None:
        """One user fewer of the inner source."""
        await self.inner.release()

    async def close(self) -> None:
        """Close the inner source."""
        await self.inner.close()


class _Observer:
    """The manager's observer: appends each new value to the queue (cheap, synchronous)."""

    def __init__(self, leader: SharedLeader) -> None:
        self._leader = leader

    def observe(self, balance: Balance) -> None:
        self._leader.queue.value(balance)
        self._leader.wake.set()

    def set_mode(self, mode: ServingMode) -> None:
        del mode
        self._leader.queue.beat()  # followers hear of the new mode at once
        self._leader.wake.set()

    def close(self) -> None:
        return None


class SharedLeader:
    """A leader candidate for one account (see the module docs).

    Args:
        redis: the account's Redis connection and keys.
        sources: makes fresh exchange clients for each term of leadership.
        config: every option (``lease_ttl``, ``shared_stale_after``,
            ``shared_stream_max_len``...); the manager's history is kept in
            memory only: in shared mode history is written once, by the history
            writer, from the ``ledger`` stream.
        clock: time source for the lease, the beats and the manager.
        owner: this candidate's name in the lease (a random one by default).
        on_manager: told each new manager (after its first publish), e.g. to
            serve metrics or place orders in a demo.
        history: where a :class:`~balance_manager.shared.history_writer.HistoryWriter`
            writes the ``ledger`` stream while this candidate leads (opened by the
            caller); ``None``: no history is written by this process.
        while_leading: an async context manager of each term's manager, entered
            once its values are published and before :attr:`leading` is set,
            exited when the term ends and before the manager is closed (e.g. to
            serve a dashboard of it only while leading). Its failures are logged
            and never end the term.
    """

    def __init__(
        self,
        redis: SharedRedis,
        sources: SourceFactory,
        config: BalanceManagerConfig | None = None,
        *,
        clock: Clock | None = None,
        owner: str | None = None,
        on_manager: Callable[[BalanceManager], None] | None = None,
        history: HistoryStore | None = None,
        while_leading: TermHook | None = None,
    ) -> None:
        self.redis = redis
        self.history = history
        self.config = config or BalanceManagerConfig()
        self.clock: Clock = clock or SystemClock()
        self.owner = owner or uuid.uuid4().hex[:16]
        self.timer = LeaseTimer(self.config.lease_ttl)
        self.queue = PublishQueue()
        self.wake = asyncio.Event()
        self.manager: BalanceManager | None = None
        self.generation: str | None = None
        self.leading = asyncio.Event()
        """Set while this candidate leads (its manager is up and its values published)."""
        self.changed = asyncio.Event()
        """Set whenever :attr:`leading` changes (cleared by whoever waits on it)."""
        self._sources = sources
        self._next: tuple[RestSource, StreamSource | None] | None = None
        self._on_manager = on_manager
        self._while_leading = while_leading
        self._lost = asyncio.Event()
        self._published = asyncio.Event()
        self._terms = 0
        self._seq = 0
        """The stream's sequence number after this leader's last write (every write
        carries it: a Redis holding less lost writes, and refuses the write)."""
        self._counts = {"values": 0, "batches": 0, "settled": 0, "errors": 0}
        self._last_error: str | None = None

    # -- running ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Be a candidate until ``stop`` is set: wait for the lease, lead, again after a loss."""
        try:
            await self._run(stop)
        finally:
            unused, self._next = self._next, None
            if unused is not None:  # made for a term that never came
                rest, stream = unused
                if stream is not None:
                    await stream.stop()
                await rest.close()

    async def _run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._next is None:
                self._next = self._sources()
            try:
                acquired = await self._try_acquire()
            except SharedStateError as exc:
                self._note_error(str(exc))
                acquired = False
            if acquired:
                try:
                    await self._lead(stop)
                finally:
                    self.timer.reset()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.timer.poll_interval)

    async def _try_acquire(self) -> bool:
        sent_at = self.clock.monotonic()
        reply = await self.redis.run(
            "acquire",
            self.owner,
            self.timer.ttl_ms,
            uuid.uuid4().hex,
            self._fingerprint(),
            self._exchange_name(),
            operation="acquire the lease",
        )
        status = reply[0]
        if status == "HELD":
            return False
        if status == "ACCOUNT":
            raise SharedStateError(
                "acquire the lease",
                f"account label {self.redis.keys.account!r} is bound to another exchange "
                f"account ({reply[1]}); give this one its own shared_account",
            )
        _, epoch, token, generation, fresh, seq, why = reply
        self.timer.acquired(int(epoch), str(token), sent_at)
        self.generation = str(generation)
        self._seq = int(seq)
        self._terms += 1
        if int(fresh) and why:
            logger.warning(
                "the shared state of %s was voided (%s): new generation, any reservation "
                "from before is void, every value is republished",
                self.redis.keys.prefix,
                why,
            )
        elif int(fresh):
            logger.warning(
                "Redis had no generation for %s (a new data set, or Redis lost its data): "
                "any reservation from before is void",
                self.redis.keys.prefix,
            )
        logger.info("leading %s with epoch %s", self.redis.keys.prefix, epoch)
        return True

    def _fingerprint(self) -> str:
        return self._next[0].account if self._next is not None else ""

    def _exchange_name(self) -> str:
        return self._next[0].exchange if self._next is not None else ""

    async def _lead(self, stop: asyncio.Event) -> None:
        """One term: build the manager, republish, publish until stopped or the lease is lost."""
        self._lost.clear()
        self.queue = PublishQueue()
        renewer = asyncio.create_task(self._renew_loop(), name="shared-lease-renewal")
        publisher: asyncio.Task[None] | None = None
        beater: asyncio.Task[None] | None = None
        writer: asyncio.Task[None] | None = None
        manager: BalanceManager | None = None
        term = contextlib.AsyncExitStack()
        try:
            rest, stream = self._next or self._sources()
            self._next = None
            gated = LeaseGatedRest(rest, lambda: self.timer.holds(self.clock.monotonic()))
            tapped = (
                TappedStream(stream, mark=self.queue.mark, after=self._after_event)
                if stream is not None
                else None
            )
            config = self.config.replace(history_db_path=None, metrics_enabled=False)
            manager = BalanceManager(tapped, gated, config, clock=self.clock)
            self.manager = manager
            starting = asyncio.ensure_future(manager.initialize())
            lost = asyncio.ensure_future(self._lost.wait())
            done, _ = await asyncio.wait({starting, lost}, return_when=asyncio.FIRST_COMPLETED)
            if starting not in done:
                starting.cancel()
                with contextlib.suppress(BaseException):
                    await starting
                return
            lost.cancel()
            starting.result()
            manager.add_observer(_Observer(self))
            self.queue.reset(
                manager.sync_view().get_all_balances(),
                f"leader {self.owner} took the lease with epoch {self.timer.epoch}",
            )
            self.queue.beat()
            self.wake.set()
            publisher = asyncio.create_task(self._publish_loop(), name="shared-publisher")
            beater = asyncio.create_task(self._beat_loop(), name="shared-beats")
            if self.history is not None:
                history_writer = HistoryWriter(
                    self.redis,
                    self.history,
                    consumer=self.owner,
                    claim_idle=max(1.0, self.config.lease_ttl),
                )
                writer = asyncio.create_task(
                    history_writer.run(asyncio.Event()), name="shared-history-writer"
                )
            if await self._first_publish():
                await self._enter_term(term, manager)
                self.leading.set()
                self.changed.set()
                if self._on_manager is not None:
                    self._on_manager(manager)
            stopping = asyncio.ensure_future(stop.wait())
            lost = asyncio.ensure_future(self._lost.wait())
            await asyncio.wait({stopping, lost}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            lost.cancel()
            if stop.is_set() and not self._lost.is_set():
                await self._final_flush()
        finally:
            if self.leading.is_set():
                self.leading.clear()
                self.changed.set()
            for task in (writer, beater, publisher, renewer):
                await cancel_and_wait(task)
            try:
                await term.aclose()
            except Exception:  # what ran beside the term must not keep the manager open
                logger.exception("shared: ending what ran while leading failed")
            if manager is not None:
                self.manager = None
                await manager.close()  # closes the stream and releases the REST client
            if stop.is_set() and self.timer.state is LeaseState.LEADING:
                with contextlib.suppress(SharedStateError):
                    await self.redis.run("resign", str(self.timer.token), operation="resign")
            if self.timer.state is LeaseState.LOST:
                logger.warning("stopped leading %s (lease lost)", self.redis.keys.prefix)

    async def _enter_term(self, term: contextlib.AsyncExitStack, manager: BalanceManager) -> None:
        """Enter ``while_leading`` for this term's manager; a failure is logged, not raised."""
        if self._while_leading is None:
            return
        try:
            await term.enter_async_context(self._while_leading(manager))
        except Exception:
            logger.exception("shared: starting what runs while leading failed")

    async def _first_publish(self) -> bool:
        """Wait until the republish went through (or the lease was lost)."""
        self._published.clear()
        published = asyncio.ensure_future(self._published.wait())
        lost = asyncio.ensure_future(self._lost.wait())
        await asyncio.wait({published, lost}, return_when=asyncio.FIRST_COMPLETED)
        published.cancel()
        lost.cancel()
        return not self._lost.is_set()

    # -- the lease --------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        timer, clock = self.timer, self.clock
        while True:
            now = clock.monotonic()
            if not timer.holds(now):
                self._lose("the lease could not be renewed in time")
                return
            wait = min(timer.next_renewal(now), timer.remaining(now))
            if wait > 0:
                await clock.sleep(wait)
                continue
            sent_at = clock.monotonic()
            try:
                reply = await self.redis.run(
                    "renew",
                    str(timer.token),
                    timer.ttl_ms,
                    str(self.generation),
                    self._seq,
                    operation="renew the lease",
                )
            except SharedStateError as exc:
                self._note_error(str(exc))
                timer.renew_failed(clock.monotonic())
                continue
            if reply[0] == "OK":
                timer.renewed(sent_at)
            else:
                self._lose(f"renewal refused: {_refusal(reply)}")
                return

    def _lose(self, reason: str) -> None:
        if self._lost.is_set():
            return
        logger.warning(
            "lease of epoch %s on %s lost: %s; stopping",
            self.timer.epoch,
            self.redis.keys.prefix,
            reason,
        )
        self._note_error(str(LeaseLostError("lead", self.timer.epoch or 0, reason)))
        self.timer.lost()
        self._lost.set()
        self.wake.set()

    # -- publishing -----------------------------------------------------------------------

    def _after_event(self, event: StreamEvent, mark: int) -> None:
        """The manager applied ``event``: tag what it made, settle, tell followers."""
        queue = self.queue
        if type(event) is StreamLedgerUpdate:
            if not queue.tag(mark, kind="update", ledger_id=event.ledger_id, assets=(event.asset,)):
                manager = self.manager
                held = manager.sync_view().get_balance(event.asset) if manager else None
                if held is not None:
                    queue.history_row(held, event.ledger_id)
        elif isinstance(event, StreamHolds):
            queue.tag(mark, kind="hold")
            queue.settle(event.orders | event.closed)
        elif isinstance(event, StreamSnapshot):
            # Values the snapshot confirmed without changing an amount are held anew
            # (source websocket, received now) but not observed: publish them too.
            changed = queue.assets_since(mark)
            manager = self.manager
            if manager is not None:
                for balance in manager.sync_view().get_all_balances().values():
                    if balance.asset not in changed:
                        queue.value(balance)
            queue.tag(mark, kind="snapshot")
        elif isinstance(event, StreamStatus):
            queue.connection(
                {
                    "state": event.state.value,
                    "reason": event.reason,
                    "system": event.system,
                    "holds_live": event.holds_live,
                }
            )
        self.wake.set()

    async def _beat_loop(self) -> None:
        interval = self.config.shared_stale_after / 4
        while True:
            await self.clock.sleep(interval)
            self.queue.beat()
            self.wake.set()

    def _confirmed_age(self, manager: BalanceManager) -> float | None:
        if manager.serving_mode is ServingMode.CACHE:
            return None
        return manager.confirmed_age()

    async def _publish_loop(self) -> None:
        pending: tuple[Payload, float] | None = None
        while not self._lost.is_set():
            if pending is None:
                await self.wake.wait()
                self.wake.clear()
                manager = self.manager
                if manager is None or self._lost.is_set():
                    return
                payload = self.queue.take(
                    age_of=manager.age_of,
                    confirmed_age=self._confirmed_age(manager),
                    mode=manager.serving_mode.value,
                )
                pending = (payload, self.clock.monotonic())
            payload, taken_at = pending
            if not self.timer.holds(self.clock.monotonic()):
                self._lose("the lease is no longer proven")
                return
            late = max(0, round((self.clock.monotonic() - taken_at) * 1000))
            try:
                reply = await self._send(payload, late)
            except SharedStateError as exc:
                self._counts["errors"] += 1
                self._note_error(str(exc))
                await self.clock.sleep(min(0.05, self.timer.ttl / 20))
                continue
            if reply[0] != "OK":
                self._lose(f"write refused: {_refusal(reply)}")
                return
            self._seq = max(self._seq, int(reply[1]))
            pending = None
            self._published.set()
            self._counts["values"] += payload.values
            self._counts["batches"] += 1
            self._counts["settled"] += int(reply[3])

    async def _send(self, payload: Payload, late_ms: int) -> Any:
        return await self.redis.run(
            "publish",
            str(self.timer.token),
            str(self.generation),
            payload.json,
            self.config.shared_stream_max_len,
            LEDGER_MAX_LENGTH,
            LEDGER_IDS_KEPT,
            late_ms,
            self._seq,
            operation="publish",
        )

    async def _final_flush(self) -> None:
        """A clean stop: publish what is pending once more (best effort)."""
        manager = self.manager
        if manager is None or not self.timer.holds(self.clock.monotonic()):
            return
        if self.queue.has_work:
            payload = self.queue.take(
                age_of=manager.age_of,
                confirmed_age=self._confirmed_age(manager),
                mode=manager.serving_mode.value,
            )
            with contextlib.suppress(SharedStateError):
                await self._send(payload, 0)

    # -- status ---------------------------------------------------------------------------

    def _note_error(self, message: str) -> None:
        self._last_error = message

    def get_status(self) -> LeaderStatus:
        """Where this candidate stands: lease, epoch, what it published."""
        return {
            "role": "leader" if self.leading.is_set() else "candidate",
            "state": self.timer.state.value,
            "owner": self.owner,
            "epoch": self.timer.epoch,
            "generation": self.generation,
            "lease_remaining": self.timer.remaining(self.clock.monotonic()),
            "terms": self._terms,
            "published_values": self._counts["values"],
            "published_batches": self._counts["batches"],
            "settled": self._counts["settled"],
            "publish_errors": self._counts["errors"],
            "last_error": self._last_error,
            "redis": self.redis.shown_url,
        }

    def statistics(self) -> Mapping[str, int]:
        """Counters: values and batches published, reservations settled, errors."""
        return dict(self._counts)

    def __repr__(self) -> str:
        return (
            f"SharedLeader({self.redis.keys.prefix}, owner={self.owner}, "
            f"state={self.timer.state.value}, epoch={self.timer.epoch})"
        )


def _refusal(reply: Any) -> str:
    """Why a leader write was refused, as the script said."""
    if reply[0] == "ROLLEDBACK":
        return f"Redis rolled back, shared state voided: {reply[1]}"
    return str(reply[1])
