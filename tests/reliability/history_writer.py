"""A process that writes balance history until it is killed (for ``test_crash_safety.py``).

Usage::

    python history_writer.py DB_PATH FIRST_ID BATCH_SIZE

It opens ``DB_PATH`` through :class:`~balance_manager.history.BalanceHistory`
(with its SQLite :class:`~balance_manager.persistence.HistoryStore`), then
loops for ever: records ``BATCH_SIZE`` balances of ``BTC`` with ledger ids
``L<n>`` for ``n = FIRST_ID + 1, FIRST_ID + 2, ...``, flushes them in one
transaction, and only once the flush has returned without a persistence error
prints ``ACK <n>`` (the last ledger number of the batch) and flushes stdout.
Every line it prints is therefore a promise that the batch is on disk; the
test kills the process with SIGKILL at a random point and holds it to that.

On a persistence error it prints ``ERR <message>`` and exits with status 3.
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

from balance_manager.clock import SystemClock
from balance_manager.core.models import Balance, Source
from balance_manager.history import BalanceHistory
from balance_manager.persistence import HistoryStore

__all__ = ["main", "write_forever"]


async def write_forever(db_path: str, first: int, batch: int) -> int:
    """Record, flush and acknowledge batches until killed; returns 3 on a persistence error."""
    clock = SystemClock()
    history = BalanceHistory(store=HistoryStore(db_path), clock=clock)
    await history.load()
    if history.last_error is not None:
        print(f"ERR {history.last_error}", flush=True)
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
            print(f"ERR {error}", flush=True)
            return 3
        print(f"ACK {number}", flush=True)


def main(argv: list[str]) -> int:
    """Run :func:`write_forever` with ``DB_PATH FIRST_ID BATCH_SIZE`` from ``argv``."""
    db_path, first, batch = argv[1], int(argv[2]), int(argv[3])
    return asyncio.run(write_forever(db_path, first, batch))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
