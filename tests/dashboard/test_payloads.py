"""What the API says: exact strings, visible staleness, zero as zero, JSON without floats' NaN."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from balance_manager.core.models import Balance, Source
from balance_manager.core.validation.rules import Issue, Severity
from balance_manager.core.validation.validator import ValidationResult
from balance_manager.dashboard.payloads import (
    FreeSeries,
    amount_text,
    balance_row,
    connection_event,
    dumps,
    row_state,
    source_event,
    validation_event,
)
from balance_manager.exceptions import ConfigError


def btc(
    balance: str = "1.2435000000", hold: str = "0.0003", source: Source = Source.REST
) -> Balance:
    return Balance(
        "BTC", Decimal(balance), Decimal(hold), source, None, 1_700_000_000.0, earn=Decimal("0")
    )


def test_amounts_are_exact_plain_strings() -> None:
    """Every digit the exchange wrote, no exponent: 0E-10 and 1E-8 are written out."""
    assert amount_text(Decimal("1.2435000000")) == "1.2435000000"
    assert amount_text(Decimal("0E-10")) == "0.0000000000"
    assert amount_text(Decimal("1E-8")) == "0.00000001"
    assert amount_text(Decimal("123456789012345678901234567.123")) == (
        "123456789012345678901234567.123"
    )


def test_a_row_has_exact_and_display_amounts() -> None:
    """The row keeps the exact strings and adds display strings at the asset's decimals."""
    row = balance_row(btc(), age=0.5, decimals=5, stale_after=120.0, holds_live=True)
    assert row["balance"] == "1.2435000000"
    assert row["free"] == "1.2432000000"
    assert row["hold_trade"] == "0.0003"
    assert row["display"]["balance"] == "1.24350"
    assert row["display"]["free"] == "1.24320"
    assert row["state"] == "live"
    assert row["source"] == "rest"
    assert row["age"] == 0.5


def test_a_zero_balance_is_a_row_of_zeros() -> None:
    """A zero balance renders as 0 (the portfolio page that crashed on one, dashboard#161)."""
    row = balance_row(btc("0", "0"), age=1.0, decimals=None, stale_after=120.0, holds_live=True)
    assert row["balance"] == "0"
    assert row["display"]["balance"] == "0"
    assert row["display"]["free"] == "0"
    assert row["state"] == "live"


@pytest.mark.parametrize(
    ("source", "age", "state", "words"),
    [
        (Source.WEBSOCKET, 1.0, "live", ""),
        (Source.REST, 121.0, "stale", "not confirmed for 121 s"),
        (Source.CACHE, 0.0, "unconfirmed", "no live source"),
        (Source.WEBSOCKET, None, "unconfirmed", "never confirmed"),
    ],
)
def test_row_state(source: Source, age: float | None, state: str, words: str) -> None:
    """Cache values are unconfirmed, old ones stale, the rest live; the reason says why."""
    got, reason = row_state(btc(source=source), age, stale_after=120.0)
    assert got == state
    assert words in reason


def test_dumps_writes_decimals_as_strings_and_nan_as_null() -> None:
    """No float ever carries an amount, and JSON stays valid whatever the numbers."""
    text = dumps(
        {"a": Decimal("0.1"), "b": float("nan"), "c": [float("inf"), 1.5], "s": Source.CACHE}
    )
    assert json.loads(text) == {"a": "0.1", "b": None, "c": [None, 1.5], "s": "cache"}
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_free_series_records_per_asset_bounded() -> None:
    """Free and held are recorded per asset, the newest max_points kept, at most max_assets."""
    series = FreeSeries(max_points=2, max_assets=1)
    for n in range(3):
        series.record(
            Balance("BTC", Decimal(n + 1), Decimal("0.5"), Source.WEBSOCKET, None, 100.0 + n)
        )
    series.record(Balance("ETH", Decimal(1), received_at=100.0))
    assert [(t, str(f)) for t, f, _ in series.since("BTC", 0)] == [(101.0, "1.5"), (102.0, "2.5")]
    assert series.since("BTC", 102.0)[0][0] == 102.0
    assert series.since("ETH", 0) == []
    assert series.started_at == 100.0
    with pytest.raises(ConfigError):
        FreeSeries(max_points=0)


def test_event_texts() -> None:
    """Source, connection and validation events read as sentences."""
    assert source_event({"source": "cache", "previous": "rest"}, now=1.0)["text"] == (
        "serving from cache (was rest) - values are not confirmed"
    )
    assert connection_event({"state": "streaming", "holds_live": True}, now=1.0)["text"] == (
        "stream streaming, holds live"
    )
    assert connection_event({"state": "reconnecting", "reason": "dropped"}, now=1.0)["text"] == (
        "stream reconnecting (dropped)"
    )
    issues = tuple(Issue(f"rule{n}", Severity.WARNING, "BTC", "message") for n in range(5))
    event = validation_event(ValidationResult(issues, 1), now=1.0)
    assert event["text"].endswith("(+2 more)")
    assert len(event["issues"]) == 5
