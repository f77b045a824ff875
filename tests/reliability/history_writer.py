"""A process that writes balance history until it is killed (for ``test_crash_safety.py``).

Usage::

    python history_writer.py DB_PATH FIRST_ID BATCH_SIZE
    python history_writer.py --zygote

The first form opens ``DB_PATH`` through
:class:`~balance_manager.service.history.BalanceHistory` (with its SQLite
:class:`~balance_manager.storage.sqlite.HistoryStore`), then loops for ever:
records ``BATCH_SIZE`` balances of ``BTC`` with ledger ids ``L<n>`` for
``n = FIRST_ID + 1, FIRST_ID + 2, ...``, flushes them in one transaction, and
only once the flush has returned without a persistence error prints
``ACK <n>`` (the last ledger number of the batch) and flushes stdout. Every
line it prints is therefore a promise that the batch is on disk; the test
kills the process with SIGKILL at a random point and holds it to that. On a
persistence error it prints ``ERR <message>`` and exits with status 3.

``--zygote`` makes many kills cheap: the process imports everything once,
then for each request line ``DB_PATH FIRST_ID BATCH_SIZE SOCKET_PATH`` on
stdin forks a writer whose ``ACK`` lines go to the Unix socket
``SOCKET_PATH`` (where the test listens), prints ``PID <pid>``, waits for that
writer to end and prints ``EXIT <code>`` (``-9`` after SIGKILL). It forks
before any thread or event loop exists, so each writer starts clean.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from decimal import Decimal
from typing import TextIO

from balance_manager.core.models import Balance, Source
from balance_manager.runtime.clock import SystemClock
from balance_manager.service.history import BalanceHistory
from balance_manager.storage.sqlite import HistoryStore

__all__ = ["main", "write_forever", "zygote"]


async def write_forever(db_path: str, first: int, batch: int, out: TextIO) -> int:
    """Record, flush and acknowledge batches on ``out`` until killed; 3 on a persistence error."""
    clock = SystemClock()
    history = BalanceHistory(store=HistoryStore(db_path), clock=clock)
    await history.load()
    if history.last_error is not None:
        print(f"ERR {history.last_error}", file=out, flush=True)
        return 3
    number = first
    while True:
        for _ in range(batch):
            number += 1
            balance = Balance(
                "BTC", Decimal(number) / 1000, source=Source.WEBSOCKET, received_at=clock.time()
            )
            history.record(balance, ledger_id=f"L{number}")
        await history.flush()
        error = history.get_statistics()["last_error"]  # flush records errors, never raises
        if error is not None:
            print(f"ERR {error}", file=out, flush=True)
            return 3
        print(f"ACK {number}", file=out, flush=True)


def _child(db_path: str, first: int, batch: int, socket_path: str) -> int:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(socket_path)
    with connection.makefile("w", buffering=1, encoding="utf-8") as out:
        return asyncio.run(write_forever(db_path, first, batch, out))


def zygote(requests: TextIO, replies: TextIO) -> int:
    """Fork one writer per request line, report its pid and how it ended (see module docs)."""
    for line in requests:
        db_path, first, batch, socket_path = line.split()
        pid = os.fork()
        if pid == 0:  # the writer
            code = 1
            try:
                code = _child(db_path, int(first), int(batch), socket_path)
            finally:
                os._exit(code)
        print(f"PID {pid}", file=replies, flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"EXIT {os.waitstatus_to_exitcode(status)}", file=replies, flush=True)
    return 0


def main(argv: list[str]) -> int:
    """``--zygote``, or ``DB_PATH FIRST_ID BATCH_SIZE`` writing to stdout."""
    if argv[1:] == ["--zygote"]:
        return zygote(sys.stdin, sys.stdout)
    db_path, first, batch = argv[1], int(argv[2]), int(argv[3])
    return asyncio.run(write_forever(db_path, first, batch, sys.stdout))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
