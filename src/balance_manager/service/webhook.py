"""Alerts to a webhook: an HTTP POST with a JSON body, retried with backoff, never blocking.

:class:`WebhookSender` is what the alert monitor hands each fired or resolved
alert to. :meth:`WebhookSender.send` only appends the JSON body to a bounded
queue and returns; one task of its own POSTs the bodies in order:

* a 2xx answer is a delivery;
* a network error, a timeout (``timeout`` seconds on the injected clock), an
  HTTP 5xx, 408 or 429 is retried after the next delay of
  :func:`balance_manager.core.backoff.backoff`, up to ``attempts`` POSTs in all,
  then the body is dropped and counted as ``failed``;
* any other 4xx means the receiver refuses the body: dropped at once
  (``rejected``), since sending it again would be refused again.

While one body is being retried the others wait; beyond ``max_queue`` waiting
bodies the oldest are dropped (``dropped``), so a receiver that is down or
hangs costs bounded memory and never slows the caller. Bodies are encoded with
msgspec: amounts are exact decimal strings. The URL may carry a token (in its
path or query): only its scheme and host appear in logs, errors and ``repr``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypedDict

import aiohttp
import msgspec

from balance_manager.core.backoff import backoff
from balance_manager.core.bounds import count, seconds
from balance_manager.credentials import redact_webhook_url
from balance_manager.exceptions import RequestTimeoutError
from balance_manager.runtime.aio import cancel_and_wait, describe_network_error, with_timeout
from balance_manager.runtime.clock import Clock, SystemClock

__all__ = ["WebhookSender", "WebhookStatistics"]

logger = logging.getLogger(__name__)

#: Statuses worth trying again: the receiver is busy or briefly broken.
_RETRY_STATUSES = frozenset({408, 429})


class WebhookStatistics(TypedDict):
    """What :meth:`WebhookSender.get_statistics` returns."""

    url: str
    queued: int
    sent: int
    retries: int
    failed: int
    rejected: int
    dropped: int
    pending: int
    last_error: str | None


class WebhookSender:
    """POSTs JSON bodies to one URL from a bounded queue (see the module docs).

    Args:
        url: the receiver (``http://`` or ``https://``; may hold a token).
        clock: times the timeout and the waits between attempts.
        timeout: seconds one POST may take.
        attempts: most POSTs of one body (1: no retry).
        max_queue: bodies kept waiting at most (the oldest are dropped beyond).
        delays: makes the delay policy for one body (default: backoff from
            1 s to 60 s, doubling, with jitter).
        session: an aiohttp session to use (default: one of its own).

    Raises:
        ConfigError: a number out of range.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        timeout: float = 5.0,
        attempts: int = 5,
        max_queue: int = 1000,
        delays: Callable[[], Iterator[float]] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._url = url
        self.shown_url = redact_webhook_url(url)
        """The URL as it may be shown: scheme and host only."""
        self.clock: Clock = clock or SystemClock()
        self.timeout = seconds("timeout", timeout)
        self.attempts = count("attempts", attempts, minimum=1, maximum=100)
        self._queue: deque[bytes] = deque()
        self._max_queue = count("max_queue", max_queue, minimum=1, maximum=1_000_000)
        self._delays = delays or _default_delays
        self._session = session
        self._own_session = session is None
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._queued = 0
        self._sent = 0
        self._retries = 0
        self._failed = 0
        self._rejected = 0
        self._dropped = 0
        self._last_error: str | None = None

    # -- sending ---------------------------------------------------------------------------

    def send(self, body: Mapping[str, Any]) -> bool:
        """Queue ``body`` (a JSON-able mapping) for a POST and return at once.

        Must be called on the event loop. Returns ``False`` when the sender
        is closed (nothing queued).
        """
        if self._closed:
            return False
        self._queue.append(msgspec.json.encode(body))
        self._queued += 1
        self._idle.clear()
        if len(self._queue) > self._max_queue:
            # The first body may be in flight: drop the oldest one still waiting.
            del self._queue[1 if self._task is not None else 0]
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 100 == 0:
                logger.warning(
                    "webhook %s is not keeping up: %d alert(s) dropped so far",
                    self.shown_url,
                    self._dropped,
                )
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="alerts-webhook")
        if self._wakeup is not None:
            self._wakeup.set()
        return True

    async def _run(self) -> None:
        wakeup = self._wakeup or asyncio.Event()
        while True:
            if not self._queue:
                self._idle.set()
                wakeup.clear()
                await wakeup.wait()
                continue
            body = self._queue[0]
            try:
                await self._deliver(body)
            finally:
                if self._queue and self._queue[0] is body:
                    self._queue.popleft()

    async def _deliver(self, body: bytes) -> None:
        delays = self._delays()
        for attempt in range(1, self.attempts + 1):
            error = await self._post_once(body)
            if error is None:
                self._sent += 1
                self._last_error = None
                return
            self._last_error = error
            if error.startswith("refused"):
                self._rejected += 1
                logger.error("webhook %s %s; alert dropped", self.shown_url, error)
                return
            delay = next(delays, None) if attempt < self.attempts else None
            if delay is None:
                self._failed += 1
                logger.error(
                    "webhook %s failed %d time(s) (%s); alert dropped",
                    self.shown_url,
                    attempt,
                    error,
                )
                return
            self._retries += 1
            logger.info(
                "webhook %s attempt %d failed (%s); retrying in %.2f s",
                self.shown_url,
                attempt,
                error,
                delay,
            )
            await self.clock.sleep(delay)

    async def _post_once(self, body: bytes) -> str | None:
        """One POST: ``None`` when delivered, else why not (``refused ...`` for a 4xx)."""
        try:
            status = await with_timeout(self.clock, self.timeout, self._post(body), "webhook POST")
        except RequestTimeoutError:
            return f"no answer within {self.timeout:g} s"
        except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError, OSError) as exc:
            return self._scrub(describe_network_error(exc))  # says host and port, not path
        except aiohttp.ClientError as exc:
            # Its text may hold the whole URL, token included, cut or re-encoded: say the kind.
            return f"{type(exc).__name__} (details withheld: they may show the URL)"
        if 200 <= status < 300:
            return None
        if 300 <= status < 400:
            return f"refused the alert: HTTP {status} (redirects are not followed)"
        if 400 <= status < 500 and status not in _RETRY_STATUSES:
            return f"refused the alert: HTTP {status}"
        return f"HTTP {status}"

    async def _post(self, body: bytes) -> int:
        session = self._session
        if session is None:
            session = self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout * 2)
            )
        async with session.post(
            self._url,
            data=body,
            headers={"Content-Type": "application/json"},
            allow_redirects=False,  # a redirect could loop, or carry the body elsewhere
        ) as response:
            await response.read()
            return response.status

    def _scrub(self, text: str) -> str:
        """``text`` without the URL's path or query (where a token may be)."""
        text = text.replace(self._url, self.shown_url)
        tail = self._url.split("://", 1)[-1].partition("/")[2]
        return text.replace(tail, "***") if tail else text

    # -- waiting and stopping ------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every queued body was delivered or dropped."""
        await self._idle.wait()

    async def aclose(self, grace: float = 5.0) -> None:
        """Deliver what is waiting for up to ``grace`` real seconds, then stop.

        Real seconds, as the dispatcher's: closing must end even when the
        injected clock does not move. Idempotent; bodies sent afterwards are
        refused.
        """
        if self._closed:
            return
        self._closed = True
        if self._queue and self._task is not None:
            try:
                await asyncio.wait_for(self._idle.wait(), grace)
            except TimeoutError:
                logger.warning(
                    "webhook %s: %d alert(s) not delivered at close",
                    self.shown_url,
                    len(self._queue),
                )
        await cancel_and_wait(self._task)
        if self._session is not None and self._own_session:
            await self._session.close()

    # -- figures ---------------------------------------------------------------------------------

    def get_statistics(self) -> WebhookStatistics:
        """Counts since creation (the URL shown without its token)."""
        return {
            "url": self.shown_url,
            "queued": self._queued,
            "sent": self._sent,
            "retries": self._retries,
            "failed": self._failed,
            "rejected": self._rejected,
            "dropped": self._dropped,
            "pending": len(self._queue),
            "last_error": self._last_error,
        }

    def __repr__(self) -> str:
        return f"WebhookSender({self.shown_url!r}, pending={len(self._queue)})"


def _default_delays() -> Iterator[float]:
    return backoff(initial=1.0, maximum=60.0, rng=random.Random())
