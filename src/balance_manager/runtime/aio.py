"""Small asyncio helpers shared by the adapters.

:func:`describe_network_error` turns aiohttp's connection errors into one line
naming the cause a person can act on (DNS, refused, TLS, timeout), so that
every layer above reports the cause rather than a library class name.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable
from typing import TypeVar

import aiohttp

from balance_manager.exceptions import RequestTimeoutError
from balance_manager.runtime.clock import Clock, SystemClock

__all__ = ["cancel_and_wait", "describe_network_error", "with_timeout"]

#: aiohttp >= 3.10 raises this for failed lookups; older versions a ClientConnectorError.
_DNS_ERROR: type[BaseException] | None = getattr(aiohttp, "ClientConnectorDNSError", None)

T = TypeVar("T")


async def with_timeout(clock: Clock, seconds: float, awaitable: Awaitable[T], operation: str) -> T:
    """Await ``awaitable`` for at most ``seconds`` of ``clock`` time.

    The deadline is measured on the injected clock, so a test driving a
    :class:`~balance_manager.testing.ManualClock` decides when it passes (no real
    waiting); with the system clock this is :func:`asyncio.timeout`.

    Raises:
        RequestTimeoutError: the deadline passed first (the work is cancelled).
    """
    if isinstance(clock, SystemClock):
        try:
            async with asyncio.timeout(seconds):
                return await awaitable
        except TimeoutError:
            raise RequestTimeoutError(operation, seconds) from None
    work = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not work.done():
            await cancel_and_wait(work)
    if work.cancelled():
        raise RequestTimeoutError(operation, seconds)
    return work.result()


async def cancel_and_wait(task: asyncio.Future[object] | asyncio.Task[object] | None) -> None:
    """Cancel ``task`` and wait until it has finished (its errors are dropped)."""
    if task is None or task.done():
        if task is not None and not task.cancelled():
            task.exception()  # mark it retrieved
        return
    task.cancel()
    # asyncio.wait never raises the task's own error or cancellation, while a
    # cancellation of the *calling* task still propagates.
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()


def describe_network_error(exc: BaseException) -> str:
    """One line naming why a connection failed (never a request, so never a signature).

    >>> describe_network_error(aiohttp.ServerDisconnectedError())
    'the server closed the connection'
    """
    if isinstance(exc, aiohttp.ClientConnectorError):
        where = f"{exc.host}:{exc.port}"
        cause = exc.os_error
        reason = " ".join(str(cause.strerror or cause).split())
        if (_DNS_ERROR is not None and isinstance(exc, _DNS_ERROR)) or isinstance(
            cause, socket.gaierror
        ):
            return f"cannot resolve host {exc.host} (DNS: {reason})"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return f"TLS certificate of {where} refused: {exc.certificate_error}"
        if isinstance(exc, aiohttp.ClientSSLError) or isinstance(cause, ssl.SSLError):
            return f"TLS handshake with {where} failed: {reason}"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {where}"
        if isinstance(cause, TimeoutError):
            return f"connecting to {where} timed out"
        return f"cannot connect to {where}: {reason}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"WebSocket handshake refused: HTTP {exc.status} {exc.message}".rstrip()
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
