"""Optional Prometheus metrics (``pip install balance-manager[metrics]``), off by default.

Turned on by ``BalanceManagerConfig(metrics_enabled=True)`` with :func:`~balance_manager.connect`
and the command line, or by :func:`serve_metrics` for a manager made by hand:
``/metrics`` is served on ``metrics_host:metrics_port`` (loopback by default)
with balances, freshness, the serving source, reconnects, REST calls and
validation failures. Amounts are exported as floats, as Prometheus requires:
metrics are for dashboards, never for trading decisions.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from balance_manager.core.freshness import ServingMode
from balance_manager.core.models import Balance
from balance_manager.exceptions import ConfigError

if TYPE_CHECKING:
    from balance_manager.config import BalanceManagerConfig
    from balance_manager.service.manager import BalanceManager

__all__ = ["BalanceMetrics", "serve_metrics"]

logger = logging.getLogger(__name__)


class BalanceMetrics:
    """Prometheus collectors for one manager, in their own registry.

    Args:
        manager: the manager whose counters are exported.
        registry: the registry to use (a new one by default).
    """

    def __init__(self, manager: BalanceManager, registry: Any = None) -> None:
        try:
            import prometheus_client as prom
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise ConfigError(
                "metrics_enabled",
                True,
                "needs prometheus-client: pip install balance-manager[metrics]",
            ) from None
        self._prom = prom
        self.registry = registry if registry is not None else prom.CollectorRegistry()
        self._manager = manager
        self._server: Any = None
        labels = ["asset"]
        self.balance = prom.Gauge(
            "balance_manager_balance", "Tradable balance", labels, registry=self.registry
        )
        self.free = prom.Gauge(
            "balance_manager_free", "Free balance", labels, registry=self.registry
        )
        self.hold = prom.Gauge(
            "balance_manager_hold", "Held by open orders", labels, registry=self.registry
        )
        self.updated = prom.Gauge(
            "balance_manager_last_update_timestamp_seconds",
            "When each asset last changed",
            labels,
            registry=self.registry,
        )
        self.source = prom.Enum(
            "balance_manager_source",
            "Where served balances come from",
            states=[mode.value for mode in ServingMode],
            registry=self.registry,
        )
        self.source.state(ServingMode.CACHE.value)
        self.registry.register(_StatisticsCollector(manager, prom))

    @classmethod
    def start(cls, config: BalanceManagerConfig, manager: BalanceManager) -> BalanceMetrics:
        """Make the collectors and serve them over HTTP on the configured address."""
        metrics = cls(manager)
        server, _thread = metrics._prom.start_http_server(
            config.metrics_port, addr=config.metrics_host, registry=metrics.registry
        )
        metrics._server = server
        manager.add_observer(metrics)
        for balance in manager.sync_view().get_all_balances().values():
            metrics.observe(balance)  # what was held before metrics started
        metrics.set_mode(manager.serving_mode)
        logger.info(
            "Prometheus metrics on http://%s:%d/metrics", config.metrics_host, server.server_port
        )
        return metrics

    @property
    def port(self) -> int | None:
        """The port metrics are served on, if serving."""
        return None if self._server is None else int(self._server.server_port)

    def observe(self, balance: Balance) -> None:
        """Export one asset's new value."""
        asset = balance.asset
        self.balance.labels(asset).set(float(balance.balance))
        self.free.labels(asset).set(float(balance.free))
        self.hold.labels(asset).set(float(balance.hold_trade))
        self.updated.labels(asset).set(balance.received_at)

    def set_mode(self, mode: ServingMode) -> None:
        """Export the serving source."""
        self.source.state(mode.value)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        data: bytes = self._prom.generate_latest(self.registry)
        return data

    def close(self) -> None:
        """Stop serving."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


class _StatisticsCollector:
    """Reads the manager's counters at scrape time."""

    def __init__(self, manager: BalanceManager, prom: Any) -> None:
        self._manager = manager
        self._prom = prom

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(
            "balance_manager_events", "Manager statistics", labels=["name"]
        )
        for name, value in self._manager.get_statistics().items():
            if isinstance(value, int) and not isinstance(value, bool):
                family.add_metric([name], value)
        yield family


def serve_metrics(manager: BalanceManager) -> BalanceMetrics:
    """Serve ``manager``'s metrics on its configured address (stopped when it closes)."""
    return BalanceMetrics.start(manager.config, manager)
