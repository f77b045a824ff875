"""The demo's decisions without I/O: fault schedule, strategy, event log, final check, summary."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from balance_manager.cli.demo_plan import (
    EXIT_INTERRUPTED,
    AlertScript,
    CancelOrder,
    DemoSummary,
    EventLog,
    FaultScheduler,
    FaultStep,
    Mismatch,
    OrderStrategy,
    PairInfo,
    PlaceOrder,
    alert_script,
    compare_with_exchange,
    consistent_counters,
    exit_code_for,
    fault_schedule,
    format_amount,
    format_summary,
)
from balance_manager.core.models import Balance, Source
from balance_manager.exceptions import ConfigError

BTC_USD = PairInfo("BTC/USD", "BTC", "USD", Decimal("0.0001"), 1)
DOT_USD = PairInfo("DOT/USD", "DOT", "USD", Decimal("0.5"), 4)
PRICES = {"BTC/USD": Decimal("60000.0"), "DOT/USD": Decimal("7.5000")}
RICH = {"BTC": Decimal(10), "USD": Decimal(1_000_000), "DOT": Decimal(1000)}


# -- fault schedule ----------------------------------------------------------------------


def test_schedule_follows_the_story() -> None:
    """30 s: WebSocket dropped at 25 %, silent at 40 %, both down at 65 %, all clear at 80 %."""
    steps = fault_schedule(30.0, websocket_timeout=2.0)
    assert [(s.at, s.action) for s in steps] == [
        (7.5, "drop_websocket"),
        (12.0, "silence_websocket"),
        (19.5, "outage"),
        (24.0, "clear"),
    ]
    assert steps[1].seconds == pytest.approx(3.0)


def test_silence_outlasts_the_websocket_timeout() -> None:
    """In a short run the silence still outlasts websocket_timeout, so the fallback shows."""
    silence = fault_schedule(4.0, websocket_timeout=2.0)[1]
    assert silence.seconds == pytest.approx(3.0)


@settings(max_examples=200)
@given(
    duration=st.floats(min_value=0.01, max_value=1e6, allow_nan=False),
    timeout=st.floats(min_value=0.01, max_value=100, allow_nan=False),
)
def test_schedule_is_ordered_within_the_run_and_ends_cleared(
    duration: float, timeout: float
) -> None:
    """Every schedule is in time order, inside the run, and its last step clears every fault."""
    steps = fault_schedule(duration, websocket_timeout=timeout)
    times = [s.at for s in steps]
    assert times == sorted(times)
    assert all(0 < t < duration for t in times)
    assert steps[-1].action == "clear"
    silence = next(s for s in steps if s.action == "silence_websocket")
    assert silence.seconds is not None
    assert silence.seconds > timeout


def test_schedule_refuses_a_non_positive_duration() -> None:
    """A run of zero seconds has no schedule."""
    with pytest.raises(ValueError, match="duration"):
        fault_schedule(0, websocket_timeout=2.0)


@pytest.mark.parametrize(
    "value", [Decimal("sNaN"), 10**400, "30"], ids=["sNaN", "int-1e400", "text"]
)
def test_schedule_refuses_absurd_durations_by_name(value: object) -> None:
    """A NaN, 10**400 or text duration is a ConfigError naming ``duration``."""
    with pytest.raises(ConfigError) as info:
        fault_schedule(value, websocket_timeout=2.0)  # type: ignore[arg-type]  # on purpose
    assert info.value.option == "duration"


def test_scheduler_hands_out_each_step_once_when_due() -> None:
    """Steps come out in time order, each exactly once, only when their time has come."""
    steps = [FaultStep(2.0, "clear", "c"), FaultStep(1.0, "drop_websocket", "d")]
    scheduler = FaultScheduler(steps)
    assert scheduler.phase == "normal"
    assert scheduler.due(0.5) == []
    assert [s.action for s in scheduler.due(1.0)] == ["drop_websocket"]
    assert scheduler.phase == "drop websocket"
    assert scheduler.due(1.5) == []
    assert [s.action for s in scheduler.due(10.0)] == ["clear"]
    assert scheduler.due(20.0) == []
    assert scheduler.phase == "recovering"
    assert scheduler.remaining == 0
    assert [s.at for s in scheduler.fired] == [1.0, 2.0]


def test_a_late_tick_fires_every_overdue_step() -> None:
    """A tick that comes late returns every step it skipped over, in order."""
    scheduler = FaultScheduler(fault_schedule(10.0, websocket_timeout=1.0))
    assert [s.action for s in scheduler.due(9.0)] == [
        "drop_websocket",
        "silence_websocket",
        "outage",
        "clear",
    ]


# -- strategy ----------------------------------------------------------------------------


def test_strategy_places_an_order_off_the_price() -> None:
    """With nothing open, the bot places one limit order a few basis points off the price."""
    strategy = OrderStrategy([BTC_USD], random.Random(1))
    actions = strategy.decide(PRICES, RICH, [])
    assert len(actions) == 1
    order = actions[0]
    assert isinstance(order, PlaceOrder)
    distance = abs(order.price - PRICES["BTC/USD"]) / PRICES["BTC/USD"]
    assert Decimal("0.0001") <= distance <= Decimal("0.0026")
    if order.side == "buy":
        assert order.price < PRICES["BTC/USD"]
    else:
        assert order.price > PRICES["BTC/USD"]
    assert order.volume % BTC_USD.ordermin == 0
    assert order.price == order.price.quantize(Decimal("0.1"))


def test_strategy_cancels_when_full() -> None:
    """With max_open orders open, the bot cancels one of them before placing another."""
    strategy = OrderStrategy([BTC_USD], random.Random(2), max_open=2)
    actions = strategy.decide(PRICES, RICH, ["A", "B"])
    assert isinstance(actions[0], CancelOrder)
    assert actions[0].order_id in {"A", "B"}
    assert len(actions) == 2
    assert isinstance(actions[1], PlaceOrder)


def test_strategy_trades_only_what_is_free() -> None:
    """Without free quote the bot sells; with nothing free at all it places nothing."""
    strategy = OrderStrategy([BTC_USD], random.Random(3))
    only_btc = {"BTC": Decimal(1), "USD": Decimal(0)}
    for _ in range(20):
        for action in strategy.decide(PRICES, only_btc, []):
            assert isinstance(action, PlaceOrder)
            assert action.side == "sell"
    assert strategy.decide(PRICES, {}, []) == []


def test_strategy_skips_a_pair_without_price() -> None:
    """A pair whose price is unknown is not traded."""
    strategy = OrderStrategy([BTC_USD], random.Random(4))
    assert strategy.decide({}, RICH, []) == []


@settings(max_examples=200)
@given(
    seed=st.integers(0, 2**32),
    usd=st.decimals(min_value=0, max_value=10**6, places=4),
    btc=st.decimals(min_value=0, max_value=10, places=8),
    dot=st.decimals(min_value=0, max_value=10**4, places=4),
    open_count=st.integers(0, 6),
)
def test_strategy_never_spends_more_than_is_free(
    seed: int, usd: Decimal, btc: Decimal, dot: Decimal, open_count: int
) -> None:
    """Whatever the seed and balances, no order costs more than the free amount it draws on."""
    strategy = OrderStrategy([BTC_USD, DOT_USD], random.Random(seed), max_open=4)
    free = {"USD": usd, "BTC": btc, "DOT": dot}
    open_orders = [f"O{i}" for i in range(open_count)]
    actions = strategy.decide(PRICES, free, open_orders)
    placed = [a for a in actions if isinstance(a, PlaceOrder)]
    cancelled = [a for a in actions if isinstance(a, CancelOrder)]
    assert len(placed) <= 1
    assert len(cancelled) <= 1
    assert all(c.order_id in open_orders for c in cancelled)
    if open_count - len(cancelled) >= 4:
        assert placed == []
    for order in placed:
        base, quote = order.symbol.split("/")
        if order.side == "buy":
            assert order.volume * order.price <= free[quote]
        else:
            assert order.volume <= free[base]


def test_strategy_is_reproducible() -> None:
    """The same seed gives the same decisions."""
    runs = []
    for _ in range(2):
        strategy = OrderStrategy([BTC_USD, DOT_USD], random.Random(42))
        runs.append([strategy.decide(PRICES, RICH, ["X"]) for _ in range(10)])
    assert runs[0] == runs[1]


def test_strategy_checks_its_options() -> None:
    """No pairs, or offsets the wrong way round, are refused."""
    with pytest.raises(ValueError, match="pair"):
        OrderStrategy([], random.Random(0))
    with pytest.raises(ValueError, match="offset"):
        OrderStrategy([BTC_USD], random.Random(0), min_offset_bp=10, max_offset_bp=5)


def test_order_description_is_exact() -> None:
    """An order reads as side, exact volume (no noise zeros), pair and price at its tick."""
    order = PlaceOrder("BTC/USD", "buy", Decimal("0.00020"), Decimal("59950.0"))
    assert order.describe() == "buy 0.0002 BTC/USD @ 59950.0"


# -- event log -------------------------------------------------------------------------------


def test_event_log_keeps_the_newest_lines() -> None:
    """Older lines scroll away; the total still counts them."""
    log = EventLog(maxlen=2)
    assert log.add(1.0, "one") == "[   1.0s] one"
    log.add(2.5, "two")
    log.add(3.0, "three")
    assert log.lines() == ["[   2.5s] two", "[   3.0s] three"]
    assert len(log) == 2
    assert log.total == 3


# -- final check --------------------------------------------------------------------------------


def _balance(asset: str, balance: str, hold: str = "0") -> Balance:
    return Balance(
        asset=asset, balance=Decimal(balance), hold_trade=Decimal(hold), source=Source.WEBSOCKET
    )


def test_matching_balances_have_no_mismatch() -> None:
    """Equal amounts (trailing zeros aside) match; a zero the exchange does not list is fine."""
    mine = {
        "BTC": _balance("BTC", "1.2435000000", "0.0003"),
        "USD": _balance("USD", "10.00"),
        "SOL": _balance("SOL", "0"),
    }
    truth = {"BTC": Decimal("1.2435"), "USD": Decimal("10")}
    holds = {"BTC": Decimal("0.00030")}
    assert compare_with_exchange(mine, truth, holds) == []


def test_each_difference_is_reported() -> None:
    """A wrong balance, a wrong hold and a missing asset are each reported with both values."""
    mine = {"BTC": _balance("BTC", "1.0", "0.1"), "USD": _balance("USD", "5", "1")}
    truth = {"BTC": Decimal("1.5"), "USD": Decimal("5"), "ETH": Decimal("2")}
    holds = {"BTC": Decimal("0.1"), "USD": Decimal("2")}
    found = {(m.asset, m.field) for m in compare_with_exchange(mine, truth, holds)}
    assert found == {
        ("BTC", "balance"),
        ("BTC", "free"),
        ("ETH", "balance"),
        ("USD", "hold_trade"),
        ("USD", "free"),
    }
    missing = Mismatch("ETH", "balance", None, Decimal("2"))
    assert str(missing) == "ETH balance: manager missing, exchange 2"


@given(
    amounts=st.dictionaries(
        st.sampled_from(["BTC", "ETH", "USD", "DOT"]),
        st.tuples(
            st.decimals(min_value=0, max_value=10**9, places=10),
            st.decimals(min_value=0, max_value=10**9, places=10),
        ),
    )
)
def test_a_manager_equal_to_the_exchange_always_matches(
    amounts: dict[str, tuple[Decimal, Decimal]],
) -> None:
    """Balances built from the exchange's own numbers never mismatch."""
    mine = {a: _balance(a, str(b), str(h)) for a, (b, h) in amounts.items()}
    truth = {a: b for a, (b, _) in amounts.items()}
    holds = {a: h for a, (_, h) in amounts.items() if h}
    assert compare_with_exchange(mine, truth, holds) == []


# -- summary -------------------------------------------------------------------------------------


STATS = {
    "updates": 36,
    "rest_api_calls": 10,
    "websocket_messages": 53,
    "reconnects": 3,
    "fallbacks": 2,
    "recoveries": 3,
    "validation_failures": 0,
    "callback_errors": 0,
    "cache": {"hits": 1},
}


def test_summary_of_a_good_run() -> None:
    """A run without mismatch lists its figures and ends with OK and the number of assets."""
    summary = DemoSummary(
        elapsed=30.2, statistics=STATS, faults=4, orders_placed=5, assets_checked=6
    )
    lines = format_summary(summary)
    assert lines[0] == "Summary (ran for 30.2 s)"
    assert any(line.split() == ["REST", "calls:", "10"] for line in lines)
    assert any(line.split() == ["fallbacks:", "2"] for line in lines)
    assert any("5 placed" in line for line in lines)
    assert lines[-1] == "OK: 6 assets match the exchange (balance, hold and free, exact)"
    assert exit_code_for(summary) == 0


def test_summary_never_counts_a_start_as_a_recovery() -> None:
    """A recovery follows a fallback: the start-up (nothing → a source) is not one."""
    started = {**STATS, "fallbacks": 0, "recoveries": 1}
    lines = format_summary(DemoSummary(elapsed=4.0, statistics=started))
    assert any(line.split() == ["recoveries:", "0"] for line in lines)
    assert any(line.split() == ["fallbacks:", "0"] for line in lines)
    assert consistent_counters(STATS)["recoveries"] == 2  # 2 fallbacks, 3 arrivals at the stream
    assert consistent_counters({"fallbacks": 2, "recoveries": 1})["recoveries"] == 1
    assert "cache" not in consistent_counters(STATS)  # only the integer counters


def test_summary_of_a_mismatch() -> None:
    """A mismatch is listed line by line and makes the exit code 1, even when interrupted."""
    mismatch = Mismatch("BTC", "balance", Decimal("1"), Decimal("2"))
    summary = DemoSummary(
        elapsed=3.0,
        statistics=STATS,
        assets_checked=6,
        mismatches=(mismatch,),
        settle_seconds=10.0,
        interrupted=True,
    )
    lines = format_summary(summary)
    assert lines[0] == "Summary (interrupted after 3.0 s)"
    assert lines[-2].startswith("MISMATCH: 1 difference(s)")
    assert lines[-1] == "  BTC balance: manager 1, exchange 2"
    assert exit_code_for(summary) == 1


def test_interrupted_run_exits_130() -> None:
    """A run stopped by Ctrl-C without mismatch exits 130; a watch has no check line."""
    summary = DemoSummary(elapsed=1.0, statistics={}, interrupted=True)
    assert exit_code_for(summary) == EXIT_INTERRUPTED == 130
    assert not any(line.startswith(("OK", "MISMATCH")) for line in format_summary(summary))


def test_amounts_are_written_without_exponent() -> None:
    """Zero with ten decimals is written out, not as 0E-10."""
    assert format_amount(Decimal("0E-10")) == "0.0000000000"
    assert format_amount(Decimal("1.2435")) == "1.2435"


# -- the alert script ---------------------------------------------------------------------------


def test_alert_script_drains_then_refills_before_the_first_fault() -> None:
    """Drain at 5 %, refill at 15 % (22 % at the latest): both before the faults at 25 %."""
    drain, refill = alert_script(40.0, asset="EUR", threshold=Decimal(1000))
    assert (drain.at, drain.action) == (2.0, "drain")
    assert (refill.at, refill.action, refill.latest) == (6.0, "refill", pytest.approx(8.8))
    assert "EUR" in drain.description
    assert "1000" in drain.description
    first_fault = fault_schedule(40.0, websocket_timeout=2.0)[0].at
    assert refill.latest is not None
    assert refill.latest < first_fault


def test_the_refill_waits_for_the_alert_until_its_latest_time() -> None:
    """The refill is held back while the alert has not fired, then goes anyway at ``latest``."""
    script = AlertScript(alert_script(40.0, asset="EUR", threshold=Decimal(1000)))
    assert script.due(1.0, alert_active=False) == []
    assert [s.action for s in script.due(2.0, alert_active=False)] == ["drain"]
    assert script.due(6.0, alert_active=False) == []
    assert script.due(8.7, alert_active=False) == []
    assert [s.action for s in script.due(8.8, alert_active=False)] == ["refill"]
    assert [s.action for s in script.done] == ["drain", "refill"]

    quick = AlertScript(alert_script(40.0, asset="EUR", threshold=Decimal(1000)))
    assert [s.action for s in quick.due(6.0, alert_active=True)] == ["drain", "refill"]
    assert quick.due(100.0, alert_active=True) == []
