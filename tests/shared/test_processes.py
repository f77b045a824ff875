"""Shared balances across processes: reservers; leaders killed, paused, resumed; Redis restarted.

The simulator runs in this process; leaders are ``balance-manager serve``
subprocesses, reservers are spawned processes. Leases and staleness bounds
are short (1 s) since Redis's TTLs run on real time; every wait is bounded
and waits on a condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from tests.shared.conftest import FakeLeader, delete_namespace, shared_config

from balance_manager.core.amounts import EXACT_CONTEXT
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.follower import SharedFollower
from balance_manager.shared.keys import AccountKeys
from balance_manager.shared.testing import RedisServer
from balance_manager.simulator import SimulatedKraken
from balance_manager.storage.sqlite import HistoryStore
from balance_manager.testing import wait_until

pytestmark = [pytest.mark.network, pytest.mark.asyncio, pytest.mark.slow]

LEASE_TTL = 1.0
ROOT = Path(__file__).resolve().parents[2]


class Serve:
    """One ``balance-manager serve`` process (a leader candidate)."""

    def __init__(self, process: asyncio.subprocess.Process, owner: str) -> None:
        self.process = process
        self.owner = owner
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode().rstrip())

    @classmethod
    async def start(
        cls,
        sim: SimulatedKraken,
        redis_url: str,
        namespace: str,
        history: str = "none",
        *extra: str,
    ) -> Serve:
        env = {
            **os.environ,
            "KRAKEN_API_KEY": sim.api_key,
            "KRAKEN_API_SECRET": sim.api_secret,
            "BALANCE_MANAGER_HISTORY_DB_PATH": history,
            "BALANCE_MANAGER_LEASE_TTL": str(LEASE_TTL),
            "BALANCE_MANAGER_SHARED_STALE_AFTER": "1.0",
            "BALANCE_MANAGER_WEBSOCKET_PING_INTERVAL": "1.0",
            "BALANCE_MANAGER_RECONNECT_INITIAL_DELAY": "0.05",
            "BALANCE_MANAGER_RECONNECT_MAX_DELAY": "0.2",
        }
        env.pop("BALANCE_MANAGER_CONFIG", None)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "balance_manager", "serve",
            "--redis", redis_url, "--namespace", namespace, "--account", "acct",
            "--rest-url", sim.rest_url, "--ws-url", sim.ws_url, *extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
        )  # fmt: skip
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert first.startswith("leader candidate "), first
        return cls(process, first.split()[2])

    def leading(self) -> bool:
        return any(line.startswith("leading with epoch") for line in self.lines)

    def signal(self, number: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(number)

    async def close(self) -> None:
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self.process.wait()
        await self._reader


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[SimulatedKraken]:
    simulator = SimulatedKraken(market=False)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


async def leader_of(redis: SharedRedis) -> tuple[str, int]:
    """(owner, epoch) of the current leader, from Redis."""
    meta = await redis.client.hgetall(redis.keys.key("meta"))
    return meta.get("leader", ""), int(meta.get("epoch", 0))


def same_as_exchange(follower: SharedFollower, sim: SimulatedKraken) -> bool:
    view = follower.sync_view().get_all_balances()
    return {a: b.balance for a, b in view.items() if b.balance} == {
        a: v for a, v in sim.balances().items() if v
    }


async def test_eight_processes_reserving_never_over_reserve(
    redis_url: str, namespace: str, keys: AccountKeys
) -> None:
    """8 processes reserve at once: reserved never exceeds free, equals the exact sum granted."""
    shared = SharedRedis(redis_url, keys)
    leader = FakeLeader(shared)
    free = Decimal("123456.78901234")
    try:
        await leader.lead()
        from balance_manager.core.models import Balance

        await leader.publish({"USD": Balance("USD", free)}, reset="test")
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.shared.workers",
                redis_url,
                namespace,
                str(seed),
                "30",
                stdout=asyncio.subprocess.PIPE,
                cwd=ROOT,
            )
            for seed in range(8)
        ]
        outputs = [asyncio.ensure_future(p.communicate()) for p in processes]
        samples: list[Decimal] = []
        while not all(job.done() for job in outputs):
            await leader.publish()  # the leader's beat: free stays confirmed
            reply = await shared.run("list")
            reserved = dict(zip(reply[1][::2], reply[1][1::2], strict=True))
            samples.append(Decimal(reserved.get("USD", "0")))
            await asyncio.sleep(0.01)
        granted = [Decimal(a) for job in outputs for a in json.loads((await job)[0])]
        assert all(p.returncode == 0 for p in processes)
        reply = await shared.run("list")
        reserved = Decimal(dict(zip(reply[1][::2], reply[1][1::2], strict=True))["USD"])
        total = Decimal(0)
        for amount in granted:
            total = EXACT_CONTEXT.add(total, amount)
        assert reserved == total
        assert reserved <= free
        assert len(granted) >= 2  # contention happened: some were granted, some refused
        assert len(granted) < 8 * 30
        assert all(sample <= free for sample in samples)
    finally:
        await shared.close()
        await delete_namespace(redis_url, namespace)


async def test_sigkill_the_leader_a_candidate_leads_and_nothing_is_doubled(
    redis_url: str, namespace: str, keys: AccountKeys, sim: SimulatedKraken, tmp_path: Path
) -> None:
    """SIGKILL the leader mid-stream: the other leads within TTL + a snapshot, balances converge
    to the simulator's, and every ledger entry reaches the ledger stream at most once (all of
    them but those made while no leader was connected)."""
    redis = SharedRedis(redis_url, keys)
    history = str(tmp_path / "history.sqlite3")
    first = await Serve.start(sim, redis_url, namespace, history)
    second = await Serve.start(sim, redis_url, namespace, history)
    follower = SharedFollower(SharedRedis(redis_url, keys), shared_config())
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    async def deposits() -> None:
        while not stop.is_set():
            sim.deposit("BTC", "0.00000001")
            await asyncio.sleep(0.01)

    try:
        await wait_until(lambda: first.leading() or second.leading(), within=20)
        await follower.initialize()
        began = sim.clock.time()
        depositing = asyncio.create_task(deposits())
        await asyncio.sleep(0.5)
        owner, epoch = await leader_of(redis)
        victim, heir = (first, second) if owner == first.owner else (second, first)
        victim.signal(signal.SIGKILL)
        killed_at = sim.clock.time()
        started = loop.time()
        await wait_until(lambda: heir.leading(), within=15)
        took = loop.time() - started
        new_owner, new_epoch = await leader_of(redis)
        assert (new_owner, new_epoch) == (heir.owner, epoch + 1)
        assert took < LEASE_TTL + 5.0, took  # TTL + one REST snapshot and a WebSocket connect
        led_at = sim.clock.time()
        await asyncio.sleep(1.0)
        stop.set()
        await depositing
        await wait_until(lambda: same_as_exchange(follower, sim), within=10)

        rows = await redis.client.xrange(keys.key("ledger"))
        ledger_ids = [fields["l"] for _, fields in rows if fields["l"]]
        assert len(ledger_ids) == len(set(ledger_ids))  # none doubled
        btc = [
            e
            for e in sim.ledger()
            if e.asset == "BTC" and e.type == "deposit" and e.timestamp >= began
        ]
        missing = [e for e in btc if e.ledger_id not in set(ledger_ids)]
        # Only entries made while no leader was connected may be missing.
        assert all(killed_at - 0.5 <= e.timestamp <= led_at + 0.5 for e in missing), [
            (e.timestamp - killed_at) for e in missing
        ]
        # And entries on both sides of the gap were there to check.
        assert any(e.timestamp < killed_at - 0.5 for e in btc)
        assert any(e.timestamp > led_at + 0.5 for e in btc)

        # History on disk: the heir's writer finished the dead leader's batch; each entry once.
        async def all_acknowledged() -> bool:
            pending = await redis.client.xpending(keys.key("ledger"), "history")
            groups = await redis.client.xinfo_groups(keys.key("ledger"))
            stream = await redis.client.xinfo_stream(keys.key("ledger"))
            delivered = groups[0]["last-delivered-id"] == stream["last-generated-id"]
            return pending["pending"] == 0 and delivered

        for _ in range(200):
            if await all_acknowledged():
                break
            await asyncio.sleep(0.05)
        assert await all_acknowledged()
        store = HistoryStore(history, account=sim.credentials.fingerprint)
        await store.open()
        try:
            stored = [row.ledger_id for row in await store.load() if row.ledger_id]
        finally:
            await store.close()
        assert sorted(stored) == sorted(ledger_ids)
    finally:
        stop.set()
        await follower.close()
        for process in (first, second):
            await process.close()
        await redis.close()
        await delete_namespace(redis_url, namespace)


async def test_a_paused_leader_resumed_after_its_lease_is_refused(
    redis_url: str, namespace: str, keys: AccountKeys, sim: SimulatedKraken
) -> None:
    """SIGSTOP the leader past its lease: another leads; on SIGCONT the old one's writes are
    refused (fenced), it stops leading, and the shared values stay the exchange's."""
    redis = SharedRedis(redis_url, keys)
    first = await Serve.start(sim, redis_url, namespace)
    follower = SharedFollower(SharedRedis(redis_url, keys), shared_config())
    second: Serve | None = None
    try:
        await wait_until(first.leading, within=20)
        await follower.initialize()
        _, epoch = await leader_of(redis)
        first.signal(signal.SIGSTOP)
        second = await Serve.start(sim, redis_url, namespace)
        heir = second
        await wait_until(heir.leading, within=15)
        assert (await leader_of(redis)) == (heir.owner, epoch + 1)
        sim.deposit("USD", "12.5")
        await wait_until(lambda: same_as_exchange(follower, sim), within=10)
        first.signal(signal.SIGCONT)  # it wakes up believing it leads, for a moment
        await wait_until(
            lambda: any(line.startswith("stopped leading") for line in first.lines), within=10
        )
        sim.deposit("USD", "0.5")
        await wait_until(lambda: same_as_exchange(follower, sim), within=10)
        assert (await leader_of(redis)) == (heir.owner, epoch + 1)
        entries = await redis.client.xrevrange(keys.key("events"), count=200)
        last_reset = next(i for i, (_, f) in enumerate(entries) if f["t"] == "r")
        after_takeover = entries[:last_reset]
        assert all(int(f["e"]) == epoch + 1 for _, f in after_takeover)  # no old-epoch write
    finally:
        await follower.close()
        for process in (first, second):
            if process is not None:
                await process.close()
        await redis.close()
        await delete_namespace(redis_url, namespace)


async def test_redis_killed_and_restarted_under_a_leader_process(sim: SimulatedKraken) -> None:
    """Redis dies under a leader process: followers serve stale, never fresh; Redis comes back
    empty: the leader detects the new generation, takes the lease again and republishes."""
    with RedisServer() as server:
        keys = AccountKeys("bmtest-restart-p", "acct")
        leader = await Serve.start(sim, server.url, keys.namespace)
        follower = SharedFollower(SharedRedis(server.url, keys, timeout=0.3), shared_config())
        try:
            await wait_until(leader.leading, within=20)
            await follower.initialize()
            await wait_until(lambda: follower.get_status()["source"] == "websocket", within=5)
            generation = follower.get_status()["generation"]
            server.kill()
            await wait_until(lambda: follower.get_status()["source"] == "cache", within=5)
            for value in follower.sync_view().get_all_balances().values():
                assert value.source.value == "cache"
            await wait_until(
                lambda: any(line.startswith("stopped leading") for line in leader.lines),
                within=10,
            )
            server.start()
            sim.deposit("EUR", "3")
            await wait_until(
                lambda: sum(line.startswith("leading with") for line in leader.lines) == 2,
                within=20,
            )
            await wait_until(lambda: same_as_exchange(follower, sim), within=10)
            assert follower.get_status()["generation"] != generation
            # Fresh again once the new leader's stream confirms the values (a beat can come
            # later than shared_stale_after on a loaded machine: the follower then honestly
            # says cache for a moment, so this waits for it rather than sampling one instant).
            await wait_until(lambda: follower.get_status()["source"] == "websocket", within=10)
        finally:
            await follower.close()
            await leader.close()
