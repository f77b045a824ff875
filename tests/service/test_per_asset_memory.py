"""Bytes kept per tracked asset by the components that keep something per asset.

Issue 13 asks for at most 1,000 bytes per tracked asset for the whole manager at
10,000 assets (``bench/bench_scaling.py``); these tests pin the share of the parts
measured there, with ``tracemalloc`` (bytes, not time: no timing in unit tests).
"""

from __future__ import annotations

import tracemalloc
import types
from decimal import Decimal
from typing import Any

from balance_manager import BalanceManagerConfig
from balance_manager.core.freshness import ServingMode
from balance_manager.core.models import Balance, Source
from balance_manager.service.alerts import AlertMonitor
from balance_manager.testing import ManualClock

ASSETS = 2_000


class _Manager:
    """Just what the alert monitor reads of a manager."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.config = BalanceManagerConfig()
        self.websocket_client = object()
        self.exchange, self.account, self.simulated = "kraken", "a", True
        self.serving_mode = ServingMode.WEBSOCKET

    def canonical(self, asset: str) -> str:
        return asset

    def sync_view(self) -> Any:
        return types.SimpleNamespace(get_all_balances=dict)

    def age_of(self, value: object) -> float:
        return 0.0


def _monitor() -> AlertMonitor:
    return AlertMonitor(_Manager(), lambda event, alert: None)  # type: ignore[arg-type]  # a stand-in


def test_the_alert_monitor_keeps_little_per_asset() -> None:
    """Two amounts of each asset cost the monitor well under 300 bytes per asset (it kept
    an empty ``deque(maxlen=...)`` per asset: a 64-slot block, about 890 bytes in all)."""
    monitor = _monitor()
    values = [
        (
            Balance(f"A{n:05d}", Decimal(n), source=Source.WEBSOCKET, received_at=1.0),
            Balance(f"A{n:05d}", Decimal(n + 1), source=Source.WEBSOCKET, received_at=2.0),
        )
        for n in range(ASSETS)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for first, second in values:
            monitor.observe(first)
            monitor.observe(second)
        per_asset = (tracemalloc.get_traced_memory()[0] - before) / ASSETS
    finally:
        tracemalloc.stop()
    assert per_asset < 300, f"{per_asset:.0f} bytes per asset"


def test_the_alert_monitor_keeps_the_newest_amounts_only() -> None:
    monitor = _monitor()
    keep = monitor._keep_values
    for n in range(3 * keep):
        monitor.observe(Balance("BTC", Decimal(n), source=Source.WEBSOCKET, received_at=float(n)))
    kept = monitor._values["BTC"]
    assert [amount for _, amount in kept] == [Decimal(n) for n in range(2 * keep, 3 * keep)]
