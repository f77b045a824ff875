"""The arguments of ``serve`` and ``reservations``, importable without the ``redis`` extra."""

from __future__ import annotations

import argparse

from balance_manager.config import BalanceManagerConfig
from balance_manager.exceptions import ConfigError

__all__ = ["add_redis_arguments", "shared_config"]


def add_redis_arguments(parser: argparse.ArgumentParser) -> None:
    """``--redis``, ``--namespace`` and ``--account`` (defaults: the options)."""
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="Redis URL, redis://[:password@]host:port/db (default: the redis_url option)",
    )
    parser.add_argument(
        "--namespace", metavar="NAME", help="key prefix (default: the redis_namespace option)"
    )
    parser.add_argument(
        "--account", metavar="LABEL", help="account label (default: the shared_account option)"
    )


def shared_config(config: BalanceManagerConfig, args: argparse.Namespace) -> BalanceManagerConfig:
    """``config`` with ``--redis``, ``--namespace`` and ``--account`` applied.

    Raises:
        ConfigError: no Redis URL anywhere, or a bad one.
    """
    changes: dict[str, object] = {}
    if args.redis:
        changes["redis_url"] = args.redis
    if args.namespace:
        changes["redis_namespace"] = args.namespace
    if args.account:
        changes["shared_account"] = args.account
    config = config.replace(**changes) if changes else config
    if config.redis_url is None:
        raise ConfigError("redis_url", None, "give --redis URL (or set BALANCE_MANAGER_REDIS_URL)")
    return config
