"""The ``balance-manager`` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from balance_manager import __version__

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``balance-manager``."""
    parser = argparse.ArgumentParser(
        prog="balance-manager",
        description="Real-time, exact crypto balances for trading bots.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("demo", help="live demo against the built-in simulator (being built)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        print(f"balance-manager {__version__}: the live demo is not built yet; see README.md")
    return 0
