"""SharedRedis passes a cancellation on even when redis-py swallows it (no Redis needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.keys import AccountKeys

pytestmark = pytest.mark.asyncio


def swallowing(outcome: str) -> tuple[asyncio.Event, Any]:
    """A script that, cancelled mid-command, finishes (``reply``) or fails (``error``) instead."""
    entered = asyncio.Event()
    swallowed: list[bool] = []

    async def script(**_: object) -> list[str]:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:  # what redis-py may do with a cancellation (once here)
            if swallowed:
                raise
            swallowed.append(True)
            if outcome == "error":
                raise RedisConnectionError("connection dropped mid-command") from None
        return ["OK"]

    return entered, script


@pytest.mark.parametrize("outcome", ["reply", "error"])
async def test_a_cancelled_command_ends_its_task_cancelled(outcome: str) -> None:
    """A retrying loop of commands ends when cancelled (a leader's term could not end before)."""
    shared = SharedRedis("redis://127.0.0.1:1/0", AccountKeys("bmtest-cancel", "acct"))
    entered, script = swallowing(outcome)
    shared._scripts["publish"] = script
    calls = 0

    async def retrying() -> None:
        nonlocal calls
        while True:  # as the publisher: on to the next batch after a reply or an error
            calls += 1
            try:
                await shared.run("publish")
            except Exception:  # noqa: S112 - a SharedStateError: try again
                continue

    task = asyncio.create_task(retrying())
    try:
        await asyncio.wait_for(entered.wait(), 5)
        task.cancel()
        await asyncio.wait({task}, timeout=2)
        assert task.cancelled()
        assert calls == 1
    finally:
        task.cancel()  # a second time: swallowed once only
        await asyncio.wait({task})
        await shared.close()
