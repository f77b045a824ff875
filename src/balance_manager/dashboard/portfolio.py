"""What the dashboard's portfolio panel and its API say (sans-I/O apart from reading a manager).

Built from the manager's public valuation API (``BalanceManager.portfolio``,
``portfolio_tracker``, ``portfolio_trackers``, ``prices``):

* :func:`portfolio_payload`: ``/api/portfolio``, a
  :class:`~balance_manager.core.valuation.Portfolio` as JSON. Every amount is an
  exact decimal string, with a ``display`` string for people (values rounded to
  :data:`VALUE_PLACES`, never used for sums). Each asset has a ``state``:
  ``live``, ``stale`` (its price is older than the age allowed, or its balance
  is served from cache; ``reason`` says which) or ``unvalued`` (no price: its
  values are ``null``, never ``"0"``, and it is left out of the total).
* :func:`portfolio_history_payload`: ``/api/portfolio/history``, the value over
  a window (from the value at its start, :func:`in_window`; thinned evenly to a
  limit, the first and last points kept) and how it moved, deposits and
  withdrawals apart from the market.
* :func:`portfolio_status`: the status's ``portfolio`` block: whether the
  manager can value at all, and when each started tracker last valued.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from balance_manager.core.amounts import display_amount, round_to
from balance_manager.core.models import Source
from balance_manager.core.valuation import AssetValue, Portfolio
from balance_manager.core.value_history import Flow, ValueChange, ValuePoint
from balance_manager.dashboard.payloads import amount_text

if TYPE_CHECKING:
    from balance_manager.service.manager import BalanceManager

__all__ = [
    "DEFAULT_QUOTE",
    "NO_PRICES",
    "RATE_DIGITS_SHOWN",
    "VALUE_PLACES",
    "asset_state",
    "in_window",
    "portfolio_history_payload",
    "portfolio_payload",
    "portfolio_status",
    "thin",
]

#: The quote currency of the page's panel.
DEFAULT_QUOTE = "USD"
#: Decimal places of values and allocations shown to people (the exact strings keep every digit).
VALUE_PLACES = 2
#: Significant digits of a rate shown to people.
RATE_DIGITS_SHOWN = 8
#: Why a manager without a price source has no portfolio.
NO_PRICES = (
    "this manager has no price source (connect() sets one up for Kraken and the simulator; "
    "a ccxt venue or a shared follower has none): nothing can be valued"
)


def _value_display(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return display_amount(round_to(value, VALUE_PLACES), VALUE_PLACES)


def _rate_display(rate: Decimal) -> str:
    if not rate:
        return "0"
    quantum = Decimal(1).scaleb(rate.adjusted() - RATE_DIGITS_SHOWN + 1)
    shown = rate.quantize(quantum) if quantum < 1 else round_to(rate, 0)
    return display_amount(shown.normalize() if quantum < 1 else shown)


def asset_state(value: AssetValue, *, now: float, max_price_age: float) -> tuple[str, str]:
    """``(state, reason)`` of one asset's value: ``live``, ``stale`` or ``unvalued``."""
    rate = value.rate
    if rate is None or value.value_total is None:
        return "unvalued", "no price: not in the total"
    reasons = []
    age = rate.age(now)
    if rate.known_current_at is not None and age > max_price_age:
        reasons.append(f"price {age:.0f} s old (stale after {max_price_age:g} s)")
    if value.balance.source is Source.CACHE:
        reasons.append("balance not confirmed by a live source")
    if value.stale and not reasons:
        reasons.append("not confirmed by a live source")
    if reasons:
        return "stale", "; ".join(reasons)
    return "live", ""


def portfolio_payload(
    portfolio: Portfolio,
    *,
    decimals: Callable[[str], int | None],
    now: float,
) -> dict[str, Any]:
    """``/api/portfolio``: the portfolio as exact JSON, each asset with its state.

    Args:
        portfolio: the valuation.
        decimals: an asset's display decimals (for its amount).
        now: the manager's clock (``as_of``).
    """
    body: dict[str, Any] = portfolio.to_dict()
    at = portfolio.valued_at
    rows = []
    for item, value in zip(body["assets"], portfolio.assets.values(), strict=True):
        state, reason = asset_state(value, now=at, max_price_age=portfolio.max_price_age)
        rate = value.rate
        item.update(
            {
                "state": state,
                "reason": reason,
                "path_text": None if rate is None else rate.path_text,
                "display": {
                    "total": display_amount(value.balance.total, decimals(value.asset)),
                    "value": _value_display(value.value_total),
                    "allocation": _value_display(value.allocation),
                    "rate": None if rate is None else _rate_display(rate.rate),
                },
            }
        )
        rows.append(item)
    body["assets"] = rows
    body["display"] = {"total": _value_display(portfolio.total)}
    body["max_price_age"] = portfolio.max_price_age
    body["as_of"] = now
    body["state"] = "live" if portfolio.fresh else "stale"
    return body


def in_window(points: Sequence[ValuePoint], since: float) -> list[ValuePoint]:
    """The points from ``since`` on, led by the last one before it (the value then)."""
    first = 0
    for n, point in enumerate(points):
        if point.at <= since:
            first = n
        else:
            break
    return list(points[first:])


def thin(points: Sequence[ValuePoint], limit: int) -> list[ValuePoint]:
    """At most ``limit`` points (``limit >= 1``), evenly spread, the first and last kept.

    With ``limit == 1`` that one point is the last: the current value.
    """
    if len(points) <= limit:
        return list(points)
    if limit <= 1:
        return list(points[-1:])
    last = len(points) - 1
    picked = sorted({round(n * last / (limit - 1)) for n in range(limit)})
    return [points[n] for n in picked]


def portfolio_history_payload(
    points: Sequence[ValuePoint],
    flows: Sequence[Flow],
    change: ValueChange | None,
    *,
    quote: str,
    hours: float,
    now: float,
    limit: int,
) -> dict[str, Any]:
    """``/api/portfolio/history``: the value over the window, and flows apart from the market.

    Args:
        points: the tracker's points of the window, oldest first.
        flows: its deposits and withdrawals in the window.
        change: ``tracker.change_over(hours * 3600)`` (``None`` before any valuation).
        quote: the quote currency.
        hours: the window.
        now: the manager's clock.
        limit: most points returned (thinned evenly beyond it).
    """
    shown = thin(points, limit)
    return {
        "quote": quote,
        "hours": hours,
        "since": now - hours * 3600.0,
        "until": now,
        "thinned": len(shown) < len(points),
        "points": [
            {"t": p.at, "total": amount_text(p.total), "complete": p.complete, "fresh": p.fresh}
            for p in shown
        ],
        "flows": [
            {
                "t": f.at,
                "asset": f.asset,
                "amount": amount_text(f.amount),
                "kind": f.kind,
                "value": None if f.value is None else amount_text(f.value),
            }
            for f in flows
        ],
        "change": None if change is None else change.to_dict(),
        "display": None
        if change is None
        else {
            "start": _value_display(change.start.total),
            "end": _value_display(change.end.total),
            "change": _value_display(change.change),
            "flows": _value_display(change.flows),
            "market": _value_display(change.market),
        },
    }


def portfolio_status(manager: BalanceManager, *, quote: str = DEFAULT_QUOTE) -> dict[str, Any]:
    """The status's ``portfolio`` block (no I/O): can the manager value, and when it last did."""
    available = manager.prices is not None
    return {
        "available": available,
        "reason": None if available else NO_PRICES,
        "quote": quote,
        "valued_at": {
            name: tracker.latest.valued_at
            for name, tracker in manager.portfolio_trackers.items()
            if tracker.latest is not None
        },
    }
