"""Tests of balance_manager.service.dispatch: callbacks delivered off the publisher's path."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

from balance_manager.core.models import Balance, BalanceChange
from balance_manager.exceptions import ConfigError, UnknownEventError
from balance_manager.service.dispatch import EventDispatcher

EVENTS = ("balance_update", "balance_change")


@pytest_asyncio.fixture
async def dispatcher() -> AsyncIterator[EventDispatcher]:
    events = EventDispatcher(EVENTS)
    yield events
    await events.aclose(grace=1.0)


def change(asset: str, old: str | None, new: str) -> BalanceChange:
    before = None if old is None else Balance(asset=asset, balance=Decimal(old))
    return BalanceChange(new=Balance(asset=asset, balance=Decimal(new)), old=before)


@pytest.mark.asyncio
async def test_seed_style_async_callback_receives_the_payload(
    dispatcher: EventDispatcher,
) -> None:
    """The seed's `async def on_balance_update(balance_data)` is awaited with the payload."""
    seen: list[tuple[str, Decimal]] = []

    async def on_balance_update(balance_data: BalanceChange) -> None:
        await asyncio.sleep(0)
        seen.append((balance_data["asset"], balance_data["balance"]))

    dispatcher.register_callback("balance_update", on_balance_update)
    dispatcher.publish("balance_update", change("USDT", None, "100.5"))
    assert seen == []  # publish only queues
    await dispatcher.drain()
    assert seen == [("USDT", Decimal("100.5"))]


@pytest.mark.asyncio
async def test_publish_never_runs_a_callback_inline(dispatcher: EventDispatcher) -> None:
    """publish() returns before any callback runs, even a sync one."""
    ran: list[int] = []
    dispatcher.register_callback("balance_update", ran.append)
    for n in range(3):
        dispatcher.publish("balance_update", n)
        assert ran == []
    await dispatcher.drain()
    assert ran == [0, 1, 2]


@pytest.mark.asyncio
async def test_a_slow_callback_delays_only_itself(dispatcher: EventDispatcher) -> None:
    """A callback stuck awaiting does not hold up another callback of the same event."""
    release = asyncio.Event()
    fast: list[int] = []

    async def stuck(payload: Any) -> None:
        await release.wait()

    dispatcher.register_callback("balance_update", stuck)
    dispatcher.register_callback("balance_update", fast.append)
    for n in range(5):
        dispatcher.publish("balance_update", n)
    for _ in range(20):
        await asyncio.sleep(0)
    assert fast == [0, 1, 2, 3, 4]
    assert dispatcher.get_statistics()["pending"] == 4  # stuck's queue; one in progress
    release.set()
    await dispatcher.drain()


@pytest.mark.asyncio
async def test_failing_callbacks_are_isolated_logged_and_counted(
    dispatcher: EventDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising callback (sync or async) never stops the others nor its own next event."""
    ran: list[str] = []
    calls = {"sync": 0}

    def broken_sync(payload: Any) -> None:
        calls["sync"] += 1
        raise ValueError("sync bug")

    async def broken_async(payload: Any) -> None:
        raise RuntimeError("async bug")

    dispatcher.register_callback("balance_update", broken_sync)
    dispatcher.register_callback("balance_update", broken_async)
    dispatcher.register_callback("balance_update", lambda payload: ran.append("ok"))
    with caplog.at_level(logging.ERROR, logger="balance_manager.service.dispatch"):
        dispatcher.publish("balance_update", {"asset": "BTC"})
        dispatcher.publish("balance_update", {"asset": "BTC"})
        await dispatcher.drain()
    assert ran == ["ok", "ok"]
    assert calls["sync"] == 2
    assert dispatcher.callback_errors == 4
    assert "broken_sync" in caplog.text
    assert "broken_async" in caplog.text
    assert "balance_update" in caplog.text


@pytest.mark.asyncio
async def test_a_callback_raising_cancelled_error_is_its_own_error(
    dispatcher: EventDispatcher,
) -> None:
    """CancelledError raised by a callback is counted as its error; delivery goes on."""
    seen: list[int] = []

    async def cancels(payload: int) -> None:
        seen.append(payload)
        raise asyncio.CancelledError

    dispatcher.register_callback("balance_update", cancels)
    dispatcher.publish("balance_update", 1)
    dispatcher.publish("balance_update", 2)
    await dispatcher.drain()
    assert seen == [1, 2]
    assert dispatcher.callback_errors == 2


@pytest.mark.asyncio
async def test_a_blocking_sync_callback_is_reported_by_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sync callback holding the loop longer than slow_callback is logged and counted."""
    events = EventDispatcher(EVENTS, slow_callback=0.01)

    def sleepy_strategy(payload: Any) -> None:
        time.sleep(0.03)

    events.register_callback("balance_update", sleepy_strategy)
    with caplog.at_level(logging.WARNING, logger="balance_manager.service.dispatch"):
        events.publish("balance_update", None)
        await events.drain()
    await events.aclose()
    assert "sleepy_strategy" in caplog.text
    assert "blocked the event loop" in caplog.text
    stats = events.get_statistics()
    assert stats["blocking_calls"] == 1
    assert stats["callbacks"][0]["max_seconds"] >= 0.03


@pytest.mark.asyncio
async def test_overflow_coalesces_balance_updates_per_asset_keeping_the_chain() -> None:
    """Beyond max_pending, a waiting balance_update of the same asset absorbs the new one."""
    events = EventDispatcher(EVENTS, max_pending=2)
    release = asyncio.Event()
    seen: list[BalanceChange] = []

    async def slow(payload: BalanceChange) -> None:
        await release.wait()
        seen.append(payload)

    events.register_callback("balance_update", slow)
    events.publish("balance_update", change("BTC", None, "1"))
    await asyncio.sleep(0)  # the first is taken and in progress
    events.publish("balance_update", change("BTC", "1", "2"))
    events.publish("balance_update", change("ETH", None, "5"))
    events.publish("balance_update", change("BTC", "2", "3"))  # queue full: merged
    events.publish("balance_update", change("BTC", "3", "4"))  # merged again
    stats = events.get_statistics()
    assert stats["coalesced"] == 2
    assert stats["pending"] == 2
    release.set()
    await events.drain()
    await events.aclose()
    got = [(c.asset, None if c.old is None else c.old.balance, c.balance) for c in seen]
    assert got == [
        ("BTC", None, Decimal(1)),
        ("BTC", Decimal(1), Decimal(4)),  # old of the first waiting, new of the latest
        ("ETH", None, Decimal(5)),
    ]


@pytest.mark.asyncio
async def test_other_events_are_not_coalesced_but_bounded() -> None:
    """balance_change is never merged; beyond 4 * max_pending the oldest are dropped and counted."""
    events = EventDispatcher(EVENTS, max_pending=2)
    release = asyncio.Event()
    seen: list[int] = []

    async def slow(payload: int) -> None:
        await release.wait()
        seen.append(payload)

    events.register_callback("balance_change", slow)
    events.publish("balance_change", 0)
    await asyncio.sleep(0)
    for n in range(1, 12):
        events.publish("balance_change", n)
    stats = events.get_statistics()
    assert stats["dropped"] == 3
    assert stats["coalesced"] == 0
    release.set()
    await events.drain()
    await events.aclose()
    assert seen == [0, 4, 5, 6, 7, 8, 9, 10, 11]


@pytest.mark.asyncio
async def test_a_callback_can_unregister_itself(dispatcher: EventDispatcher) -> None:
    """Unregistering from inside the callback ends its delivery after the call in progress."""
    seen: list[int] = []

    def once(payload: int) -> None:
        seen.append(payload)
        dispatcher.unregister_callback("balance_update", once)

    dispatcher.register_callback("balance_update", once)
    dispatcher.publish("balance_update", 1)
    dispatcher.publish("balance_update", 2)
    await dispatcher.drain()
    assert seen == [1]
    assert dispatcher.callbacks("balance_update") == ()


@pytest.mark.asyncio
async def test_unknown_event_names_are_refused_everywhere(dispatcher: EventDispatcher) -> None:
    """Every method refuses an unknown event with UnknownEventError listing the known names."""
    with pytest.raises(UnknownEventError, match="balance_update, balance_change") as info:
        dispatcher.register_callback("balance_updates", print)
    assert info.value.event == "balance_updates"
    assert info.value.known == EVENTS
    with pytest.raises(UnknownEventError):
        dispatcher.unregister_callback("nope", print)
    with pytest.raises(UnknownEventError):
        dispatcher.callbacks("nope")
    with pytest.raises(UnknownEventError):
        dispatcher.publish("nope", None)


def test_non_callable_is_refused() -> None:
    """register_callback() with something not callable raises TypeError naming the event."""
    with pytest.raises(TypeError, match="balance_update"):
        EventDispatcher(EVENTS).register_callback("balance_update", None)  # type: ignore[arg-type]


def test_registering_twice_is_a_no_op() -> None:
    """The same callable registered twice is kept once."""
    events = EventDispatcher(EVENTS)
    events.register_callback("balance_update", print)
    events.register_callback("balance_update", print)
    assert events.callbacks("balance_update") == (print,)


def test_unregister_returns_whether_it_was_registered() -> None:
    """unregister_callback() removes a callback and says whether it was there."""
    events = EventDispatcher(EVENTS)
    events.register_callback("balance_update", print)
    assert events.unregister_callback("balance_update", print) is True
    assert events.unregister_callback("balance_update", print) is False
    assert events.callbacks("balance_update") == ()


@pytest.mark.asyncio
async def test_bound_methods_register_and_unregister(dispatcher: EventDispatcher) -> None:
    """A bound method (a new object on each access) can be unregistered by the same expression."""

    class Strategy:
        def __init__(self) -> None:
            self.calls = 0

        async def on_balance_change(self, balance_data: Any) -> None:
            self.calls += 1

    strategy = Strategy()
    dispatcher.register_callback("balance_change", strategy.on_balance_change)
    dispatcher.register_callback("balance_change", strategy.on_balance_change)
    dispatcher.publish("balance_change", None)
    await dispatcher.drain()
    assert strategy.calls == 1
    assert dispatcher.unregister_callback("balance_change", strategy.on_balance_change)
    dispatcher.publish("balance_change", None)
    await dispatcher.drain()
    assert strategy.calls == 1


@pytest.mark.asyncio
async def test_publish_without_callbacks_does_nothing(dispatcher: EventDispatcher) -> None:
    """Publishing an event nobody listens to queues nothing."""
    assert dispatcher.has_callbacks("balance_update") is False
    dispatcher.publish("balance_update", None)
    await dispatcher.drain()
    stats = dispatcher.get_statistics()
    assert stats["published"] == 1
    assert stats["delivered"] == 0


@pytest.mark.asyncio
async def test_registration_from_another_thread(dispatcher: EventDispatcher) -> None:
    """A callback registered from another thread is delivered to on the loop's thread."""
    threads: list[int] = []
    registrar = threading.Thread(
        target=lambda: dispatcher.register_callback(
            "balance_update", lambda payload: threads.append(threading.get_ident())
        )
    )
    registrar.start()
    registrar.join(timeout=10)
    dispatcher.publish("balance_update", 1)
    await dispatcher.drain()
    assert threads == [threading.get_ident()]


@pytest.mark.asyncio
async def test_statistics_and_repr(dispatcher: EventDispatcher) -> None:
    """get_statistics() counts per dispatcher and per callback; repr shows counts per event."""

    def broken(payload: Any) -> None:
        raise KeyError("x")

    dispatcher.register_callback("balance_update", broken)
    dispatcher.register_callback("balance_update", print)
    dispatcher.unregister_callback("balance_update", print)
    dispatcher.publish("balance_update", None)
    dispatcher.publish("balance_change", None)
    await dispatcher.drain()
    stats = dispatcher.get_statistics()
    assert stats["published"] == 2
    assert stats["delivered"] == 1
    assert stats["callback_errors"] == 1
    assert stats["registered"] == {"balance_update": 1, "balance_change": 0}
    assert [c["name"] for c in stats["callbacks"]] == [
        "tests.service.test_dispatch.test_statistics_and_repr.<locals>.broken"
    ]
    assert repr(dispatcher) == "EventDispatcher(balance_update=1, balance_change=0)"
    assert dispatcher.events == EVENTS


@pytest.mark.asyncio
async def test_aclose_delivers_what_waits_then_stops() -> None:
    """aclose() delivers pending events, ends every delivery task, and ignores later publishes."""
    events = EventDispatcher(EVENTS)
    seen: list[int] = []
    events.register_callback("balance_update", seen.append)
    events.publish("balance_update", 1)
    before = set(asyncio.all_tasks())
    await events.aclose()
    events.publish("balance_update", 2)
    await asyncio.sleep(0)
    assert seen == [1]
    assert not [t for t in before if t.get_name().startswith("callbacks:") and not t.done()]


@pytest.mark.asyncio
async def test_aclose_gives_up_on_a_stuck_callback_after_the_grace() -> None:
    """A callback that never returns is cancelled after the grace period."""
    events = EventDispatcher(EVENTS)

    async def forever(payload: Any) -> None:
        await asyncio.Event().wait()

    events.register_callback("balance_update", forever)
    events.publish("balance_update", 1)
    await asyncio.sleep(0)
    await asyncio.wait_for(events.aclose(grace=0.01), timeout=5)


def test_a_dispatcher_needs_events_and_a_positive_queue() -> None:
    """An empty event list or a max_pending below 1 is refused with ConfigError."""
    with pytest.raises(ConfigError):
        EventDispatcher([])
    with pytest.raises(ConfigError, match="max_pending"):
        EventDispatcher(EVENTS, max_pending=0)


def test_duplicate_event_names_collapse() -> None:
    """Event names given twice are kept once, in first-seen order."""
    assert EventDispatcher(["a", "b", "a"]).events == ("a", "b")


@pytest.mark.asyncio
async def test_a_callback_can_close_the_dispatcher() -> None:
    """aclose() awaited inside a callback: no wait on itself, others still get what waits."""
    events = EventDispatcher(EVENTS)
    seen: list[int] = []
    outcome: list[BaseException | None] = []

    async def closer(payload: Any) -> None:
        try:
            await events.aclose(grace=5.0)
        except BaseException as exc:
            outcome.append(exc)
            raise
        outcome.append(None)

    events.register_callback("balance_update", closer)
    events.register_callback("balance_change", seen.append)
    events.publish("balance_update", 1)
    events.publish("balance_change", 2)
    started = time.perf_counter()
    await asyncio.wait_for(events.drain(), timeout=10)
    assert outcome == [None]
    assert time.perf_counter() - started < 2.0  # not the whole grace, waiting on itself
    assert seen == [2]


@pytest.mark.asyncio
async def test_unregistration_from_another_thread(dispatcher: EventDispatcher) -> None:
    """A callback unregistered from another thread gets nothing published afterwards."""
    seen: list[int] = []
    dispatcher.register_callback("balance_update", seen.append)
    dispatcher.publish("balance_update", 1)
    await dispatcher.drain()
    found = await asyncio.to_thread(dispatcher.unregister_callback, "balance_update", seen.append)
    assert found
    dispatcher.publish("balance_update", 2)
    await asyncio.wait_for(dispatcher.drain(), timeout=5)
    assert seen == [1]
