"""The fault matrix: every fault we can name, against the simulator over loopback.

Each case starts a manager streaming from a :class:`SimulatedKraken` (both on
one manual clock, library-default options), injects one fault, makes the
account move while the fault lasts (a deposit, a withdrawal, a fill and a new
resting order), checks what is served meanwhile, clears the fault and drives
the clock until the manager equals the exchange again. Then it checks:

* balances, holds and free amounts equal the exchange's, within the case's
  bound in clock seconds (and back on the WebSocket);
* history holds each value once, in the exchange's order; each ledger entry is
  announced and stored once (the SQLite file is read back);
* during the fault every value said its source and age, and ``max_age``
  callers got a young enough value or ``StaleBalanceError``;
* the circuit breaker took the path the case expects; the exchange refused a
  call for the rate limit only when told to; reconnects stayed within the
  backoff budget;
* events fired once per change, and the serving source moved as expected.

Run with ``-s`` to print the measured recovery times (the table in
``docs/reliability.md``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio

from balance_manager import BalanceManager, KrakenRestClient, ServingMode
from balance_manager.core.models import BalanceChange
from balance_manager.exceptions import (
    ExchangeError,
    RateLimitedError,
    StaleBalanceError,
    TransportError,
)
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive, drive_until_done, wait_until

from .harness import (
    Observer,
    Recovery,
    build_manager,
    converged,
    distinct,
    mismatches,
    reliability_config,
    start_streaming,
    stored_ledger_ids,
)

pytestmark = [pytest.mark.network, pytest.mark.asyncio]

Action = Callable[[SimulatedKraken], Awaitable[None]]


async def _nothing(sim: SimulatedKraken) -> None:
    """No action."""


async def _clear_all(sim: SimulatedKraken) -> None:
    sim.faults.clear()


def _act(fn: Callable[[SimulatedKraken], object]) -> Action:
    """An action from a plain function of the simulator."""

    async def action(sim: SimulatedKraken) -> None:
        fn(sim)

    return action


def _stream_down_and(rest_fault: Callable[[SimulatedKraken], object]) -> Action:
    """Keep the stream down (subscriptions refused) and break REST ``BalanceEx``."""

    async def action(sim: SimulatedKraken) -> None:
        sim.faults.reject_token(times=None)
        rest_fault(sim)
        sim.faults.drop_websocket()

    return action


async def _maintenance_on(sim: SimulatedKraken) -> None:
    sim.faults.maintenance()


async def _maintenance_off(sim: SimulatedKraken) -> None:
    sim.faults.online()


async def _restart(sim: SimulatedKraken) -> None:
    await sim.restart()


async def _stop(sim: SimulatedKraken) -> None:
    await sim.stop()


async def _start(sim: SimulatedKraken) -> None:
    await sim.start()


@dataclass(frozen=True)
class Case:
    """One row of the fault matrix.

    Attributes:
        id: the fault's name.
        inject: starts the fault.
        clear: ends it, ``duration`` clock seconds later.
        duration: clock seconds a lasting fault lasts (0: a one-shot fault,
            over once it fired; recovery is then measured from the injection).
        falls_back: whether serving leaves the WebSocket because of the fault.
        breaker: what the circuit breaker should do: :data:`CLOSED` or :data:`OPENS`.
        bound: clock seconds after clearing within which the manager must recover.
        expected: what the manager should do (the docs table's wording).
        stream: WebSocket statistics the fault must have moved (at least these counts).
        serves: for a lasting fault, the source reads report while it lasts:
            ``cache`` (then ``max_age`` reads must be refused) or ``rest`` or
            ``websocket`` (then they must be answered).
        system: a system status the stream must have announced (``connection_state``).
    """

    id: str
    inject: Action
    clear: Action
    duration: float
    falls_back: bool
    breaker: str
    bound: float
    expected: str
    stream: dict[str, int] = field(default_factory=dict)
    serves: str | None = None
    system: str | None = None


CLOSED = "stays closed"
OPENS = "opens, probes, closes"
#: Recovery bound after a fault that opened the breaker: a failed probe doubles
#: the open period (30 s, 60 s, 120 s), so the next probe can be up to 120 s
#: away, then the reconnect backoff (at most reconnect_max_delay, 30 s).
OPEN_BOUND = 150.0

CASES = [
    Case(
        "ws_dropped",
        _act(lambda sim: sim.faults.drop_websocket()),
        _nothing,
        0.0,
        True,
        CLOSED,
        15.0,
        "REST read at once; reconnect after a quick retry (about 1 s); the new snapshot reconciles",
        {"reconnects": 1},
    ),
    Case(
        "ws_silent",
        _act(lambda sim: sim.faults.go_silent(seconds=None)),
        _clear_all,
        40.0,
        True,
        CLOSED,
        45.0,
        "watchdog closes the socket after websocket_timeout (10 s); REST polled every 5 s; "
        "reconnects with backoff (new connections stay silent: snapshot timeout)",
        {"silence_timeouts": 1},
        serves="rest",
    ),
    Case(
        "frames_delayed",
        _act(lambda sim: sim.faults.delay_frames(1.5, times=2, channel="balances")),
        _nothing,
        0.0,
        False,
        CLOSED,
        10.0,
        "values arrive 1.5 s late, ages show it; stream kept (no heartbeat missed twice)",
    ),
    Case(
        "frames_delayed_past_two_heartbeats",
        _act(lambda sim: sim.faults.delay_frames(3.0, times=2, channel="balances")),
        _nothing,
        0.0,
        True,
        CLOSED,
        10.0,
        "3 s without a frame may have lost some: REST checks, the stream resyncs",
        {"resyncs": 1},
    ),
    Case(
        "frames_delayed_beyond_timeout",
        _act(lambda sim: sim.faults.delay_frames(15.0, times=1, channel="balances")),
        _nothing,
        0.0,
        True,
        CLOSED,
        30.0,
        "a 15 s hold is silence beyond websocket_timeout: REST, reconnect, resnapshot",
        {"silence_timeouts": 1},
    ),
    Case(
        "malformed_frame",
        _act(lambda sim: sim.faults.malformed_frame(channel="balances", times=3)),
        _nothing,
        0.0,
        False,
        CLOSED,
        5.0,
        "frame rejected and counted, stream goes on",
        {"rejected": 3},
    ),
    Case(
        "skipped_sequence",
        _act(lambda sim: sim.faults.skip_sequence(channel="balances")),
        _nothing,
        0.0,
        True,
        CLOSED,
        10.0,
        "gap seen: resync (unsubscribe, subscribe, snapshot) on the same connection; REST "
        "serves meanwhile",
        {"gaps": 1, "resyncs": 1},
    ),
    Case(
        "duplicated_frames",
        _act(lambda sim: sim.faults.duplicate_frame(channel="balances", times=3)),
        _nothing,
        0.0,
        False,
        CLOSED,
        5.0,
        "repeats recognised (same sequence and ledger ids) and dropped, counted",
        {"duplicates": 3},
    ),
    Case(
        "reordered_frames",
        _act(lambda sim: sim.faults.reorder_frames(channel="balances")),
        _nothing,
        0.0,
        True,
        CLOSED,
        10.0,
        "out-of-order sequence: resync, as for a gap",
        {"gaps": 1, "resyncs": 1},
    ),
    Case(
        "executions_gap",
        _act(lambda sim: sim.faults.skip_sequence(channel="executions")),
        _nothing,
        0.0,
        True,
        CLOSED,
        10.0,
        "gap in executions: resync of executions alone (REST meanwhile); balances keep "
        "streaming, holds live again with its snapshot",
        {"gaps": 1, "resyncs": 1},
    ),
    Case(
        "token_rejected",
        _act(lambda sim: (sim.faults.reject_token(times=4), sim.faults.drop_websocket())),
        _nothing,
        0.0,
        True,
        CLOSED,
        60.0,
        "subscription refused: reconnect with a fresh token each time, with backoff",
        {"subscription_failures": 2},
    ),
    Case(
        "token_expired",
        _act(lambda sim: (sim.faults.expire_token(), sim.faults.skip_sequence(channel="balances"))),
        _nothing,
        0.0,
        True,
        CLOSED,
        30.0,
        "resubscribe (after a gap) refused, token expired: reconnect with a fresh token",
        {"subscription_failures": 1},
    ),
    Case(
        "rest_5xx",
        _stream_down_and(lambda sim: sim.faults.http_error(520, times=None)),
        _clear_all,
        90.0,
        True,
        OPENS,
        OPEN_BOUND,
        "retried, then the breaker opens; values served as cache, max_age refused; "
        "a probe after the recovery timeout closes it",
        serves="cache",
    ),
    Case(
        "rest_html",
        _stream_down_and(lambda sim: sim.faults.html_page(times=None)),
        _clear_all,
        90.0,
        True,
        OPENS,
        OPEN_BOUND,
        "an HTML page where JSON was expected is a transport error: as 5xx",
        serves="cache",
    ),
    Case(
        "rate_limit",
        _stream_down_and(lambda sim: sim.faults.rate_limit(times=2)),
        _clear_all,
        30.0,
        True,
        CLOSED,
        60.0,
        "retried once the call counter has drained; the breaker stays closed (the "
        "exchange answered)",
        serves="rest",
    ),
    Case(
        "invalid_nonce",
        _stream_down_and(lambda sim: sim.faults.invalid_nonce(times=2)),
        _clear_all,
        30.0,
        True,
        CLOSED,
        60.0,
        "retried with a fresh nonce; breaker stays closed",
        serves="rest",
    ),
    Case(
        "temporary_lockout",
        _stream_down_and(lambda sim: sim.faults.lockout(times=None)),
        _clear_all,
        60.0,
        True,
        CLOSED,
        90.0,
        "not retried; values served as cache; reconnects slowed to reconnect_max_delay; "
        "breaker closed (the exchange answered)",
        serves="cache",
    ),
    Case(
        "service_unavailable",
        _stream_down_and(lambda sim: sim.faults.service_unavailable(times=None)),
        _clear_all,
        90.0,
        True,
        OPENS,
        OPEN_BOUND,
        "retried, then the breaker opens; cache served; a probe closes it",
        serves="cache",
    ),
    Case(
        "rest_slower_than_timeout",
        _stream_down_and(lambda sim: sim.faults.slow_response(20.0, times=None)),
        _clear_all,
        120.0,
        True,
        OPENS,
        OPEN_BOUND + 60.0,
        "each call times out after rest_api_timeout (15 s); the breaker opens; a probe closes it",
        serves="cache",
    ),
    Case(
        "maintenance",
        _maintenance_on,
        _maintenance_off,
        60.0,
        False,
        CLOSED,
        5.0,
        "status pushed (connection_state with system=maintenance); balances keep streaming",
        serves="websocket",
        system="maintenance",
    ),
    Case(
        "both_sources_down",
        _stream_down_and(lambda sim: sim.faults.http_error(520, times=None)),
        _clear_all,
        90.0,
        True,
        OPENS,
        OPEN_BOUND,
        "values served as cache, max_age refused; both sources come back",
        serves="cache",
    ),
    Case(
        "simulator_restart_instant",
        _restart,
        _nothing,
        0.0,
        True,
        CLOSED,
        15.0,
        "server closes the socket (close frame); reconnect after a quick retry; state kept",
        {"reconnects": 1},
    ),
    Case(
        "simulator_restarted",
        _stop,
        _start,
        30.0,
        True,
        OPENS,
        OPEN_BOUND,
        "connections refused: cache, breaker opens; after the restart everything "
        "reconciles (state kept)",
        serves="cache",
    ),
]

#: Recovery times measured by this run (printed at the end with ``-s``).
MEASURED: dict[str, tuple[Case, Recovery]] = {}


@pytest.fixture(scope="module", autouse=True)
def _print_measured() -> object:
    """Print the measured recovery times as the docs' table once the module ran."""
    yield
    if MEASURED:
        print("\n| fault | expected behaviour | recovery (clock s) | recovery (real s) |")
        print("|---|---|---|---|")
        for name, (case, recovery) in MEASURED.items():
            print(
                f"| {name} | {case.expected} | {recovery.clock_seconds:.1f} "
                f"| {recovery.real_seconds:.2f} |"
            )


@pytest_asyncio.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimulatedKraken]:
    """A simulator on loopback, on the manual clock."""
    simulator = SimulatedKraken(clock=clock, seed=21)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


async def account_activity(sim: SimulatedKraken) -> None:
    """Move the account: a deposit, a withdrawal, a fill and a resting order."""
    sim.deposit("USD", "10.25")
    sim.withdraw("ETH", "0.5")
    refused: str | None = None
    try:
        # Crosses the market: fills at once (both legs and the fee in the ledger).
        sim.place_order("ETH/USD", "buy", "limit", "0.3", price=sim.price("ETH/USD") * 2)
        sim.place_order("BTC/USD", "sell", "limit", "0.1", price=sim.price("BTC/USD") * 3)
    except ExchangeError as error:
        refused = error.code
    # Orders are refused only in maintenance, as Kraken does (EService:Unavailable).
    assert refused in (None, "EService:Unavailable")


async def drive_checking(observer: Observer, seconds: float) -> None:
    """Advance the clock, checking served values every step and ``max_age`` reads every 5 s."""
    moved = 0.0
    tick = 0
    while moved < seconds:
        await observer.step(0.5)
        moved += 0.5
        tick += 1
        if tick % 10 == 0:
            await observer.check_max_age("USD", 5.0)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_fault(case: Case, sim: SimulatedKraken, clock: ManualClock, tmp_path: Path) -> None:
    """Through the fault and after it, the manager serves the exchange's truth (see module)."""
    db = tmp_path / "history.sqlite3"
    manager: BalanceManager = build_manager(sim, clock, reliability_config(db))
    observer = Observer(manager, sim, clock)
    try:
        await start_streaming(manager)
        sim.deposit("DOT", "1.5")  # a ledger entry streamed before the fault
        await wait_until(lambda: observer.ledger_ids() != [])
        ws_before = manager.get_statistics()["websocket"]

        observer.mark()
        observer.start_timer()
        await case.inject(sim)
        sim.deposit("USD", "1")  # a frame for frame-triggered faults to act on
        await account_activity(sim)
        if case.duration:
            await drive_checking(observer, case.duration)
            check_served_during(observer, case)
            await case.clear(sim)
            observer.start_timer()
        recovery = await observer.recover(within=case.bound)
        MEASURED[case.id] = (case, recovery)

        if case.falls_back:
            assert set(observer.sources_seen()) & {"rest", "cache"}, observer.sources_seen()
        else:
            assert observer.sources_seen() == [], observer.sources_seen()
        ws_after = manager.get_statistics()["websocket"]
        for counter, least in case.stream.items():
            assert ws_after[counter] - ws_before[counter] >= least, (counter, ws_after)

        if case.system is not None:
            systems = [p["system"] for p in observer.events["connection_state"]]
            assert case.system in systems, systems
            assert systems[-1] == "online", systems

        sim.deposit("EUR", "2.5")  # the stream is live again: ledger entries flow
        await wait_until(lambda: converged(manager, sim))
        observer.check_history()
        observer.check_events()
        observer.check_rate_limit()
        observer.check_backoff()
        check_breaker(observer.breaker_path(), case.breaker)
        assert observer.served.reads > 0
        ids = observer.ledger_ids()
    finally:
        observer.close()
        await manager.close()
    stored = stored_ledger_ids(db)
    assert distinct(stored)
    assert set(ids) <= set(stored), set(ids) - set(stored)


def check_served_during(observer: Observer, case: Case) -> None:
    """Reads during a lasting fault came from the expected source; ``max_age`` behaved."""
    served = observer.served
    if case.serves is None:
        return
    assert served.by_source.get(case.serves, 0) > 0, served
    if case.serves == "cache":
        assert served.stale_errors > 0, served
    else:
        # Answered whenever the manager had fallen back to the source; a stream
        # that is quiet but not yet declared dead (websocket_timeout) may refuse
        # a read whose REST check disagrees with it (see docs/reliability.md).
        assert served.fresh_answers > 0, served
        assert case.serves not in served.stale_modes, served


def check_breaker(path: list[str], expected: str) -> None:
    """The breaker stayed closed, or opened, probed (failed probes reopen it) and closed."""
    if expected == CLOSED:
        assert path == ["closed"], path
        return
    assert path[:2] == ["closed", "open"], path
    assert path[-2:] == ["half_open", "closed"], path
    middle = path[1:-1]
    # open, half_open, open, half_open...: each failed probe reopens it (doubling the wait).
    assert middle == ["open", "half_open"] * (len(middle) // 2), path


async def test_max_age_is_answered_by_an_agreeing_rest_read_while_the_stream_is_quiet(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """A quiet stream (not yet declared dead) plus a REST read that agrees: max_age is met."""
    manager = build_manager(sim, clock, reliability_config(None))
    try:
        await start_streaming(manager)
        sim.faults.go_silent(seconds=None)
        await drive(clock, 7.0, step=0.5)
        assert manager.serving_mode is ServingMode.WEBSOCKET  # 7 s < websocket_timeout
        observer = Observer(manager, sim, clock)
        value = await observer.check_max_age("USD", 5.0)
        assert value is not None
        assert value.balance == sim.balances()["USD"]
        observer.close()
    finally:
        await manager.close()


async def test_a_reordered_update_stays_out_of_order_across_heartbeats(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """ws_reorder holds an update until its channel's next one, even with heartbeats between."""
    manager = build_manager(sim, clock, reliability_config(None))
    try:
        await start_streaming(manager)
        sim.faults.reorder_frames(channel="balances")
        sim.deposit("USD", "1")  # held back
        await drive(clock, 3.0, step=0.5)  # heartbeats flow meanwhile
        sim.deposit("USD", "2")  # sent first, then the held one: out of order
        await drive(clock, 10.0, step=0.5, until=lambda: converged(manager, sim))
        stats = manager.get_statistics()["websocket"]
        assert stats["gaps"] == 1
        assert stats["resyncs"] == 1
        assert converged(manager, sim), mismatches(manager, sim)
    finally:
        await manager.close()


async def test_get_all_balances_with_max_age_never_returns_a_stale_value(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """All balances with max_age: each value is that young, or StaleBalanceError is raised."""
    manager = build_manager(sim, clock, reliability_config(None))
    try:
        await start_streaming(manager)
        sim.faults.go_silent(seconds=None)  # quiet, not yet declared dead
        sim.deposit("USD", "3")  # the stream cannot say so; REST disagrees with it
        await drive(clock, 7.0, step=0.5)
        # Quiet beyond three heartbeats: REST was checked, showed the deposit and
        # replaced the stream's value; the stream waits for its resync snapshot.
        assert manager.serving_mode is ServingMode.REST
        assert manager.get_status()["websocket"]["state"] == "resyncing"
        assert manager.sync_view().get_balance("USD").balance == sim.balances()["USD"]
        try:
            balances = await manager.get_all_balances(max_age=5.0)
        except StaleBalanceError as error:
            stale: StaleBalanceError | None = error
        else:
            stale = None
            for asset, value in balances.items():
                age = manager.age_of(value)
                assert age is not None, asset
                assert age <= 5.0, (asset, age)
        if stale is not None:
            assert stale.max_age == 5.0
    finally:
        await manager.close()


async def test_each_rest_fault_that_fires_acts_on_its_own_request(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """Two REST faults due at once answer two requests: what fired is what the client saw."""
    sim.faults.http_error(520)
    sim.faults.rate_limit()
    manager = build_manager(
        sim, clock, reliability_config(None, rest_max_retries=0), websocket=False
    )
    rest = manager.rest_client
    assert isinstance(rest, KrakenRestClient)
    seen: list[str] = []
    for _ in range(3):
        try:
            await drive_until_done(clock, rest.balance_ex())
        except (TransportError, RateLimitedError) as error:
            seen.append(type(error).__name__)
        else:
            seen.append("ok")
    await rest.close()
    assert seen == ["TransportError", "RateLimitedError", "ok"]
    assert [fired.kind.value for fired in sim.faults.history] == ["http_error", "rate_limit"]


async def test_a_rest_read_never_overwrites_newer_stream_values(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """A REST snapshot applied while the stream came back (slow async callback) loses to it.

    The REST read starts while the stream is down; an async strategy callback
    holds it up mid-way; meanwhile the stream reconnects and delivers a newer
    value. The rest of the REST snapshot must not put the older value back.
    """
    manager = build_manager(sim, clock, reliability_config(None))
    gate = asyncio.Event()
    held_up: list[str] = []

    async def slow_strategy(change: BalanceChange) -> None:
        if change.kind == "refresh" and not held_up:
            held_up.append(change.asset)
            await gate.wait()

    try:
        await start_streaming(manager)
        sim.faults.reject_token(times=None)
        sim.faults.drop_websocket()
        sim.deposit("BTC", "1")  # first in REST's order: its refresh event is held up
        await wait_until(lambda: manager.get_status()["websocket"]["state"] != "streaming")
        sim.deposit("DOT", "1")  # last in REST's order
        manager.register_callback("balance_update", slow_strategy)
        await drive(clock, 10.0, step=0.5, until=lambda: bool(held_up))
        assert held_up == ["BTC"]  # the REST read is stuck before it reached DOT
        sim.faults.clear()
        await drive(clock, 30.0, step=0.5, until=lambda: manager.websocket_client.connected)  # type: ignore[union-attr]
        sim.deposit("DOT", "2")  # newer than anything the held-up REST read knows
        await wait_until(lambda: manager.sync_view().get_balance("DOT").balance == Decimal(253))  # type: ignore[union-attr]
        gate.set()
        await drive(clock, 5.0, step=0.5)
        dot = manager.sync_view().get_balance("DOT")
        assert dot is not None
        assert dot.balance == sim.balances()["DOT"] == Decimal(253)
        assert converged(manager, sim), mismatches(manager, sim)
    finally:
        gate.set()
        await manager.close()


async def test_a_reordered_update_does_not_outlive_its_subscription(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """A frame held back by ws_reorder goes out before its subscription ends, not after.

    Otherwise it would arrive after the next subscription's snapshot, where its
    sequence number can look like the next one and an older balance would apply.
    """
    manager = build_manager(sim, clock, reliability_config(None))
    try:
        await start_streaming(manager)
        ws = manager.websocket_client
        assert ws is not None
        sim.faults.reorder_frames(channel="balances")
        sim.deposit("USD", "5")  # held back
        await drive(clock, 1.0, step=0.5)
        ws.request_resync("test: resubscribe while a frame is held")
        await drive(clock, 5.0, step=0.5, until=lambda: ws.connected and converged(manager, sim))
        stats = ws.get_statistics()
        assert stats["resyncs"] == 1
        assert stats["continuity_breaks"] == 0  # the held update came before the new snapshot
        assert converged(manager, sim), mismatches(manager, sim)
    finally:
        await manager.close()


async def test_a_lost_update_is_repaired_by_the_cross_check_without_validation(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """With validation off, a REST cross-check that disagrees with the stream still resyncs it.

    A frame lost without a later one to show the gap leaves the stream's value
    wrong while the stream looks healthy; the REST cross-check is what repairs it.
    """
    manager = build_manager(sim, clock, reliability_config(None, enable_validation=False))
    try:
        await start_streaming(manager)
        sim.faults.lose_frame(channel="balances")  # lost in flight; heartbeats go on
        sim.deposit("EUR", "9")
        await drive(clock, 4.0, step=0.5)
        assert manager.serving_mode is ServingMode.WEBSOCKET
        assert not converged(manager, sim)  # the stream missed the deposit
        await manager.refresh_all_balances()  # what force_update_interval does
        await drive(clock, 5.0, step=0.5, until=lambda: converged(manager, sim))
        assert converged(manager, sim), mismatches(manager, sim)
        assert manager.get_statistics()["websocket"]["resyncs"] == 1
    finally:
        await manager.close()
