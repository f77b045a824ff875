"""InMemoryBalanceStore: the latest balance of each asset."""

from __future__ import annotations

import threading
from decimal import Decimal

from balance_manager.core.models import Balance
from balance_manager.storage.memory import BalanceStore, InMemoryBalanceStore


def test_put_returns_the_replaced_value() -> None:
    """put() holds the new value and returns the one it replaced."""
    store = InMemoryBalanceStore()
    first = Balance("BTC", Decimal("1"))
    second = Balance("BTC", Decimal("2"))
    assert store.put(first) is None
    assert store.put(second) is first
    assert store.get("BTC") is second
    assert "BTC" in store
    assert len(store) == 1


def test_snapshot_is_a_copy() -> None:
    """A snapshot does not change when the store changes afterwards."""
    store = InMemoryBalanceStore()
    store.put(Balance("USD", Decimal("10")))
    snap = store.snapshot()
    store.put(Balance("USD", Decimal("11")))
    store.remove("USD")
    assert snap["USD"].balance == Decimal("10")
    assert store.get("USD") is None


def test_satisfies_the_protocol() -> None:
    """The in-memory store implements the BalanceStore interface."""
    assert isinstance(InMemoryBalanceStore(), BalanceStore)


def test_threads_never_see_a_torn_balance() -> None:
    """Readers in other threads always see free + hold == balance while a writer replaces values."""
    store = InMemoryBalanceStore()
    store.put(Balance("BTC", Decimal("100"), Decimal("0")))
    stop = threading.Event()
    errors: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            value = store.get("BTC")
            assert value is not None
            if value.free + value.hold_trade != value.balance:
                errors.append(repr(value))
            for held in store.snapshot().values():
                if held.free + held.hold_trade != held.balance:
                    errors.append(repr(held))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(20_000):
        store.put(Balance("BTC", Decimal(100 + i), Decimal(i % 7)))
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
