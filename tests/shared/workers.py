"""Code that runs in other processes for the multi-process tests (spawned, not forked).

Kept light: a spawned process imports this module and what it needs, nothing else.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

from balance_manager.config import BalanceManagerConfig
from balance_manager.exceptions import InsufficientFundsError
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.keys import AccountKeys
from balance_manager.shared.reservations import Reservations


def reserve_many(url: str, namespace: str, seed: int, attempts: int) -> list[str]:
    """Try ``attempts`` reservations of random USD amounts; return the granted ones (exact text)."""

    async def run() -> list[str]:
        shared = SharedRedis(url, AccountKeys(namespace, "acct"), timeout=2.0)
        config = BalanceManagerConfig(history_db_path=None, shared_stale_after=2.0)
        reservations = Reservations(shared, config)
        rng = random.Random(seed)
        granted: list[str] = []
        try:
            for n in range(attempts):
                amount = Decimal(rng.randint(1, 5 * 10**12)).scaleb(-8)  # up to 50,000.00000000
                try:
                    await reservations.reserve(
                        "USD", amount, owner=f"p{seed}", reservation_id=f"p{seed}-{n}"
                    )
                except InsufficientFundsError:
                    continue
                granted.append(str(amount))
        finally:
            await shared.close()
        return granted

    return asyncio.run(run())


def main() -> None:
    """``python -m tests.shared.workers URL NAMESPACE SEED ATTEMPTS``: prints what was granted."""
    import json
    import sys

    url, namespace, seed, attempts = sys.argv[1:5]
    print(json.dumps(reserve_many(url, namespace, int(seed), int(attempts))))


if __name__ == "__main__":
    main()
