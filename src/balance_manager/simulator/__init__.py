"""A simulated Kraken exchange: real REST and WebSocket v2 protocol on localhost.

The demo's and the network tests' default exchange, and a tool for testing
trading bots. :class:`SimulatedKraken` starts it; :class:`Faults` (its
``faults`` attribute) injects failures on demand. See ``docs/simulator.md``.
"""

from balance_manager.simulator.model.faults import Fault, FaultKind, Faults, FiredFault, Trigger
from balance_manager.simulator.model.ledger import LedgerEntry, Order, OrderEvent, Trade
from balance_manager.simulator.server.simulated_kraken import DEFAULT_ACCOUNT, SimulatedKraken

__all__ = [
    "DEFAULT_ACCOUNT",
    "Fault",
    "FaultKind",
    "Faults",
    "FiredFault",
    "LedgerEntry",
    "Order",
    "OrderEvent",
    "SimulatedKraken",
    "Trade",
    "Trigger",
]
