"""The shapes the manager reports in: event names and payloads, status and statistics.

Typed so that a wrong event name, a callback for the wrong payload or a typo in
a status key fails in ``mypy --strict`` rather than at run time:

* :data:`EventName` is the ``Literal`` of the seven event names; the manager's
  ``register_callback`` is overloaded per name with the payload it delivers
  (a :class:`~balance_manager.core.models.BalanceChange`, a
  :class:`~balance_manager.core.validation.validator.ValidationResult`, a
  :class:`SourceChanged` or a :class:`ConnectionState`);
* :class:`ManagerStatus` is what ``get_status()`` returns, :class:`ManagerStatistics`
  what ``get_statistics()`` returns. A venue's own counters (``rest`` and
  ``websocket``) stay ``dict[str, Any]``: each venue has its own.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from balance_manager.core.cache import CacheStatistics
from balance_manager.service.dispatch import DispatcherStatistics

__all__ = [
    "EVENTS",
    "ConnectionState",
    "EventName",
    "HistoryStatus",
    "ManagerStatistics",
    "ManagerStatus",
    "RestStatus",
    "SourceChanged",
    "StreamStatusView",
]

#: The name of an event a callback can be registered for.
EventName = Literal[
    "balance_update",
    "balance_change",
    "validation_failed",
    "source_changed",
    "connection_state",
    "alert_fired",
    "alert_resolved",
]

#: Every event name, in the order of :data:`EventName`.
EVENTS: tuple[EventName, ...] = (
    "balance_update",
    "balance_change",
    "validation_failed",
    "source_changed",
    "connection_state",
    "alert_fired",
    "alert_resolved",
)


class SourceChanged(TypedDict):
    """The payload of ``source_changed``: where served values now stand, and before."""

    source: str
    previous: str


class ConnectionState(TypedDict):
    """The payload of ``connection_state``: the stream's state changed."""

    state: str
    reason: str
    system: str | None
    holds_live: bool


class StreamStatusView(TypedDict):
    """``get_status()["websocket"]``."""

    enabled: bool
    connected: bool
    state: str
    holds_live: bool
    system: str | None
    last_message_age: float | None


class RestStatus(TypedDict):
    """``get_status()["rest"]``."""

    enabled: bool
    circuit_state: str | None
    last_success_age: float | None
    consecutive_failures: int
    last_error: str | None


class HistoryStatus(TypedDict):
    """``get_status()["history"]``."""

    entries: int
    persistence_error: str | None


class ManagerStatus(TypedDict):
    """What ``BalanceManager.get_status()`` returns: health at a glance."""

    initialized: bool
    exchange: str
    account: str
    source: str
    websocket: StreamStatusView
    rest: RestStatus
    cache: CacheStatistics
    tracked_assets: int
    assets: list[str]
    last_update_age: float | None
    history: HistoryStatus
    validation_enabled: bool


class ManagerStatistics(TypedDict):
    """What ``BalanceManager.get_statistics()`` returns: counters since start.

    The manager's own counters, then the totals users ask for most, then each
    part's figures.
    """

    updates: int
    ledger_updates: int
    snapshots: int
    hold_updates: int
    rest_refreshes: int
    rest_failures: int
    validation_failures: int
    validation_warnings: int
    fallbacks: int
    recoveries: int
    stale_reads: int
    source_inconsistencies: int
    hold_mismatches: int
    continuity_breaks: int
    stream_interruptions: int
    quiet_checks: int
    resyncs_requested: int
    stream_restarts: int
    rest_api_calls: int
    websocket_messages: int
    reconnects: int
    callback_errors: int
    callbacks: DispatcherStatistics
    cache: CacheStatistics
    history: dict[str, Any]
    rest: dict[str, Any]
    websocket: dict[str, Any]
    validator: dict[str, Any]
