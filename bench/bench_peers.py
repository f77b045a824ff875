"""Peers: the same ``balances`` frames through ccxt's and python-kraken-sdk's WebSocket paths.

Run from the repository root (about 30 s)::

    python bench/bench_peers.py [--quick]

The peers are not dependencies of balance-manager. Install them (a ``bench``
extra, or a throwaway directory) and either have them importable, or name the
directory in ``BALANCE_MANAGER_BENCH_PEERS``; it is appended to ``sys.path``
(after the virtualenv, so its own copies of aiohttp and friends never shadow
ours)::

    python -m pip install --target /tmp/peers ccxt python-kraken-sdk
    BALANCE_MANAGER_BENCH_PEERS=/tmp/peers python bench/bench_peers.py

A peer that cannot be imported is reported as ``skipped: not installed``.

Every case gets the same 20,000 distinct, realistic update frames (bytes), in
the same process, alternating, median of several repeats:

* **balance-manager**: the whole manager path of ``bench_ingest.py``
  (session, client, manager with validation, cache, history, change
  detection, an async ``balance_update`` callback);
* **ccxt** (``ccxt.pro.kraken``): each frame handed to its WebSocket client's
  frame entry point, ``Client.handle_text_or_binary_message`` (JSON decode, then
  ``kraken.handle_message`` → ``handle_balance``, which keeps ``balance['spot']``);
* **python-kraken-sdk** (``kraken.spot.SpotWSClient``): the steps its
  connection runs on each frame after the socket read (``json.loads``, the
  debug log call, ``_manage_subscriptions``, ``await client.on_message``) with
  a callback that keeps each asset's latest entry: the SDK itself keeps no
  balances, so a user must write at least that.

Both peers decode numbers as ``float``; how many of the 30 final balances
then differ from the exact value is printed too. Our speed-up over each is
their time divided by ours, per round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

from balance_manager.core.models import Balance
from bench_ingest import floor_path, manager_path
from common import (
    alternate_async,
    print_header,
    ratio_stats,
    report,
    stats_of,
    streaming_manager,
    update_frames,
)

__all__ = ["main"]

FRAMES = 20_000
PEERS_PATH_VARIABLE = "BALANCE_MANAGER_BENCH_PEERS"


def add_peers_path() -> None:
    """Append ``$BALANCE_MANAGER_BENCH_PEERS`` to ``sys.path`` when set."""
    path = os.environ.get(PEERS_PATH_VARIABLE)
    if path and path not in sys.path:
        sys.path.append(path)


def load(module: str) -> Any | None:
    """The module, or ``None`` when it is not installed."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        return None


async def exact_final(frames: Sequence[bytes]) -> dict[str, Balance]:
    """Every asset's exact final balance, from our manager."""
    manager, client = await streaming_manager()
    from common import feed_like_the_client

    await feed_like_the_client(client, frames)
    return manager.sync_view().get_all_balances()


# ---------------------------------------------------------------------------
# ccxt
# ---------------------------------------------------------------------------


class CcxtCase:
    """ccxt.pro's Kraken exchange and one of its WebSocket clients, fed frames."""

    def __init__(self, ccxtpro: Any) -> None:
        self.exchange = ccxtpro.kraken({"apiKey": "bench-key", "secret": "YmVuY2gtc2VjcmV0"})
        self.client = self.exchange.client(self.exchange.urls["api"]["ws"]["privateV2"])

    async def run(self, frames: Sequence[bytes]) -> float:
        """Seconds for ``frames``."""
        handle = self.client.handle_text_or_binary_message
        self.exchange.balance = {}
        start = time.perf_counter()
        for frame in frames:
            handle(frame)
        return time.perf_counter() - start

    def final(self) -> dict[str, Any]:
        """Asset → the ``total`` ccxt holds."""
        spot = self.exchange.balance.get("spot", {})
        return {code: spot[code]["total"] for code in spot.get("total", {})}

    async def close(self) -> None:
        """Close the exchange (no connection was opened)."""
        await self.exchange.close()


# ---------------------------------------------------------------------------
# python-kraken-sdk
# ---------------------------------------------------------------------------


class KrakenSdkCase:
    """python-kraken-sdk's SpotWSClient (private connection only), fed frames."""

    def __init__(self, spot: Any, connectors: Any) -> None:
        self.latest: dict[str, Any] = {}

        async def keep_balances(message: dict[str, Any]) -> None:
            if message.get("channel") == "balances":
                for entry in message["data"]:
                    self.latest[entry["asset"]] = entry

        self.sdk = spot.SpotWSClient(
            key="bench-key",
            secret="YmVuY2gtc2VjcmV0",  # noqa: S106 - a dummy, never sent anywhere
            callback=keep_balances,
            no_public=True,
        )
        self.connection = self.sdk._priv_conn
        self.log = connectors.LOG

    async def run(self, frames: Sequence[bytes]) -> float:
        """Seconds for ``frames``, through the steps of the connection's read loop."""
        connection = self.connection
        manage = connection._manage_subscriptions
        on_message = connection.client.on_message
        debug = self.log.debug
        loads = json.loads
        start = time.perf_counter()
        for frame in frames:
            message = loads(frame)
            debug(message)
            manage(message=message)
            await on_message(message)
        return time.perf_counter() - start

    def final(self) -> dict[str, Any]:
        """Asset → the ``balance`` of its latest entry."""
        return {asset: entry["balance"] for asset, entry in self.latest.items()}

    async def close(self) -> None:
        """Close the client (no connection was opened)."""
        await self.sdk.close()


# ---------------------------------------------------------------------------


def inexact(final: dict[str, Any], exact: dict[str, Balance]) -> int:
    """How many of ``final``'s balances differ from the exact ones."""
    wrong = 0
    for asset, value in final.items():
        held = exact.get(asset)
        if held is None or Decimal(str(value)) != held.balance:
            wrong += 1
    return wrong


async def run(args: argparse.Namespace) -> None:
    """Load the peers, run every case alternating, print the speed-ups."""
    add_peers_path()
    frames = update_frames(5_000 if args.quick else FRAMES)
    repeats = 3 if args.quick else 5
    logging.getLogger("kraken").setLevel(logging.WARNING)  # its debug call stays a no-op
    cases: dict[str, Callable[[], Awaitable[float]]] = {
        "balance-manager": lambda: manager_path(frames),
        "floor": lambda: floor_path(frames),
    }
    peers: dict[str, Any] = {}
    ccxtpro = load("ccxt.pro")
    if ccxtpro is None:
        report("ccxt (ccxt.pro kraken, handle_balance)", "skipped: not installed")
    else:
        peers["ccxt"] = CcxtCase(ccxtpro)
        cases["ccxt"] = lambda: peers["ccxt"].run(frames)
    spot = load("kraken.spot")
    connectors = load("kraken.spot.websocket.connectors")
    if spot is None or connectors is None:
        report("python-kraken-sdk (SpotWSClient message path)", "skipped: not installed")
    else:
        peers["python-kraken-sdk"] = KrakenSdkCase(spot, connectors)
        cases["python-kraken-sdk"] = lambda: peers["python-kraken-sdk"].run(frames)
    try:
        samples = await alternate_async(cases, repeats)
        exact = await exact_final(frames)
        count = len(frames)
        for name, values in samples.items():
            rate = stats_of([count / v for v in values])
            line = rate.describe(lambda v: f"{v:,.0f} msg/s")
            if name in peers:
                line += (
                    f"; {inexact(peers[name].final(), exact)} of {len(exact)} final balances "
                    "differ from the exact value"
                )
            report(f"{name}, {count:,} update frames", line)
        ours = samples["balance-manager"]
        for name in peers:
            speedup = ratio_stats(samples[name], ours)
            report(
                f"speed-up of balance-manager over {name} (their time / ours, per round)",
                speedup.describe(lambda v: f"{v:.2f}x"),
            )
        print(
            "  (python-kraken-sdk only decodes and hands dicts over; ccxt keeps a balance "
            "dict; balance-manager also validates, caches, records history and detects changes)"
        )
    finally:
        for peer in peers.values():
            await peer.close()


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description="peers benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer frames and repeats")
    args = parser.parse_args()
    print_header("peers: the same balances frames through ccxt and python-kraken-sdk")
    started = time.perf_counter()
    asyncio.run(run(args))
    print(f"(total {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
