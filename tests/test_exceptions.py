"""Tests of balance_manager.exceptions: one tree, retryable flags, messages built from fields."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import balance_manager.exceptions as exceptions_module
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

ALL_CLASSES = [
    getattr(exceptions_module, name)
    for name in exceptions_module.__all__
    if inspect.isclass(getattr(exceptions_module, name))
]


def test_all_lists_every_exception_class() -> None:
    """__all__ names exactly the exception classes defined in the module, sorted."""
    defined = {
        name
        for name, obj in vars(exceptions_module).items()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == exceptions_module.__name__
    }
    assert set(exceptions_module.__all__) == defined
    assert list(exceptions_module.__all__) == sorted(exceptions_module.__all__)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_every_class_is_a_balance_manager_error(cls: type[BaseException]) -> None:
    """Catching BalanceManagerError catches every error of the package."""
    assert issubclass(cls, BalanceManagerError)


@pytest.mark.parametrize(
    ("cls", "parents"),
    [
        (ConfigError, (ValueError,)),
        (InvalidAmountError, (ValueError,)),
        (FloatAmountError, (InvalidAmountError, TypeError, ValueError)),
        (BalanceStateError, (ValueError,)),
        (UnknownAssetError, (KeyError,)),
        (UnknownEventError, (ValueError,)),
        (TransportError, (SourceError,)),
        (RequestTimeoutError, (TransportError,)),
        (ExchangeError, (SourceError,)),
        (AuthenticationError, (ExchangeError,)),
        (InvalidNonceError, (ExchangeError,)),
        (RateLimitedError, (ExchangeError,)),
        (LockoutError, (ExchangeError,)),
        (ExchangeUnavailableError, (ExchangeError,)),
        (CircuitOpenError, (SourceError,)),
        (StaleBalanceError, (SourceError,)),
    ],
)
def test_branches_of_the_tree(cls: type[BaseException], parents: tuple[type, ...]) -> None:
    """Each class sits on its documented branch (and builtin base where it has one)."""
    for parent in parents:
        assert issubclass(cls, parent)


def test_persistence_and_protocol_errors_are_not_source_errors() -> None:
    """Persistence and protocol errors are their own branches, not source failures."""
    assert not issubclass(PersistenceError, SourceError)
    assert not issubclass(ProtocolError, SourceError)


# -- retryable --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (TransportError("reset"), True),
        (RequestTimeoutError("Balance", 15.0), True),
        (InvalidNonceError("EAPI:Invalid nonce"), False),
        (RateLimitedError(), True),
        (ExchangeUnavailableError("EService:Unavailable"), True),
        (ExchangeError("EGeneral:Invalid arguments"), False),
        (AuthenticationError("EAPI:Invalid key"), False),
        (LockoutError("EGeneral:Temporary lockout"), False),
        (CircuitOpenError("rest", 3.0), False),
        (StaleBalanceError("BTC", None, 10.0), False),
        (ConfigError("x", 1, "bad"), False),
        (ProtocolError("bad"), False),
        (PersistenceError("locked"), False),
        (UnknownAssetError("FOO"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_retryable_flags(error: BalanceManagerError, retryable: bool) -> None:
    """Only transient failures are retryable; lockouts, auth and bad input are not."""
    assert error.retryable is retryable


def test_exchange_error_retryable_can_be_set_per_instance() -> None:
    """ExchangeError(retryable=...) overrides the class default for that instance only."""
    assert ExchangeError("EGeneral:Internal error", retryable=True).retryable is True
    assert ExchangeUnavailableError("EService:Busy", retryable=False).retryable is False
    assert ExchangeError("EGeneral:Internal error").retryable is False


# -- messages carry fields -----------------------------------------------------------------


class _BrokenRepr:
    """An object whose repr raises."""

    def __repr__(self) -> str:
        raise RuntimeError("broken repr")


@pytest.mark.parametrize(
    "make",
    [
        lambda value: ConfigError("option", value, "bad"),
        lambda value: InvalidAmountError("amount", value, "bad"),
        lambda value: BalanceStateError("BTC", "balance", value, "bad"),
        lambda value: str(UnknownAssetError(value)),
        lambda value: UnknownEventError(value, ("balance_update",)),
    ],
    ids=["ConfigError", "InvalidAmountError", "BalanceStateError", "UnknownAsset", "UnknownEvent"],
)
@pytest.mark.parametrize(
    "value",
    [10**5000, _BrokenRepr(), "x" * 1_000_000],
    ids=["int-5000-digits", "broken-repr", "megabyte-string"],
)
def test_messages_show_any_value_briefly_and_never_fail(make: Any, value: object) -> None:
    """A value too long to show, or whose repr raises, gives a short message, not a new error."""
    message = str(make(value))
    assert len(message) < 400
    assert type(value).__name__ in message or "characters" in message


def test_config_error_fields_and_message() -> None:
    """ConfigError keeps option, value and reason and names them in its message."""
    error = ConfigError("cache_max_size", 0, "must be > 0")
    assert (error.option, error.value, error.reason) == ("cache_max_size", 0, "must be > 0")
    assert str(error) == "invalid config option cache_max_size=0: must be > 0"


def test_amount_errors_fields_and_message() -> None:
    """InvalidAmountError and FloatAmountError name the field and show the value."""
    error = InvalidAmountError("balance", "abc", "not a decimal number")
    assert str(error) == "balance='abc': not a decimal number"
    floaty = FloatAmountError("hold_trade", 0.3)
    assert floaty.field == "hold_trade"
    assert floaty.value == 0.3
    assert str(floaty).startswith("hold_trade=0.3: floats are refused because they are inexact")
    assert "Decimal('0.3')" in str(floaty)


def test_balance_state_error_fields_and_message() -> None:
    """BalanceStateError names asset, field, value and reason."""
    error = BalanceStateError("BTC", "hold_trade", -1, "must not be negative")
    assert (error.asset, error.field, error.value) == ("BTC", "hold_trade", -1)
    assert str(error) == "impossible balance for BTC: hold_trade=-1: must not be negative"


def test_unknown_asset_error_reads_well_and_is_a_key_error() -> None:
    """UnknownAssetError's message is readable (not KeyError's quoted repr), with detail."""
    assert str(UnknownAssetError("FOO")) == "unknown asset 'FOO'"
    error = UnknownAssetError("FOO", "not in Assets")
    assert str(error) == "unknown asset 'FOO': not in Assets"
    with pytest.raises(KeyError):
        raise error


def test_unknown_event_error_lists_known_events() -> None:
    """UnknownEventError names the bad event and lists the known ones."""
    error = UnknownEventError("balance_updates", ("balance_update", "balance_change"))
    assert error.known == ("balance_update", "balance_change")
    assert str(error) == (
        "unknown event 'balance_updates'; known events: balance_update, balance_change"
    )


def test_protocol_error_adds_the_path_once_and_truncates_raw() -> None:
    """ProtocolError appends the JSON path unless the message has it, and keeps 200 raw chars."""
    error = ProtocolError("Expected `str`, got `int`", path="$.data[0].balance", raw="x" * 500)
    assert str(error) == "Expected `str`, got `int` - at `$.data[0].balance`"
    assert error.path == "$.data[0].balance"
    assert error.detail == "Expected `str`, got `int`"
    assert len(error.raw) == 200
    already = ProtocolError("Expected `str`, got `int` - at `$.data[0]`", path="$.data[0]")
    assert str(already) == "Expected `str`, got `int` - at `$.data[0]`"


def test_transport_and_timeout_errors() -> None:
    """TransportError keeps the HTTP status; RequestTimeoutError names operation and timeout."""
    assert TransportError("HTTP 520", status=520).status == 520
    error = RequestTimeoutError("POST /0/private/Balance", 15.0)
    assert (error.operation, error.timeout, error.status) == ("POST /0/private/Balance", 15.0, None)
    assert str(error) == "POST /0/private/Balance got no answer within 15 s"


def test_exchange_error_carries_code_and_method() -> None:
    """ExchangeError's message is 'method: code', and both are fields."""
    error = AuthenticationError("EGeneral:Permission denied", method="BalanceEx")
    assert (error.code, error.method) == ("EGeneral:Permission denied", "BalanceEx")
    assert str(error) == "BalanceEx: EGeneral:Permission denied"
    assert str(ExchangeError("EService:Busy")) == "EService:Busy"


def test_rate_limited_error_shows_retry_after() -> None:
    """RateLimitedError defaults to Kraken's string and shows retry_after."""
    error = RateLimitedError(method="Balance", retry_after=6.06)
    assert error.code == "EAPI:Rate limit exceeded"
    assert error.retry_after == 6.06
    assert str(error) == "Balance: EAPI:Rate limit exceeded (retry after 6.06 s)"


def test_circuit_open_error_fields_and_message() -> None:
    """CircuitOpenError names the circuit and the seconds left."""
    error = CircuitOpenError("kraken-rest", 12.345)
    assert (error.name, error.retry_after) == ("kraken-rest", 12.345)
    assert str(error) == "circuit 'kraken-rest' is open; next attempt in 12.35 s"


def test_circuit_open_error_leads_with_its_underlying_cause() -> None:
    """With a cause, the message names the cause first and the circuit after it, on one line."""
    cause = (
        "GET /0/public/Assets: cannot resolve host api.kraken.com (DNS: Name or service not known)"
    )
    error = CircuitOpenError("kraken-rest", 29.64, cause=cause)
    assert error.cause == cause
    assert str(error).startswith(cause)
    assert str(error) == f"{cause} (circuit 'kraken-rest' open; next attempt in 29.64 s)"
    assert "\n" not in str(error)


def test_stale_balance_error_messages() -> None:
    """StaleBalanceError says how old the held value is (or that none is held) and why."""
    none_held = StaleBalanceError("BTC", None, 30.0)
    assert str(none_held) == "BTC: no value held, max_age=30 s, and no source could refresh it"
    old = StaleBalanceError("BTC", 45.5, 30.0, cause="circuit open")
    assert str(old) == (
        "BTC: held value is 45.500 s old, max_age=30 s, and no source could refresh it "
        "(circuit open)"
    )
    assert (old.asset, old.age, old.max_age) == ("BTC", 45.5, 30.0)


def test_persistence_error_keeps_path_and_context() -> None:
    """PersistenceError shows the path and keeps extra context as a dict."""
    error = PersistenceError("database is locked", path="/data/h.sqlite3", table="history")
    assert str(error) == "database is locked (/data/h.sqlite3)"
    assert error.context == {"table": "history"}
    assert str(PersistenceError("disk full")) == "disk full"


def test_shared_errors_cross_process_boundaries() -> None:
    """The shared-state and reservation errors pickle with their fields (multiprocessing)."""
    import pickle

    from balance_manager.exceptions import (
        InsufficientFundsError,
        LeaseLostError,
        ReservationCapError,
        ReservationError,
        ReservationLostError,
        SharedStateError,
    )

    for error in (
        SharedStateError("reserve", "Redis unreachable"),
        LeaseLostError("publish", 7, "lease is 8:other"),
        ReservationError("r1", "exists with other terms"),
        InsufficientFundsError("r1", "USD", "10", "2.5"),
        ReservationCapError("r1", "a", "USD", "100", "70"),
        ReservationLostError("r1", "gone"),
    ):
        back = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
        assert type(back) is type(error)
        assert str(back) == str(error)
