"""What the simulator's REST, WebSocket and control handlers share.

One :class:`SimContext` per :class:`~balance_manager.simulator.SimulatedKraken`:
the exchange state, the authenticator, the fault registry, the clock, and the
open WebSocket connections. It outlives restarts of the HTTP server, which is
how a restarted simulator keeps every balance, order, nonce and token.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from balance_manager.exceptions import ExchangeError
from balance_manager.runtime.clock import Clock
from balance_manager.simulator.model.auth import Authenticator
from balance_manager.simulator.model.exchange import SimExchange
from balance_manager.simulator.model.faults import Faults
from balance_manager.simulator.model.ledger import Account

__all__ = ["Connection", "SimContext"]


class Connection(Protocol):
    """What the context needs of an open WebSocket connection."""

    def push_status(self, system: str) -> None:
        """Send a ``status`` update with the new system status."""
        ...

    async def shutdown(self, code: int) -> None:
        """Close the connection (the server is stopping)."""
        ...


@dataclass(slots=True)
class SimContext:
    """The simulator's shared state (see module docs).

    Attributes:
        exchange: accounts, prices and system status.
        auth: keys, nonces, call counters and WebSocket tokens.
        faults: the fault registry.
        clock: the injected clock (``time()`` stamps, ``monotonic()`` limits).
        rng: randomness of the server itself (connection ids).
        heartbeat_interval: seconds of channel silence before a heartbeat.
        accounts_by_key: API key → account name.
        connections: the open WebSocket connections.
        on_request: called with each REST method name handled (for statistics).
    """

    exchange: SimExchange
    auth: Authenticator
    faults: Faults
    clock: Clock
    rng: random.Random
    heartbeat_interval: float = 1.0
    accounts_by_key: dict[str, str] = field(default_factory=dict)
    connections: set[Connection] = field(default_factory=set)
    on_request: list[Callable[[str], None]] = field(default_factory=list)

    def account_for_key(self, api_key: str) -> Account:
        """The account of an API key.

        Raises:
            ExchangeError: ``EAPI:Invalid key``.
        """
        name = self.accounts_by_key.get(api_key)
        if name is None:
            raise ExchangeError("EAPI:Invalid key")
        return self.exchange.account(name)

    def now(self) -> float:
        """Wall-clock Unix seconds (for timestamps)."""
        return self.clock.time()

    def monotonic(self) -> float:
        """Monotonic seconds (for limits, lockouts and tokens)."""
        return self.clock.monotonic()
