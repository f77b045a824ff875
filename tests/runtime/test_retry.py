"""Tests of runtime.retry: which errors are retried, and how long it waits (ManualClock)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings, strategies as st

from balance_manager.exceptions import (
    AuthenticationError,
    ConfigError,
    ExchangeError,
    ExchangeUnavailableError,
    InvalidNonceError,
    LockoutError,
    ProtocolError,
    RateLimitedError,
    TransportError,
)
from balance_manager.runtime.retry import retry_call
from balance_manager.testing import ManualClock


class Script:
    """An async call that fails with the given errors, then returns ``"ok"``; records call times."""

    def __init__(self, clock: ManualClock, errors: Sequence[BaseException]) -> None:
        self.clock = clock
        self.errors = list(errors)
        self.times: list[float] = []

    async def __call__(self) -> str:
        self.times.append(self.clock.monotonic() - 1000.0)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def fixed(*values: float) -> Iterator[float]:
    return iter(values)


async def run(clock: ManualClock, coro: object, seconds: float = 1000.0) -> object:
    """Run ``coro`` as a task while the manual clock advances through ``seconds``."""
    task = asyncio.ensure_future(coro)  # type: ignore[call-overload]  # a coroutine
    await clock.run_for(seconds)
    assert task.done(), "retry_call is still waiting"
    return task.result()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(monotonic_start=1000.0)


@pytest.mark.asyncio
async def test_success_needs_no_retry(clock: ManualClock) -> None:
    """A call that succeeds is made once and its result returned at once."""
    call = Script(clock, [])
    assert await retry_call(call, attempts=3, delays=fixed(), clock=clock) == "ok"
    assert call.times == [0.0]


@pytest.mark.asyncio
async def test_transport_errors_are_retried_after_each_delay(clock: ManualClock) -> None:
    """Retryable errors are retried after the next delay each time until the call succeeds."""
    call = Script(clock, [TransportError("reset"), ExchangeUnavailableError("EService:Busy")])
    result = await run(
        clock, retry_call(call, attempts=3, delays=fixed(2.0, 5.0, 9.0), clock=clock)
    )
    assert result == "ok"
    assert call.times == [0.0, 2.0, 7.0]


@pytest.mark.asyncio
async def test_last_error_is_raised_when_attempts_run_out(clock: ManualClock) -> None:
    """After `attempts` failed calls the last error propagates."""
    errors = [TransportError(f"fail {i}") for i in range(5)]
    call = Script(clock, errors)
    with pytest.raises(TransportError, match="fail 2"):
        await run(clock, retry_call(call, attempts=3, delays=itertools.repeat(1.0), clock=clock))
    assert call.times == [0.0, 1.0, 2.0]


@pytest.mark.asyncio
async def test_one_attempt_means_no_retry(clock: ManualClock) -> None:
    """attempts=1 calls once and raises its error."""
    call = Script(clock, [TransportError("down")])
    with pytest.raises(TransportError):
        await retry_call(call, attempts=1, delays=itertools.repeat(1.0), clock=clock)
    assert call.times == [0.0]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("EAPI:Invalid key"),
        LockoutError("EGeneral:Temporary lockout"),
        ExchangeError("EGeneral:Invalid arguments"),
        ProtocolError("bad shape"),
        ValueError("not ours"),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_non_retryable_errors_propagate_at_once(clock: ManualClock, error: Exception) -> None:
    """Errors whose `retryable` is false (or absent) are raised on the first failure."""
    call = Script(clock, [error])
    with pytest.raises(type(error)):
        await retry_call(call, attempts=5, delays=itertools.repeat(1.0), clock=clock)
    assert call.times == [0.0]


@pytest.mark.asyncio
async def test_exchange_error_marked_retryable_is_retried(clock: ManualClock) -> None:
    """An ExchangeError built with retryable=True is retried."""
    call = Script(clock, [ExchangeError("EGeneral:Internal error", retryable=True)])
    assert await run(clock, retry_call(call, attempts=2, delays=fixed(3.0), clock=clock)) == "ok"
    assert call.times == [0.0, 3.0]


@pytest.mark.asyncio
async def test_rate_limit_waits_at_least_retry_after(clock: ManualClock) -> None:
    """RateLimitedError waits max(retry_after, next delay)."""
    call = Script(
        clock,
        [RateLimitedError(retry_after=6.0), RateLimitedError(retry_after=0.5)],
    )
    result = await run(clock, retry_call(call, attempts=3, delays=fixed(1.0, 2.0), clock=clock))
    assert result == "ok"
    assert call.times == [0.0, 6.0, 8.0]


@pytest.mark.asyncio
async def test_invalid_nonce_is_raised_at_once_never_retried(clock: ManualClock) -> None:
    """InvalidNonceError means another user of the key: raised at once, attempts to spare or not."""
    call = Script(clock, [InvalidNonceError("EAPI:Invalid nonce")])
    with pytest.raises(InvalidNonceError) as info:
        await retry_call(call, attempts=10, delays=itertools.repeat(1.0), clock=clock)
    assert len(call.times) == 1
    assert "another process" in str(info.value)


@pytest.mark.asyncio
async def test_exhausted_delays_raise_the_original_error_unchanged(clock: ManualClock) -> None:
    """When the delay policy runs out the last error propagates with its cause intact."""
    cause = OSError("connection reset")
    error = TransportError("POST failed")
    error.__cause__ = cause
    call = Script(clock, [TransportError("first"), error])
    with pytest.raises(TransportError) as info:
        await run(clock, retry_call(call, attempts=5, delays=fixed(1.0), clock=clock))
    assert info.value is error
    assert info.value.__cause__ is cause
    assert call.times == [0.0, 1.0]


@pytest.mark.asyncio
async def test_on_retry_hook_is_told_each_retry(clock: ManualClock) -> None:
    """on_retry(attempt, error, delay) is called before each wait."""
    first, second = TransportError("a"), RateLimitedError(retry_after=3.0)
    seen: list[tuple[int, BaseException, float]] = []
    call = Script(clock, [first, second])
    await run(
        clock,
        retry_call(
            call,
            attempts=3,
            delays=fixed(1.0, 1.0),
            clock=clock,
            on_retry=lambda n, exc, delay: seen.append((n, exc, delay)),
        ),
    )
    assert seen == [(1, first, 1.0), (2, second, 3.0)]


@pytest.mark.asyncio
async def test_raising_hook_is_logged_and_ignored(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An on_retry hook that raises is logged; the retry still happens."""

    def bad_hook(attempt: int, exc: BaseException, delay: float) -> None:
        raise RuntimeError("hook bug")

    call = Script(clock, [TransportError("a")])
    with caplog.at_level(logging.INFO, logger="balance_manager.runtime.retry"):
        result = await run(
            clock,
            retry_call(call, attempts=2, delays=fixed(1.0), clock=clock, on_retry=bad_hook),
        )
    assert result == "ok"
    assert "bad_hook" in caplog.text
    assert "attempt 1/2 failed (TransportError: a)" in caplog.text


@pytest.mark.asyncio
async def test_cancellation_during_a_wait_propagates(clock: ManualClock) -> None:
    """Cancelling the task while it waits between attempts cancels it; no further call is made."""
    call = Script(clock, [TransportError("a")])
    task = asyncio.ensure_future(retry_call(call, attempts=3, delays=fixed(10.0), clock=clock))
    await clock.run_for(5.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await clock.run_for(10.0)
    assert call.times == [0.0]


@pytest.mark.asyncio
@pytest.mark.parametrize("attempts", [0, -1, True, 2.0])
async def test_bad_attempts_is_refused(clock: ManualClock, attempts: object) -> None:
    """attempts must be an int >= 1 (ConfigError naming it)."""
    call = Script(clock, [])
    with pytest.raises(ConfigError) as info:
        await retry_call(call, attempts=attempts, delays=fixed(), clock=clock)  # type: ignore[arg-type]
    assert info.value.option == "attempts"
    assert call.times == []


@given(failures=st.integers(0, 8), attempts=st.integers(1, 6), delay=st.sampled_from([0.5, 2.0]))
@settings(deadline=None, max_examples=50)
def test_calls_and_waiting_time_property(failures: int, attempts: int, delay: float) -> None:
    """With n transport failures, min(n + 1, attempts) calls are made, spaced by the delay."""

    async def scenario() -> tuple[list[float], bool]:
        clock = ManualClock(monotonic_start=1000.0)
        call = Script(clock, [TransportError(str(i)) for i in range(failures)])
        task = asyncio.ensure_future(
            retry_call(call, attempts=attempts, delays=itertools.repeat(delay), clock=clock)
        )
        await clock.run_for(100.0)
        ok = task.done() and task.exception() is None
        return call.times, ok

    times, ok = asyncio.run(scenario())
    calls = min(failures + 1, attempts)
    assert times == [i * delay for i in range(calls)]
    assert ok is (failures < attempts)
