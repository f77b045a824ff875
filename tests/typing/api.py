"""README-style usage that `mypy --strict` must accept (run by `make typecheck`).

Not executed: it type-checks the public API as users write it, including the
seed's mapping access (``b["free"]`` is a ``Decimal``, ``b["asset"]`` a ``str``).
"""

from __future__ import annotations

from decimal import Decimal

from balance_manager import (
    Alert,
    Balance,
    BalanceChange,
    BalanceManager,
    BalanceManagerConfig,
    ConnectionState,
    EventName,
    KrakenRestClient,
    KrakenWebSocketClient,
    ManagerStatistics,
    ManagerStatus,
    Portfolio,
    PortfolioChange,
    Source,
    SourceChanged,
    TrendAnalysis,
    ValidationResult,
    ValueChange,
    connect,
)


async def seed_usage(api_key: str, api_secret: str) -> Decimal:
    rest_client = KrakenRestClient(api_key=api_key, api_secret=api_secret)
    websocket_client = KrakenWebSocketClient(rest_client=rest_client)
    config = BalanceManagerConfig(
        cache_default_ttl=300.0, history_retention_hours=24 * 7, enable_validation=True
    )
    balance_manager = BalanceManager(
        websocket_client=websocket_client, rest_client=rest_client, config=config
    )
    await balance_manager.initialize()
    usdt: Balance | None = await balance_manager.get_balance("USDT")
    free = Decimal(0)
    if usdt is not None:
        free = usdt["free"] + usdt.hold_trade
        asset: str = usdt["asset"]
        assert asset == "USDT"
        assert usdt.source is Source.WEBSOCKET or usdt["source"] in {"rest", "cache"}
    for name, data in (await balance_manager.get_all_balances()).items():
        total: Decimal = data["balance"]
        print(name, total, data["free"])

    async def on_balance_update(balance_data: BalanceChange) -> None:
        delta: Decimal = balance_data["delta"]
        print(balance_data["asset"], delta, balance_data.significant)

    balance_manager.register_callback("balance_update", on_balance_update)
    if balance_manager.validator is not None:
        result: ValidationResult = balance_manager.validator.validate_single_balance(
            "USDT", "100", "10"
        )
        print(result.is_valid, [issue.message for issue in result.issues])
    trend: TrendAnalysis | None = await balance_manager.history.analyze_balance_trend("USDT")
    if trend is not None:
        print(trend.trend_direction, trend.trend_strength)
    for entry in balance_manager.history.get_asset_history("USDT", limit=10):
        print(entry.balance, entry.timestamp)
    status = balance_manager.get_status()
    print(
        status["websocket"]["connected"], balance_manager.cache.get_statistics()["hit_rate_percent"]
    )
    await balance_manager.close()
    return free


async def factory_usage() -> None:
    async with connect() as manager:
        btc = await manager.get_balance("XBT", max_age=5.0)
        if btc is not None:
            print(btc.free, btc.total, btc.age(0.0))
        view = manager.sync_view()
        print(view.get_all_balances())


async def typed_events_and_status(manager: BalanceManager) -> None:
    """Each event's callback gets its payload's type; a mismatch is a type error."""

    def on_source(change: SourceChanged) -> None:
        print(change["source"], change["previous"])

    async def on_state(state: ConnectionState) -> None:
        print(state["state"], state["holds_live"])

    def on_failed(result: ValidationResult) -> None:
        print(result.is_valid)

    manager.register_callback("source_changed", on_source)
    manager.register_callback("connection_state", on_state)
    manager.register_callback("validation_failed", on_failed)

    def on_alert(alert: Alert) -> None:
        print(alert.rule, alert.severity.value, alert.asset, alert.details.get("free"))

    manager.register_callback("alert_fired", on_alert)
    manager.register_callback("alert_resolved", on_alert)
    manager.register_callback("alert_fired", on_failed)  # type: ignore[call-overload]
    if manager.alerts is not None:
        active: list[Alert] = manager.alerts.active()
        print(active)
    # Wrong payload for the event, and a misspelt event: both refused by mypy
    # (the ignores would be reported as unused if the overloads let them through).
    manager.register_callback("balance_update", on_source)  # type: ignore[call-overload]
    manager.register_callback("balance_updates", on_failed)  # type: ignore[call-overload]
    status: ManagerStatus = manager.get_status()
    stream_state: str = status["websocket"]["state"]
    stats: ManagerStatistics = manager.get_statistics()
    calls: int = stats["rest_api_calls"] + stats["callbacks"]["callback_errors"]
    print(stream_state, calls, status["exchange"])
    name: EventName = "balance_change"
    print(name)


async def portfolio_usage(manager: BalanceManager) -> Decimal | None:
    portfolio: Portfolio = await manager.portfolio("USD")
    total: Decimal = portfolio.total
    for asset, value in portfolio.assets.items():
        worth: Decimal | None = value.value_total
        if value.rate is not None:
            path: str = value.rate.path_text
            print(asset, worth, path)
    tracker = await manager.portfolio_tracker("EUR", threshold_pct="0.5")

    def on_change(change: PortfolioChange) -> None:
        print(change.change_pct)

    tracker.register_callback(on_change)
    change: ValueChange | None = tracker.change_over(3600.0)
    usd = manager.portfolio_trackers.get("USD")
    if usd is not None and change is not None:
        return change.market_pct
    return total
