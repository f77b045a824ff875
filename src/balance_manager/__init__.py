"""balance-manager: one trustworthy answer to "how much do I have, and how much is free?".

Real-time, exact (``Decimal`` end to end) balances for trading bots, from
Kraken's WebSocket v2 ``balances`` channel with REST fallback, a TTL + LRU
cache, validation, history and trend analysis, and a built-in exchange
simulator for demos and tests.
"""

from balance_manager.clock import Clock, ManualClock, SystemClock
from balance_manager.config import BalanceManagerConfig
from balance_manager.core.models import Balance, BalanceChange, BalanceDict, Source
from balance_manager.credentials import Credentials, Secret
from balance_manager.exceptions import (
    AuthenticationError,
    BalanceManagerError,
    BalanceStateError,
    CircuitOpenError,
    ConfigError,
    ExchangeError,
    ExchangeUnavailableError,
    FloatAmountError,
    InvalidAmountError,
    InvalidNonceError,
    LockoutError,
    PersistenceError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    SourceError,
    StaleBalanceError,
    TransportError,
    UnknownAssetError,
    UnknownEventError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "Balance",
    "BalanceChange",
    "BalanceDict",
    "BalanceManagerConfig",
    "BalanceManagerError",
    "BalanceStateError",
    "CircuitOpenError",
    "Clock",
    "ConfigError",
    "Credentials",
    "ExchangeError",
    "ExchangeUnavailableError",
    "FloatAmountError",
    "InvalidAmountError",
    "InvalidNonceError",
    "LockoutError",
    "ManualClock",
    "PersistenceError",
    "ProtocolError",
    "RateLimitedError",
    "RequestTimeoutError",
    "Secret",
    "Source",
    "SourceError",
    "StaleBalanceError",
    "SystemClock",
    "TransportError",
    "UnknownAssetError",
    "UnknownEventError",
    "__version__",
]
