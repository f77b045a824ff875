"""One account's Redis connection and its scripts, with errors that never show a password.

:class:`SharedRedis` wraps a redis-py asyncio client (a connection pool) for
one account's keys (:class:`~balance_manager.shared.keys.AccountKeys`). It
registers the scripts of :mod:`balance_manager.shared.lua` (sent once, then
called by their SHA; reloaded by redis-py if Redis forgot them) and turns
every Redis failure into a :class:`~balance_manager.exceptions.SharedStateError`
naming the operation and the server with its password masked.

Failures are quick on purpose: a connection error is retried once at once
(a pooled connection from before a Redis restart), never with a growing
backoff, so a reservation fails closed within ``redis_timeout`` rather than
after a minute of retries, and a leader learns in time that it cannot renew.
"""

from __future__ import annotations

import asyncio
from typing import Any

from balance_manager.credentials import redact_url
from balance_manager.exceptions import SharedStateError
from balance_manager.shared import lua
from balance_manager.shared.keys import AccountKeys

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError, RedisError, ResponseError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "shared balances on Redis need redis-py: pip install 'balance-manager[redis]'",
        name=exc.name,
    ) from exc

__all__ = ["SCRIPTS", "SharedRedis", "scrub"]

#: Every script by name.
SCRIPTS = {
    "acquire": lua.ACQUIRE,
    "renew": lua.RENEW,
    "resign": lua.RESIGN,
    "publish": lua.PUBLISH,
    "snapshot": lua.SNAPSHOT,
    "reserve": lua.RESERVE,
    "commit": lua.COMMIT,
    "release": lua.RELEASE,
    "list": lua.LIST,
    "set_cap": lua.SET_CAP,
}


def scrub(message: str, url: str) -> str:
    """``message`` with the URL's password (if any) replaced by ``***``."""
    password = aioredis.connection.parse_url(url).get("password") if "://" in url else None
    if password:
        message = message.replace(str(password), "***")
    return " ".join(message.split())


def _still_cancelled() -> None:
    """Raise ``CancelledError`` if this task was cancelled while Redis was answering.

    redis-py may finish a command that a cancellation interrupted (to keep the
    connection in step) and return its reply, or turn the cancellation into a
    connection error: either way the cancellation would be lost, a loop that
    goes on after a reply or an error would never end, and whoever cancelled it
    (a leader ending its term) would wait for it forever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class SharedRedis:
    """A Redis client for one account's keys and scripts.

    Args:
        url: ``redis://[:password@]host:port/db``, ``rediss://...`` or ``unix://...``.
        keys: the account's keys.
        timeout: seconds a connect or a command may take before it fails.
        max_connections: connections in the pool; more callers at once wait their turn.
    """

    def __init__(
        self, url: str, keys: AccountKeys, *, timeout: float = 1.0, max_connections: int = 64
    ) -> None:
        self.url = url
        self.shown_url = redact_url(url)
        self.keys = keys
        self.timeout = timeout
        # A bounded pool that makes callers wait for a free connection (rather
        # than fail) when many tasks call at once.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=max(5.0, 5 * timeout),
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=0,
        )
        self.client: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        self._scripts = {name: self.client.register_script(src) for name, src in SCRIPTS.items()}

    async def run(self, name: str, *args: str | int | float, operation: str = "") -> Any:
        """Run script ``name`` on the account's keys with ``args``.

        Raises:
            SharedStateError: Redis could not be reached or refused the script.
        """
        try:
            reply = await self._scripts[name](keys=self.keys.all(), args=list(args))
        except (RedisError, OSError) as exc:
            _still_cancelled()
            raise self.error(operation or name, exc) from None
        _still_cancelled()
        return reply

    async def time_ms(self) -> int:
        """Redis's clock now, in ms.

        Raises:
            SharedStateError: Redis could not be reached.
        """
        try:
            seconds, micros = await self.client.time()
        except (RedisError, OSError) as exc:
            _still_cancelled()
            raise self.error("TIME", exc) from None
        _still_cancelled()
        return int(seconds) * 1000 + int(micros) // 1000

    def error(self, operation: str, exc: BaseException) -> SharedStateError:
        """A :class:`SharedStateError` for ``exc``: the server named (masked), never a password."""
        if isinstance(exc, ResponseError):
            reason = f"Redis at {self.shown_url} refused: {exc}"
        else:
            reason = f"Redis at {self.shown_url} unreachable: {type(exc).__name__}: {exc}"
        return SharedStateError(operation, scrub(reason, self.url))

    async def close(self) -> None:
        """Close every connection of the pool."""
        await self.client.aclose()
        await self.client.connection_pool.disconnect()

    def __repr__(self) -> str:
        return f"SharedRedis({self.shown_url}, {self.keys.prefix})"
