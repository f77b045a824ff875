"""``balance-manager serve`` and ``balance-manager reservations``: shared balances on Redis.

``serve --redis URL`` runs a leader candidate for one account: it waits for
the account's lease, then holds the exchange connection and publishes every
balance to Redis, until Ctrl-C or SIGTERM (then it gives the lease up at once
rather than let it run out). Start one on each machine that may lead; one
leads, the others wait. With ``--dashboard`` it serves the web dashboard of its
manager while it leads (:class:`LeaderDashboard`), with the leader, its epoch
and the reservations per strategy; nothing listens on that port while it waits.
``reservations --redis URL`` lists the account's fund reservations and what is
left to reserve. Neither ever prints a Redis password.

This module needs the ``redis`` extra; the command line imports it only when
one of these commands runs (their arguments are in :mod:`.shared_args`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from balance_manager.cli.dashboard_command import open_dashboard
from balance_manager.cli.demo_view import display_amount
from balance_manager.config import ACCOUNT_PLACEHOLDER, BalanceManagerConfig
from balance_manager.connect import kraken_sources
from balance_manager.core.amounts import ZERO
from balance_manager.credentials import Credentials, redact_url
from balance_manager.dashboard import DEFAULT_PORT, TOKEN_ENV, Dashboard, LeaderSharedStatus
from balance_manager.exceptions import ConfigError
from balance_manager.kraken.protocol.assets import AssetNames
from balance_manager.service.manager import BalanceManager
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.keys import AccountKeys
from balance_manager.shared.leader import SharedLeader
from balance_manager.shared.reservations import Reservation, ReservationList, Reservations
from balance_manager.storage.sqlite import HistoryStore

__all__ = [
    "DashboardOptions",
    "LeaderDashboard",
    "reservations_json",
    "run_reservations",
    "run_serve",
]


def _redis(config: BalanceManagerConfig) -> SharedRedis:
    if config.redis_url is None:
        raise ConfigError("redis_url", None, "give --redis URL")
    keys = AccountKeys(config.redis_namespace, config.shared_account)
    return SharedRedis(config.redis_url, keys, timeout=config.redis_timeout)


@dataclass(frozen=True, slots=True)
class DashboardOptions:
    """Where ``serve --dashboard`` serves (the token comes from the environment only)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None

    def __repr__(self) -> str:
        shown = "***" if self.token else None
        return f"DashboardOptions(host={self.host!r}, port={self.port}, token={shown})"


class LeaderDashboard:
    """Serves the dashboard of a leader's manager while it leads (``SharedLeader(while_leading=)``).

    Each term gets a fresh :class:`~balance_manager.dashboard.Dashboard` of that
    term's manager, with the shared block read through a
    :class:`~balance_manager.dashboard.LeaderSharedStatus`; it stops when the
    term ends, before the manager closes. The next term serves on the port the
    last one had (a stable address), or another free one when it was the
    default port and is taken. A dashboard that cannot bind is reported in
    :attr:`error`, never a reason to stop leading.

    Args:
        options: the address and token.
        leader_status: the candidate's status (``SharedLeader.get_status``: the
            leader and the epoch).
        reservations: reads the account's reservations.
    """

    def __init__(
        self,
        options: DashboardOptions,
        leader_status: Callable[[], Mapping[str, Any]],
        reservations: Reservations,
    ) -> None:
        self.options = options
        self.leader_status = leader_status
        self.reservations = reservations
        self.current: Dashboard | None = None
        """The dashboard served now (``None`` while not leading)."""
        self.error: str | None = None
        """Why this term has no dashboard, if it has none."""
        self._port = options.port

    async def _listing(self) -> Iterable[Reservation]:
        return (await self.reservations.list()).reservations.values()

    @contextlib.asynccontextmanager
    async def term(self, manager: BalanceManager) -> AsyncIterator[None]:
        """Serve ``manager``'s dashboard for one term of leadership."""
        status = LeaderSharedStatus(self.leader_status, self._listing, clock=manager.clock.time)
        self.error = None
        async with contextlib.AsyncExitStack() as stack:
            try:
                self.current = await stack.enter_async_context(
                    open_dashboard(
                        manager,
                        host=self.options.host,
                        port=self._port,
                        token=self.options.token,
                        any_port_if_taken=self.options.port == DEFAULT_PORT,
                        shared_status=status,
                    )
                )
                self._port = self.current.port
            except OSError as exc:
                self.error = f"{type(exc).__name__}: {exc}"
            try:
                yield
            finally:
                self.current = None

    def say(self, out: TextIO) -> None:
        """Print where this term's dashboard is (or why there is none)."""
        dashboard = self.current
        if dashboard is not None:
            print(f"dashboard of the leader: {dashboard.url}", file=out, flush=True)
            if dashboard.policy.needs_token:
                print(f"sign in with the token in {TOKEN_ENV}", file=out, flush=True)
        elif self.error is not None:
            print(f"no dashboard: {self.error}", file=out, flush=True)


async def run_serve(
    config: BalanceManagerConfig,
    credentials: Credentials,
    stop: asyncio.Event,
    out: TextIO,
    *,
    dashboard: DashboardOptions | None = None,
) -> int:
    """Be a leader candidate until ``stop`` (or SIGTERM); returns the exit code.

    With ``dashboard``, serve the web dashboard of the manager while leading.
    """
    redis = _redis(config)
    store: HistoryStore | None = None
    if config.history_db_path is not None:
        path = config.history_db_path.replace(ACCOUNT_PLACEHOLDER, credentials.fingerprint)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        store = HistoryStore(path, account=credentials.fingerprint)
        await store.open()
    served = (
        None
        if dashboard is None
        else LeaderDashboard(dashboard, lambda: leader.get_status(), Reservations(redis, config))
    )
    leader = SharedLeader(
        redis,
        kraken_sources(config, credentials),
        config,
        history=store,
        while_leading=None if served is None else served.term,
    )
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
                if served is not None:
                    served.say(out)
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
