"""The status's shared-mode block: a leader, its epoch and the reservations per strategy.

The payload functions are tested without I/O; the dashboard is tested with
providers that answer, fail or hang (no Redis: the end-to-end test with Redis
is in tests/shared/test_dashboard_serve.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from balance_manager import BalanceManager
from balance_manager.dashboard import Dashboard, server as dashboard_server
from balance_manager.dashboard.payloads import (
    ReservedFunds,
    dumps,
    reservations_by_owner,
    shared_leader_block,
)
from balance_manager.dashboard.shared_status import LeaderSharedStatus, describe_failure
from balance_manager.exceptions import SharedStateError


@dataclass(frozen=True)
class Funds:
    """A reservation as the dashboard reads one."""

    owner: str
    asset: str
    amount: Decimal
    state: str = "held"


LEADING = {
    "role": "leader",
    "state": "leading",
    "owner": "530e332a87634bba",
    "epoch": 7,
    "generation": "466027b9d8024a47",
    "redis": "redis://:hunter2-password@10.0.0.5:6379/0",  # never shown
    "last_error": None,
}


def test_reservations_are_summed_exactly_per_strategy_and_asset() -> None:
    """Owner → asset → exact total, count and committed; more digits than floats or 28 places."""
    funds = [
        Funds("strategy-b", "USD", Decimal("0.1")),
        Funds("strategy-a", "USD", Decimal("12345678901234567890.123456789"), "committed"),
        Funds("strategy-b", "USD", Decimal("0.2")),
        Funds("strategy-a", "USD", Decimal("0.000000001")),
        Funds("strategy-a", "BTC", Decimal("0.00010000")),
    ]
    by_owner = reservations_by_owner(funds)
    assert list(by_owner) == ["strategy-a", "strategy-b"]
    assert list(by_owner["strategy-a"]) == ["BTC", "USD"]
    assert by_owner["strategy-a"]["USD"] == {
        "reserved": "12345678901234567890.123456790",
        "count": 2,
        "committed": 1,
    }
    assert by_owner["strategy-a"]["BTC"] == {"reserved": "0.00010000", "count": 1, "committed": 0}
    assert by_owner["strategy-b"] == {"USD": {"reserved": "0.3", "count": 2, "committed": 0}}
    assert reservations_by_owner([]) == {}


def test_a_leaders_block_names_it_and_its_epoch_and_no_redis_url() -> None:
    """Mode, leader, epoch and generation; the candidate's Redis URL (and password) left out."""
    block = shared_leader_block(LEADING, [Funds("s", "USD", Decimal("5"))], listed_at=100.0)
    assert block["mode"] == "shared leader"
    assert block["leader"] == "530e332a87634bba"
    assert block["epoch"] == 7
    assert block["generation"] == "466027b9d8024a47"
    assert block["reservations"] == {"s": {"USD": {"reserved": "5", "count": 1, "committed": 0}}}
    assert block["reservations_listed_at"] == 100.0
    assert block["reservations_error"] is None
    text = dumps(block)
    assert "hunter2" not in text
    assert "10.0.0.5" not in text


def test_a_candidate_that_no_longer_leads_says_so() -> None:
    """Between losing the lease and the dashboard stopping: no leader, no epoch claimed."""
    block = shared_leader_block({**LEADING, "role": "candidate"}, [], listed_at=None)
    assert block["mode"] == "shared candidate, not leading"
    assert block["leader"] is None
    assert block["epoch"] is None
    assert block["owner"] == "530e332a87634bba"


def test_failures_are_described_without_foreign_messages() -> None:
    """This library's errors mask passwords and are quoted; another error's message is not."""
    ours = SharedStateError("list", "Redis at redis://***@db:6379/0 unreachable: refused")
    assert "redis://***@db:6379/0 unreachable" in describe_failure(ours)
    foreign = describe_failure(RuntimeError("redis://:hunter2@db:6379/0 said no"))
    assert "hunter2" not in foreign
    assert foreign.startswith("RuntimeError")


@pytest.mark.asyncio
async def test_the_provider_fails_soft_and_never_shows_old_reservations_as_current() -> None:
    """A failed listing: no reservations, the reason, and when the last good one was read."""
    now = [1000.0]
    answers: list[Any] = [[Funds("a", "USD", Decimal("1.5"))], SharedStateError("list", "down")]

    async def listing() -> Iterable[ReservedFunds]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return list(answer)

    provider = LeaderSharedStatus(lambda: LEADING, listing, clock=lambda: now[0])
    first = await provider()
    assert first["reservations"] == {"a": {"USD": {"reserved": "1.5", "count": 1, "committed": 0}}}
    assert first["reservations_listed_at"] == 1000.0
    now[0] = 1005.0
    second = await provider()
    assert second["reservations"] is None
    assert second["reservations_listed_at"] == 1000.0
    assert "reservations not read" in second["reservations_error"]
    assert "down" in second["reservations_error"]
    assert second["epoch"] == 7  # the leader's own status is in memory: still known


@pytest.mark.network
@pytest.mark.asyncio
async def test_the_dashboard_serves_the_providers_block(
    manager: BalanceManager, http: aiohttp.ClientSession
) -> None:
    """/api/status has the block read on start, and the one read on the next refresh."""
    reserved: list[Funds] = []

    async def listing() -> Iterable[ReservedFunds]:
        return list(reserved)

    provider = LeaderSharedStatus(lambda: LEADING, listing, clock=manager.clock.time)
    async with Dashboard(manager, stall_after=0, shared_status=provider) as dashboard:
        async with http.get(f"{dashboard.url}api/status") as response:
            status = await response.json()
        assert status["shared"]["mode"] == "shared leader"
        assert status["shared"]["epoch"] == 7
        assert status["shared"]["reservations"] == {}
        reserved.append(Funds("strategy-a", "USD", Decimal("250.10"), "committed"))
        await dashboard.refresh_shared()
        async with http.get(f"{dashboard.url}api/status") as response:
            status = await response.json()
        assert status["shared"]["reservations"] == {
            "strategy-a": {"USD": {"reserved": "250.10", "count": 1, "committed": 1}}
        }
        assert "hunter2" not in dumps(status)


@pytest.mark.network
@pytest.mark.asyncio
async def test_a_provider_that_hangs_or_breaks_never_takes_the_dashboard_down(
    manager: BalanceManager, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reading past the bound, or one that raises, leaves a block that says so."""
    monkeypatch.setattr(dashboard_server, "SHARED_STATUS_TIMEOUT", 0.05)
    behaviour = ["hang"]

    async def provider() -> dict[str, Any]:
        if behaviour[0] == "hang":
            await asyncio.Event().wait()
        raise RuntimeError("redis://:hunter2@db/0 exploded")

    async with Dashboard(manager, stall_after=0, shared_status=provider) as dashboard:
        async with http.get(f"{dashboard.url}api/status") as response:
            status = await response.json()
        assert status["shared"]["mode"] == "shared"
        assert status["shared"]["reservations"] is None
        assert "did not answer within 0.05 s" in status["shared"]["reservations_error"]
        behaviour[0] = "raise"
        await dashboard.refresh_shared()
        async with http.get(f"{dashboard.url}api/status") as response:
            status = await response.json()
        assert response.status == 200
        assert status["shared"]["reservations"] is None
        assert "RuntimeError" in status["shared"]["reservations_error"]
        assert "hunter2" not in dumps(status)
