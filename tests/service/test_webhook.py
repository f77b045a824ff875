"""WebhookSender against a local aiohttp receiver on a real loopback socket, on a manual clock."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from balance_manager.core.alerts.model import Alert
from balance_manager.core.validation.rules import Severity
from balance_manager.exceptions import ConfigError
from balance_manager.service.webhook import WebhookSender
from balance_manager.testing import ManualClock, drive, wait_until

pytestmark = [pytest.mark.network, pytest.mark.asyncio]

TOKEN = "T0-B0-sekrit-token"


class Receiver:
    """A webhook receiver on 127.0.0.1: records bodies, answers what the test says."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answers to give, in order; then 200
        self.hang = asyncio.Event()  # while clear and ``hanging``, requests never answer
        self.hanging = False
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        assert request.headers["Content-Type"] == "application/json"
        self.bodies.append(json.loads(await request.read()))
        if self.hanging:
            await self.hang.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok")


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver listening on a free loopback port, its URL holding a token."""
    got = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/{token}", got.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # a started TCP site
    got.url = f"http://127.0.0.1:{port}/hooks/{TOKEN}"
    yield got
    got.hang.set()
    await runner.cleanup()


def alert() -> dict[str, Any]:
    """A fired alert's JSON body, with amounts."""
    fired = Alert(
        "low_balance",
        Severity.WARNING,
        "USD",
        "USD free 99.99 is below 100",
        1_700_000_000.0,
        details={"free": Decimal("99.9900"), "threshold": Decimal("100")},
    )
    return {"event": "alert_fired", "alert": fired.as_json()}


def fixed_delays(*values: float) -> Callable[[], Any]:
    return lambda: iter(values)


async def settle(clock: ManualClock, sender: WebhookSender, seconds: float = 30.0) -> None:
    """Drive the clock until the sender has nothing left to do."""
    await drive(clock, seconds, step=0.5, until=lambda: sender.get_statistics()["pending"] == 0)


async def closing(sender: WebhookSender, body: Callable[[], Awaitable[None]]) -> None:
    try:
        await body()
    finally:
        await sender.aclose(grace=0.01)


async def test_posts_json_with_exact_decimal_strings(
    receiver: Receiver, clock: ManualClock
) -> None:
    """The body arrives as JSON: amounts as the exact strings held, never floats."""
    sender = WebhookSender(receiver.url, clock=clock)

    async def body() -> None:
        assert sender.send(alert()) is True
        await wait_until(lambda: sender.get_statistics()["sent"] == 1)
        (got,) = receiver.bodies
        assert got["event"] == "alert_fired"
        assert got["alert"]["details"] == {"free": "99.9900", "threshold": "100"}
        assert got["alert"]["severity"] == "warning"
        assert got["alert"]["active"] is True
        assert got["alert"]["resolved_at"] is None

    await closing(sender, body)


async def test_a_failing_receiver_is_retried_until_it_recovers(
    receiver: Receiver, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """HTTP 500, 503 then 200: retried after each backoff delay, delivered once, in order."""
    receiver.statuses = [500, 503]
    sender = WebhookSender(receiver.url, clock=clock, delays=fixed_delays(2.0, 4.0, 8.0))

    async def body() -> None:
        with caplog.at_level(logging.DEBUG, logger="balance_manager.service.webhook"):
            sender.send(alert())
            sender.send({"event": "second"})
            await wait_until(lambda: len(receiver.bodies) == 1)
            await drive(clock, 1.5, step=0.5)
            assert len(receiver.bodies) == 1  # waiting its 2 s delay
            await settle(clock, sender)
        stats = sender.get_statistics()
        assert stats["sent"] == 2
        assert stats["retries"] == 2
        assert stats["failed"] == 0
        assert [b["event"] for b in receiver.bodies] == ["alert_fired"] * 3 + ["second"]
        assert TOKEN not in caplog.text
        assert "http://127.0.0.1" in caplog.text

    await closing(sender, body)


async def test_a_hanging_receiver_times_out_and_never_blocks_the_caller(
    receiver: Receiver, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """No answer: each POST times out on the clock, the alert is dropped after its attempts;
    meanwhile send() returns at once and the queue stays bounded."""
    receiver.hanging = True
    sender = WebhookSender(
        receiver.url,
        clock=clock,
        timeout=1.0,
        attempts=3,
        max_queue=4,
        delays=fixed_delays(1.0, 1.0),
    )

    async def body() -> None:
        with caplog.at_level(logging.INFO, logger="balance_manager.service.webhook"):
            for number in range(10):
                assert sender.send({"event": "alert_fired", "n": number}) is True
            assert sender.get_statistics()["pending"] == 4
            assert sender.get_statistics()["dropped"] == 6
            await wait_until(lambda: len(receiver.bodies) == 1)
            await drive(clock, 6.0, step=0.25, until=lambda: sender.get_statistics()["failed"] == 1)
        stats = sender.get_statistics()
        assert stats["failed"] == 1
        assert stats["retries"] == 2
        assert [b["n"] for b in receiver.bodies] == [0, 0, 0, 7]  # the oldest waiting ones dropped
        assert stats["last_error"] == "no answer within 1 s"
        assert TOKEN not in caplog.text
        assert "failed 3 time(s)" in caplog.text

    await closing(sender, body)


async def test_a_refusal_is_not_retried(receiver: Receiver, clock: ManualClock) -> None:
    """HTTP 400 means the body itself is refused: dropped at once, the next one goes on."""
    receiver.statuses = [400]
    sender = WebhookSender(receiver.url, clock=clock, delays=fixed_delays(1.0))

    async def body() -> None:
        sender.send({"event": "first"})
        sender.send({"event": "second"})
        await wait_until(lambda: sender.get_statistics()["sent"] == 1)
        stats = sender.get_statistics()
        assert stats["rejected"] == 1
        assert stats["retries"] == 0
        assert [b["event"] for b in receiver.bodies] == ["first", "second"]

    await closing(sender, body)


async def test_rate_limited_answers_are_retried(receiver: Receiver, clock: ManualClock) -> None:
    """HTTP 429 is the receiver being busy: retried like a 5xx."""
    receiver.statuses = [429]
    sender = WebhookSender(receiver.url, clock=clock, delays=fixed_delays(1.0))

    async def body() -> None:
        sender.send({"event": "first"})
        await wait_until(lambda: len(receiver.bodies) == 1)
        await settle(clock, sender)
        assert sender.get_statistics()["sent"] == 1
        assert len(receiver.bodies) == 2

    await closing(sender, body)


async def test_nobody_listening_is_retried_then_dropped(clock: ManualClock) -> None:
    """A refused connection is a network error: retried, then counted as failed."""
    sender = WebhookSender(
        f"http://127.0.0.1:9/hooks/{TOKEN}", clock=clock, attempts=2, delays=fixed_delays(1.0)
    )

    async def body() -> None:
        sender.send({"event": "x"})
        await drive(clock, 5.0, step=0.25, until=lambda: sender.get_statistics()["failed"] == 1)
        stats = sender.get_statistics()
        assert stats["failed"] == 1
        assert stats["last_error"] is not None
        assert TOKEN not in stats["last_error"]

    await closing(sender, body)


async def test_close_delivers_what_waits_then_refuses(
    receiver: Receiver, clock: ManualClock
) -> None:
    """aclose() lets the queue drain; a body sent after it is refused."""
    sender = WebhookSender(receiver.url, clock=clock)
    for number in range(3):
        sender.send({"event": "x", "n": number})
    await sender.aclose(grace=5.0)
    assert [b["n"] for b in receiver.bodies] == [0, 1, 2]
    assert sender.send({"event": "late"}) is False
    await sender.aclose()  # idempotent


async def test_repr_and_statistics_never_show_the_token() -> None:
    """The URL's path may be a token: only scheme and host are shown."""
    sender = WebhookSender(f"https://hooks.example.com/services/{TOKEN}")
    assert TOKEN not in repr(sender)
    assert sender.get_statistics()["url"] == "https://hooks.example.com/***"


async def test_bounds_are_checked() -> None:
    """attempts, max_queue and timeout out of range are ConfigErrors naming them."""
    for kwargs in ({"attempts": 0}, {"max_queue": 0}, {"timeout": 0}):
        with pytest.raises(ConfigError, match=next(iter(kwargs))):
            WebhookSender("http://127.0.0.1/x", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path", ["/services/T0/B0/" + "S3CRETTOKEN" * 20, "/hook/tok%7ES3CRET"], ids=["long", "encoded"]
)
async def test_an_error_naming_the_url_never_shows_its_token(
    path: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver that redirects (here, to itself) makes aiohttp raise with the whole URL in
    the message; a long URL was cut before masking and a re-encoded one escaped the mask."""

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(location=str(request.rel_url))

    app = web.Application()
    app.router.add_post("/{tail:.*}", redirect)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # a started site
    sender = WebhookSender(f"http://127.0.0.1:{port}{path}", clock=clock, attempts=1)
    try:
        with caplog.at_level(logging.DEBUG):
            sender.send({"event": "x"})
            await wait_until(lambda: sender.get_statistics()["last_error"] is not None)
        assert "S3CRET" not in str(sender.get_statistics())
        ours = [r.getMessage() for r in caplog.records if r.name.startswith("balance_manager")]
        assert ours  # the failure was logged...
        assert not [line for line in ours if "S3CRET" in line]  # ...without the token
    finally:
        await sender.aclose(0.1)
        await runner.cleanup()
