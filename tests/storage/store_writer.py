"""A process that writes history rows through a store, for the concurrent-writer tests.

Usage::

    python store_writer.py URL ACCOUNT WORKER BATCHES BATCH_SIZE

Opens the store at ``URL`` (``sqlite:PATH``, or a PostgreSQL URL whose
``schema`` parameter names the schema), waits for a line on stdin (so every writer starts together),
then writes ``BATCHES`` batches of ``BATCH_SIZE`` rows of ``BTC`` and
``ETH``. Row ``n`` of worker ``w`` has ledger id ``L<n + w * BATCHES *
BATCH_SIZE // 2>``: each worker's ids overlap half of the next worker's, so
the same ledger entry is written by two processes at once. After each batch
is committed it prints ``ACK <batch number>`` (a promise that the batch is
stored); at the end, the number of rows the store reported new, then exits 0.
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

from balance_manager.core.models import Balance, Source
from balance_manager.storage.base import StoredRow, history_store_for

__all__ = ["ledger_numbers", "main"]


def ledger_numbers(worker: int, batches: int, batch_size: int) -> range:
    """The ledger numbers worker ``worker`` writes."""
    first = worker * batches * batch_size // 2
    return range(first, first + batches * batch_size)


async def write(arguments: list[str]) -> int:
    """Write the rows; return how many were new."""
    url, account, worker, batches, batch_size = arguments
    store = history_store_for(url, account=account)
    numbers = list(ledger_numbers(int(worker), int(batches), int(batch_size)))
    size = int(batch_size)
    added = 0
    async with store:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        await asyncio.to_thread(sys.stdin.readline)
        for offset in range(0, len(numbers), size):
            rows = [
                StoredRow(
                    "BTC" if n % 2 else "ETH",
                    1_700_000_000.0 + n,
                    Decimal(n).scaleb(-8),
                    Source.WEBSOCKET,
                    f"L{n}",
                )
                for n in numbers[offset : offset + size]
            ]
            latest = [Balance(rows[-1].asset, rows[-1].balance, received_at=rows[-1].timestamp)]
            added += await store.write(rows, latest)
            sys.stdout.write(f"ACK {offset // size}\n")
            sys.stdout.flush()
    return added


def main() -> None:
    """Entry point: see the module docstring."""
    print(asyncio.run(write(sys.argv[1:])), flush=True)


if __name__ == "__main__":
    main()
