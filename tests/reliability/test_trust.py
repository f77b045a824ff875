"""Trust: no wrong balance served as fresh, no deadlock, no account bleeding into another.

One test per way the manager was found to give a wrong answer or stop (each
failed before its fix), run against the simulator over loopback on a manual
clock with the library's default configuration:

* a loss during a short silence (the stream's heartbeats stop, then resume,
  and nothing later reveals the lost update);
* a lost order cancel (the hold stays, free is short);
* a restart while the exchange is unreachable (holds must be restored);
* a callback that reads a fresh balance while a REST refresh runs (deadlock);
* a callback that raises ``CancelledError`` (the stream must live on, the
  status must tell the truth);
* a callback slower than ``websocket_timeout`` (must not look like silence);
* two accounts with default settings (history must be kept per account);
* a REST client shared by two managers (the first close must not break the other);
* ``max_age=0`` (a value read after the call satisfies it);
* a callback that closes the manager (it must close all, at once);
* a REST client reused by a manager started after the last one closed it;
* ``close()`` while ``initialize()`` runs (no stream may outlive it);
* a silence ended by a frame with a sequence gap (unconfirmed since the silence);
* values restored from history that REST confirms (no longer ``cache``);
* a balance streamed while holds are not live (its hold is as old as REST's);
* a REST read that skipped what the stream changed while it was out (not confirmed by it).
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from balance_manager import (
    BalanceManager,
    KrakenRestClient,
    KrakenWebSocketClient,
    ServingMode,
    Source,
    StaleBalanceError,
)
from balance_manager.config import default_history_path
from balance_manager.core.models import BalanceChange
from balance_manager.credentials import Credentials
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive, drive_until_done, wait_until

from .harness import build_manager, converged, mismatches, reliability_config, start_streaming

pytestmark = [pytest.mark.network, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimulatedKraken]:
    simulator = SimulatedKraken(clock=clock, seed=10)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


async def served_truthfully(manager: BalanceManager, sim: SimulatedKraken, asset: str) -> bool:
    """``get_balance(asset, max_age=5)`` returns the exchange's values or refuses.

    For use once the exchange has been quiet for longer than 5 s: any value
    served fresh must then be the exchange's current one.
    """
    try:
        value = await asyncio.wait_for(manager.get_balance(asset, max_age=5.0), timeout=5)
    except StaleBalanceError:
        return True
    assert value is not None
    truth = sim.balances().get(asset, Decimal(0))
    hold = sim.holds().get(asset, Decimal(0))
    return value.balance == truth and value.hold_trade == hold


async def test_a_loss_during_a_short_silence_is_repaired_and_never_served_as_fresh(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """A withdrawal lost in a 3 s silence, then no activity: repaired within seconds, not 600."""
    manager = build_manager(sim, clock, reliability_config(None))
    try:
        await start_streaming(manager)
        sim.faults.go_silent(seconds=3.0)
        sim.withdraw("USD", "100")  # pushed into the silence: lost
        await drive(clock, 8.0, step=0.5)
        assert converged(manager, sim), mismatches(manager, sim)
        for _ in range(3):  # at 8, 38 and 68 s: true, whatever the source
            assert await served_truthfully(manager, sim, "USD")
            await drive(clock, 30.0, step=1.0)
        stats = manager.get_statistics()
        assert stats["stream_interruptions"] + stats["quiet_checks"] >= 1
        assert manager.serving_mode is ServingMode.WEBSOCKET
    finally:
        await manager.close()


async def test_values_are_not_fresh_until_the_interruption_is_reconciled(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """Through a silence and after it, max_age=5 only passes values true within 5 s.

    The value before a lost withdrawal was true until the withdrawal: served
    with max_age=5 it is honest for 5 s after it, never later.
    """
    manager = build_manager(sim, clock, reliability_config(None))
    try:
        await start_streaming(manager)
        before = sim.balances()["USD"]
        sim.faults.go_silent(seconds=2.8)
        sim.withdraw("USD", "50")
        withdrawn_at = clock.time()
        after = sim.balances()["USD"]
        for _ in range(30):
            await drive(clock, 0.5, step=0.5)
            try:
                value = await asyncio.wait_for(manager.get_balance("USD", max_age=5.0), 5)
            except StaleBalanceError:
                continue
            assert value is not None
            assert value.balance in (before, after)
            if value.balance == before:
                assert clock.time() - withdrawn_at <= 5.0, "an old value passed as fresh"
        assert converged(manager, sim), mismatches(manager, sim)
    finally:
        await manager.close()


async def test_a_lost_cancel_is_repaired_hold_and_free(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """An order cancelled while the executions frame is lost: the hold goes, free comes back."""
    manager = build_manager(sim, clock, reliability_config(None, force_update_interval=5.0))
    try:
        await start_streaming(manager)
        price = sim.price("BTC/USD") / 2
        order = sim.place_order("BTC/USD", "buy", "limit", "0.01", price=price)
        await drive(clock, 2.0, until=lambda: converged(manager, sim))
        held = manager.sync_view().get_balance("USD")
        assert held is not None
        assert held.hold_trade > 0
        sim.faults.go_silent(seconds=2.0)
        sim.cancel_order(order.order_id)
        await drive(clock, 12.0, step=0.5, until=lambda: converged(manager, sim))
        assert converged(manager, sim), mismatches(manager, sim)
        usd = manager.sync_view().get_balance("USD")
        assert usd is not None
        assert usd.hold_trade == 0
        assert usd.free == sim.free()["USD"]
    finally:
        await manager.close()


async def test_a_restart_while_the_exchange_is_down_restores_holds(
    clock: ManualClock, tmp_path: Path
) -> None:
    """Values restored from history carry their holds: free is the exchange's, not inflated."""
    db = tmp_path / "history.sqlite3"
    sim = SimulatedKraken(clock=clock, seed=10)
    await sim.start()
    config = reliability_config(db)
    first = build_manager(sim, clock, config)
    try:
        await start_streaming(first)
        price = sim.price("BTC/USD") / 2
        sim.place_order("BTC/USD", "buy", "limit", "0.02", price=price)
        await drive(clock, 3.0, until=lambda: converged(first, sim))
        assert converged(first, sim)
        want = (sim.balances()["USD"], sim.holds()["USD"], sim.free()["USD"])
    finally:
        await first.close()
        await sim.stop()  # the exchange is gone
    second = build_manager(sim, clock, config)
    try:
        await drive_until_done(clock, second.initialize(), seconds=60)
        usd = second.sync_view().get_balance("USD")
        assert usd is not None
        assert usd.source is Source.CACHE
        assert (usd.balance, usd.hold_trade, usd.free) == want
    finally:
        await second.close()


async def test_a_callback_reading_a_fresh_balance_during_a_refresh_does_not_deadlock(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """REST-only: a balance_update callback awaiting get_balance(max_age) never blocks polling."""
    manager = build_manager(sim, clock, reliability_config(None), websocket=False)
    seen: list[object] = []

    async def cautious(change: BalanceChange) -> None:
        await clock.sleep(1.0)
        seen.append(await manager.get_balance("USD", max_age=0.5))

    manager.register_callback("balance_update", cautious)
    try:
        await drive_until_done(clock, manager.initialize())
        sim.deposit("USD", "10")
        await drive(clock, 12.0, step=0.5, until=lambda: bool(seen) and converged(manager, sim))
        usd = await drive_until_done(clock, manager.get_balance("USD", max_age=5.0), seconds=20)
        assert usd is not None
        assert usd.balance == sim.balances()["USD"]
        assert seen
    finally:
        await manager.close()


async def test_a_callback_raising_cancelled_error_is_its_own_error(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """CancelledError from a callback is counted; the stream lives on and the status is true."""
    manager = build_manager(sim, clock, reliability_config(None))

    async def rude(change: BalanceChange) -> None:
        raise asyncio.CancelledError

    manager.register_callback("balance_update", rude)
    try:
        await start_streaming(manager)
        sim.deposit("BTC", "1")
        await drive(clock, 2.0, until=lambda: converged(manager, sim))
        await manager.drain_callbacks()
        sim.deposit("BTC", "1")
        await drive(clock, 2.0, until=lambda: converged(manager, sim))
        assert converged(manager, sim), mismatches(manager, sim)
        btc = manager.sync_view().get_balance("BTC")
        assert btc is not None
        assert btc.source is Source.WEBSOCKET
        assert manager.get_statistics()["callback_errors"] >= 1
        status = manager.get_status()
        assert status["websocket"]["state"] == "streaming"
        assert status["websocket"]["connected"]
    finally:
        await manager.close()


async def test_a_slow_callback_does_not_look_like_a_silent_stream(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """A balance_change callback slower than websocket_timeout trips no watchdog, no fallback."""
    config = reliability_config(None, websocket_timeout=2.0, websocket_ping_interval=1.0)
    manager = build_manager(sim, clock, config)

    async def slow(change: BalanceChange) -> None:
        await clock.sleep(4.0)

    manager.register_callback("balance_change", slow)
    try:
        await start_streaming(manager)
        sim.deposit("BTC", "1")
        await drive(clock, 10.0, step=0.25)
        assert converged(manager, sim), mismatches(manager, sim)
        stats = manager.get_statistics()
        assert stats["reconnects"] == 0
        assert stats["websocket"]["silence_timeouts"] == 0
        assert stats["fallbacks"] == 0
    finally:
        await manager.close()


def kraken_shaped(seed: int) -> Credentials:
    """A key pair shaped like Kraken's (no ``sim-``): a manager takes it for a real account."""
    rng = random.Random(seed)
    key = base64.b64encode(rng.randbytes(42)).decode()
    secret = base64.b64encode(rng.randbytes(64)).decode()
    return Credentials.of(key, secret)


def manager_for(
    sim: SimulatedKraken, clock: ManualClock, credentials: Credentials
) -> BalanceManager:
    """A manager with the library's default configuration (history in the default place)."""
    config = reliability_config(None).replace(history_db_path=default_history_path())
    rest = KrakenRestClient(
        api_key=credentials.api_key,
        api_secret=credentials.api_secret,
        base_url=sim.rest_url,
        config=config,
        clock=clock,
        rng=random.Random(1),
    )
    ws = KrakenWebSocketClient(rest_client=rest, url=sim.ws_url, rng=random.Random(2))
    return BalanceManager(websocket_client=ws, rest_client=rest, config=config, clock=clock)


async def test_two_accounts_with_default_settings_never_share_history(
    clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Account A restarted while the exchange is down serves A's last values, never B's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    sim = SimulatedKraken(clock=clock, seed=10)
    await sim.start()
    alice, bob = kraken_shaped(1), kraken_shaped(2)
    sim.add_key(credentials=alice)
    sim.exchange.add_account("bob", balances={"BTC": "550", "SOL": "1000"}, now=clock.time())
    sim.add_key("bob", credentials=bob)
    alice_truth = dict(sim.balances(alice.api_key))
    for credentials in (alice, bob):
        manager = manager_for(sim, clock, credentials)
        try:
            await start_streaming(manager)
            await drive(clock, 2.0)
        finally:
            await manager.close()
    await sim.stop()
    again = manager_for(sim, clock, alice)
    try:
        await drive_until_done(clock, again.initialize(), seconds=60)
        restored = {a: b.balance for a, b in again.sync_view().get_all_balances().items()}
        assert restored == {a: v for a, v in alice_truth.items() if v}
        assert "SOL" not in restored
        for asset in again.history.assets():
            assert all(e.balance != Decimal(550) for e in again.history.get_asset_history(asset))
    finally:
        await again.close()
    found = await asyncio.to_thread(lambda: list(tmp_path.rglob("history.sqlite3")))
    files = sorted(p.relative_to(tmp_path) for p in found)
    assert len(files) == 2  # one per account, named by fingerprint, never by key
    for path in files:
        assert alice.api_key not in str(path)
        assert bob.api_key not in str(path)


async def test_a_rest_client_shared_by_two_managers_survives_the_first_close(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """The first manager's close() leaves the shared client working; the last one closes it."""
    config = reliability_config(None)
    rest = KrakenRestClient(
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        base_url=sim.rest_url,
        config=config,
        clock=clock,
    )
    first = BalanceManager(rest_client=rest, config=config, clock=clock)
    second = BalanceManager(rest_client=rest, config=config, clock=clock)
    await drive_until_done(clock, first.initialize())
    await drive_until_done(clock, second.initialize())
    await first.close()
    sim.deposit("USD", "5")
    snapshot = await drive_until_done(clock, second.refresh_all_balances())
    assert snapshot["USD"].balance == sim.balances()["USD"]
    await second.close()
    await wait_until(lambda: rest._session is None)


async def test_max_age_zero_is_met_by_a_read_sent_after_the_call(
    sim: SimulatedKraken,
) -> None:
    """A value read by a request sent after the call satisfies max_age=0, with time passing."""

    class TickingClock(ManualClock):
        """Time moves a microsecond at every reading, as real time does."""

        def time(self) -> float:
            self.advance(1e-6)
            return super().time()

    clock = TickingClock()
    sim.clock = clock  # the simulator's notion of time does not matter here
    manager = build_manager(sim, clock, reliability_config(None), websocket=False)
    try:
        await drive_until_done(clock, manager.initialize())
        for max_age in (0, 1e-9):
            usd = await drive_until_done(clock, manager.get_balance("USD", max_age=max_age))
            assert usd is not None
            assert usd.balance == sim.balances()["USD"]
    finally:
        await manager.close()


async def test_a_stream_task_that_dies_is_never_reported_as_streaming(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """A stream task killed by a bug shows as closed, then is restarted by the manager."""
    manager = build_manager(sim, clock, reliability_config(None))
    try:
        await start_streaming(manager)
        ws = manager.websocket_client
        assert isinstance(ws, KrakenWebSocketClient)
        task = ws._task
        assert task is not None
        task.cancel()  # as a bug that lets a BaseException out would
        await wait_until(task.done)
        assert manager.get_status()["websocket"]["state"] == "closed"
        assert manager.serving_mode is not ServingMode.WEBSOCKET
        await drive(clock, 5.0, until=lambda: manager.get_statistics()["stream_restarts"] > 0)
        assert manager.get_statistics()["stream_restarts"] == 1
        await drive(clock, 5.0, until=lambda: manager.serving_mode is ServingMode.WEBSOCKET)
        sim.deposit("BTC", "1")
        await drive(clock, 2.0, until=lambda: converged(manager, sim))
        assert converged(manager, sim), mismatches(manager, sim)
    finally:
        await manager.close()


async def test_a_callback_that_closes_the_manager_closes_it_all(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """close() awaited inside a callback finishes at once and releases the REST client."""
    manager = build_manager(sim, clock, reliability_config(None), websocket=False)
    outcome: list[BaseException | None] = []

    async def closer(change: BalanceChange) -> None:
        try:
            await manager.close()
        except BaseException as exc:
            outcome.append(exc)
            raise
        outcome.append(None)

    manager.register_callback("balance_update", closer)
    await drive_until_done(clock, manager.initialize())
    await wait_until(lambda: bool(outcome), within=2.0)
    assert outcome == [None]
    rest = manager.rest_client
    assert isinstance(rest, KrakenRestClient)
    await wait_until(lambda: rest._session is None)


async def test_a_rest_client_shared_in_turn_works_for_the_next_manager(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """A manager started after another one closed the shared client can still use it."""
    config = reliability_config(None)
    rest = KrakenRestClient(
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        base_url=sim.rest_url,
        config=config,
        clock=clock,
    )
    first = BalanceManager(rest_client=rest, config=config, clock=clock)
    await drive_until_done(clock, first.initialize())
    await first.close()
    second = BalanceManager(rest_client=rest, config=config, clock=clock)
    try:
        await drive_until_done(clock, second.initialize())
        snapshot = await drive_until_done(clock, second.refresh_all_balances())
        assert snapshot["USD"].balance == sim.balances()["USD"]
    finally:
        await second.close()
    await wait_until(lambda: rest._session is None)


async def test_close_while_initialize_runs_leaves_nothing_running(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """close() during a slow start: the start does not go on to open the stream."""
    manager = build_manager(sim, clock, reliability_config(None))
    sim.faults.slow_response(3.0, endpoint="BalanceEx")
    start = asyncio.ensure_future(manager.initialize())
    await drive(clock, 1.0)
    await manager.close()
    await drive(clock, 5.0, until=start.done)
    await asyncio.wait_for(asyncio.shield(start), 5.0)
    ws = manager.websocket_client
    assert isinstance(ws, KrakenWebSocketClient)
    assert ws._task is None or ws._task.done()
    assert all(task.done() for task in manager._tasks)


async def test_a_silence_ended_by_a_sequence_gap_is_an_interruption_too(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """The first frame after a silence shows a sequence gap (no live executions): values
    are unconfirmed since the silence began, not since the gap was seen."""
    manager = build_manager(sim, clock, reliability_config(None, subscribe_executions=False))
    try:
        await manager.initialize()
        await wait_until(lambda: manager.serving_mode is ServingMode.WEBSOCKET)
        await drive(clock, 2.0, step=1.0)
        sim.faults.slow_response(10.0, endpoint="BalanceEx", times=None)  # no REST rescue
        sim.faults.go_silent(seconds=2.5)
        sim.withdraw("USD", "100")  # lost in the silence
        await drive(clock, 2.5, step=0.5)  # the silence is over, no heartbeat yet
        sim.deposit("BTC", "1")  # the first frame after it, with a sequence gap
        sim.faults.delay_frames(5.0, channel="balances")  # the resync snapshot comes late
        await drive(clock, 0.5, step=0.25)
        try:
            usd = manager.sync_view().get_balance("USD", max_age=2.0)
        except StaleBalanceError:
            return
        assert usd is not None
        assert usd.balance == sim.balances()["USD"], "an old value passed as fresh"
    finally:
        sim.faults.clear()
        await manager.close()


async def test_a_sequence_gap_unconfirms_values_back_to_the_frame_before_it(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """A frame lost without a silence, shown by the next frame's sequence gap: until the
    resync's snapshot arrives, the value the lost frame would have changed is not served
    as fresh (a regression guard: this held before it was written)."""
    manager = build_manager(sim, clock, reliability_config(None))
    try:
        await start_streaming(manager)  # holds live: the stream confirms whole values
        await drive(clock, 1.0, step=0.25)
        sim.faults.slow_response(10.0, endpoint="BalanceEx", times=None)  # no REST rescue
        sim.faults.lose_frame(channel="balances")
        sim.withdraw("USD", "100")  # lost in flight
        await drive(clock, 0.75, step=0.25)
        # The deposit's frame shows the gap; the resync's snapshot after it comes late.
        sim.faults.delay_frames(5.0, channel="balances", after=1)
        sim.deposit("BTC", "1")
        await drive(clock, 0.25, step=0.25)
        assert manager.get_statistics()["websocket"]["gaps"] == 1
        try:
            usd = manager.sync_view().get_balance("USD", max_age=0.5)
        except StaleBalanceError:
            return
        assert usd is not None
        assert usd.balance == sim.balances()["USD"], "an old value passed as fresh"
    finally:
        sim.faults.clear()
        await manager.close()


async def test_values_restored_from_history_are_not_cache_once_rest_confirms_them(
    sim: SimulatedKraken, clock: ManualClock, tmp_path: Path
) -> None:
    """REST-only, after a restart: a REST read that confirms a restored value serves it as rest."""
    config = reliability_config(tmp_path / "history.sqlite3")
    first = build_manager(sim, clock, config, websocket=False)
    try:
        await drive_until_done(clock, first.initialize())
    finally:
        await first.close()
    second = build_manager(sim, clock, config, websocket=False)
    try:
        await drive_until_done(clock, second.initialize())
        assert second.serving_mode is ServingMode.REST
        usd = await drive_until_done(clock, second.get_balance("USD", max_age=5.0))
        assert usd is not None
        assert usd.source is Source.REST
        sources = {b.source for b in second.sync_view().get_all_balances().values()}
        assert sources == {Source.REST}
    finally:
        await second.close()


async def test_a_stream_update_does_not_make_a_hold_only_rest_knows_look_fresh(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """Holds not live: a deposit streamed after an order was placed leaves the hold as old
    as the last REST read; max_age must not pass that value (its free is too high)."""
    manager = build_manager(sim, clock, reliability_config(None, subscribe_executions=False))
    try:
        await manager.initialize()
        await wait_until(lambda: manager.serving_mode is ServingMode.WEBSOCKET)
        await drive(clock, 3.0)  # the last REST read is 3 s old
        sim.place_order("BTC/USD", "buy", "limit", "0.01", price=sim.price("BTC/USD") / 2)
        before = sim.balances()["USD"]
        sim.deposit("USD", "1")
        view = manager.sync_view()
        await wait_until(lambda: getattr(view.get_balance("USD"), "balance", None) == before + 1)
        usd = await drive_until_done(clock, manager.get_balance("USD", max_age=1.0))
        assert usd is not None
        assert (usd.hold_trade, usd.free) == (sim.holds()["USD"], sim.free()["USD"])
    finally:
        await manager.close()


async def test_a_rest_read_does_not_confirm_what_the_stream_changed_while_it_was_out(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """A REST read skips a value the stream changed after the request left; when the stream
    then dies, that value is confirmed only up to the stream's end, not to the REST answer."""
    manager = build_manager(sim, clock, reliability_config(None))
    try:
        await start_streaming(manager)
        await drive(clock, 2.0)
        sim.faults.slow_response(3.0, endpoint="BalanceEx", times=2)  # this read and the next
        refresh = asyncio.ensure_future(manager.refresh_all_balances())
        await drive(clock, 0.5)
        start = sim.balances()["BTC"]
        sim.deposit("BTC", "1")  # streamed after the request left: REST leaves it alone
        view = manager.sync_view()
        await wait_until(lambda: getattr(view.get_balance("BTC"), "balance", None) == start + 1)
        sim.faults.reject_token(times=None)  # no reconnect
        sim.faults.drop_websocket()
        sim.deposit("BTC", "2")  # its frame drops the connection: lost
        await drive(clock, 4.0, step=0.25, until=refresh.done)
        await refresh
        try:
            btc = view.get_balance("BTC", max_age=1.0)
        except StaleBalanceError:
            return
        assert btc is not None
        assert btc.balance == sim.balances()["BTC"], "an old value passed as fresh"
    finally:
        sim.faults.clear()
        await manager.close()


async def test_a_rest_reading_is_current_when_its_request_left_not_when_it_arrived(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """REST answers read the account when the request arrived; an answer that travels 3 s
    does not make its values current at arrival: ``max_age=1`` then reads again."""
    manager = build_manager(sim, clock, reliability_config(None), websocket=False)
    try:
        await drive_until_done(clock, manager.initialize())
        sim.faults.slow_answer(3.0, endpoint="BalanceEx")
        refresh = asyncio.ensure_future(manager.refresh_all_balances())
        await drive(clock, 0.5, step=0.25)  # the account was read; the answer travels
        sim.withdraw("USD", "100")  # not in that answer
        await drive_until_done(clock, refresh)
        usd = await drive_until_done(clock, manager.get_balance("USD", max_age=1.0))
        assert usd is not None
        assert usd.balance == sim.balances()["USD"], "a 3 s old reading passed as 1 s fresh"
        age = manager.age_of(usd)
        assert age is not None
        assert age <= 1.0
    finally:
        sim.faults.clear()
        await manager.close()


async def test_an_asset_only_rest_lists_is_not_confirmed_by_the_stream(
    sim: SimulatedKraken, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REST lists an asset the stream never reports (fee credits, say): a live stream says
    nothing about it, so its value is as fresh as its last REST read, and a ``max_age``
    read asks REST again (it was served as fresh until the next 10-minute REST check)."""
    from balance_manager.simulator.server import rest_app

    extra: dict[str, str] = {}
    balance_ex = rest_app.PRIVATE_METHODS["BalanceEx"]

    def with_extra(*args: Any) -> Any:
        answer = balance_ex(*args)
        return {**answer, **{k: {"balance": v, "hold_trade": "0.00"} for k, v in extra.items()}}

    monkeypatch.setitem(rest_app.PRIVATE_METHODS, "BalanceEx", with_extra)
    manager = build_manager(sim, clock, reliability_config(None))
    try:
        await start_streaming(manager)
        extra["KFEE"] = "1000.00"
        await drive_until_done(clock, manager.refresh_all_balances())
        await drive(clock, 5.0, step=0.25)  # the stream resyncs (REST found a new asset)
        assert manager.serving_mode is ServingMode.WEBSOCKET
        extra["KFEE"] = "0.00"  # used up on the exchange: the stream does not say so
        await drive(clock, 20.0, step=0.5)
        kfee = manager.sync_view().get_balance("KFEE")
        assert kfee is not None
        age = manager.age_of(kfee)
        assert age is not None
        assert age >= 20.0, "a value the stream never reports was confirmed by the stream"
        fresh = await drive_until_done(clock, manager.get_balance("KFEE", max_age=2.0))
        assert fresh is not None
        assert fresh.balance == 0
    finally:
        await manager.close()
