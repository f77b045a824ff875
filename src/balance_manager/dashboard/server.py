"""The dashboard's web server: one page, a read-only JSON API and a server-push event stream.

:class:`Dashboard` serves a started
:class:`~balance_manager.service.manager.BalanceManager` over HTTP (aiohttp),
using only its public API (``sync_view``, ``get_status``, ``get_statistics``,
``age_of``, ``history``, ``register_callback``; for the portfolio ``prices``,
``portfolio``, ``portfolio_tracker``, ``portfolio_trackers``):

====================================  ==========================================================
``GET /``                             the page (HTML, CSS and JS served from the package)
``GET /api/balances``                 every held asset: exact amounts, source, age, state
``GET /api/status``                   sources, stream, REST and breaker, counters, shared mode,
                                      the alerts firing now
``GET /api/history/{asset}``          the asset's balance history (``?hours=24``), free and held
``GET /api/portfolio``                the balances valued in one quote currency (``?quote=USD``)
``GET /api/portfolio/history``        its value over a window (``?hours=24``), flows vs market
``GET /api/events``                   the newest events (``?limit=200``), as the log shows them
``GET /api/stream``                   Server-Sent Events: ``balance``, ``source``, ``connection``,
                                      ``validation``, ``alert`` (numbered), ``status`` (every
                                      tick), ``reset``
====================================  ==========================================================

Events come from the manager's callbacks (which run off its ingest path) into
an :class:`~balance_manager.dashboard.journal.EventJournal`; a page that
reconnects sends the last event id it saw (``Last-Event-ID``, or
``?last_event_id=``) and is sent every event since, or told to reload
(``reset``) when they are no longer all kept. ``status`` is sent every
``tick_interval`` seconds of the manager's clock and at once when the source or
the stream changes.

In shared mode the dashboard is given a ``shared_status`` provider (see
:mod:`balance_manager.dashboard.shared_status`): it is read once on start and
then on each status tick in the background, bounded by
:data:`SHARED_STATUS_TIMEOUT`, and the status serves its last answer, so a slow
or unreachable Redis never holds up a page or the event loop.

Nothing is written through the API (every route is ``GET``, but the login
form); no key, secret or token ever reaches a response. See
:mod:`balance_manager.dashboard.security` for who may connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from balance_manager.core.alerts.model import Alert
from balance_manager.core.models import BalanceChange
from balance_manager.core.validation.validator import ValidationResult
from balance_manager.dashboard.journal import DEFAULT_CAPACITY, EventJournal, JournalEvent
from balance_manager.dashboard.payloads import (
    FreeSeries,
    SharedStatus,
    alert_event,
    balance_event,
    balances_payload,
    connection_event,
    dumps,
    history_payload,
    shared_unknown_block,
    source_event,
    status_payload,
    validation_event,
)
from balance_manager.dashboard.portfolio import (
    DEFAULT_QUOTE,
    NO_PRICES,
    in_window,
    portfolio_history_payload,
    portfolio_payload,
    portfolio_status,
)
from balance_manager.dashboard.security import COOKIE_NAME, AccessPolicy
from balance_manager.dashboard.shared_status import describe_failure
from balance_manager.exceptions import BalanceManagerError, ConfigError, UnknownAssetError
from balance_manager.service.history import ANALYSIS_HOURS
from balance_manager.service.status import ConnectionState, SourceChanged

if TYPE_CHECKING:
    from balance_manager.service.manager import BalanceManager

__all__ = [
    "DEFAULT_PORT",
    "MAX_QUOTES",
    "SHARED_STATUS_TIMEOUT",
    "STATIC",
    "Dashboard",
    "serve_dashboard",
]

logger = logging.getLogger(__name__)

#: The page, its script and style, and the vendored chart library.
STATIC = Path(__file__).resolve().parent / "static"
#: The port the command line tries first (then any free one).
DEFAULT_PORT = 8765
#: Most history points one request returns (the newest).
MAX_HISTORY_POINTS = 20_000
#: Most quote currencies valued at once: a quote not yet valued beyond these is refused (a
#: read-only API must not grow the manager's state without bound).
MAX_QUOTES = 8
#: Real seconds a reading of the shared-mode block may take before it counts as failed.
SHARED_STATUS_TIMEOUT = 5.0

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_PUBLIC = ("/login", "/static/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, field: str, value: object, message: str) -> web.Response:
    """A JSON error naming the field and value (``{"error": {...}}``)."""
    shown = value if isinstance(value, str | int | float | None) else repr(value)
    if isinstance(shown, str) and len(shown) > 80:
        shown = shown[:77] + "..."
    body = {"error": {"status": status, "field": field, "value": shown, "message": message}}
    return web.Response(status=status, text=dumps(body), content_type="application/json")


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _json(body: Any) -> web.Response:
    return web.Response(
        text=dumps(body), content_type="application/json", headers={"Cache-Control": "no-store"}
    )


class _Client:
    """One open event stream: woken when there is something to send."""

    __slots__ = ("dropped", "request", "wake")

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.wake = asyncio.Event()
        self.dropped = False

    def gone(self) -> bool:
        """Whether the stream was dropped or its connection is closing."""
        transport = self.request.transport
        return self.dropped or transport is None or transport.is_closing()


class Dashboard:
    """A live web dashboard of one manager.

    Args:
        manager: a started manager (the dashboard never starts or closes it).
        host: address to bind; loopback by default. Any other needs ``token``.
        port: port to bind; 0 picks a free one (see :attr:`port` once started).
        token: required from every request when given (see
            :mod:`~balance_manager.dashboard.security`); mandatory beyond loopback.
        tick_interval: seconds of the manager's clock between two ``status`` pushes.
        stall_after: real seconds without a ``status`` push after which the page
            says it is not updating (``None``: ``3 * tick_interval``, at least 5;
            ``0`` turns the page's watchdog off).
        replay_capacity: events kept for pages that reconnect.
        max_clients: most event streams open at once.
        shared_status: reads the status's shared-mode block (a shared-balances
            leader's: leader, epoch, reservations per strategy); ``None``: a
            single process.

    Raises:
        ConfigError: an option is out of range, or ``host`` is not loopback and
            no token was given.

    Example::

        async with Dashboard(manager) as dashboard:
            print("open", dashboard.url)
            await stop.wait()
    """

    def __init__(
        self,
        manager: BalanceManager,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        tick_interval: float = 1.0,
        stall_after: float | None = None,
        replay_capacity: int = DEFAULT_CAPACITY,
        max_clients: int = 32,
        shared_status: SharedStatus | None = None,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65_535:
            raise ConfigError("port", port, "must be an int from 0 to 65535")
        for name, value in (("tick_interval", tick_interval), ("stall_after", stall_after)):
            if value is None and name == "stall_after":
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < (0 if name == "stall_after" else 0.01)
                or value > 86_400
            ):
                raise ConfigError(name, value, "must be seconds from 0.01 to 86400")
        if isinstance(max_clients, bool) or not isinstance(max_clients, int) or max_clients < 1:
            raise ConfigError("max_clients", max_clients, "must be an int >= 1")
        self.manager = manager
        self.policy = AccessPolicy(host, token)
        self.host = host
        self._port = port
        self.tick_interval = float(tick_interval)
        self.stall_after = (
            max(5.0, 3 * self.tick_interval) if stall_after is None else float(stall_after)
        )
        self.max_clients = max_clients
        self.journal = EventJournal(replay_capacity)
        self.journal.on_append(self._wake_all)
        self.free = FreeSeries()
        self._clients: set[_Client] = set()
        self._runner: web.AppRunner | None = None
        self._tick: asyncio.Task[None] | None = None
        self._status_text = ""
        self._status_version = 0
        self._holds_live = False  # as of the last status or connection event
        self._stopping = False
        self.shared_status = shared_status
        self._shared: dict[str, Any] | None = (
            None if shared_status is None else shared_unknown_block("not read yet")
        )
        self._shared_task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen, and follow the manager's events.

        Raises:
            OSError: the address cannot be bound (in use, not an address of this machine).
        """
        if self._runner is not None:
            return
        self._stopping = False
        for balance in self.manager.sync_view().get_all_balances().values():
            self.free.record(balance)
        manager = self.manager
        manager.register_callback("balance_update", self._on_balance)
        manager.register_callback("source_changed", self._on_source)
        manager.register_callback("connection_state", self._on_connection)
        manager.register_callback("validation_failed", self._on_validation)
        manager.register_callback("alert_fired", self._on_alert)
        manager.register_callback("alert_resolved", self._on_alert)
        await self.refresh_shared()
        self._refresh_status()
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            self._unregister()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._tick = asyncio.create_task(self._ticker(), name="dashboard-status-ticker")
        logger.info("dashboard on %s", self.url)

    async def stop(self) -> None:
        """Close every event stream and stop listening. Idempotent."""
        self._stopping = True
        self._unregister()
        self._wake_all()
        for task in (self._tick, self._shared_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tick = self._shared_task = None
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def _unregister(self) -> None:
        manager = self.manager
        manager.unregister_callback("balance_update", self._on_balance)
        manager.unregister_callback("source_changed", self._on_source)
        manager.unregister_callback("connection_state", self._on_connection)
        manager.unregister_callback("validation_failed", self._on_validation)
        manager.unregister_callback("alert_fired", self._on_alert)
        manager.unregister_callback("alert_resolved", self._on_alert)

    async def __aenter__(self) -> Dashboard:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The port served (known once started; 0 before when it was asked for any)."""
        return self._port

    @property
    def url(self) -> str:
        """The page's address (never with the token in it)."""
        host = self.host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}/"

    @property
    def clients(self) -> int:
        """Event streams open now."""
        return len(self._clients)

    def drop_clients(self) -> int:
        """Close every open event stream (pages reconnect and resume); returns how many."""
        dropped = 0
        for client in list(self._clients):
            transport = client.request.transport
            if transport is not None:
                transport.close()
                dropped += 1
            client.dropped = True
            client.wake.set()
        return dropped

    # -- events from the manager ------------------------------------------------------------

    def _now(self) -> float:
        return self.manager.clock.time()

    def _on_balance(self, change: BalanceChange) -> None:
        self.free.record(change.new)
        event = balance_event(self.manager, change, now=self._now(), holds_live=self._holds_live)
        self.journal.append("balance", event)

    def _on_source(self, payload: SourceChanged) -> None:
        self.journal.append("source", source_event(payload, now=self._now()))
        self._refresh_status()

    def _on_connection(self, payload: ConnectionState) -> None:
        self._holds_live = bool(payload.get("holds_live"))
        self.journal.append("connection", connection_event(payload, now=self._now()))
        self._refresh_status()

    def _on_validation(self, result: ValidationResult) -> None:
        self.journal.append("validation", validation_event(result, now=self._now()))

    def _on_alert(self, alert: Alert) -> None:
        self.journal.append("alert", alert_event(alert, now=self._now()))
        self._refresh_status()

    def _is_stopping(self) -> bool:
        return self._stopping

    def _wake_all(self) -> None:
        for client in self._clients:
            client.wake.set()

    def _dashboard_info(self) -> dict[str, Any]:
        return {
            "run": self.journal.run,
            "event_id": self.journal.last_id,
            "tick_interval": self.tick_interval,
            "stall_after": self.stall_after,
            "clients": len(self._clients),
            "token_required": self.policy.needs_token,
            "replay_capacity": self.journal.capacity,
        }

    def status(self) -> dict[str, Any]:
        """What ``/api/status`` returns now."""
        status = status_payload(
            self.manager, now=self._now(), dashboard=self._dashboard_info(), shared=self._shared
        )
        status["portfolio"] = portfolio_status(self.manager)
        return status

    async def refresh_shared(self) -> None:
        """Read the shared-mode block now (what each status tick starts in the background).

        A reading that fails or takes longer than :data:`SHARED_STATUS_TIMEOUT`
        leaves a block that says so, with nothing in it shown as current.
        """
        provider = self.shared_status
        if provider is None:
            return
        try:
            block = dict(await asyncio.wait_for(provider(), SHARED_STATUS_TIMEOUT))
        except TimeoutError:
            block = shared_unknown_block(
                f"the shared status did not answer within {SHARED_STATUS_TIMEOUT:g} s"
            )
        except Exception as exc:  # never let the shared state take the dashboard down
            logger.exception("dashboard: reading the shared status failed")
            block = shared_unknown_block(f"the shared status failed: {describe_failure(exc)}")
        before, self._shared = self._shared, block
        if _news(before, block) and self._runner is not None and not self._stopping:
            try:
                self._refresh_status()
            except Exception:  # as on a tick: a status that cannot be built ends nothing
                logger.exception("dashboard: building the status failed")

    def _start_shared_refresh(self) -> None:
        if self.shared_status is None or self._stopping:
            return
        if self._shared_task is None or self._shared_task.done():
            self._shared_task = asyncio.create_task(
                self.refresh_shared(), name="dashboard-shared-status"
            )

    def _refresh_status(self) -> None:
        status = self.status()
        self._holds_live = bool(status["websocket"]["holds_live"])
        self._status_text = dumps(status)
        self._status_version += 1
        self._wake_all()

    async def _ticker(self) -> None:
        clock = self.manager.clock
        while not self._stopping:
            await clock.sleep(self.tick_interval)
            self._start_shared_refresh()  # in the background: pushed when it changes
            try:
                self._refresh_status()
            except Exception:  # a status that cannot be built must not end the pushes
                logger.exception("dashboard: building the status failed")

    # -- the app ----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """The aiohttp application (routes and middlewares), for embedding or tests."""
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/login", self._login_page)
        app.router.add_post("/login", self._login)
        app.router.add_get("/api/balances", self._balances)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/history/{asset}", self._history)
        app.router.add_get("/api/portfolio", self._portfolio)
        app.router.add_get("/api/portfolio/history", self._portfolio_history)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/stream", self._stream)
        app.router.add_static("/static/", STATIC, follow_symlinks=False)
        app.on_shutdown.append(self._close_streams)
        return app

    async def _close_streams(self, app: web.Application) -> None:
        self._stopping = True
        self._wake_all()

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Host check, token check, and the security headers on every response."""
        if not self.policy.host_allowed(request.headers.get("Host")):
            response: web.StreamResponse = _error(
                421,
                "Host",
                request.headers.get("Host"),
                "this dashboard answers loopback names only",
            )
        elif not request.path.startswith(_PUBLIC) and not self.policy.authorized(
            request.headers.get("Authorization"), request.cookies.get(COOKIE_NAME)
        ):
            if request.path.startswith("/api/"):
                response = _error(401, "token", None, "a token is required (Authorization: Bearer)")
            else:
                response = _redirect("/login")
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                field = "method" if exc.status == 405 else "path"
                value = request.method if exc.status == 405 else request.path
                response = _error(exc.status, field, value, exc.reason)
                if exc.status == 405 and "Allow" in exc.headers:
                    response.headers["Allow"] = exc.headers["Allow"]
        if not response.prepared:
            response.headers.update(_HEADERS)
        return response

    # -- pages ------------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "login.html", headers={"Cache-Control": "no-cache"})

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if not self.policy.needs_token:
            return _redirect("/")
        form = await request.post()
        token = form.get("token")
        if not isinstance(token, str) or not self.policy.check_token(token):
            return _redirect("/login?failed=1")
        response = _redirect("/")
        response.set_cookie(
            COOKIE_NAME,
            self.policy.session_cookie,
            httponly=True,
            samesite="Strict",
            path="/",
        )
        return response

    # -- the API ----------------------------------------------------------------------------

    async def _balances(self, request: web.Request) -> web.StreamResponse:
        return _json(balances_payload(self.manager, event_id=self.journal.last_id, now=self._now()))

    async def _status(self, request: web.Request) -> web.StreamResponse:
        return _json(self.status())

    async def _history(self, request: web.Request) -> web.StreamResponse:
        raw = request.match_info["asset"]
        try:
            asset = self.manager.canonical(raw)
        except UnknownAssetError as exc:
            return _error(400, "asset", raw, str(exc))
        window = _history_window(request)
        if isinstance(window, web.Response):
            return window
        hours, limit = window
        return _json(
            history_payload(
                self.manager, asset, hours=hours, now=self._now(), limit=limit, free=self.free
            )
        )

    def _quote(self, request: web.Request) -> str | web.Response:
        """The ``quote`` asked for (canonical), or the error to answer."""
        if self.manager.prices is None:
            return _error(409, "prices", None, NO_PRICES)
        raw = request.query.get("quote", DEFAULT_QUOTE)
        try:
            quote = self.manager.canonical(raw)
        except UnknownAssetError as exc:
            return _error(400, "quote", raw, str(exc))
        trackers = self.manager.portfolio_trackers
        if quote not in trackers and len(trackers) >= MAX_QUOTES:
            return _error(
                400, "quote", raw, f"at most {MAX_QUOTES} quote currencies are valued at once"
            )
        return quote

    async def _portfolio(self, request: web.Request) -> web.StreamResponse:
        quote = self._quote(request)
        if isinstance(quote, web.Response):
            return quote
        try:
            portfolio = await self.manager.portfolio(quote)
        except UnknownAssetError as exc:
            return _error(400, "quote", request.query.get("quote", DEFAULT_QUOTE), str(exc))
        except BalanceManagerError as exc:  # prices could not be read: say so, never a zero
            return _error(503, "prices", None, f"the portfolio could not be valued: {exc}")
        return _json(
            portfolio_payload(
                portfolio, decimals=self.manager.names.display_decimals, now=self._now()
            )
        )

    async def _portfolio_history(self, request: web.Request) -> web.StreamResponse:
        quote = self._quote(request)
        if isinstance(quote, web.Response):
            return quote
        window = _history_window(request)
        if isinstance(window, web.Response):
            return window
        hours, limit = window
        try:
            tracker = await self.manager.portfolio_tracker(quote)
        except UnknownAssetError as exc:
            return _error(400, "quote", request.query.get("quote", DEFAULT_QUOTE), str(exc))
        except BalanceManagerError as exc:
            return _error(503, "prices", None, f"the portfolio could not be valued: {exc}")
        now = self._now()
        since = now - hours * 3600.0
        return _json(
            portfolio_history_payload(
                in_window(tracker.value_history(), since),
                tracker.flows(since),
                tracker.change_over(hours * 3600.0),
                quote=quote,
                hours=hours,
                now=now,
                limit=limit,
            )
        )

    async def _events(self, request: web.Request) -> web.StreamResponse:
        try:
            limit = _limit(request.query.get("limit"), self.journal.capacity, default=200)
        except ValueError as exc:
            return _error(400, "limit", request.query.get("limit"), str(exc))
        return _json(
            {
                "event_id": self.journal.last_id,
                "events": [_event_json(e) for e in self.journal.recent(limit)],
            }
        )

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if self._stopping:
            return _error(503, "stream", None, "the dashboard is stopping")
        if len(self._clients) >= self.max_clients:
            return _error(
                503, "stream", len(self._clients), f"at most {self.max_clients} streams at once"
            )
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
                **_HEADERS,
            }
        )
        await response.prepare(request)
        client = _Client(request)
        self._clients.add(client)
        last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        try:
            await response.write(b"retry: 1000\n\n")
            replay = self.journal.after(last)
            if replay.reset:
                sent = self.journal.last_number
                await response.write(_reset_frame(self.journal, replay.reason))
            else:
                sent = self.journal.parse(last) or 0
                for event in replay.events:
                    await response.write(_frame(event))
                    sent = event.number
            version = self._status_version
            await response.write(_status_frame(self._status_text))
            while not self._stopping:
                await client.wake.wait()
                client.wake.clear()
                if self._is_stopping() or client.gone():  # methods: no stale narrowing
                    break
                replay = self.journal.since(sent)
                if replay.reset:  # this page fell behind the buffer: it must reload
                    sent = self.journal.last_number
                    await response.write(_reset_frame(self.journal, replay.reason))
                for event in replay.events:
                    await response.write(_frame(event))
                    sent = event.number
                if self._status_version != version:
                    version = self._status_version
                    await response.write(_status_frame(self._status_text))
        except (ConnectionError, asyncio.CancelledError):
            pass  # the page went away (or the server is stopping): nothing to finish
        finally:
            self._clients.discard(client)
        return response

    def __repr__(self) -> str:
        state = "serving" if self._runner is not None else "stopped"
        return f"Dashboard({state}, url={self.url!r}, clients={len(self._clients)})"


def _news(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    """Whether a new shared block says more than when it was read."""
    if before is None:
        return True
    moment = "reservations_listed_at"
    return {k: v for k, v in before.items() if k != moment} != {
        k: v for k, v in after.items() if k != moment
    }


def _history_window(request: web.Request) -> tuple[float, int] | web.Response:
    """``hours`` (default 24) and ``limit`` of a history route, or the 400 naming the bad one."""
    text = request.query.get("hours", "24")
    try:
        hours = float(ANALYSIS_HOURS.check("hours", float(text)))
    except (ValueError, ConfigError):
        return _error(
            400,
            "hours",
            text,
            f"must be hours from {ANALYSIS_HOURS.minimum:g} to {ANALYSIS_HOURS.maximum:g}",
        )
    try:
        limit = _limit(request.query.get("limit"), MAX_HISTORY_POINTS)
    except ValueError as exc:
        return _error(400, "limit", request.query.get("limit"), str(exc))
    return hours, limit


def _limit(text: str | None, maximum: int, *, default: int | None = None) -> int:
    if text is None:
        return maximum if default is None else min(default, maximum)
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise ValueError(f"must be a whole number from 1 to {maximum}")
    return int(text)


def _event_json(event: JournalEvent) -> dict[str, Any]:
    return {"id": event.id, "number": event.number, "type": event.kind, **event.data}


def _frame(event: JournalEvent) -> bytes:
    """One numbered Server-Sent Event."""
    return f"id: {event.id}\nevent: {event.kind}\ndata: {dumps(_event_json(event))}\n\n".encode()


def _status_frame(text: str) -> bytes:
    return f"event: status\ndata: {text}\n\n".encode()


def _reset_frame(journal: EventJournal, reason: str) -> bytes:
    body = dumps({"event_id": journal.last_id, "number": journal.last_number, "reason": reason})
    return f"id: {journal.last_id}\nevent: reset\ndata: {body}\n\n".encode()


async def serve_dashboard(manager: BalanceManager, **options: Any) -> Dashboard:
    """Start a :class:`Dashboard` of ``manager`` (options as for :class:`Dashboard`).

    Stop it with ``await dashboard.stop()`` before closing the manager.

    Raises:
        ConfigError: a bad option (see :class:`Dashboard`).
        OSError: the address cannot be bound.
    """
    dashboard = Dashboard(manager, **options)
    await dashboard.start()
    return dashboard
