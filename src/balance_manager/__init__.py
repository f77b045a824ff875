"""balance-manager: one trustworthy answer to "how much do I have, and how much is free?".

Real-time, exact (``Decimal`` end to end) balances for trading bots, from
Kraken's WebSocket v2 ``balances`` channel with REST fallback, a TTL + LRU
cache, validation, history and trend analysis, and a built-in exchange
simulator (:mod:`balance_manager.simulator`) for demos and tests.
"""

from balance_manager._version import __version__
from balance_manager.config import BalanceManagerConfig
from balance_manager.connect import connect
from balance_manager.core.alerts.engine import AlertEngine, AlertUpdate
from balance_manager.core.alerts.model import Alert, AlertContext, AlertRule, Condition
from balance_manager.core.alerts.rules import alert_rule, default_alert_rules
from balance_manager.core.amounts import display_amount
from balance_manager.core.cache import BalanceCache
from balance_manager.core.freshness import ServingMode
from balance_manager.core.models import Balance, BalanceChange, BalanceDict, Source
from balance_manager.core.prices import PairInfo, PairPrice, PriceSource, pair_price
from balance_manager.core.sources import RestSource, StreamSource
from balance_manager.core.timeline import HistoryEntry
from balance_manager.core.trends import TrendAnalysis
from balance_manager.core.validation.rules import (
    Issue,
    Rule,
    RuleContext,
    Severity,
    default_rules,
    rule,
)
from balance_manager.core.validation.validator import BalanceValidator, ValidationResult
from balance_manager.core.valuation import AssetValue, Portfolio, Rate
from balance_manager.core.value_history import Flow, ValueChange, ValuePoint
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
from balance_manager.kraken.price_client import KrakenPriceFeed
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.kraken.ws_client import KrakenWebSocketClient
from balance_manager.runtime.clock import Clock, SystemClock
from balance_manager.service.alerts import AlertMonitor
from balance_manager.service.history import BalanceHistory
from balance_manager.service.manager import BalanceManager, BalanceObserver, SyncBalanceView
from balance_manager.service.portfolio import PortfolioChange, PortfolioTracker
from balance_manager.service.prices import PriceService
from balance_manager.service.status import (
    EVENTS,
    ConnectionState,
    EventName,
    ManagerStatistics,
    ManagerStatus,
    SourceChanged,
)
from balance_manager.storage.memory import BalanceStore

__all__ = [
    "EVENTS",
    "Alert",
    "AlertContext",
    "AlertEngine",
    "AlertMonitor",
    "AlertRule",
    "AlertUpdate",
    "AssetValue",
    "AuthenticationError",
    "Balance",
    "BalanceCache",
    "BalanceChange",
    "BalanceDict",
    "BalanceHistory",
    "BalanceManager",
    "BalanceManagerConfig",
    "BalanceManagerError",
    "BalanceObserver",
    "BalanceStateError",
    "BalanceStore",
    "BalanceValidator",
    "CircuitOpenError",
    "Clock",
    "Condition",
    "ConfigError",
    "ConnectionState",
    "Credentials",
    "EventName",
    "ExchangeError",
    "ExchangeUnavailableError",
    "FloatAmountError",
    "Flow",
    "HistoryEntry",
    "InvalidAmountError",
    "InvalidNonceError",
    "Issue",
    "KrakenPriceFeed",
    "KrakenRestClient",
    "KrakenWebSocketClient",
    "LockoutError",
    "ManagerStatistics",
    "ManagerStatus",
    "PairInfo",
    "PairPrice",
    "PersistenceError",
    "Portfolio",
    "PortfolioChange",
    "PortfolioTracker",
    "PriceService",
    "PriceSource",
    "ProtocolError",
    "Rate",
    "RateLimitedError",
    "RequestTimeoutError",
    "RestSource",
    "Rule",
    "RuleContext",
    "Secret",
    "ServingMode",
    "Severity",
    "Source",
    "SourceChanged",
    "SourceError",
    "StaleBalanceError",
    "StreamSource",
    "SyncBalanceView",
    "SystemClock",
    "TransportError",
    "TrendAnalysis",
    "UnknownAssetError",
    "UnknownEventError",
    "ValidationResult",
    "ValueChange",
    "ValuePoint",
    "__version__",
    "alert_rule",
    "connect",
    "default_alert_rules",
    "default_rules",
    "display_amount",
    "pair_price",
    "rule",
]
