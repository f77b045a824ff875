"""Shared helpers of the benchmarks: repeats, alternation, medians, spreads, printing.

The machine the figures come from is shared and noisy, so every benchmark here
follows the same discipline (issue 6):

* a figure is the **median of several repeats**, printed with its **spread**
  (the smallest and largest repeat, and the spread as a percentage of the median);
* a figure and its reference (the "floor" it is compared with) are measured
  **in the same process, alternating**: round 1 runs A then B, round 2 runs B
  then A, and so on, so a slow minute of the machine hits both alike;
* a ratio is computed **per round** (the A and B of one round are neighbours in
  time) and its median and spread are printed, rather than the ratio of two
  medians taken at different moments.

Every script prints the command that produced its figures first
(:func:`print_header`), then one line per figure (:func:`report`), with the
target and whether it was met. Targets are printed, never asserted.

This module also builds the realistic Kraken WebSocket v2 ``balances`` frames
and REST ``BalanceEx`` bodies the benchmarks feed (:func:`update_frames`,
:func:`snapshot_frames`, :func:`balance_ex_bodies`): distinct, continuity-exact
(``previous + amount - fee == balance``; docs/kraken.md, 'Balances updates'),
JSON numbers at full precision as the server sends them (docs/kraken.md,
'Numbers'), 30 assets with their ledger decimals.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import os
import platform
import random
import statistics
import string
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from balance_manager.config import BalanceManagerConfig
from balance_manager.kraken.protocol import ws_messages as wsm
from balance_manager.kraken.protocol.assets import AssetInfo, AssetNames
from balance_manager.kraken.protocol.rest import encode_envelope
from balance_manager.kraken.protocol.timefmt import format_rfc3339
from balance_manager.kraken.protocol.ws_session import SessionState
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.kraken.ws_client import KrakenWebSocketClient
from balance_manager.runtime.clock import Clock, SystemClock
from balance_manager.service.manager import BalanceManager

__all__ = [
    "ASSETS",
    "BENCH_SECRET",
    "T0",
    "Stats",
    "alternate",
    "alternate_async",
    "asset_names",
    "balance_ex_bodies",
    "bench_config",
    "feed_like_the_client",
    "fmt_bytes",
    "fmt_seconds",
    "print_header",
    "ratio_stats",
    "report",
    "rss_bytes",
    "snapshot_frames",
    "stats_of",
    "streaming_manager",
    "update_frames",
]

#: A dummy API secret of the shape the client checks (base64 of 64 bytes), never sent anywhere.
BENCH_SECRET = base64.b64encode(b"bench-secret-".ljust(64, b".")).decode()

#: Wall-clock start of the generated streams (2023-11-14, Unix seconds).
T0 = 1_700_000_000.0

#: The 30 assets of the generated account: v2 name → (REST key, altname, ledger decimals).
#: The first 23 are the library's built-in table (``kraken.assets.DEFAULT_ASSETS``);
#: the others are typical unprefixed assets with their usual decimals.
ASSETS: dict[str, tuple[str, str, int]] = {
    "BTC": ("XXBT", "XBT", 10),
    "ETH": ("XETH", "ETH", 10),
    "LTC": ("XLTC", "LTC", 10),
    "ETC": ("XETC", "ETC", 10),
    "MLN": ("XMLN", "MLN", 10),
    "REP": ("XREP", "REP", 10),
    "DOGE": ("XXDG", "XDG", 8),
    "XLM": ("XXLM", "XLM", 8),
    "XMR": ("XXMR", "XMR", 10),
    "XRP": ("XXRP", "XRP", 8),
    "ZEC": ("XZEC", "ZEC", 10),
    "USD": ("ZUSD", "USD", 4),
    "EUR": ("ZEUR", "EUR", 4),
    "GBP": ("ZGBP", "GBP", 4),
    "CAD": ("ZCAD", "CAD", 4),
    "JPY": ("ZJPY", "JPY", 2),
    "USDT": ("USDT", "USDT", 8),
    "USDC": ("USDC", "USDC", 8),
    "DAI": ("DAI", "DAI", 10),
    "DOT": ("DOT", "DOT", 10),
    "SOL": ("SOL", "SOL", 10),
    "ADA": ("ADA", "ADA", 8),
    "MATIC": ("MATIC", "MATIC", 10),
    "ATOM": ("ATOM", "ATOM", 8),
    "LINK": ("LINK", "LINK", 10),
    "AVAX": ("AVAX", "AVAX", 10),
    "UNI": ("UNI", "UNI", 10),
    "TRX": ("TRX", "TRX", 6),
    "XTZ": ("XTZ", "XTZ", 8),
    "ALGO": ("ALGO", "ALGO", 8),
}

_ID_ALPHABET = string.ascii_uppercase + string.digits
_LEDGER_TYPES = ("trade", "trade", "trade", "trade", "deposit", "withdrawal", "staking")
#: The ledger ``category`` Kraken pairs with each ``type``.
_CATEGORIES = {
    "trade": "trade",
    "deposit": "deposit",
    "withdrawal": "withdrawal",
    "staking": "staking-rewards",
}
_NO_FEE = Decimal("0.0")  # Kraken writes a zero fee as 0.0 (its example messages)


def asset_names() -> AssetNames:
    """The library's asset table with all 30 benchmark assets and their decimals.

    A manager learns these from REST ``Assets`` at start-up; the benchmarks add
    them directly so no network call is needed.
    """
    names = AssetNames()
    for name, (rest_key, altname, decimals) in ASSETS.items():
        names.add(AssetInfo(name=name, rest_key=rest_key, altname=altname, decimals=decimals))
    return names


# ---------------------------------------------------------------------------
# Realistic wire data
# ---------------------------------------------------------------------------


def _kraken_id(rng: random.Random) -> str:
    """An id shaped like Kraken's ledger and trade ids: ``ADKKFF-WEA5A-CNUBHG``."""
    choice = rng.choice
    return (
        "".join([choice(_ID_ALPHABET) for _ in range(6)])
        + "-"
        + "".join([choice(_ID_ALPHABET) for _ in range(5)])
        + "-"
        + "".join([choice(_ID_ALPHABET) for _ in range(6)])
    )


def _start_balances(rng: random.Random, assets: Sequence[str]) -> dict[str, Decimal]:
    balances = {}
    for name in assets:
        places = ASSETS[name][2] if name in ASSETS else 8
        whole = rng.randint(10, 100_000)
        balances[name] = Decimal(whole) + Decimal(rng.randint(0, 10**places - 1)).scaleb(-places)
    return balances


def _step(rng: random.Random, level: Decimal, places: int) -> tuple[str, Decimal, Decimal]:
    """One ledger event on a balance: (type, amount, fee), never going below zero."""
    kind = rng.choice(_LEDGER_TYPES)
    quantum = Decimal(1).scaleb(-places)
    size = Decimal(rng.randint(1, 10**places)).scaleb(-places) * rng.randint(1, 50)
    fee = _NO_FEE
    if kind == "trade":
        fee = (size * Decimal("0.0026")).quantize(quantum)
        sign = rng.choice((1, -1))
        if sign < 0 and level - size - fee < 0:
            sign = 1
        return kind, size * sign, fee
    if kind == "withdrawal" and level - size > 0:
        return kind, -size, fee
    return kind if kind != "withdrawal" else "deposit", size, fee


def update_frames(
    count: int,
    *,
    assets: Sequence[str] | None = None,
    seed: int = 6,
    start_sequence: int = 2,
    start_balances: dict[str, Decimal] | None = None,
    interval: float = 0.01,
) -> list[bytes]:
    """``count`` distinct ``balances`` update frames, as Kraken's server sends them.

    One ledger entry per frame (a trade's two legs come as two messages),
    assets in random order, ``sequence`` increasing by one, Kraken-shaped ids,
    RFC 3339 timestamps at µs, amounts at the asset's ledger decimals with a
    0.26 % fee on trades, and ``balance`` exactly
    ``previous + amount - fee`` so the session's continuity check passes.

    Args:
        count: how many frames.
        assets: asset names (default: the 30 of :data:`ASSETS`).
        seed: randomness of the stream.
        start_sequence: the first update's sequence (a snapshot took the one before).
        start_balances: balances before the first frame (default: drawn from ``seed``,
            the same as :func:`snapshot_frames` with that seed).
        interval: seconds between two entries' timestamps.
    """
    rng = random.Random(seed)
    names = list(assets or ASSETS)
    level = dict(start_balances or _start_balances(random.Random(seed), names))
    frames = []
    for i in range(count):
        asset = rng.choice(names)
        places = ASSETS[asset][2] if asset in ASSETS else 8
        kind, amount, fee = _step(rng, level[asset], places)
        level[asset] = level[asset] + amount - fee
        entry = wsm.LedgerEntry(
            ledger_id=_kraken_id(rng),
            ref_id=_kraken_id(rng),
            timestamp=format_rfc3339(T0 + i * interval),
            type=kind,
            asset=asset,
            asset_class="currency",
            category=_CATEGORIES[kind],
            wallet_type="spot",
            wallet_id="main",
            amount=amount,
            fee=fee,
            balance=level[asset],
        )
        frames.append(wsm.encode_balances_update([entry], start_sequence + i))
    return frames


def snapshot_frames(
    count: int, *, assets: Sequence[str] | None = None, seed: int = 6
) -> list[bytes]:
    """``count`` distinct 30-asset ``balances`` snapshot frames, sequence 1.

    The first one holds the balances :func:`update_frames` starts from (same
    ``seed``); each following one moves every balance a little, so applying
    them one after another changes every asset every time.
    """
    names = list(assets or ASSETS)
    rng = random.Random(seed + 1000)
    level = _start_balances(random.Random(seed), names)
    frames = []
    for _ in range(count):
        items = [
            wsm.AssetBalance(
                asset=name,
                asset_class="currency",
                balance=level[name],
                wallets=(wsm.WalletBalance(type="spot", id="main", balance=level[name]),),
            )
            for name in names
        ]
        frames.append(wsm.encode_balances_snapshot(items, 1))
        for name in names:
            places = ASSETS[name][2] if name in ASSETS else 8
            level[name] += Decimal(rng.randint(1, 10**places)).scaleb(-places)
    return frames


def balance_ex_bodies(count: int, *, seed: int = 6) -> list[bytes]:
    """``count`` distinct REST ``BalanceEx`` response bodies for the 30 assets.

    As Kraken answers: the ``error``/``result`` envelope, legacy REST keys
    (``XXBT``, ``ZUSD``), amounts as strings at each asset's ledger decimals,
    a ``hold_trade`` on one asset in three. Each body moves every balance, so
    applying them one after another changes every asset every time.
    """
    rng = random.Random(seed + 2000)
    level = _start_balances(random.Random(seed), list(ASSETS))
    bodies = []
    for _ in range(count):
        result = {}
        for i, (name, (rest_key, _altname, places)) in enumerate(ASSETS.items()):
            quantum = Decimal(1).scaleb(-places)
            value = level[name].quantize(quantum)
            hold = (value / 3).quantize(quantum) if i % 3 == 0 else Decimal(0).quantize(quantum)
            result[rest_key] = {"balance": f"{value:f}", "hold_trade": f"{hold:f}"}
            level[name] += Decimal(rng.randint(1, 10**places)).scaleb(-places)
        bodies.append(encode_envelope(result))
    return bodies


# ---------------------------------------------------------------------------
# A manager on an in-process stream
# ---------------------------------------------------------------------------

#: An empty ``executions`` snapshot: from it on, holds are live (as in production,
#: where ``subscribe_executions`` is on by default).
EMPTY_EXECUTIONS_SNAPSHOT = b'{"channel":"executions","type":"snapshot","data":[],"sequence":1}'


def bench_config(**options: object) -> BalanceManagerConfig:
    """The default configuration (every validation rule on), history kept in memory only.

    ``history_db_path=None``: the SQLite store is written in batches off the
    event loop in production; the benchmarks measure the in-memory path.
    """
    settings: dict[str, object] = {"history_db_path": None}
    settings.update(options)
    return BalanceManagerConfig(**settings)  # type: ignore[arg-type]  # options as given


async def streaming_manager(
    config: BalanceManagerConfig | None = None,
    *,
    snapshot: bytes | None = None,
    clock: Clock | None = None,
    names: AssetNames | None = None,
) -> tuple[BalanceManager, KrakenWebSocketClient]:
    """A manager whose WebSocket client is fed frames in-process, already streaming.

    The client's session is walked through what a connection does (opened,
    token, subscribe frames taken, a balances snapshot and an empty executions
    snapshot received) and the manager's sink is registered as the client's,
    as :meth:`KrakenWebSocketClient.start` would (a private-attribute poke:
    ``start`` would also open a socket). No network is used; the REST client
    is never called. Feed frames with :func:`feed_like_the_client`.
    """
    config = config or bench_config()
    clock = clock or SystemClock()
    rest = KrakenRestClient(
        api_key="bench-key",
        api_secret=BENCH_SECRET,
        base_url="http://127.0.0.1:9",
        config=config,
        clock=clock,
        names=names or asset_names(),
    )
    client = KrakenWebSocketClient(rest, url="ws://127.0.0.1:9/v2", config=config, clock=clock)
    manager = BalanceManager(websocket_client=client, rest_client=rest, config=config, clock=clock)
    client._sink = manager._on_stream_event
    session = client.session
    session.connection_opened()
    session.token_received("bench-token")
    session.data_to_send()
    first = snapshot if snapshot is not None else snapshot_frames(1)[0]
    await feed_like_the_client(client, [first, EMPTY_EXECUTIONS_SNAPSHOT])
    if session.state is not SessionState.STREAMING:
        raise RuntimeError(f"the session did not reach STREAMING: {session.state}")
    return manager, client


async def feed_like_the_client(client: KrakenWebSocketClient, frames: Sequence[bytes]) -> None:
    """Do for each frame what the client's read loop does after a socket read.

    ``KrakenWebSocketClient._receive`` is the body of the read loop (count the
    frame, note its time, ``session.feed`` it, hand the events to the sink);
    the loop then flushes what the session wants to send, only when it has
    something (never, on the hot path: a resync here is an error).
    """
    session = client.session
    receive = client._receive
    closed = SessionState.CLOSED
    for frame in frames:
        receive(frame)
        if session.state is closed:
            raise RuntimeError("the session closed while feeding frames")
        if session.has_data_to_send:
            raise RuntimeError("the session wants to send (a resync?) while feeding frames")


# ---------------------------------------------------------------------------
# Repeats, alternation, statistics
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """Median and spread of repeated measurements of one figure.

    Attributes:
        median: the median of the samples.
        low: the smallest sample.
        high: the largest sample.
        samples: every sample, in measurement order.
    """

    median: float
    low: float
    high: float
    samples: tuple[float, ...]

    @property
    def spread_percent(self) -> float:
        """``(high - low) / median`` in percent (0 for a single sample)."""
        return 0.0 if not self.median else (self.high - self.low) / abs(self.median) * 100

    def describe(self, fmt: Callable[[float], str]) -> str:
        """``"<median> (<low>..<high>, spread ±x %, n=k)"`` with ``fmt`` for the values."""
        return (
            f"{fmt(self.median)} ({fmt(self.low)} .. {fmt(self.high)}, "
            f"spread {self.spread_percent:.0f} %, n={len(self.samples)})"
        )


def stats_of(samples: Sequence[float]) -> Stats:
    """The :class:`Stats` of ``samples`` (at least one)."""
    values = tuple(samples)
    return Stats(statistics.median(values), min(values), max(values), values)


def ratio_stats(numerators: Sequence[float], denominators: Sequence[float]) -> Stats:
    """Per-round ratios ``numerators[i] / denominators[i]``, as :class:`Stats`."""
    return stats_of([n / d for n, d in zip(numerators, denominators, strict=True)])


def _rounds(names: Sequence[str], repeats: int) -> Iterator[list[str]]:
    """The order of each round: rotated by one each round (A B C, B C A, C A B, ...)."""
    for round_number in range(repeats):
        shift = round_number % len(names)
        yield [*names[shift:], *names[:shift]]


def alternate(cases: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run every case once per round, the order rotating, for ``repeats`` rounds.

    Each case returns its own measurement (seconds, ns per op...). A full
    garbage collection runs before each case so one case's garbage is not
    collected on another's time.

    Returns:
        case name → its samples, round by round (so index ``i`` pairs across cases).
    """
    results: dict[str, list[float]] = {name: [] for name in cases}
    for order in _rounds(list(cases), repeats):
        for name in order:
            gc.collect()
            results[name].append(cases[name]())
    return results


async def alternate_async(
    cases: dict[str, Callable[[], Awaitable[float]]], repeats: int
) -> dict[str, list[float]]:
    """:func:`alternate` for coroutine cases (run on the current event loop)."""
    results: dict[str, list[float]] = {name: [] for name in cases}
    for order in _rounds(list(cases), repeats):
        for name in order:
            gc.collect()
            await asyncio.sleep(0)
            results[name].append(await cases[name]())
    return results


# ---------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------


def print_header(title: str) -> None:
    """Print the command that is running, the title, and the machine it runs on.

    Also raises the library's log level to ERROR: the benchmarks provoke
    failures on purpose (recovery) and its warnings would go to stderr.
    """
    logging.getLogger("balance_manager").setLevel(logging.ERROR)
    script = Path(sys.argv[0])
    try:
        shown = script.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = script
    args = " ".join(sys.argv[1:])
    print(f"$ python {shown}{' ' + args if args else ''}")
    print(
        f"# {title} — Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M:%S')}"
    )
    sys.stdout.flush()


def fmt_seconds(value: float) -> str:
    """Seconds in the most readable unit (ns, µs, ms or s)."""
    magnitude = abs(value)
    if magnitude < 1e-6:
        return f"{value * 1e9:.0f} ns"
    if magnitude < 1e-3:
        return f"{value * 1e6:.2f} µs"
    if magnitude < 1:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.2f} s"


def fmt_bytes(value: float) -> str:
    """Bytes in B, KiB or MiB."""
    if abs(value) < 10 * 1024:
        return f"{value:.1f} B"
    if abs(value) < 10 * 1024 * 1024:
        return f"{value / 1024:.1f} KiB"
    return f"{value / 1024 / 1024:.1f} MiB"


def report(
    label: str,
    value: str,
    *,
    target: str | None = None,
    met: bool | None = None,
) -> None:
    """Print one figure: ``label: value`` and, when given, ``[target ...: met|MISSED]``."""
    line = f"{label}: {value}"
    if target is not None:
        verdict = "" if met is None else (": met" if met else ": MISSED")
        line += f"   [target {target}{verdict}]"
    print(line)
    sys.stdout.flush()


def rss_bytes() -> int:
    """This process's resident set size now (Linux ``/proc/self/status`` ``VmRSS``)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")
