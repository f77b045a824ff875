"""``balance-manager serve`` and ``balance-manager reservations``: shared balances on Redis.

``serve --redis URL`` runs a leader candidate for one account: it waits for
the account's lease, then holds the exchange connection and publishes every
balance to Redis, until Ctrl-C or SIGTERM (then it gives the lease up at once
rather than let it run out). Start one on each machine that may lead; one
leads, the others wait. ``reservations --redis URL`` lists the account's fund
reservations and what is left to reserve. Neither ever prints a Redis password.

This module needs the ``redis`` extra; the command line imports it only when
one of these commands runs (their arguments are in :mod:`.shared_args`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.table import Table

from balance_manager.cli.demo_view import display_amount
from balance_manager.config import ACCOUNT_PLACEHOLDER, BalanceManagerConfig
from balance_manager.connect import kraken_sources
from balance_manager.core.amounts import ZERO
from balance_manager.credentials import Credentials, redact_url
from balance_manager.exceptions import ConfigError
from balance_manager.kraken.protocol.assets import AssetNames
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.keys import AccountKeys
from balance_manager.shared.leader import SharedLeader
from balance_manager.shared.reservations import ReservationList, Reservations
from balance_manager.storage.sqlite import HistoryStore

__all__ = ["reservations_json", "run_reservations", "run_serve"]


def _redis(config: BalanceManagerConfig) -> SharedRedis:
    if config.redis_url is None:
        raise ConfigError("redis_url", None, "give --redis URL")
    keys = AccountKeys(config.redis_namespace, config.shared_account)
    return SharedRedis(config.redis_url, keys, timeout=config.redis_timeout)


async def run_serve(
    config: BalanceManagerConfig,
    credentials: Credentials,
    stop: asyncio.Event,
    out: TextIO,
) -> int:
    """Be a leader candidate until ``stop`` (or SIGTERM); returns the exit code."""
    redis = _redis(config)
    store: HistoryStore | None = None
    if config.history_db_path is not None:
        path = config.history_db_path.replace(ACCOUNT_PLACEHOLDER, credentials.fingerprint)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        store = HistoryStore(path, account=credentials.fingerprint)
        await store.open()
    leader = SharedLeader(redis, kraken_sources(config, credentials), config, history=store)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    shown = redact_url(str(config.redis_url))
    print(
        f"leader candidate {leader.owner} for account {config.shared_account!r} "
        f"({redis.keys.prefix}) on {shown}",
        file=out,
        flush=True,
    )
    task = asyncio.create_task(leader.run(stop))
    try:
        was_leading = False
        while not task.done():
            changed = asyncio.ensure_future(leader.changed.wait())
            await asyncio.wait({changed, task}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            leader.changed.clear()
            leading = leader.leading.is_set()
            if leading and not was_leading:
                status = leader.get_status()
                print(
                    f"leading with epoch {status['epoch']} (generation {status['generation']})",
                    file=out,
                    flush=True,
                )
            elif was_leading and not leading:
                reason = leader.get_status()["last_error"] if not stop.is_set() else None
                print(f"stopped leading: {reason or 'stopping'}", file=out, flush=True)
            was_leading = leading
        await task
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGTERM)
        await redis.close()
        if store is not None:
            await store.close()
    print("stopped", file=out, flush=True)
    return 0


def reservations_json(listing: ReservationList) -> dict[str, object]:
    """The listing as JSON-ready data: amounts as exact strings."""
    assets = sorted(set(listing.free) | set(listing.reserved))
    return {
        "reservations": [
            {
                "id": r.id,
                "owner": r.owner,
                "asset": r.asset,
                "amount": str(r.amount),
                "state": r.state,
                "client_order_id": r.client_order_id,
                "expires_in": max(0.0, (r.expires_ms - listing.now_ms) / 1000),
            }
            for r in sorted(listing.reservations.values(), key=lambda r: (r.asset, r.created_ms))
        ],
        "assets": {
            asset: {
                "free": str(listing.free.get(asset, ZERO)),
                "reserved": str(listing.reserved.get(asset, ZERO)),
                "available": str(listing.available(asset)),
            }
            for asset in assets
        },
        "caps": [
            {"owner": owner, "asset": asset, "cap": str(cap)}
            for (owner, asset), cap in sorted(listing.caps.items())
        ],
    }


async def run_reservations(
    config: BalanceManagerConfig,
    out: TextIO,
    *,
    asset: str | None,
    owner: str | None,
    as_json: bool,
) -> int:
    """Print the account's reservations and totals; returns the exit code."""
    redis = _redis(config)
    try:
        listing = await Reservations(redis, config, names=AssetNames()).list(
            asset=asset, owner=owner
        )
    finally:
        await redis.close()
    if as_json:
        print(json.dumps(reservations_json(listing), indent=2), file=out)
        return 0
    console = Console(file=out)
    console.print(
        f"Reservations of account {config.shared_account!r} on {redact_url(str(config.redis_url))}"
    )
    table = Table("id", "owner", "asset", "amount", "state", "client order id", "expires in")
    for r in sorted(listing.reservations.values(), key=lambda r: (r.asset, r.created_ms)):
        table.add_row(
            r.id,
            r.owner,
            r.asset,
            display_amount(r.amount),
            r.state,
            r.client_order_id or "",
            f"{max(0.0, (r.expires_ms - listing.now_ms) / 1000):.1f} s",
        )
    console.print(table)
    totals = Table("asset", "free", "reserved", "available")
    for name in sorted(set(listing.free) | set(listing.reserved)):
        totals.add_row(
            name,
            display_amount(listing.free.get(name, ZERO)),
            display_amount(listing.reserved.get(name, ZERO)),
            display_amount(listing.available(name)),
        )
    console.print(totals)
    return 0
