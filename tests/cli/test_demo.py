"""The demo's engine: waiting, faults, the event feed, the bot runner, and whole runs."""

from __future__ import annotations

import asyncio
import logging
import random
from decimal import Decimal
from typing import Any, cast

import pytest

from balance_manager.cli.demo import (
    DEMO_OVERRIDES,
    DemoOptions,
    EventFeed,
    StrategyRunner,
    _warnings_into,
    apply_fault,
    demo_config,
    run_demo,
    sleep_or_stop,
)
from balance_manager.cli.demo_plan import (
    EventLog,
    FaultStep,
    OrderStrategy,
    PairInfo,
    PlaceOrder,
    exit_code_for,
)
from balance_manager.cli.demo_view import Frame
from balance_manager.cli.main import main
from balance_manager.config import BalanceManagerConfig
from balance_manager.core.freshness import ServingMode
from balance_manager.core.models import Balance, BalanceChange, Source
from balance_manager.core.validation.rules import Issue, Severity
from balance_manager.core.validation.validator import ValidationResult
from balance_manager.credentials import Credentials
from balance_manager.exceptions import ConfigError, ExchangeError
from balance_manager.kraken.protocol.assets import AssetNames
from balance_manager.simulator import SimulatedKraken
from balance_manager.simulator.model.faults import FaultKind, Faults
from balance_manager.testing import ManualClock

BTC_USD = PairInfo("BTC/USD", "BTC", "USD", Decimal("0.0001"), 1)


class RecordingView:
    """A view that keeps what it is given."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.events: list[str] = []
        self.started = 0
        self.stopped = 0

    def start(self) -> None:
        self.started += 1

    def update(self, frame: Frame) -> None:
        self.frames.append(frame)

    def event(self, line: str) -> None:
        self.events.append(line)

    def stop(self) -> None:
        self.stopped += 1


def make_feed() -> tuple[EventFeed, RecordingView]:
    view = RecordingView()
    return EventFeed(EventLog(), view, lambda: 1.5), view


# -- waiting -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_sleep_or_stop_sleeps_on_the_clock(clock: ManualClock) -> None:
    """Without a stop it returns False once the clock has moved past the delay."""
    stop = asyncio.Event()
    task = asyncio.ensure_future(sleep_or_stop(clock, 2.0, stop))
    await clock.run_for(1.0)
    assert not task.done()
    await clock.run_for(1.5)
    assert await asyncio.wait_for(task, 1.0) is False
    assert clock.pending_sleepers == 0


@pytest.mark.asyncio
async def test_sleep_or_stop_wakes_on_stop(clock: ManualClock) -> None:
    """Setting stop ends the wait at once, without moving the clock, and says so."""
    stop = asyncio.Event()
    task = asyncio.ensure_future(sleep_or_stop(clock, 60.0, stop))
    await asyncio.sleep(0)
    stop.set()
    assert await asyncio.wait_for(task, 1.0) is True
    assert clock.pending_sleepers == 0
    assert await sleep_or_stop(clock, 60.0, stop) is True


# -- configuration and options -------------------------------------------------------------


def test_demo_config_uses_short_timings_and_no_credentials() -> None:
    """The user's options are kept except the demo's: short timeouts, memory history, no keys."""
    user = BalanceManagerConfig(
        cache_max_size=7,
        credentials=Credentials.of(
            "key-123456789",
            "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2Vjcg==",
        ),
    )
    config = demo_config(user)
    assert config.cache_max_size == 7
    assert config.credentials is None
    assert config.history_db_path is None
    assert config.enable_validation is True
    assert config.websocket_timeout == DEMO_OVERRIDES["websocket_timeout"]
    assert config.websocket_ping_interval < config.websocket_timeout


def test_demo_options_refuse_non_positive_times() -> None:
    """A zero duration or tick is refused with the option's name."""
    with pytest.raises(ValueError, match="duration"):
        DemoOptions(duration=0)
    with pytest.raises(ValueError, match="tick"):
        DemoOptions(tick=-1)


@pytest.mark.parametrize(
    "value", [Decimal("sNaN"), 10**400, 1e-9, "5"], ids=["sNaN", "int-1e400", "1ns", "text"]
)
def test_demo_options_refuse_absurd_times_by_name(value: object) -> None:
    """A duration that is NaN, astronomically long, a nanosecond or text is a ConfigError."""
    with pytest.raises(ConfigError) as info:
        DemoOptions(duration=value)  # type: ignore[arg-type]  # bad on purpose
    assert info.value.option == "duration"


# -- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "kinds"),
    [
        (FaultStep(1.0, "drop_websocket", "d"), [FaultKind.WS_DROP]),
        (FaultStep(1.0, "silence_websocket", "s", seconds=3.0), [FaultKind.WS_SILENCE]),
        (FaultStep(1.0, "outage", "o"), [FaultKind.HTTP_ERROR, FaultKind.WS_SILENCE]),
    ],
    ids=["drop", "silence", "outage"],
)
def test_each_step_injects_its_faults(step: FaultStep, kinds: list[FaultKind]) -> None:
    """Each scheduled step injects the simulator faults it names."""
    faults = Faults(lambda: 0.0)
    apply_fault(faults, step)
    assert [f.kind for f in faults.active()] == kinds
    if step.action == "silence_websocket":
        assert faults.active()[0].seconds == 3.0
    if step.action == "outage":
        http, silence = faults.active()
        assert http.times is None
        assert silence.seconds is None


def test_clear_step_removes_every_fault() -> None:
    """The last step leaves no fault active."""
    faults = Faults(lambda: 0.0)
    apply_fault(faults, FaultStep(1.0, "outage", "o"))
    apply_fault(faults, FaultStep(2.0, "clear", "c"))
    assert faults.active() == []


# -- the event feed ------------------------------------------------------------------------


def _balance(balance: str, hold: str = "0", source: Source = Source.WEBSOCKET) -> Balance:
    return Balance(asset="BTC", balance=Decimal(balance), hold_trade=Decimal(hold), source=source)


def test_feed_logs_balance_and_hold_changes_not_first_values() -> None:
    """Balance changes show old, new and delta; hold changes show free; first values are silent."""
    feed, view = make_feed()
    feed.on_balance_update(BalanceChange(new=_balance("1.2435")))
    feed.on_balance_update(BalanceChange(new=_balance("1.2519"), old=_balance("1.2435")))
    feed.on_balance_update(
        BalanceChange(new=_balance("1.2519", "0.0003", Source.REST), old=_balance("1.2519"))
    )
    feed.on_balance_update(BalanceChange(new=_balance("1.2"), old=_balance("1.2519")))
    assert view.events == [
        "[   1.5s] BTC balance 1.2435 → 1.2519 (+0.0084) via websocket",
        "[   1.5s] BTC held 0 → 0.0003, free 1.2516 via rest",
        "[   1.5s] BTC balance 1.2519 → 1.2 (-0.0519) via websocket",
    ]
    assert feed.log.lines() == view.events


def test_feed_writes_amounts_plain_at_the_asset_display_decimals() -> None:
    """REST's 0E-10 and ten-decimal amounts read like the table: BTC at its 5 display decimals."""
    view = RecordingView()
    feed = EventFeed(EventLog(), view, lambda: 1.5, decimals=AssetNames().display_decimals)
    rest = _balance("1.2435000000", "0E-10", Source.REST)
    held = _balance("1.2435000000", "0.0003000000", Source.WEBSOCKET)
    feed.on_balance_update(BalanceChange(new=held, old=rest))
    feed.on_balance_update(BalanceChange(new=_balance("1.24350001", "0.0003"), old=held))
    assert [line.split("] ", 1)[1] for line in view.events] == [
        "BTC held 0.00000 → 0.00030, free 1.24320 via websocket",
        "BTC balance 1.24350 → 1.24350001 (+0.00000001) via websocket",
    ]


def test_feed_logs_source_and_stream_changes_once() -> None:
    """Source changes are logged; repeated stream states are not."""
    feed, view = make_feed()
    feed.on_source_changed({"source": "rest", "previous": "websocket"})
    state = {"state": "streaming", "reason": "snapshot received", "holds_live": False}
    feed.on_connection_state(state)
    feed.on_connection_state({**state, "reason": "system online"})
    feed.on_connection_state({**state, "holds_live": True, "reason": "holds live"})
    assert [line.split("] ", 1)[1] for line in view.events] == [
        "source: serving from rest (fallback; was websocket)",
        "stream: streaming (snapshot received)",
        "stream: streaming, holds live (holds live)",
    ]


def test_feed_tells_start_up_fallback_and_recovery_apart() -> None:
    """Nothing → REST at start is no recovery, nor is the stream's first arrival; a return is."""
    feed, view = make_feed()
    feed.on_source_changed({"source": "rest", "previous": "cache"})
    feed.on_source_changed({"source": "websocket", "previous": "rest"})
    feed.on_source_changed({"source": "rest", "previous": "websocket"})
    feed.on_source_changed({"source": "cache", "previous": "rest"})
    feed.on_source_changed({"source": "websocket", "previous": "cache"})
    assert [line.split("] ", 1)[1] for line in view.events] == [
        "source: serving from rest (start-up: first source up)",
        "source: serving from websocket (stream up; was rest)",
        "source: serving from rest (fallback; was websocket)",
        "source: serving from cache (was rest)",
        "source: serving from websocket (recovered; was cache)",
    ]


def test_feed_reads_a_start_without_a_previous_source() -> None:
    """A manager that reports the start as previous=None is read the same way."""
    feed, view = make_feed()
    feed.on_source_changed({"source": "websocket", "previous": None})
    assert view.events[-1].endswith("source: serving from websocket (start-up: first source up)")


def test_feed_reports_validation_findings_when_they_change() -> None:
    """Periodic validation results are logged when the findings change, and once when cleared."""
    feed, view = make_feed()
    stale = Issue("stale_data", Severity.WARNING, "BTC", "BTC is 4 s old")
    result = ValidationResult((stale, Issue("stale_data", Severity.WARNING, "USD", "old")), 2)
    feed.validation_report(ValidationResult.ok(2))
    feed.validation_report(result)
    feed.validation_report(result)
    feed.validation_report(ValidationResult.ok(2))
    feed.on_validation_failed(ValidationResult((stale,), 1))
    texts = [line.split("] ", 1)[1] for line in view.events]
    assert texts == [
        "validation: warning stale_data on BTC, USD",
        "validation: every balance is valid again",
        "validation: WARNING stale_data BTC: BTC is 4 s old",
    ]


def test_package_warnings_go_to_the_event_log() -> None:
    """While a run lasts, the package's warnings become event lines (and stop afterwards)."""
    feed, view = make_feed()
    with _warnings_into(feed):
        logging.getLogger("balance_manager.service.manager").warning(
            "REST refresh failed: %s", "520"
        )
        logging.getLogger("balance_manager.service.manager").info("not shown")
    logging.getLogger("balance_manager.service.manager").warning("after the run")
    assert view.events == ["[   1.5s] warning: REST refresh failed: 520"]


# -- the bot runner ------------------------------------------------------------------------


class FakePort:
    """An exchange that records orders; ``refuse`` makes it refuse them."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.placed: list[PlaceOrder] = []
        self.cancelled: list[str] = []
        self.open: set[str] = set()

    def price(self, symbol: str) -> Decimal:
        return Decimal("60000.0")

    def place_limit(self, order: PlaceOrder) -> str | None:
        if self.refuse:
            raise ExchangeError("EService:Unavailable")
        self.placed.append(order)
        order_id = f"O{len(self.placed)}"
        self.open.add(order_id)
        return order_id

    def cancel(self, order_id: str) -> None:
        self.cancelled.append(order_id)
        self.open.discard(order_id)

    def is_open(self, order_id: str) -> bool:
        return order_id in self.open


class FakeManager:
    """Just what the bot asks the manager: the serving mode and free amounts."""

    def __init__(self, mode: ServingMode = ServingMode.WEBSOCKET) -> None:
        self.serving_mode = mode
        self.reads: list[str] = []

    async def get_balance(self, asset: str) -> Balance | None:
        self.reads.append(asset)
        amounts = {"BTC": "2", "USD": "1000000"}
        if asset not in amounts:
            return None
        return Balance(asset=asset, balance=Decimal(amounts[asset]))


def make_runner(
    port: FakePort, manager: FakeManager, **options: Any
) -> tuple[StrategyRunner, RecordingView]:
    feed, view = make_feed()
    strategy = OrderStrategy([BTC_USD], random.Random(5), **options)
    return StrategyRunner(strategy, port, cast(Any, manager), feed), view


@pytest.mark.asyncio
async def test_runner_reads_free_through_the_manager_and_places_orders() -> None:
    """The bot asks the manager for free amounts, then places orders and keeps their ids."""
    port, manager = FakePort(), FakeManager()
    runner, view = make_runner(port, manager, cancel_probability=0.0)
    await runner.step()
    await runner.step()
    assert sorted(set(manager.reads)) == ["BTC", "USD"]
    assert runner.placed == 2
    assert runner.open_orders == ["O1", "O2"]
    assert all("strategy: " in line for line in view.events)


@pytest.mark.asyncio
async def test_runner_cancels_and_forgets_closed_orders() -> None:
    """Orders filled elsewhere are forgotten; when full, one is cancelled."""
    port, manager = FakePort(), FakeManager()
    runner, _ = make_runner(port, manager, max_open=1, cancel_probability=0.0)
    await runner.step()
    port.open.clear()  # filled by the market
    await runner.step()
    assert runner.open_orders == ["O2"]
    await runner.step()
    assert port.cancelled == ["O2"]
    assert runner.cancelled == 1
    assert runner.open_orders == ["O3"]


@pytest.mark.asyncio
async def test_runner_counts_refused_orders() -> None:
    """An order the exchange refuses is counted and logged, not raised."""
    port, manager = FakePort(refuse=True), FakeManager()
    runner, view = make_runner(port, manager)
    await runner.step()
    assert runner.refused == 1
    assert runner.placed == 0
    assert view.events[-1].endswith("strategy: refused by the exchange: EService:Unavailable")


@pytest.mark.asyncio
async def test_runner_pauses_while_balances_are_stale() -> None:
    """While the manager serves only cached values the bot does not trade, then resumes."""
    port, manager = FakePort(), FakeManager(ServingMode.CACHE)
    runner, view = make_runner(port, manager)
    await runner.step()
    await runner.step()
    assert port.placed == []
    manager.serving_mode = ServingMode.REST
    await runner.step()
    assert len(port.placed) == 1
    texts = [line.split("] ", 1)[1] for line in view.events]
    assert texts[:2] == [
        "strategy: paused (balances are not confirmed by any source)",
        "strategy: resumed",
    ]


# -- whole runs ----------------------------------------------------------------------------


@pytest.mark.network
@pytest.mark.asyncio
async def test_a_stopped_demo_still_checks_and_exits_130() -> None:
    """A demo stopped at once (Ctrl-C) still checks, closes its view, and reports 130."""
    view = RecordingView()
    stop = asyncio.Event()
    stop.set()
    summary = await asyncio.wait_for(
        run_demo(DemoOptions(duration=30, seed=3), view, stop=stop), timeout=20
    )
    assert summary.interrupted
    assert summary.mismatches == ()
    assert summary.assets_checked is not None
    assert summary.assets_checked >= 6
    assert exit_code_for(summary) == 130
    assert (view.started, view.stopped) == (1, 1)
    assert view.frames
    assert view.frames[-1].phase == "final check"
    assert any("checking the manager against the exchange" in line for line in view.events)
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


@pytest.mark.network
def test_demo_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    """`demo --duration 4 --plain` injects every fault, recovers, fires and resolves its
    low-balance alert, and matches the exchange."""
    assert main(["demo", "--duration", "4", "--seed", "1", "--plain"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "fault: WebSocket dropped",
        "fault: WebSocket silent",
        "fault: REST answers HTTP 520",
        "fault: all faults cleared",
        "source: serving from rest (fallback; was websocket)",
        "(recovered; was ",
        "strategy: ",
        "Summary (ran for ",
        "OK: ",
        "script: withdraw EUR to below its low-balance alert threshold (1000)",
        "alert: warning low_balance EUR: EUR free 500 is below 1000",
        "alert resolved: low_balance EUR",
    ):
        assert expected in out, expected
    assert "Traceback" not in out
    assert SimulatedKraken(seed=1).api_secret not in out  # the demo's exchange, same seed
