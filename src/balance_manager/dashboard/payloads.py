"""What the dashboard's JSON API and event stream say, built from a manager's public API.

Every amount leaves as an exact decimal string (``"1.2435000000"``, never a
float), together with a ``display`` string for people (plain digits at the
asset's display decimals, nothing rounded away). Every value says how much it
can be trusted:

* ``state``: ``live`` (a live source confirmed it recently), ``stale`` (not
  confirmed for longer than ``stale_after`` seconds) or ``unconfirmed`` (no
  live source confirms it at all: the last known value, served from cache);
* ``reason``: why, in words, when it is not ``live``.

A zero balance is a value like any other (``"0"``), and an asset the manager
does not hold is absent, never shown as zero.

The status's ``shared`` block says ``single process`` (:data:`SHARED_MODE`), or,
for the manager of a shared-balances leader, who leads with which epoch and
what each strategy has reserved (:func:`shared_leader_block`, read through a
:data:`SharedStatus` provider the dashboard is given: this package never talks
to Redis itself).

Sans-I/O apart from reading the manager: these functions only compute.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from balance_manager.core.alerts.model import Alert
from balance_manager.core.amounts import EXACT_CONTEXT, ZERO, display_amount
from balance_manager.core.models import Balance, BalanceChange, Source
from balance_manager.core.validation.validator import ValidationResult
from balance_manager.exceptions import ConfigError

if TYPE_CHECKING:
    from balance_manager.service.manager import BalanceManager

__all__ = [
    "COUNTERS",
    "SHARED_MODE",
    "FreeSeries",
    "ReservedFunds",
    "SharedStatus",
    "alert_event",
    "alerts_payload",
    "amount_text",
    "balance_event",
    "balance_row",
    "balances_payload",
    "connection_event",
    "dumps",
    "history_payload",
    "reservations_by_owner",
    "row_state",
    "shared_leader_block",
    "shared_unknown_block",
    "source_event",
    "status_payload",
    "validation_event",
]

#: Counters of ``get_statistics()`` shown on the page.
COUNTERS = (
    "updates",
    "rest_api_calls",
    "websocket_messages",
    "reconnects",
    "fallbacks",
    "recoveries",
    "validation_failures",
    "callback_errors",
)

#: The shared-mode block of a manager that owns its balances alone (no leader,
#: no epoch, no reservations). A shared-balances leader's is :func:`shared_leader_block`.
SHARED_MODE: Mapping[str, Any] = {
    "mode": "single process",
    "leader": None,
    "epoch": None,
    "reservations": None,
}

#: Reads the status's shared-mode block now (a :func:`shared_leader_block`); the
#: dashboard calls it on its status tick, bounded in time, and serves the last answer.
SharedStatus: TypeAlias = Callable[[], Awaitable[Mapping[str, Any]]]


class ReservedFunds(Protocol):
    """What the dashboard reads of one fund reservation (a shared reservation is one)."""

    @property
    def owner(self) -> str:
        """Who reserved it (a strategy's name)."""

    @property
    def asset(self) -> str:
        """The asset."""

    @property
    def amount(self) -> Decimal:
        """The amount set aside (exact)."""

    @property
    def state(self) -> str:
        """``held``, or ``committed`` once its order was sent."""


_AMOUNTS = ("balance", "free", "hold_trade", "earn", "total", "credit", "credit_used")


def amount_text(value: Decimal) -> str:
    """``value`` as exact plain text: every digit the exchange wrote, no exponent."""
    return f"{value:f}"


def row_state(balance: Balance, age: float | None, *, stale_after: float) -> tuple[str, str]:
    """``(state, reason)`` of a served value: ``live``, ``stale`` or ``unconfirmed``."""
    if balance.source is Source.CACHE:
        return "unconfirmed", "no live source confirms it: last known value"
    if age is None:
        return "unconfirmed", "never confirmed"
    if age > stale_after:
        return "stale", f"not confirmed for {age:.0f} s (stale after {stale_after:g} s)"
    return "live", ""


def balance_row(
    balance: Balance,
    *,
    age: float | None,
    decimals: int | None,
    stale_after: float,
    holds_live: bool,
) -> dict[str, Any]:
    """One asset's row: exact amounts, display amounts, source, age and state."""
    state, reason = row_state(balance, age, stale_after=stale_after)
    amounts = {name: getattr(balance, name) for name in _AMOUNTS}
    row: dict[str, Any] = {"asset": balance.asset}
    row.update({name: amount_text(value) for name, value in amounts.items()})
    row["display"] = {name: display_amount(value, decimals) for name, value in amounts.items()}
    row.update(
        {
            "source": balance.source.value,
            "age": _seconds(age),
            "state": state,
            "reason": reason,
            "holds_live": holds_live,
            "received_at": balance.received_at,
            "exchange_time": balance.exchange_time,
            "timestamp": balance.timestamp,
        }
    )
    return row


def _seconds(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, 3)


def _rows(manager: BalanceManager, balances: Mapping[str, Balance]) -> list[dict[str, Any]]:
    stale_after = manager.config.stale_after
    holds_live = _holds_live(manager)
    return [
        balance_row(
            balances[asset],
            age=manager.age_of(balances[asset]),
            decimals=manager.names.display_decimals(asset),
            stale_after=stale_after,
            holds_live=holds_live,
        )
        for asset in sorted(balances)
    ]


def _holds_live(manager: BalanceManager) -> bool:
    """Whether holds are followed live (no stream: they are as recent as REST's reads)."""
    status = manager.get_status()
    return bool(status["websocket"]["holds_live"])


def balances_payload(manager: BalanceManager, *, event_id: str, now: float) -> dict[str, Any]:
    """``/api/balances``: every held asset, with the event id the page resumes from."""
    balances = manager.sync_view().get_all_balances()
    return {
        "as_of": now,
        "event_id": event_id,
        "exchange": manager.exchange,
        "simulated": manager.simulated,
        "source": manager.serving_mode.value,
        "stale_after": manager.config.stale_after,
        "balances": _rows(manager, balances),
    }


def reservations_by_owner(
    reservations: Iterable[ReservedFunds],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Owner → asset → ``reserved`` (exact total), ``count`` and ``committed``, sorted by name."""
    totals: dict[str, dict[str, list[Any]]] = {}
    for item in reservations:
        slot = totals.setdefault(item.owner, {}).setdefault(item.asset, [ZERO, 0, 0])
        slot[0] = EXACT_CONTEXT.add(slot[0], item.amount)
        slot[1] += 1
        slot[2] += item.state == "committed"
    return {
        owner: {
            asset: {"reserved": amount_text(reserved), "count": count, "committed": committed}
            for asset, (reserved, count, committed) in sorted(assets.items())
        }
        for owner, assets in sorted(totals.items())
    }


def shared_leader_block(
    leader: Mapping[str, Any],
    reservations: Iterable[ReservedFunds] | None,
    *,
    listed_at: float | None,
    error: str | None = None,
) -> dict[str, Any]:
    """The shared-mode block of a leader candidate's manager.

    Args:
        leader: the candidate's status (``role``, ``owner``, ``epoch``,
            ``generation``; nothing else of it is shown).
        reservations: every live reservation of the account, or ``None`` when
            they could not be read (then ``error`` says why).
        listed_at: when they were last read successfully (Unix seconds), if ever.
        error: why they could not be read this time, in words without a password.
    """
    leading = leader.get("role") == "leader"
    return {
        "mode": "shared leader" if leading else "shared candidate, not leading",
        "leader": leader.get("owner") if leading else None,
        "owner": leader.get("owner"),
        "epoch": leader.get("epoch") if leading else None,
        "generation": leader.get("generation") if leading else None,
        "reservations": None if reservations is None else reservations_by_owner(reservations),
        "reservations_listed_at": listed_at,
        "reservations_error": error,
    }


def shared_unknown_block(error: str) -> dict[str, Any]:
    """The shared-mode block when the shared status itself could not be read."""
    return {
        "mode": "shared",
        "leader": None,
        "owner": None,
        "epoch": None,
        "generation": None,
        "reservations": None,
        "reservations_listed_at": None,
        "reservations_error": error,
    }


def status_payload(
    manager: BalanceManager,
    *,
    now: float,
    dashboard: Mapping[str, Any],
    shared: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``/api/status``: sources, breaker, freshness, counters, shared mode, and the dashboard.

    ``shared`` is the shared-mode block (:data:`SHARED_MODE` when ``None``).
    """
    status: dict[str, Any] = dict(manager.get_status())
    stats: Mapping[str, Any] = manager.get_statistics()
    status.pop("account", None)  # a fingerprint of the key: the page has no use for it
    ages = {
        asset: {
            "age": row["age"],
            "state": row["state"],
            "reason": row["reason"],
            "source": row["source"],
        }
        for asset, row in (
            (row["asset"], row) for row in _rows(manager, manager.sync_view().get_all_balances())
        )
    }
    return {
        "as_of": now,
        "simulated": manager.simulated,
        **status,
        "stale_after": manager.config.stale_after,
        "counters": {name: stats.get(name, 0) for name in COUNTERS},
        "shared": dict(SHARED_MODE if shared is None else shared),
        "freshness": ages,
        "alerts": alerts_payload(manager),
        "dashboard": dict(dashboard),
    }


class FreeSeries:
    """Free and held amounts per asset over time, as the dashboard saw them change.

    The history store keeps each asset's balance, not its free amount; the
    chart's free line is recorded here from ``balance_update`` events since the
    dashboard started (bounded: the newest ``max_points`` per asset, for at
    most ``max_assets`` assets).

    Raises:
        ConfigError: a bound is not a positive int.
    """

    def __init__(self, *, max_points: int = 10_000, max_assets: int = 1_000) -> None:
        for name, value in (("max_points", max_points), ("max_assets", max_assets)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "must be an int >= 1")
        self._max_points = max_points
        self._max_assets = max_assets
        self._points: dict[str, deque[tuple[float, Decimal, Decimal]]] = {}
        self.started_at: float | None = None

    def record(self, balance: Balance) -> None:
        """Note ``balance``'s free and held amounts at its time."""
        points = self._points.get(balance.asset)
        if points is None:
            if len(self._points) >= self._max_assets:
                return
            points = self._points[balance.asset] = deque(maxlen=self._max_points)
        if self.started_at is None:
            self.started_at = balance.timestamp
        points.append((balance.timestamp, balance.free, balance.hold_trade))

    def since(self, asset: str, since: float) -> list[tuple[float, Decimal, Decimal]]:
        """``(time, free, held)`` of ``asset`` from ``since`` on, oldest first."""
        return [p for p in self._points.get(asset, ()) if p[0] >= since]


def history_payload(
    manager: BalanceManager,
    asset: str,
    *,
    hours: float,
    now: float,
    limit: int,
    free: FreeSeries,
) -> dict[str, Any]:
    """``/api/history/{asset}``: the balance from the history, free and held as seen live."""
    since = now - hours * 3600.0
    entries = manager.history.get_asset_history(asset, since=since, limit=limit)
    decimals = manager.names.display_decimals(asset)
    current = manager.sync_view().get_balance(asset)
    points = free.since(asset, since)[-limit:]
    return {
        "asset": asset,
        "hours": hours,
        "since": since,
        "until": now,
        "decimals": decimals,
        "balance": [
            {
                "t": e.timestamp,
                "balance": amount_text(e.balance),
                "change": amount_text(e.change),
                "source": e.source.value,
            }
            for e in entries
        ],
        "free": [
            {"t": t, "free": amount_text(f), "hold_trade": amount_text(h)} for t, f, h in points
        ],
        "free_recorded_since": free.started_at,
        "current": None
        if current is None
        else balance_row(
            current,
            age=manager.age_of(current),
            decimals=decimals,
            stale_after=manager.config.stale_after,
            holds_live=_holds_live(manager),
        ),
    }


# -- events -----------------------------------------------------------------------------


def balance_event(
    manager: BalanceManager,
    change: BalanceChange,
    *,
    now: float,
    holds_live: bool | None = None,
) -> dict[str, Any]:
    """A ``balance`` event: the asset's row as served now, and the change in words.

    ``holds_live`` as last known by the caller saves asking the manager's whole
    status for every event (``None``: ask).
    """
    new, old = change.new, change.old
    places = manager.names.display_decimals(new.asset)
    served = manager.sync_view().get_balance(new.asset) or new
    row = balance_row(
        served,
        age=manager.age_of(served),
        decimals=places,
        stale_after=manager.config.stale_after,
        holds_live=_holds_live(manager) if holds_live is None else holds_live,
    )
    via = f"via {new.source.value}"
    if old is None:
        text = f"{new.asset} {display_amount(new.balance, places)} (first value) {via}"
    elif old.balance != new.balance:
        delta = change.delta
        sign = "+" if delta > 0 else ""
        text = (
            f"{new.asset} balance {display_amount(old.balance, places)} → "
            f"{display_amount(new.balance, places)} ({sign}{display_amount(delta, places)}) {via}"
        )
    else:
        text = (
            f"{new.asset} held {display_amount(old.hold_trade, places)} → "
            f"{display_amount(new.hold_trade, places)}, free "
            f"{display_amount(new.free, places)} {via}"
        )
    return {
        "time": now,
        "text": text,
        "asset": new.asset,
        "kind": change.kind,
        "delta": amount_text(change.delta),
        "ledger_id": change.ledger_id,
        "point": {
            "t": new.timestamp,
            "balance": amount_text(new.balance),
            "free": amount_text(new.free),
        },
        "row": row,
    }


def source_event(payload: Mapping[str, Any], *, now: float) -> dict[str, Any]:
    """A ``source`` event: where served values stand now, and before."""
    source, previous = str(payload.get("source")), payload.get("previous")
    tail = f" (was {previous})" if previous else ""
    stale = " - values are not confirmed" if source == "cache" else ""
    return {
        "time": now,
        "text": f"serving from {source}{tail}{stale}",
        "source": source,
        "previous": previous,
    }


def connection_event(payload: Mapping[str, Any], *, now: float) -> dict[str, Any]:
    """A ``connection`` event: the stream's new state."""
    state = str(payload.get("state"))
    reason = payload.get("reason") or ""
    holds = ", holds live" if payload.get("holds_live") else ""
    return {
        "time": now,
        "text": f"stream {state}" + (f" ({reason})" if reason else holds),
        "state": state,
        "reason": reason,
        "holds_live": bool(payload.get("holds_live")),
        "system": payload.get("system"),
    }


def alerts_payload(manager: BalanceManager) -> list[dict[str, Any]]:
    """The alerts firing now, oldest first, as JSON (amounts as exact strings)."""
    monitor = manager.alerts
    return [alert.as_json() for alert in monitor.active()] if monitor is not None else []


def alert_event(alert: Alert, *, now: float) -> dict[str, Any]:
    """An ``alert`` event: one alert fired or resolved."""
    where = f" {alert.asset}" if alert.asset else ""
    if alert.active:
        text = f"alert: {alert.severity.value} {alert.rule}{where}: {alert.message}"
    else:
        text = f"alert resolved: {alert.rule}{where}"
    return {"time": now, "text": text, "alert": alert.as_json()}


def validation_event(result: ValidationResult, *, now: float) -> dict[str, Any]:
    """A ``validation`` event: the issues found."""
    issues = [
        {
            "rule": issue.rule,
            "severity": issue.severity.value,
            "asset": issue.asset,
            "message": issue.message,
        }
        for issue in result.issues
    ]
    shown = "; ".join(f"{i['severity']} {i['rule']} on {i['asset']}" for i in issues[:3])
    more = f" (+{len(issues) - 3} more)" if len(issues) > 3 else ""
    return {"time": now, "text": f"validation: {shown}{more}", "issues": issues}


# -- JSON ---------------------------------------------------------------------------------


def _default(value: object) -> Any:
    if isinstance(value, Decimal):
        return amount_text(value)
    if isinstance(value, Source):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "value") and isinstance(value.value, str):  # other enums
        return value.value
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _clean(value: Any) -> Any:
    """Non-finite floats become ``null`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """``value`` as compact JSON: Decimals as exact strings, never a float or a NaN."""
    return json.dumps(_clean(value), default=_default, separators=(",", ":"), allow_nan=False)
