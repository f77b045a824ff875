"""What the reliability tests share: a manager on a simulator, and the invariants they check.

The tests run a :class:`~balance_manager.BalanceManager` against a
:class:`~balance_manager.simulator.SimulatedKraken` over real loopback sockets,
with both on one :class:`~balance_manager.testing.ManualClock`. An
:class:`Observer` watches everything a fault could break (events, circuit
breaker transitions, reconnect attempts, rate-limit answers, served values)
and its ``check_*`` methods turn the issue's acceptance list into assertions.

The configuration is the library's default (reconnect backoff, timeouts,
circuit breaker, poll interval) except for persistence, so the recovery times
the tests measure are those a user gets.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from balance_manager import (
    BalanceManager,
    BalanceManagerConfig,
    KrakenRestClient,
    KrakenWebSocketClient,
    ServingMode,
    Source,
    StaleBalanceError,
)
from balance_manager.core.breaker import BreakerState
from balance_manager.core.models import Balance, BalanceChange
from balance_manager.kraken.protocol.assets import wallet_is_tradable
from balance_manager.simulator import SimulatedKraken
from balance_manager.simulator.model.faults import FaultKind
from balance_manager.testing import ManualClock, wait_until

__all__ = [
    "MAX_CONNECTS_PER_MINUTE",
    "Observer",
    "Recovery",
    "ServedCheck",
    "build_manager",
    "converged",
    "distinct",
    "mismatches",
    "reliability_config",
    "start_streaming",
    "stored_ledger_ids",
    "tradable_path",
]

#: Reconnect attempts allowed in any 60 clock seconds. Kraken recommends two
#: quick retries, then no faster than one attempt per 5 s (docs/kraken.md,
#: 'Connection limits and reconnect pace'):
#: 2 + 60 / 5 = 14; Cloudflare bans beyond about 150 per 10 minutes.
MAX_CONNECTS_PER_MINUTE = 14

_EVENTS = ("balance_update", "balance_change", "source_changed", "connection_state")


def reliability_config(db_path: Path | None = None, **changes: object) -> BalanceManagerConfig:
    """The library's default options, with history in ``db_path`` (or in memory only)."""
    options: dict[str, object] = {"history_db_path": None if db_path is None else str(db_path)}
    options.update(changes)
    return BalanceManagerConfig.from_mapping(options)


def build_manager(
    sim: SimulatedKraken,
    clock: ManualClock,
    config: BalanceManagerConfig,
    *,
    websocket: bool = True,
    seed: int = 1,
) -> BalanceManager:
    """A manager of ``sim``'s default account; REST and WebSocket clients on ``clock``."""
    rest = KrakenRestClient(
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        base_url=sim.rest_url,
        config=config,
        clock=clock,
        rng=random.Random(seed),
    )
    ws = (
        KrakenWebSocketClient(rest_client=rest, url=sim.ws_url, rng=random.Random(seed + 1))
        if websocket
        else None
    )
    return BalanceManager(websocket_client=ws, rest_client=rest, config=config, clock=clock)


async def start_streaming(manager: BalanceManager) -> None:
    """Initialise ``manager`` and wait (bounded, real time) until it streams with live holds."""
    await manager.initialize()
    await wait_until(
        lambda: (
            manager.serving_mode is ServingMode.WEBSOCKET
            and bool(manager.get_status()["websocket"]["holds_live"])
        ),
        within=10.0,
    )


def mismatches(manager: BalanceManager, sim: SimulatedKraken) -> list[str]:
    """Every difference between the manager's view and the exchange's truth (empty: none).

    Compares ``balance``, ``hold_trade`` and ``free`` of every asset either side knows.
    """
    view = manager.sync_view().get_all_balances()
    truth = sim.balances()
    holds = sim.holds()
    problems: list[str] = []
    for asset in sorted(set(view) | set(truth)):
        held = view.get(asset)
        balance = held.balance if held is not None else Decimal(0)
        hold = held.hold_trade if held is not None else Decimal(0)
        free = held.free if held is not None else Decimal(0)
        want_balance = truth.get(asset, Decimal(0))
        want_hold = holds.get(asset, Decimal(0))
        for name, got, want in (
            ("balance", balance, want_balance),
            ("hold_trade", hold, want_hold),
            ("free", free, want_balance - want_hold),
        ):
            if got != want:
                problems.append(f"{asset}.{name}: manager {got}, exchange {want}")
    return problems


def converged(manager: BalanceManager, sim: SimulatedKraken) -> bool:
    """Whether the manager's balances, holds and free amounts all equal the exchange's."""
    return not mismatches(manager, sim)


def tradable_path(sim: SimulatedKraken) -> dict[str, list[Decimal]]:
    """Per asset, the tradable balance after each of its ledger entries, oldest first.

    Built from the exchange's ledger (each entry states its wallet's balance
    after it), so it is the exchange's own account of every value the balance took.
    """
    wallets: dict[tuple[str, str, str], Decimal] = {}
    path: dict[str, list[Decimal]] = {}
    for entry in sim.ledger():
        wallets[(entry.asset, entry.wallet_type, entry.wallet_id)] = entry.balance
        tradable = sum(
            (
                amount
                for (asset, wtype, wid), amount in wallets.items()
                if asset == entry.asset and wallet_is_tradable(wtype, wid)
            ),
            Decimal(0),
        )
        values = path.setdefault(entry.asset, [])
        if not values or values[-1] != tradable:
            values.append(tradable)
    return path


@dataclass
class Recovery:
    """How long the manager took to come back after a fault cleared.

    Attributes:
        clock_seconds: manual-clock seconds from clearing to recovered.
        real_seconds: wall-clock seconds the test spent getting there.
    """

    clock_seconds: float
    real_seconds: float


@dataclass
class ServedCheck:
    """Counts of what reads returned while a fault was active."""

    reads: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    stale_errors: int = 0
    stale_modes: list[str] = field(default_factory=list)
    fresh_answers: int = 0


class Observer:
    """Watches a manager and its simulator; its ``check_*`` methods assert the invariants.

    Args:
        manager: the manager under test (callbacks are registered on it).
        sim: the simulator it talks to (REST requests are watched on it).
        clock: the shared manual clock.
        record_updates: keep every ``balance_update`` (a long run that measures
            memory turns this off: the records would be the growth it sees).
    """

    def __init__(
        self,
        manager: BalanceManager,
        sim: SimulatedKraken,
        clock: ManualClock,
        *,
        record_updates: bool = True,
    ) -> None:
        self.manager = manager
        self.sim = sim
        self.clock = clock
        self.events: dict[str, list[Any]] = {name: [] for name in _EVENTS}
        for name in _EVENTS:
            if record_updates or name not in ("balance_update", "balance_change"):
                manager.register_callback(name, self.events[name].append)
        self.transitions: list[tuple[float, BreakerState, BreakerState]] = []
        rest = manager.rest_client
        assert isinstance(rest, KrakenRestClient)
        self.rest: KrakenRestClient = rest
        rest.breaker.on_transition(
            lambda old, new: self.transitions.append((clock.monotonic(), old, new))
        )
        self.token_requests: list[float] = []
        self.rest_requests: list[tuple[float, str]] = []
        self._unsubscribe = sim.on_request(self._on_request)
        self.served = ServedCheck()
        self._source_mark = 0
        self._timer = (clock.monotonic(), time.perf_counter())
        self._recovered: tuple[float, float] | None = None

    def mark(self) -> None:
        """Note the fault's start: :meth:`sources_seen` reports only what came after."""
        self._source_mark = len(self.events["source_changed"])

    def _on_request(self, method: str) -> None:
        now = self.clock.monotonic()
        self.rest_requests.append((now, method))
        if method == "GetWebSocketsToken":
            self.token_requests.append(now)

    def close(self) -> None:
        """Stop watching the simulator's requests."""
        self._unsubscribe()

    # -- during a fault -------------------------------------------------------------

    def check_served_values(self) -> None:
        """Every value served says its source and age; cache-served ones say ``cache``."""
        manager = self.manager
        mode = manager.serving_mode
        for asset, value in manager.sync_view().get_all_balances().items():
            self.served.reads += 1
            source = value.source.value
            self.served.by_source[source] = self.served.by_source.get(source, 0) + 1
            assert isinstance(value.source, Source), asset
            age = manager.age_of(value)
            assert age is not None, asset
            assert age >= 0, (asset, age)
            if mode is ServingMode.CACHE:
                assert value.source is Source.CACHE, (asset, value.source)

    async def check_max_age(self, asset: str, max_age: float) -> Balance | None:
        """``get_balance(max_age=...)`` gives a value that young or raises, never a stale one.

        Drives the clock meanwhile, since a forced refresh may wait out retries.
        """
        manager = self.manager
        task = asyncio.ensure_future(manager.get_balance(asset, max_age=max_age))
        while not task.done():
            await asyncio.sleep(0.002)
            if not task.done():
                self.clock.advance(0.5)
        refused: StaleBalanceError | None = None
        value: Balance | None = None
        try:
            value = await asyncio.wait_for(task, timeout=5.0)
        except StaleBalanceError as error:
            self.served.stale_errors += 1
            self.served.stale_modes.append(manager.serving_mode.value)
            refused = error
        if refused is not None:
            # The error names the asset and the limit asked for.
            assert refused.asset == manager.canonical(asset)
            assert refused.asset in str(refused)
            assert f"max_age={max_age:g}" in str(refused)
            return None
        self.served.fresh_answers += 1
        assert value is not None
        age = manager.age_of(value)
        assert age is not None, asset
        # Young enough, whatever its source says (a value the stream delivered a
        # moment ago is young even while no source counts as live: "cache").
        assert age <= max_age, (asset, age, max_age)
        return value

    # -- after the fault -------------------------------------------------------------

    def start_timer(self) -> None:
        """Start measuring recovery from now (the moment the fault stops acting)."""
        self._timer = (self.clock.monotonic(), time.perf_counter())
        self._recovered = None

    def recovered(self, *, stream: bool = True) -> bool:
        """Whether the manager equals the exchange (and streams, if ``stream``) right now."""
        manager = self.manager
        if stream and manager.serving_mode is not ServingMode.WEBSOCKET:
            return False
        return converged(manager, self.sim)

    async def step(self, seconds: float = 0.5, *, stream: bool = True) -> None:
        """Advance the clock, let loopback I/O run, check served values, note recovery."""
        self.clock.advance(seconds)
        for _ in range(3):
            await asyncio.sleep(0.002)
            for _ in range(4):
                await asyncio.sleep(0)
        self.check_served_values()
        if self.recovered(stream=stream):
            if self._recovered is None:
                self._recovered = (self.clock.monotonic(), time.perf_counter())
        else:
            self._recovered = None

    async def recover(self, *, within: float, step: float = 0.5, stream: bool = True) -> Recovery:
        """Drive the clock until the manager equals the exchange (and streams, if ``stream``).

        Returns the time from :meth:`start_timer` to the first moment from which
        the manager stayed recovered.

        Raises:
            AssertionError: not recovered within ``within`` clock seconds of now.
        """
        moved = 0.0
        await asyncio.sleep(0.005)
        while self._recovered is None or not self.recovered(stream=stream):
            assert moved < within, (
                f"not recovered within {within:g} clock s: mode={self.manager.serving_mode}, "
                f"{mismatches(self.manager, self.sim)[:4]}"
            )
            await self.step(step, stream=stream)
            moved += step
        clock_start, real_start = self._timer
        clock_done, real_done = self._recovered
        return Recovery(clock_done - clock_start, real_done - real_start)

    def check_history(self, *, across_sources: bool = True) -> int:
        """History holds each value once, in the exchange's order, ending at the truth.

        For every asset the manager recorded, the recorded balances after the
        first one form an ordered subsequence of the balances the exchange's
        ledger went through (values the manager never saw, because they
        happened during an outage, may be missing; none may be invented,
        repeated or out of order), and the last one is the exchange's balance.

        With ``across_sources=False`` the order is checked within each source
        (the WebSocket's values among themselves, REST's among themselves):
        the two have no common clock, and a snapshot delayed in flight can be
        older than a REST read that arrived before it (see docs/reliability.md).

        Returns:
            How many recorded values are out of order across sources (0 when
            ``across_sources``, which fails on the first).
        """
        manager, sim = self.manager, self.sim
        truth = sim.balances()
        path = tradable_path(sim)
        crossings = 0
        for asset in manager.history.assets():
            entries = manager.history.get_asset_history(asset)
            recorded = [entry.balance for entry in entries]
            assert recorded, asset
            for before, after in itertools.pairwise(recorded):
                assert before != after, f"{asset}: value recorded twice in a row: {recorded}"
            assert recorded[-1] == truth.get(asset, Decimal(0)), (asset, recorded, truth)
            groups = [list(enumerate(recorded))[1:]]
            if not across_sources:
                crossings += _out_of_order(recorded[1:], path.get(asset, []))
                groups = [
                    [(i, e.balance) for i, e in enumerate(entries) if i and e.source is source]
                    for source in {e.source for e in entries}
                ]
            for group in groups:
                exchange = iter(path.get(asset, []))
                for index, value in group:
                    assert any(value == step for step in exchange), (
                        f"{asset}: recorded value #{index} {value} is not next in the exchange's "
                        f"ledger; recorded around it: {recorded[max(0, index - 4) : index + 3]}"
                    )
        return crossings

    def ledger_ids(self) -> list[str]:
        """Ledger ids of the ``balance_update`` events, in order."""
        return [
            change.ledger_id
            for change in self.events["balance_update"]
            if isinstance(change, BalanceChange) and change.ledger_id is not None
        ]

    def check_events(self) -> None:
        """Each event fired once per change, and the sequences are consistent.

        * ``balance_update``: every event is a real change (new differs from
          old), each asset's events chain (an event's old value is the
          previous event's new value), and a ledger entry is announced once.
        * ``source_changed``: every event changes the source, and each one's
          ``previous`` is the source the one before announced.
        * ``connection_state``: no payload is announced twice in a row.
        """
        last_new: dict[str, Balance] = {}
        for change in self.events["balance_update"]:
            assert isinstance(change, BalanceChange)
            new, old = change.new, change.old
            if old is not None:
                assert (new.balance, new.hold_trade, new.earn, new.credit, new.credit_used) != (
                    old.balance,
                    old.hold_trade,
                    old.earn,
                    old.credit,
                    old.credit_used,
                ), f"balance_update without a change: {change!r}"
            previous = last_new.get(new.asset)
            if previous is not None:
                assert old is not None
                assert (old.balance, old.hold_trade, old.earn) == (
                    previous.balance,
                    previous.hold_trade,
                    previous.earn,
                ), f"{new.asset}: event's old value is not the last announced value"
            last_new[new.asset] = new
        ids = self.ledger_ids()
        assert len(ids) == len(set(ids)), f"a ledger entry was announced twice: {ids}"
        sources = self.events["source_changed"]
        for index, payload in enumerate(sources):
            assert payload["source"] != payload["previous"], payload
            if index:
                assert payload["previous"] == sources[index - 1]["source"], sources
        states = self.events["connection_state"]
        for before, after in itertools.pairwise(states):
            assert before != after, f"connection_state announced twice: {after}"

    def check_rate_limit(self) -> None:
        """The exchange refused a call for the rate limit only when a test told it to."""
        injected = sum(1 for fired in self.sim.faults.history if fired.kind is FaultKind.RATE_LIMIT)
        stats = self.rest.get_statistics()
        assert stats["rate_limited"] == injected, (stats["rate_limited"], injected, stats)

    def connects_per_minute(self) -> int:
        """The most WebSocket connection attempts (token fetches) in any 60 clock seconds."""
        times = sorted(self.token_requests)
        best = 0
        start = 0
        for end, moment in enumerate(times):
            while moment - times[start] >= 60.0:
                start += 1
            best = max(best, end - start + 1)
        return best

    def check_backoff(self) -> None:
        """Reconnects follow the backoff: no more than :data:`MAX_CONNECTS_PER_MINUTE`."""
        assert self.connects_per_minute() <= MAX_CONNECTS_PER_MINUTE, self.token_requests

    def breaker_path(self) -> list[str]:
        """The circuit breaker's states, in order, starting from closed."""
        return ["closed", *(new.value for _, _, new in self.transitions)]

    def sources_seen(self) -> list[str]:
        """The serving sources announced by ``source_changed`` since :meth:`mark`, in order."""
        return [payload["source"] for payload in self.events["source_changed"][self._source_mark :]]


def _out_of_order(recorded: list[Decimal], path: list[Decimal]) -> int:
    """How many of ``recorded`` break its being an ordered subsequence of ``path``."""
    misses = 0
    position = 0
    for value in recorded:
        try:
            position = path.index(value, position) + 1
        except ValueError:
            misses += 1
    return misses


def stored_ledger_ids(db_path: Path) -> list[str]:
    """Ledger ids of every row of a history database (read with the stdlib, not our code)."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT ledger_id FROM history WHERE ledger_id IS NOT NULL"
        ).fetchall()
    finally:
        connection.close()
    return [str(row[0]) for row in rows]


def distinct(values: Iterable[str]) -> bool:
    """Whether no value repeats."""
    seen = list(values)
    return len(seen) == len(set(seen))
