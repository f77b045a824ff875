"""Tests of kraken.protocol.errors: every documented string → class and retry flag."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from balance_manager.exceptions import (
    AuthenticationError,
    ExchangeError,
    ExchangeUnavailableError,
    InvalidNonceError,
    LockoutError,
    RateLimitedError,
)
from balance_manager.kraken.protocol.errors import (
    DEFAULT_RATE_LIMIT_WAIT,
    ERROR_TABLE,
    error_class,
    exception_for,
    is_warning,
    split_messages,
)

# (error string, class, retryable) for every string of docs/kraken.md, 'Error strings'.
CASES = [
    ("EAPI:Invalid key", AuthenticationError, False),
    ("EAPI:Invalid signature", AuthenticationError, False),
    ("EGeneral:Permission denied", AuthenticationError, False),
    ("ESession:Invalid session", AuthenticationError, False),
    ("EAccount:Invalid permissions", AuthenticationError, False),
    ("EAuth:Account temporary disabled", AuthenticationError, False),
    ("EAuth:Account unconfirmed", AuthenticationError, False),
    ("EAPI:Invalid nonce", InvalidNonceError, False),
    ("EAPI:Rate limit exceeded", RateLimitedError, True),
    ("EAuth:Rate limit exceeded", RateLimitedError, True),
    ("EAuth:Too many requests", RateLimitedError, True),
    ("EService: Throttled: 1700000000", RateLimitedError, True),
    ("EGeneral:Temporary lockout", LockoutError, False),
    ("EService:Unavailable", ExchangeUnavailableError, True),
    ("EService:Busy", ExchangeUnavailableError, True),
    ("EGeneral:Internal error", ExchangeUnavailableError, True),
    ("EGeneral:Internal error:5001", ExchangeUnavailableError, True),
    ("EDatabase:Internal error", ExchangeUnavailableError, True),
    ("EService:Market in cancel_only mode", ExchangeUnavailableError, True),
    ("EService:Market in post_only mode", ExchangeUnavailableError, True),
    ("EService:Market in limit_only mode", ExchangeUnavailableError, True),
    ("EService:Deadline elapsed", ExchangeUnavailableError, True),
    ("EGeneral:Invalid arguments", ExchangeError, False),
    ("EGeneral:Invalid arguments:ordertype", ExchangeError, False),
    ("EQuery:Unknown asset", ExchangeError, False),
    ("EQuery:Unknown asset pair", ExchangeError, False),
    ("EAPI:Bad request", ExchangeError, False),
    ("EAPI:Feature disabled", ExchangeError, False),
    ("EOrder:Insufficient funds", ExchangeError, False),
    ("something Kraken never documented", ExchangeError, False),
]


@pytest.mark.parametrize(("code", "cls", "retryable"), CASES, ids=[c[0] for c in CASES])
def test_error_string_maps_to_class_and_retry_flag(
    code: str, cls: type[ExchangeError], retryable: bool
) -> None:
    """Each documented error string gives its exact class, retry flag and code."""
    error = exception_for(code, method="BalanceEx")
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.code == code
    assert error.method == "BalanceEx"
    assert code in str(error)


def test_every_table_entry_is_covered_by_the_cases() -> None:
    """No table entry is left without its own test case above."""
    tested = {code for code, _, _ in CASES}
    assert set(ERROR_TABLE) <= tested


def test_throttled_timestamp_becomes_retry_after() -> None:
    """`EService: Throttled: <ts>` waits until ts, measured from the given now."""
    error = exception_for("EService: Throttled: 1700000012", now=1_700_000_000.5)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == pytest.approx(11.5)


def test_throttled_in_the_past_means_no_wait() -> None:
    """A throttle time already passed gives retry_after 0, never negative."""
    error = exception_for("EService: Throttled: 1700000000", now=1_700_000_100.0)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 0.0


@pytest.mark.parametrize(
    "code",
    [
        "EService: Throttled: 1700000012",  # no `now` given (see below)
        "EService: Throttled: soon",
        "EService: Throttled",
        "EService:Throttled: nan",
        "EAPI:Rate limit exceeded",
    ],
)
def test_rate_limits_without_a_usable_time_wait_the_default(code: str) -> None:
    """Without a timestamp (or a `now`) a rate limit waits DEFAULT_RATE_LIMIT_WAIT."""
    error = exception_for(code)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == DEFAULT_RATE_LIMIT_WAIT


def test_surrounding_whitespace_is_ignored_for_matching() -> None:
    """A string with stray spaces still maps to its class, and keeps its exact text."""
    error = exception_for("  EAPI:Invalid nonce ")
    assert isinstance(error, InvalidNonceError)
    assert error.code == "  EAPI:Invalid nonce "


def test_warnings_are_not_errors() -> None:
    """W-strings are warnings: split out, and refused by exception_for."""
    errors, warnings = split_messages(["WGeneral:Deprecated", "EAPI:Invalid key", "WX:y"])
    assert errors == ["EAPI:Invalid key"]
    assert warnings == ["WGeneral:Deprecated", "WX:y"]
    assert is_warning("WGeneral:Deprecated")
    assert not is_warning("EGeneral:Deprecated")
    with pytest.raises(ValueError, match="warning"):
        exception_for("WGeneral:Deprecated")


@given(st.text(max_size=60).filter(lambda s: not s.startswith("W")))
def test_any_string_maps_to_some_exchange_error(code: str) -> None:
    """Any non-warning string maps to an ExchangeError subclass carrying the string."""
    error = exception_for(code)
    assert isinstance(error, ExchangeError)
    assert error.code == code
    assert issubclass(error_class(code), ExchangeError)
