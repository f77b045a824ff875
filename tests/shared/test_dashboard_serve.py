"""`balance-manager serve --dashboard`: the leader's dashboard shows the leader, its epoch and
the reservations per strategy; a waiting candidate serves nothing until it leads.

Real Redis (a unique namespace, deleted after), the simulator in this process,
the leader candidates as subprocesses (as in test_processes.py).
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from tests.shared.conftest import delete_namespace, shared_config
from tests.shared.test_processes import Serve

from balance_manager.dashboard import LeaderSharedStatus
from balance_manager.dashboard.payloads import dumps
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.keys import AccountKeys
from balance_manager.shared.reservations import Reservation, Reservations
from balance_manager.shared.testing import free_port
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import wait_until

pytestmark = [pytest.mark.network, pytest.mark.asyncio, pytest.mark.slow]

DASHBOARD_LINE = re.compile(r"^dashboard of the leader: (http://127\.0\.0\.1:\d+/)$")


def dashboard_urls(serve: Serve) -> list[str]:
    """Every dashboard URL the candidate printed, in order."""
    return [m.group(1) for line in serve.lines if (m := DASHBOARD_LINE.match(line))]


def epochs(serve: Serve) -> list[int]:
    """The epochs of every "leading with epoch N" line."""
    return [int(line.split()[3]) for line in serve.lines if line.startswith("leading with epoch")]


async def status_until(
    http: aiohttp.ClientSession,
    url: str,
    check: Callable[[dict[str, Any]], bool],
    *,
    within: float = 15.0,
) -> dict[str, Any]:
    """GET ``url``api/status until ``check`` holds on it (bounded); the last status."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    status: dict[str, Any] = {}
    while True:
        async with http.get(f"{url}api/status") as response:
            assert response.status == 200
            status = await response.json()
        if check(status):
            return status
        assert loop.time() < deadline, f"not within {within} s: {status.get('shared')}"
        await asyncio.sleep(0.1)


async def refused(url: str) -> bool:
    """Whether nothing listens at ``url`` (the connection is refused)."""
    async with aiohttp.ClientSession() as http:
        try:
            async with http.get(f"{url}api/status"):
                return False
        except aiohttp.ClientConnectorError:
            return True


async def test_the_leaders_dashboard_shows_leader_epoch_and_exact_reservations(
    redis_url: str, namespace: str, keys: AccountKeys, sim: SimulatedKraken
) -> None:
    """GET /api/status: shared leader, its owner and epoch, a test owner's exact reservation;
    the waiting candidate's port is closed until it leads, then its page names the new epoch."""
    first = await Serve.start(
        sim, redis_url, namespace, "none", "--dashboard", "--dashboard-port", "0"
    )
    second_port = free_port()
    second: Serve | None = None
    shared = SharedRedis(redis_url, keys)
    # This client accepts free confirmed within 5 s (the leader beats every 0.25 s).
    reservations = Reservations(shared, shared_config(shared_stale_after=5.0))
    try:
        await wait_until(lambda: bool(dashboard_urls(first)), within=20)
        (url,) = dashboard_urls(first)
        (epoch,) = epochs(first)
        async with aiohttp.ClientSession() as http:
            # Reservations need free known current: once the leader streams, it is.
            status = await status_until(
                http,
                url,
                lambda s: s["shared"]["mode"] == "shared leader" and s["source"] == "websocket",
            )
            assert status["shared"]["leader"] == first.owner
            assert status["shared"]["epoch"] == epoch
            assert status["shared"]["generation"]
            assert status["shared"]["reservations"] == {}
            assert status["shared"]["reservations_error"] is None

            amount = Decimal("1234.56789012")
            held = await reservations.reserve("USD", amount, owner="strategy-dash")
            status = await status_until(
                http, url, lambda s: "strategy-dash" in (s["shared"]["reservations"] or {})
            )
            assert status["shared"]["reservations"]["strategy-dash"] == {
                "USD": {"reserved": "1234.56789012", "count": 1, "committed": 0}
            }
            async with http.get(f"{url}api/balances") as response:
                balances = {row["asset"]: row for row in (await response.json())["balances"]}
            assert Decimal(balances["USD"]["balance"]) == sim.balances()["USD"]
            await reservations.release(held)
            await status_until(http, url, lambda s: s["shared"]["reservations"] == {})

        # A second candidate waits: nothing listens on its dashboard port.
        second = await Serve.start(
            sim, redis_url, namespace, "none", "--dashboard", "--dashboard-port", str(second_port)
        )
        second_url = f"http://127.0.0.1:{second_port}/"
        assert await refused(second_url)
        assert not second.leading()

        # The leader stops (it resigns): its dashboard goes, the other leads and serves its own.
        first.signal(signal.SIGTERM)
        await asyncio.wait_for(first.process.wait(), 15)
        assert await refused(url)
        await wait_until(lambda: bool(dashboard_urls(second)), within=20)
        assert dashboard_urls(second) == [second_url]
        async with aiohttp.ClientSession() as http:
            status = await status_until(
                http, second_url, lambda s: s["shared"]["mode"] == "shared leader"
            )
        assert status["shared"]["leader"] == second.owner
        assert status["shared"]["epoch"] == epoch + 1
    finally:
        await first.close()
        if second is not None:
            await second.close()
        await shared.close()
        await delete_namespace(redis_url, namespace)


async def test_an_unreachable_redis_is_said_in_the_block_without_its_password(
    keys: AccountKeys,
) -> None:
    """The real listing against a Redis that does not answer: no reservations, the reason with
    the URL masked, the leader's epoch still shown (it is read in memory)."""
    redis = SharedRedis(f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0", keys, timeout=0.2)
    reservations = Reservations(redis, shared_config())

    async def listing() -> Iterable[Reservation]:
        return (await reservations.list()).reservations.values()

    leader = {"role": "leader", "owner": "abc", "epoch": 4, "generation": "g"}
    try:
        block = await LeaderSharedStatus(lambda: leader, listing, clock=lambda: 1.0)()
    finally:
        await redis.close()
    assert block["mode"] == "shared leader"
    assert block["epoch"] == 4
    assert block["reservations"] is None
    assert "unreachable" in block["reservations_error"]
    assert "***" in block["reservations_error"]
    assert "hunter2" not in dumps(block)
