"""``balance-manager simulator``: run the simulated Kraken exchange on its own.

The project's command line wires this in with :func:`add_arguments` and
:func:`run`. The simulator prints its URLs and a working test key pair (a
simulator credential: printing it is the point) and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import TextIO

from balance_manager.simulator.server.simulated_kraken import SimulatedKraken

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to ``parser``."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: 0, a free port)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of every random choice (default: 0)"
    )
    parser.add_argument(
        "--market",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="move prices, fill orders and simulate account activity (default: on)",
    )
    parser.add_argument(
        "--tier",
        choices=("starter", "intermediate", "pro"),
        default="starter",
        help="Kraken tier of the REST call counter (default: starter)",
    )


async def run(
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run the simulator until Ctrl-C (or until ``stop`` is set); returns the exit code.

    Args:
        args: parsed options from :func:`add_arguments`.
        out: where to print (standard output by default).
        stop: an event that ends the run (for tests and embedding).
    """
    stream = out if out is not None else sys.stdout
    simulator = SimulatedKraken(
        host=args.host, port=args.port, seed=args.seed, market=args.market, tier=args.tier
    )
    try:
        await simulator.start()
    except OSError as exc:
        # The command line's one-line error format (docs/cli.md, "Exit codes").
        reason = os.strerror(exc.errno) if exc.errno else " ".join(str(exc).split())
        print(
            f"balance-manager: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr
        )
        return 1
    try:
        print("Simulated Kraken exchange is running (Ctrl-C to stop)", file=stream)
        print(f"  REST base URL : {simulator.rest_url}", file=stream)
        print(f"  WebSocket v2  : {simulator.ws_url}", file=stream)
        print(f"  control       : {simulator.control_url}/state", file=stream)
        print(f"  API key       : {simulator.api_key}", file=stream)
        print(f"  API secret    : {simulator.api_secret}", file=stream)
        print(f"  market        : {'on' if args.market else 'off'}", file=stream)
        stream.flush()
        waiter = stop if stop is not None else asyncio.Event()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter.wait()
    finally:
        await simulator.stop()
    return 0
