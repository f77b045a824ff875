"""Tests of balance_manager.events: the asyncio callback registry."""

from __future__ import annotations

import asyncio
import logging
import threading
from decimal import Decimal
from typing import Any

import pytest

from balance_manager.core.models import Balance, BalanceChange
from balance_manager.events import CallbackRegistry
from balance_manager.exceptions import ConfigError, UnknownEventError

EVENTS = ("balance_update", "balance_change")


@pytest.fixture
def registry() -> CallbackRegistry:
    return CallbackRegistry(EVENTS)


@pytest.mark.asyncio
async def test_seed_style_async_callback_receives_the_payload(registry: CallbackRegistry) -> None:
    """The seed's `async def on_balance_update(balance_data)` is awaited with the payload."""
    seen: list[tuple[str, Decimal]] = []

    async def on_balance_update(balance_data: BalanceChange) -> None:
        await asyncio.sleep(0)
        seen.append((balance_data["asset"], balance_data["balance"]))

    registry.register_callback("balance_update", on_balance_update)
    change = BalanceChange(new=Balance(asset="USDT", balance=Decimal("100.5")))
    assert await registry.emit("balance_update", change) == 0
    assert seen == [("USDT", Decimal("100.5"))]


@pytest.mark.asyncio
async def test_sync_and_async_callbacks_run_in_registration_order(
    registry: CallbackRegistry,
) -> None:
    """Callbacks run one after another in registration order, async ones awaited in turn."""
    order: list[str] = []

    async def slow_async(payload: Any) -> None:
        order.append("async-start")
        await asyncio.sleep(0)
        order.append("async-end")

    registry.register_callback("balance_change", lambda payload: order.append("sync-1"))
    registry.register_callback("balance_change", slow_async)
    registry.register_callback("balance_change", lambda payload: order.append("sync-2"))
    await registry.emit("balance_change", {"asset": "BTC"})
    assert order == ["sync-1", "async-start", "async-end", "sync-2"]


@pytest.mark.asyncio
async def test_failing_callbacks_are_isolated_logged_and_counted(
    registry: CallbackRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising callback (sync or async) never stops the others; emit returns the failure count."""
    ran: list[str] = []

    def broken_sync(payload: Any) -> None:
        raise ValueError("sync bug")

    async def broken_async(payload: Any) -> None:
        raise RuntimeError("async bug")

    registry.register_callback("balance_update", broken_sync)
    registry.register_callback("balance_update", broken_async)
    registry.register_callback("balance_update", lambda payload: ran.append("ok"))
    with caplog.at_level(logging.ERROR, logger="balance_manager.events"):
        failures = await registry.emit("balance_update", {"asset": "BTC"})
    assert failures == 2
    assert ran == ["ok"]
    assert registry.callback_errors == 2
    assert "broken_sync" in caplog.text
    assert "broken_async" in caplog.text
    assert "balance_update" in caplog.text


@pytest.mark.asyncio
async def test_cancellation_is_not_swallowed(registry: CallbackRegistry) -> None:
    """A CancelledError inside a callback propagates: cancelling the emitter still works."""

    async def cancelled(payload: Any) -> None:
        raise asyncio.CancelledError

    registry.register_callback("balance_update", cancelled)
    with pytest.raises(asyncio.CancelledError):
        await registry.emit("balance_update", None)


@pytest.mark.asyncio
async def test_unknown_event_names_are_refused_everywhere(registry: CallbackRegistry) -> None:
    """Every method refuses an unknown event with UnknownEventError listing the known names."""
    with pytest.raises(UnknownEventError, match="balance_update, balance_change") as info:
        registry.register_callback("balance_updates", print)
    assert info.value.event == "balance_updates"
    assert info.value.known == EVENTS
    with pytest.raises(UnknownEventError):
        registry.unregister_callback("nope", print)
    with pytest.raises(UnknownEventError):
        registry.callbacks("nope")
    with pytest.raises(UnknownEventError):
        await registry.emit("nope", None)
    with pytest.raises(UnknownEventError):
        registry.emit_threadsafe(asyncio.get_running_loop(), "nope", None)


def test_non_callable_is_refused(registry: CallbackRegistry) -> None:
    """register_callback() with something not callable raises TypeError naming the event."""
    with pytest.raises(TypeError, match="balance_update"):
        registry.register_callback("balance_update", None)  # type: ignore[arg-type]


def test_registering_twice_is_a_no_op(registry: CallbackRegistry) -> None:
    """The same callable registered twice is kept once."""
    registry.register_callback("balance_update", print)
    registry.register_callback("balance_update", print)
    assert registry.callbacks("balance_update") == (print,)


def test_unregister_returns_whether_it_was_registered(registry: CallbackRegistry) -> None:
    """unregister_callback() removes a callback and says whether it was there."""
    registry.register_callback("balance_update", print)
    assert registry.unregister_callback("balance_update", print) is True
    assert registry.unregister_callback("balance_update", print) is False
    assert registry.callbacks("balance_update") == ()


@pytest.mark.asyncio
async def test_bound_methods_register_and_unregister(registry: CallbackRegistry) -> None:
    """A bound method (a new object on each access) can be unregistered by the same expression."""

    class Strategy:
        def __init__(self) -> None:
            self.calls = 0

        async def on_balance_change(self, balance_data: Any) -> None:
            self.calls += 1

    strategy = Strategy()
    registry.register_callback("balance_change", strategy.on_balance_change)
    registry.register_callback("balance_change", strategy.on_balance_change)
    await registry.emit("balance_change", None)
    assert strategy.calls == 1
    assert registry.unregister_callback("balance_change", strategy.on_balance_change)
    await registry.emit("balance_change", None)
    assert strategy.calls == 1


@pytest.mark.asyncio
async def test_emit_without_callbacks_returns_zero(registry: CallbackRegistry) -> None:
    """Emitting an event nobody listens to does nothing and reports no failure."""
    assert registry.has_callbacks("balance_update") is False
    assert await registry.emit("balance_update", None) == 0
    assert registry.get_statistics()["emitted"] == 1


@pytest.mark.asyncio
async def test_callback_registered_during_emit_waits_for_the_next_one(
    registry: CallbackRegistry,
) -> None:
    """An emit in progress keeps the callbacks it started with."""
    calls: list[str] = []

    def late(payload: Any) -> None:
        calls.append("late")

    def first(payload: Any) -> None:
        calls.append("first")
        registry.register_callback("balance_update", late)

    registry.register_callback("balance_update", first)
    await registry.emit("balance_update", None)
    assert calls == ["first"]
    await registry.emit("balance_update", None)
    assert calls == ["first", "first", "late"]


@pytest.mark.asyncio
async def test_emit_threadsafe_runs_on_the_loop(registry: CallbackRegistry) -> None:
    """emit_threadsafe() from another thread runs the callbacks on the loop's thread."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    threads: list[int] = []

    def on_update(payload: Any) -> None:
        threads.append(threading.get_ident())
        done.set()

    registry.register_callback("balance_update", on_update)
    futures = []
    sender = threading.Thread(
        target=lambda: futures.append(registry.emit_threadsafe(loop, "balance_update", 1))
    )
    sender.start()
    await asyncio.wait_for(done.wait(), timeout=10)
    sender.join(timeout=10)
    assert threads == [threading.get_ident()]
    assert await asyncio.wait_for(asyncio.wrap_future(futures[0]), timeout=10) == 0


@pytest.mark.asyncio
async def test_statistics_and_repr(registry: CallbackRegistry) -> None:
    """get_statistics() counts emits, calls and errors per registry; repr shows counts per event."""

    def broken(payload: Any) -> None:
        raise KeyError("x")

    registry.register_callback("balance_update", broken)
    registry.register_callback("balance_update", print)
    registry.unregister_callback("balance_update", print)
    await registry.emit("balance_update", None)
    await registry.emit("balance_change", None)
    assert registry.get_statistics() == {
        "emitted": 2,
        "callbacks_called": 1,
        "callback_errors": 1,
        "registered": {"balance_update": 1, "balance_change": 0},
    }
    assert repr(registry) == "CallbackRegistry(balance_update=1, balance_change=0)"
    assert registry.events == EVENTS


def test_a_registry_needs_events() -> None:
    """An empty event list is refused with ConfigError."""
    with pytest.raises(ConfigError):
        CallbackRegistry([])


def test_duplicate_event_names_collapse() -> None:
    """Event names given twice are kept once, in first-seen order."""
    assert CallbackRegistry(["a", "b", "a"]).events == ("a", "b")
