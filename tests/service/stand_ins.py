"""A stand-in for the parts of a manager the alert monitor reads (tests of the monitor alone)."""

from __future__ import annotations

import types
from typing import Any

from balance_manager import BalanceManagerConfig
from balance_manager.core.freshness import ServingMode
from balance_manager.runtime.clock import Clock
from balance_manager.service.history import BalanceHistory


class StreamOnlyManager:
    """Just what the monitor reads of a manager that streams and holds nothing."""

    def __init__(self, clock: Clock, config: BalanceManagerConfig | None = None) -> None:
        self.clock = clock
        self.config = config or BalanceManagerConfig()
        self.websocket_client = object()
        self.exchange, self.account, self.simulated = "kraken", "a", True
        self.serving_mode = ServingMode.WEBSOCKET
        self.history = BalanceHistory(clock=clock)

    def canonical(self, asset: str) -> str:
        return asset

    def sync_view(self) -> Any:
        return types.SimpleNamespace(get_all_balances=dict)

    def age_of(self, value: object) -> float:
        return 0.0
