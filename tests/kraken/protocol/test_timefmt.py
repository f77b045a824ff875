"""Tests of balance_manager.kraken.protocol.timefmt: RFC 3339 / RFC 1123 both ways."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, strategies as st

from balance_manager.exceptions import ProtocolError
from balance_manager.kraken.protocol.timefmt import format_rfc1123, format_rfc3339, parse_rfc3339


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-09-22T10:23:42.925034Z", 1695378222.925034),  # ws_balances_update_deposit.json
        ("2021-03-22T17:18:03Z", 1616433483.0),  # rest_systemstatus.json
        ("1970-01-01T00:00:00Z", 0.0),
        ("2023-09-22T12:23:42.925034+02:00", 1695378222.925034),
        ("2023-09-22T10:23:42.9Z", 1695378222.9),
        ("2023-09-22T10:23:42.925034999Z", 1695378222.925034),  # beyond µs: truncated
    ],
)
def test_parse_known_values(text: str, expected: float) -> None:
    """Kraken's timestamps parse to the right Unix seconds."""
    assert parse_rfc3339(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2023-09-22",
        "2023-09-22T10:23:42",  # no zone: refusing beats guessing one
        "2023-13-22T10:23:42Z",
        "2023-09-22T25:23:42Z",
        "2023-09-22T10:23Z",
    ],
)
def test_parse_rejects_non_timestamps(text: str) -> None:
    """Anything that is not a zoned RFC 3339 date-time raises ProtocolError."""
    with pytest.raises(ProtocolError, match="RFC 3339"):
        parse_rfc3339(text)


def test_format_known_values() -> None:
    """Formatting gives Kraken's shape, with or without the fraction."""
    assert format_rfc3339(1695378222.925034) == "2023-09-22T10:23:42.925034Z"
    assert format_rfc3339(1616433483) == "2021-03-22T17:18:03.000000Z"
    assert format_rfc3339(1616433483, fraction=False) == "2021-03-22T17:18:03Z"
    assert format_rfc3339(59.9999996) == "1970-01-01T00:01:00.000000Z"  # rounds over a minute


def test_rfc1123_matches_rest_time_fixture() -> None:
    """REST Time's rfc1123 (two-digit year) is reproduced from its unixtime."""
    assert format_rfc1123(1688669448) == "Thu, 06 Jul 23 18:50:48 +0000"


@given(st.integers(min_value=0, max_value=4_102_444_800 * 1_000_000))
def test_format_then_parse_round_trips_to_the_microsecond(micros: int) -> None:
    """Any time up to 2100 survives format → parse at microsecond precision."""
    ts = micros / 1_000_000
    text = format_rfc3339(ts)
    assert round(parse_rfc3339(text) * 1_000_000) == micros
    assert format_rfc3339(parse_rfc3339(text)) == text


@given(
    st.datetimes(
        min_value=dt.datetime(1970, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=dt.datetime(2100, 1, 1),  # noqa: DTZ001 - idem
        timezones=st.just(dt.UTC),
    )
)
def test_format_agrees_with_datetime(aware: dt.datetime) -> None:
    """format_rfc3339 writes what datetime's own strftime writes for the same instant."""
    expected = aware.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert format_rfc3339(aware.timestamp()) == expected
    assert format_rfc1123(aware.timestamp()) == aware.strftime("%a, %d %b %y %H:%M:%S +0000")
