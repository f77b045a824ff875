"""A strategy process on shared balances: read them, set funds aside, give them back.

Run a leader first (``balance-manager serve --redis URL``), then as many of these
as you like, on any machine that reaches the Redis::

    python -m examples.shared_strategy --redis redis://127.0.0.1:6379/0 --owner strategy-a

It follows the account's balances through Redis (no exchange key needed),
prints USD, reserves ``--amount`` USD for ``--owner``, shows what is left to
reserve for everybody, and releases it. Placing the order itself needs a trading
key of this process's own (Kraken: one key per process), sent with the client
order id ``hold.commit()`` returns (see docs/shared.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import balance_manager
from balance_manager.config import BalanceManagerConfig
from balance_manager.exceptions import InsufficientFundsError, SharedStateError


async def run(url: str, owner: str, amount: str, account: str) -> int:
    """Read, reserve, list, release; returns the exit code."""
    config = BalanceManagerConfig(history_db_path=None, shared_account=account)
    async with balance_manager.connect(redis_url=url, config=config) as shared:
        usd = await shared.get_balance("USD")
        print(f"{usd} (leader's source: {shared.get_status()['source']})")
        try:
            async with shared.reservations.hold("USD", amount, owner=owner) as hold:
                listing = await shared.reservations.list(asset="USD")
                print(f"reserved {amount} USD as {hold.reservation.id} for {owner}")
                print(f"USD still available to reserve: {listing.available('USD')}")
        except InsufficientFundsError as exc:
            print(f"refused: {exc}")
            return 1
        except SharedStateError as exc:
            print(f"refused (fail closed): {exc}")
            return 1
        listing = await shared.reservations.list(asset="USD")
        print(f"released; USD available again: {listing.available('USD')}")
    return 0


def main() -> int:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", required=True, metavar="URL")
    parser.add_argument("--owner", default="strategy-a")
    parser.add_argument("--amount", default="100")
    parser.add_argument("--account", default="default", help="the shared_account label")
    args = parser.parse_args()
    return asyncio.run(run(args.redis, args.owner, args.amount, args.account))


if __name__ == "__main__":
    sys.exit(main())
