"""Crash safety and persistence: SIGKILL while writing, a read-only or full database, restarts.

* A subprocess (``history_writer.py``) writes history batches and prints each
  batch once its flush has returned; the test kills it with SIGKILL at random
  points, many times over the same file, and after every kill the database
  opens, passes ``PRAGMA integrity_check`` and holds every acknowledged entry.
* A read-only database file or a full disk (``HistoryStore(max_bytes=...)``)
  gives a :class:`PersistenceError` naming the file, and a running manager
  keeps serving balances from memory (the error shows in its status).
* A manager restarted on the same file gets its balances and history back, and
  its first snapshot reconciles what changed while it was down, once.

``BALANCE_MANAGER_CRASH_ITERATIONS`` sets the number of kills (default 30). The writers
are forked by one ``history_writer.py --zygote`` process (imports done once), so a kill
costs milliseconds, not an interpreter start.
"""

from __future__ import annotations

import os
import random
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio

from balance_manager import ServingMode, Source
from balance_manager.exceptions import PersistenceError
from balance_manager.service.history import BalanceHistory
from balance_manager.simulator import SimulatedKraken
from balance_manager.storage.sqlite import HistoryStore, StoredRow
from balance_manager.testing import ManualClock, drive, drive_until_done, wait_until

from .harness import (
    Observer,
    build_manager,
    converged,
    mismatches,
    reliability_config,
    start_streaming,
)

WRITER = Path(__file__).with_name("history_writer.py")
ITERATIONS = int(os.environ.get("BALANCE_MANAGER_CRASH_ITERATIONS", "30"))
#: Real seconds one writer may take to acknowledge what the test waits for.
WRITER_DEADLINE = 20.0


def _write_and_kill(db: Path, first: int, batch: int, wanted: int) -> list[int]:
    """Start a writer, read ``wanted`` acknowledgements, SIGKILL it; return every ACK seen."""
    process = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), str(first), str(batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        acks = _read_acks(process, wanted)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
        assert process.stdout is not None
        # Acknowledgements printed between our last read and the kill count too.
        acks += [int(line.split()[1]) for line in process.stdout.read().splitlines()]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    return acks


def _read_acks(process: subprocess.Popen[str], wanted: int) -> list[int]:
    """Read ``ACK n`` lines until ``wanted`` of them came (bounded by :data:`WRITER_DEADLINE`)."""
    assert process.stdout is not None
    acks: list[int] = []
    deadline = time.monotonic() + WRITER_DEADLINE
    while len(acks) < wanted:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"writer acknowledged {len(acks)} of {wanted} batches in time"
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if not ready:
            continue
        line = process.stdout.readline()
        assert line, f"writer ended early: {process.wait()} {_stderr(process)}"
        assert line.startswith("ACK "), line
        acks.append(int(line.split()[1]))
    return acks


def _stderr(process: subprocess.Popen[str]) -> str:
    return process.stderr.read() if process.stderr is not None else ""


def _check_database(db: Path, acknowledged: set[str]) -> int:
    """The file opens, passes the integrity check and holds every acknowledged ledger id."""
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {row[0] for row in connection.execute("SELECT ledger_id FROM history")}
        rows = connection.execute("SELECT COUNT(*) FROM history").fetchone()[0]
    finally:
        connection.close()
    missing = acknowledged - stored
    assert not missing, f"{len(missing)} acknowledged entries lost, e.g. {sorted(missing)[:3]}"
    assert rows == len(stored), "a ledger id is stored twice"
    return int(rows)


class Zygote:
    """A ``history_writer.py --zygote`` process: forks writers cheaply, reports their end."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WRITER), "--zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def _reply(self, prefix: str) -> str:
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], WRITER_DEADLINE)
        assert ready, f"zygote gave no {prefix} within {WRITER_DEADLINE:g} s"
        line = stdout.readline()
        assert line.startswith(prefix + " "), (line, _stderr(self.process))
        return line.split()[1]

    def write_and_kill(
        self, db: Path, first: int, batch: int, wanted: int, where: Path
    ) -> list[int]:
        """Fork a writer, read ``wanted`` ACKs, SIGKILL it; return every ACK it sent."""
        path = where / "writer.sock"
        path.unlink(missing_ok=True)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(str(path))
            server.listen(1)
            server.settimeout(WRITER_DEADLINE)
            stdin = self.process.stdin
            assert stdin is not None
            stdin.write(f"{db} {first} {batch} {path}\n")
            stdin.flush()
            pid = int(self._reply("PID"))
            connection, _ = server.accept()
            with connection, connection.makefile("r", encoding="utf-8") as lines:
                connection.settimeout(WRITER_DEADLINE)
                acks = [_ack(lines.readline()) for _ in range(wanted)]
                os.kill(pid, signal.SIGKILL)
                # Acknowledgements sent between our last read and the kill count too.
                acks += [_ack(line) for line in lines.read().splitlines()]
        assert int(self._reply("EXIT")) == -signal.SIGKILL
        return acks

    def close(self) -> None:
        """End the zygote (it stops at the end of its input)."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _ack(line: str) -> int:
    assert line.startswith("ACK "), f"writer said {line!r}"
    return int(line.split()[1])


def test_sigkill_while_writing_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    """Killed at random points (SIGKILL), the history file stays sound and complete."""
    rng = random.Random(20240607)
    db = tmp_path / "history.sqlite3"
    acknowledged: set[str] = set()
    zygote = Zygote()
    try:
        for iteration in range(ITERATIONS):
            first = iteration * 1_000_000
            batch = rng.choice((1, 7, 50, 200))
            acks = zygote.write_and_kill(db, first, batch, rng.randint(1, 6), tmp_path)
            acknowledged.update(f"L{n}" for n in range(first + 1, max(acks) + 1))
            # A batch committed but killed before its acknowledgement may be there too.
            assert _check_database(db, acknowledged) >= len(acknowledged)
    finally:
        zygote.close()
    assert len(acknowledged) >= ITERATIONS


@pytest.mark.asyncio
async def test_history_reloads_everything_after_the_kills(tmp_path: Path) -> None:
    """A BalanceHistory opening a killed writer's file gets every acknowledged entry back."""
    db = tmp_path / "history.sqlite3"
    acks = _write_and_kill(db, 0, 25, 4)
    clock = ManualClock(start=time.time() + 60)
    history = BalanceHistory(store=HistoryStore(str(db)), clock=clock)
    loaded = await history.load()
    assert history.last_error is None
    assert loaded >= max(acks)
    balances = [entry.balance for entry in history.get_asset_history("BTC")]
    assert balances[: max(acks)] == [Decimal(n) / 1000 for n in range(1, max(acks) + 1)]
    store = history.store
    assert store is not None
    assert await store.integrity_check()
    await history.close()


# -- a database that cannot be written ----------------------------------------------------


@pytest_asyncio.fixture
async def sim(clock: ManualClock) -> AsyncIterator[SimulatedKraken]:
    """A simulator on loopback, on the manual clock."""
    simulator = SimulatedKraken(clock=clock, seed=5)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


async def _seeded_file(path: Path, *, max_bytes: int | None = None) -> None:
    """A history file with one row (and, with ``max_bytes``, filled up to that size)."""
    async with HistoryStore(str(path), max_bytes=max_bytes) as store:
        await store.append_many([StoredRow("DOT", 1.0, Decimal(250), Source.REST, None)])
        if max_bytes is None:
            return
        for n in range(100_000):
            try:
                await store.append_many(
                    [StoredRow("PAD", float(n), Decimal(n), Source.REST, f"P{n}")]
                )
            except PersistenceError as error:
                full = error
                break
        else:
            raise AssertionError("max_bytes never filled the file")
    assert "full" in str(full)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["read_only", "disk_full"])
async def test_store_that_cannot_write_raises_a_clear_error(tmp_path: Path, kind: str) -> None:
    """Writing to a read-only or full database raises PersistenceError naming the file."""
    path = tmp_path / "history.sqlite3"
    if kind == "read_only":
        await _seeded_file(path)
        store = HistoryStore(f"file:{path}?mode=ro")
        reason = "readonly"
    else:
        await _seeded_file(path, max_bytes=64 * 1024)
        store = HistoryStore(str(path), max_bytes=64 * 1024)
        reason = "full"
    async with store:
        assert len(await store.load()) >= 1  # reading still works
        # A full file may still fit a row or two in a partly used page.
        rows = [StoredRow("BTC", 2.0 + n, Decimal(n), Source.REST, f"L9-{n}") for n in range(500)]
        with pytest.raises(PersistenceError, match=reason) as info:
            await store.append_many(rows)
    assert str(path) in str(info.value)
    assert info.value.path == store.path


@pytest.mark.network
@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["read_only", "disk_full"])
async def test_manager_keeps_serving_when_history_cannot_be_written(
    sim: SimulatedKraken, clock: ManualClock, tmp_path: Path, kind: str
) -> None:
    """History writes fail (read-only file, full disk): balances stay live, the error shows."""
    path = tmp_path / "history.sqlite3"
    if kind == "read_only":
        await _seeded_file(path)
        store = HistoryStore(f"file:{path}?mode=ro")
    else:
        await _seeded_file(path, max_bytes=64 * 1024)
        store = HistoryStore(str(path), max_bytes=64 * 1024)
    config = reliability_config(None)
    manager = build_manager(sim, clock, config)
    manager.history = BalanceHistory.from_config(config, clock=clock, store=store)
    try:
        await start_streaming(manager)
        for amount in ("1", "2", "3"):
            sim.deposit("BTC", amount)
            await drive(clock, 2.0, step=0.5)  # history flushes every second
        assert converged(manager, sim), mismatches(manager, sim)
        btc = await manager.get_balance("BTC")
        assert btc is not None
        assert btc.balance == Decimal("7.2435")
        assert btc.source is Source.WEBSOCKET
        status = manager.get_status()
        assert status["source"] == "websocket"
        error = status["history"]["persistence_error"]
        assert error is not None
        assert str(path) in error
        # A flush in flight holds its rows (neither pending nor written until it ends):
        # wait it out by flushing once more (it fails the same way, requeueing them).
        await manager.history.flush()
        stats = manager.get_statistics()["history"]
        assert stats["write_errors"] >= 1
        # Nothing lost: each row is queued for when the disk has room, or was written in
        # a later flush that found room (a full file may still fit a row or two).
        assert stats["dropped"] == 0
        assert stats["pending_writes"] + stats["written"] >= 3
        assert [e.balance for e in manager.history.get_asset_history("BTC")][-3:] == [
            Decimal("2.2435"),
            Decimal("4.2435"),
            Decimal("7.2435"),
        ]
    finally:
        await manager.close()


# -- restart ---------------------------------------------------------------------------------


@pytest.mark.network
@pytest.mark.asyncio
async def test_restart_brings_back_balances_and_history_and_reconciles_once(
    sim: SimulatedKraken, clock: ManualClock, tmp_path: Path
) -> None:
    """After a restart: history is back, stale values say cache, the first snapshot reconciles."""
    db = tmp_path / "history.sqlite3"
    config = reliability_config(db)
    first = build_manager(sim, clock, config)
    try:
        await start_streaming(first)
        sim.deposit("DOT", "5")
        order = sim.place_order("ETH/USD", "buy", "limit", "1", price="2000")
        sim.fill(order.order_id)
        await wait_until(lambda: converged(first, sim))
        before = {a: first.history.get_asset_history(a) for a in first.history.assets()}
    finally:
        await first.close()
    # While no manager runs: a deposit, a withdrawal and a fill.
    sim.deposit("DOT", "2")
    sim.withdraw("USD", "100")
    sim.place_order("BTC/USD", "sell", "limit", "0.1", price="50000")  # crosses: fills
    # The exchange is unreachable when the new manager starts: it serves what it remembers.
    sim.faults.http_error(520, times=None)
    second = build_manager(sim, clock, config, seed=9)
    observer = Observer(second, sim, clock)
    try:
        # REST retries wait on the clock: drive it while initialising.
        await drive_until_done(clock, second.initialize(), seconds=60.0)
        dot = await second.get_balance("DOT")
        assert dot is not None
        assert dot.balance == Decimal(255)  # as last recorded
        assert dot.source is Source.CACHE  # and marked stale
        for asset, entries in before.items():
            assert second.history.get_asset_history(asset) == entries
        sim.faults.clear()
        await drive(
            clock,
            120.0,
            step=0.5,
            until=lambda: second.serving_mode is ServingMode.WEBSOCKET and converged(second, sim),
        )
        assert converged(second, sim), mismatches(second, sim)
        await drive(clock, 5.0, step=0.5)
        observer.check_history()
        observer.check_events()
        # The changes made while down arrive once each, as one reconciling value per asset.
        changed = [c.asset for c in observer.events["balance_update"] if c.old is not None]
        for asset in ("DOT", "USD", "BTC"):
            assert changed.count(asset) == 1, changed
        for asset, entries in before.items():
            now = second.history.get_asset_history(asset)
            assert now[: len(entries)] == entries
        assert second.history.get_asset_history("DOT")[-1].balance == Decimal(257)
    finally:
        observer.close()
        await second.close()
    connection = sqlite3.connect(db)
    rows = connection.execute("SELECT balance FROM history WHERE asset = 'DOT'").fetchall()
    connection.close()
    assert [Decimal(row[0]) for row in rows] == [Decimal(250), Decimal(255), Decimal(257)]
