"""The alert monitor with a manager and the simulator over loopback, on a manual clock."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from balance_manager import (
    BalanceManager,
    BalanceManagerConfig,
    KrakenRestClient,
    KrakenWebSocketClient,
    ServingMode,
)
from balance_manager.core.alerts.model import Alert
from balance_manager.core.models import Balance
from balance_manager.core.validation.rules import Issue, Severity
from balance_manager.core.validation.validator import ValidationResult
from balance_manager.service.alerts import AlertMonitor
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, RecordingCallbacks, drive, wait_until

from .stand_ins import StreamOnlyManager

pytestmark = [pytest.mark.network, pytest.mark.asyncio]

D = Decimal


def make_config(**changes: object) -> BalanceManagerConfig:
    """Short timings; every timer runs on the manual clock."""
    base: dict[str, object] = {
        "history_db_path": None,
        "rest_api_timeout": 5.0,
        "websocket_timeout": 6.0,
        "websocket_ping_interval": 2.0,
        "reconnect_initial_delay": 0.5,
        "reconnect_max_delay": 4.0,
        "rest_max_retries": 1,
        "rest_poll_interval": 3.0,
        "alert_cooldown": 30.0,
        "alert_low_balance": {"USD": "1000", "XBT": "0.5"},
        "alert_stream_down_after": 20.0,
    }
    base.update(changes)
    return BalanceManagerConfig.from_mapping(base)


@pytest_asyncio.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimulatedKraken]:
    """A simulator on loopback, on the manual clock."""
    async with SimulatedKraken(clock=clock, seed=11) as simulator:
        yield simulator


def build(sim: SimulatedKraken, clock: ManualClock, config: BalanceManagerConfig) -> BalanceManager:
    rest = KrakenRestClient(
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        base_url=sim.rest_url,
        config=config,
        clock=clock,
        rng=random.Random(1),
    )
    ws = KrakenWebSocketClient(rest_client=rest, url=sim.ws_url, rng=random.Random(2))
    return BalanceManager(websocket_client=ws, rest_client=rest, config=config, clock=clock)


@pytest_asyncio.fixture
async def manager(sim: SimulatedKraken, clock: ManualClock) -> AsyncIterator[BalanceManager]:
    """A started, streaming manager with alerts on."""
    async with build(sim, clock, make_config()) as started:
        await wait_until(lambda: started.serving_mode is ServingMode.WEBSOCKET)
        yield started


def monitor_of(manager: BalanceManager) -> AlertMonitor:
    """The manager's alert monitor (alerts are on by default)."""
    monitor = manager.alerts
    assert monitor is not None
    return monitor


async def test_low_balance_fires_once_and_resolves(
    manager: BalanceManager,
    sim: SimulatedKraken,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """USD going below its threshold fires once (callback and log), a deposit resolves it."""
    calls = RecordingCallbacks()
    manager.register_callback("alert_fired", calls.recorder("alert_fired"))
    manager.register_callback("alert_resolved", calls.recorder("alert_resolved"))
    monitor = monitor_of(manager)
    await drive(clock, 1.0, step=0.2)
    assert monitor.active() == []  # 25435.21 USD, 1.2435 BTC: above the thresholds
    usd = sim.balances()["USD"]
    with caplog.at_level(logging.WARNING, logger="balance_manager.service.alerts"):
        sim.withdraw("USD", usd - D("999.99"))
        await drive(clock, 1.0, step=0.2, until=lambda: bool(calls["alert_fired"]))
        sim.withdraw("USD", "1")  # lower still: the same condition, not a new alert
        await drive(clock, 2.0, step=0.2)
        await manager.drain_callbacks()
    (fired,) = calls["alert_fired"]
    assert isinstance(fired, Alert)
    assert fired.key == ("low_balance", "USD")
    assert fired.details == {"free": D("999.99"), "threshold": D(1000)}
    assert fired.severity is Severity.WARNING
    assert any("low_balance USD" in r.getMessage() for r in caplog.records)
    sim.deposit("USD", "500")
    await drive(clock, 1.0, step=0.2, until=lambda: bool(calls["alert_resolved"]))
    await manager.drain_callbacks()
    (resolved,) = calls["alert_resolved"]
    assert resolved.key == fired.key
    assert resolved.resolved_at is not None
    assert resolved.fired_at == fired.fired_at
    assert monitor.active() == []


async def test_stream_down_fires_past_its_bound_and_resolves_on_recovery(
    manager: BalanceManager, sim: SimulatedKraken, clock: ManualClock
) -> None:
    """Dropped and kept silent: stream_down after 20 s; back to streaming: resolved."""
    monitor = monitor_of(manager)
    sim.faults.go_silent(None)
    sim.faults.drop_websocket()
    await drive(clock, 15.0, step=0.5)
    assert not monitor.engine.is_active("stream_down")
    await drive(clock, 30.0, step=0.5, until=lambda: monitor.engine.is_active("stream_down"))
    assert monitor.engine.is_active("stream_down")
    (alert,) = [a for a in monitor.active() if a.rule == "stream_down"]
    assert alert.details["down"] > 20
    sim.faults.clear()
    await drive(clock, 60.0, step=0.5, until=lambda: not monitor.engine.is_active("stream_down"))
    assert not monitor.engine.is_active("stream_down")
    assert [a.rule for a in monitor.recent()] == ["stream_down"]


async def test_repeated_validation_failures_fire(
    manager: BalanceManager, clock: ManualClock
) -> None:
    """Three invalid results within the window fire validation_failures; warnings do not count."""
    monitor = monitor_of(manager)
    bad = ValidationResult(
        (Issue("negative_balance", Severity.ERROR, "BTC", "BTC balance is negative: -1"),), 1
    )
    warning = ValidationResult(
        (Issue("stale_data", Severity.WARNING, "BTC", "BTC value is stale"),), 1
    )
    for _ in range(5):
        monitor.on_validation_failed(warning)
    monitor.on_validation_failed(bad)
    monitor.on_validation_failed(bad)
    assert not monitor.evaluate_now().fired
    monitor.on_validation_failed(bad)
    (fired,) = monitor.evaluate_now().fired
    assert fired.rule == "validation_failures"
    assert fired.details["failures"] == 3
    clock.advance(301.0)
    (resolved,) = monitor.evaluate_now().resolved
    assert resolved.rule == "validation_failures"


async def test_anomaly_from_the_stream_of_changes(
    manager: BalanceManager, sim: SimulatedKraken, clock: ManualClock
) -> None:
    """Twenty-odd ordinary ETH moves, then a withdrawal a hundred times larger: an anomaly."""
    monitor = monitor_of(manager)
    for step in range(24):
        sim.deposit("ETH", "0.1") if step % 2 else sim.withdraw("ETH", "0.05")
        await drive(clock, 0.2, step=0.2)
    await drive(clock, 1.0, step=0.2)
    assert not monitor.engine.is_active("balance_anomaly", "ETH")
    sim.withdraw("ETH", "10")
    await drive(
        clock, 2.0, step=0.2, until=lambda: monitor.engine.is_active("balance_anomaly", "ETH")
    )
    (alert,) = [a for a in monitor.active() if a.rule == "balance_anomaly"]
    assert alert.details["change"] == D("-10")
    assert alert.details["samples"] == 24
    assert alert.details["score"] > 8


async def test_anomaly_judged_right_after_a_restart_from_the_stored_history(
    sim: SimulatedKraken, clock: ManualClock, tmp_path: Path
) -> None:
    """The changes before a restart are in the history file: the anomaly rule of the next
    manager judges the first change it sees against them (it used to start with none)."""
    config = make_config(history_db_path=str(tmp_path / "history.sqlite3"))
    async with build(sim, clock, config) as first:
        await drive(clock, 0.5, step=0.25)
        for step in range(24):
            sim.deposit("ETH", "0.1") if step % 2 else sim.withdraw("ETH", "0.05")
            await drive(clock, 0.2, step=0.2)
        await drive(clock, 1.0, step=0.2)
        assert not monitor_of(first).engine.is_active("balance_anomaly", "ETH")
    async with build(sim, clock, config) as second:
        monitor = monitor_of(second)
        await drive(clock, 0.5, step=0.25)
        sim.withdraw("ETH", "10")
        await drive(
            clock, 2.0, step=0.2, until=lambda: monitor.engine.is_active("balance_anomaly", "ETH")
        )
        (alert,) = [a for a in monitor.active() if a.rule == "balance_anomaly"]
        assert alert.details["change"] == D("-10")
        assert alert.details["samples"] >= 20


async def test_portfolio_drop_from_a_portfolio_source(
    manager: BalanceManager, clock: ManualClock
) -> None:
    """A portfolio source is sampled at each evaluation; a 10 % fall fires portfolio_drop."""
    monitor = monitor_of(manager)
    values = iter([D(10_000), D(9_800), D(9_000)])
    monitor.set_portfolio_source(lambda: next(values))
    assert not monitor.evaluate_now().fired
    clock.advance(60)
    assert not monitor.evaluate_now().fired
    clock.advance(60)
    (fired,) = monitor.evaluate_now().fired
    assert fired.rule == "portfolio_drop"
    assert fired.details["peak"] == D(10_000)
    assert fired.details["value"] == D(9_000)


async def test_portfolio_drop_holds_while_the_value_is_unknown(
    manager: BalanceManager, clock: ManualClock
) -> None:
    """No fresh valuation for an hour is no recovery: the drop stays active (it resolved once
    the peak aged out of the window, announcing a recovery nobody saw)."""
    monitor = monitor_of(manager)
    value: dict[str, D | None] = {"now": D(100_000)}
    monitor.set_portfolio_source(lambda: value["now"])
    monitor.evaluate_now()
    clock.advance(10)
    value["now"] = D(90_000)
    assert [a.rule for a in monitor.evaluate_now().fired] == ["portfolio_drop"]
    value["now"] = None  # prices stale from here on: the value is unknown
    for _ in range(400):
        clock.advance(10)
        assert not [a for a in monitor.evaluate_now().resolved if a.rule == "portfolio_drop"]
    assert monitor.engine.is_active("portfolio_drop", None)
    value["now"] = D(100_000)  # known again, and back up: now it resolves
    clock.advance(10)
    assert [a.rule for a in monitor.evaluate_now().resolved] == ["portfolio_drop"]


async def test_portfolio_samples_keep_only_possible_peaks_and_fire_as_all_would(
    manager: BalanceManager, clock: ManualClock
) -> None:
    """A random walk of 5,000 valuations: the monitor keeps a handful of samples, and the rule
    finds on them exactly the condition (peak, value, drop) it finds on every sample."""
    from collections import deque

    from balance_manager.core.alerts.model import AlertContext
    from balance_manager.core.alerts.rules import PortfolioDrop

    monitor = monitor_of(manager)
    rng = random.Random(5)
    value = {"now": D(100_000)}
    monitor.set_portfolio_source(lambda: value["now"])
    reference = PortfolioDrop(percent=manager.config.alert_portfolio_drop_percent, window=3600)
    every: deque[tuple[float, D]] = deque()
    longest = fired = 0
    for _ in range(5_000):
        clock.advance(1)
        value["now"] += D(rng.randint(-400, 400))
        monitor.evaluate_now()
        now = clock.time()
        every.append((now, value["now"]))
        while every[0][0] < now - 3600:
            every.popleft()
        kept = tuple(monitor._portfolio)  # private: the samples the monitor keeps
        assert list(reference(AlertContext(now, portfolio=kept))) == list(
            reference(AlertContext(now, portfolio=tuple(every)))
        )
        fired += bool(list(reference(AlertContext(now, portfolio=kept))))
        longest = max(longest, len(kept))
    assert fired  # the walk did fall far enough to fire, at times
    assert longest < 600  # of up to 3,601 in the window (one per evaluation) before


async def test_a_stuck_alert_callback_never_blocks_ingest(
    manager: BalanceManager, sim: SimulatedKraken, clock: ManualClock
) -> None:
    """A callback that never returns: balances still flow, later alerts still fire."""
    never = asyncio.Event()
    entered: list[Alert] = []

    async def stuck(alert: Alert) -> None:
        entered.append(alert)
        await never.wait()

    manager.register_callback("alert_fired", stuck)
    monitor = monitor_of(manager)
    sim.withdraw("USD", sim.balances()["USD"] - D(10))
    await drive(clock, 2.0, step=0.2, until=lambda: bool(entered))
    assert len(entered) == 1
    sim.withdraw("BTC", sim.balances()["BTC"] - D("0.1"))
    sim.deposit("USD", "5")
    await drive(clock, 2.0, step=0.2, until=lambda: monitor.engine.is_active("low_balance", "BTC"))
    usd = manager.sync_view().get_balance("USD")
    assert usd is not None
    assert usd.balance == D(15)  # ingest went on while the callback hung
    assert monitor.engine.is_active("low_balance", "BTC")  # XBT in the config, BTC here
    never.set()


async def test_alerts_can_be_turned_off(sim: SimulatedKraken, clock: ManualClock) -> None:
    """alerts_enabled=False: no monitor, no task, no observer."""
    async with build(sim, clock, make_config(alerts_enabled=False)) as started:
        assert started.alerts is None
        assert "validation_failed" not in [
            c["event"] for c in started.get_statistics()["callbacks"]["callbacks"]
        ]


async def test_disabled_alert_rules_do_not_fire(sim: SimulatedKraken, clock: ManualClock) -> None:
    """A rule named in disabled_alerts is listed but never fires."""
    async with build(sim, clock, make_config(disabled_alerts=("low_balance",))) as started:
        monitor = monitor_of(started)
        sim.withdraw("USD", sim.balances()["USD"] - D(1))
        await drive(clock, 2.0, step=0.2)
        assert not monitor.engine.rule("low_balance").enabled
        assert monitor.active() == []


async def test_changes_come_from_the_history_bounded_by_the_lookback(
    manager: BalanceManager,
) -> None:
    """The anomaly rule's changes are read from the manager's history (the one place they
    are kept), at most ``lookback + 1`` of them; hold-only changes (same balance) are none;
    a change is the difference of consecutive balances; read again only when the history
    recorded something."""
    monitor = monitor_of(manager)
    history = manager.history
    for i in range(500):
        history.add(Balance("DOGE", D(i), received_at=1.0 + i))
        history.add(Balance("DOGE", D(i), D(1) if i else D(0), received_at=1.5 + i))
    changes = monitor._changes(["DOGE"])["DOGE"]  # private: the bound is the point
    assert len(changes) == 101
    assert changes[-1] == (500.0, D(1))
    assert all(change == D(1) for _, change in changes)
    assert monitor._changes(["DOGE"])["DOGE"] is changes  # nothing new recorded: not read again
    history.add(Balance("DOGE", D(1000), received_at=600.0))
    assert monitor._changes(["DOGE"])["DOGE"][-1] == (600.0, D(501))


async def test_alerts_reach_the_webhook_without_secrets(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    """With alert_webhook_url set, fired and resolved alerts are POSTed: exact amounts as
    strings, the account's fingerprint, never the key, the secret or the URL's token."""
    bodies: list[bytes] = []

    async def receive(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook/{token}", receive)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # started
    url = f"http://127.0.0.1:{port}/hook/hook-sekrit"
    try:
        async with build(sim, clock, make_config(alert_webhook_url=url)) as started:
            assert "hook-sekrit" not in repr(monitor_of(started))
            sim.withdraw("USD", sim.balances()["USD"] - D("999.5"))
            await drive(clock, 2.0, step=0.2, until=lambda: len(bodies) == 1)
            sim.deposit("USD", "1")
            await drive(clock, 2.0, step=0.2, until=lambda: len(bodies) == 2)
    finally:
        await runner.cleanup()
    fired, resolved = (json.loads(body) for body in bodies)
    assert fired["event"] == "alert_fired"
    assert resolved["event"] == "alert_resolved"
    details = fired["alert"]["details"]
    assert isinstance(details["free"], str)  # the exact digits held, never a float
    assert D(details["free"]) == D("999.5")
    assert details["threshold"] == "1000"
    assert fired["exchange"] == "simulator"
    assert fired["account"] == started.account
    assert resolved["alert"]["resolved_at"] is not None
    for body in bodies:
        text = body.decode()
        assert sim.api_key not in text
        assert sim.api_secret not in text
        assert "hook-sekrit" not in text


async def test_stale_price_from_a_price_source(manager: BalanceManager, clock: ManualClock) -> None:
    """Price confirmations come from a source read at each evaluation; while it fails, its
    last confirmations keep ageing (an alert is never resolved by a broken source)."""
    monitor = monitor_of(manager)
    confirmed = {"BTC/USD": clock.time(), "ETH/USD": clock.time() - 10}
    monitor.set_price_source(lambda: confirmed)
    assert not prices(monitor.evaluate_now().fired)
    clock.advance(295)
    (fired,) = prices(monitor.evaluate_now().fired)
    assert fired.key == ("stale_price", "ETH/USD")

    def broken() -> dict[str, float]:
        raise RuntimeError("no prices")

    monitor.set_price_source(lambda: confirmed)
    monitor.evaluate_now()
    monitor._price_source = broken  # private: break the source without forgetting its news
    assert not prices(monitor.evaluate_now().resolved)
    clock.advance(10)  # (balances go stale too, unconfirmed while time jumps: not looked at)
    (later,) = prices(monitor.evaluate_now().fired)
    assert later.key == ("stale_price", "BTC/USD")
    assert monitor.engine.is_active("stale_price", "ETH/USD")

    confirmed.update({"BTC/USD": clock.time(), "ETH/USD": clock.time()})
    monitor.set_price_source(lambda: confirmed)
    assert len(prices(monitor.evaluate_now().resolved)) == 2
    monitor.set_price_source(None)
    assert not prices(monitor.evaluate_now().fired)


def prices(alerts: tuple[Alert, ...]) -> list[Alert]:
    """The stale_price alerts among ``alerts``."""
    return [alert for alert in alerts if alert.rule == "stale_price"]


class _SteppedClock(ManualClock):
    """A manual clock whose wall time can be stepped (as NTP does); monotonic time cannot."""

    step = 0.0

    def time(self) -> float:
        return super().time() + self.step


@pytest.mark.parametrize("step", [-3600.0, 3600.0])
async def test_a_wall_clock_step_neither_hides_nor_invents_an_outage(step: float) -> None:
    """The outage is timed on the monotonic clock: 2 s down with the wall clock stepped an
    hour ahead is not an outage, and 122 s down with it stepped an hour back is one."""
    clock = _SteppedClock()
    monitor = AlertMonitor(StreamOnlyManager(clock, make_config()), lambda event, alert: None)  # type: ignore[arg-type]  # a stand-in
    monitor.set_mode(ServingMode.REST)  # the stream is lost
    clock.advance(2)
    clock.step = step
    monitor.evaluate_now()
    assert not monitor.engine.is_active("stream_down")
    clock.advance(120)
    monitor.evaluate_now()
    assert monitor.engine.is_active("stream_down")
