"""What the demo and ``watch`` show: a frame of plain data, and two ways to display it.

The engine (:mod:`balance_manager.demo`) builds a :class:`Frame` a few times
a second; a view displays it:

* :class:`LiveView` redraws a rich live panel in place (balances table,
  counters, connection state, a scrolling event log);
* :class:`PlainView` prints one status line per second and every event as a
  line of its own, for pipes, CI logs and ``--plain``.

Both only format; they never touch the manager or the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from balance_manager.core.amounts import display_amount

__all__ = [
    "COUNTER_LABELS",
    "SIDE_BY_SIDE_WIDTH",
    "SPARK_BARS",
    "TREND_ARROWS",
    "AssetRow",
    "DemoView",
    "Frame",
    "LiveView",
    "PlainView",
    "display_amount",
    "render_frame",
    "sparkline",
    "status_line",
]

#: Arrow shown for each trend direction (``None``: too few points for a trend).
TREND_ARROWS: Mapping[str | None, str] = {
    "increasing": "↑",
    "decreasing": "↓",
    "stable": "→",
    None: "·",
}

#: Colour of each serving source in the live view.
_SOURCE_STYLE = {"websocket": "bold green", "rest": "bold yellow", "cache": "bold red"}

#: Counters shown in the live view, with their labels (keys of :attr:`Frame.counters`).
COUNTER_LABELS = (
    ("updates", "updates"),
    ("rest_api_calls", "REST calls"),
    ("websocket_messages", "WS messages"),
    ("reconnects", "reconnects"),
    ("fallbacks", "fallbacks"),
    ("recoveries", "recoveries"),
    ("validation_failures", "validation failures"),
    ("callback_errors", "callback errors"),
)


#: Bar heights of :func:`sparkline`, lowest first.
SPARK_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[Decimal], width: int = 60) -> str:
    """A one-line chart of ``values`` (oldest first), at most ``width`` characters.

    With more values than ``width``, each character shows the last value of
    its slice of the series. Scaling is done in ``Decimal`` (no float), and a
    flat series is drawn at mid height.
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if not values:
        return ""
    if len(values) > width:
        values = [values[((i + 1) * len(values)) // width - 1] for i in range(width)]
    low, high = min(values), max(values)
    top = len(SPARK_BARS) - 1
    if high == low:
        return SPARK_BARS[top // 2] * len(values)
    span = high - low
    # The maximum is pinned to the top bar: with 28-digit Decimal arithmetic,
    # (high - low) * 7 / span can round to just under 7.
    return "".join(
        SPARK_BARS[top if value == high else min(top, int((value - low) * top / span))]
        for value in values
    )


@dataclass(frozen=True, slots=True)
class AssetRow:
    """One line of the balances table.

    Attributes:
        asset: canonical asset name.
        balance: tradable balance.
        free: free to trade.
        held: held by open orders.
        source: where the value came from (``websocket``, ``rest``, ``cache``).
        age: seconds since a live source last confirmed it (``None``: unknown).
        trend: ``increasing``, ``decreasing``, ``stable`` or ``None``.
        decimals: the asset's display decimals, if known (see
            :func:`~balance_manager.core.amounts.display_amount`).
    """

    asset: str
    balance: Decimal
    free: Decimal
    held: Decimal
    source: str
    age: float | None
    trend: str | None
    decimals: int | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    """Everything one redraw shows.

    Attributes:
        title: what is being watched (``demo (simulator, seed 0)``...).
        elapsed: seconds since the start.
        duration: planned length of the run (``None``: until Ctrl-C).
        serving: where balances are served from (``websocket``, ``rest``, ``cache``).
        stream_state: the WebSocket's state (``streaming``, ``disconnected``...).
        holds_live: whether holds follow the order stream in real time.
        circuit: the REST circuit breaker's state.
        rest_error: the last REST error, if the last REST call failed.
        cache_hit_rate: the cache's hit rate, percent.
        counters: counter name → value (see :data:`COUNTER_LABELS`).
        rows: the balances table.
        log: recent event lines, oldest first.
        phase: the demo's current fault phase (``None`` outside the demo).
        hidden_assets: assets not shown because they hold nothing.
    """

    title: str
    elapsed: float
    duration: float | None
    serving: str
    stream_state: str
    holds_live: bool
    circuit: str | None
    rest_error: str | None
    cache_hit_rate: float
    counters: Mapping[str, int]
    rows: tuple[AssetRow, ...]
    log: tuple[str, ...] = ()
    phase: str | None = None
    hidden_assets: int = 0


def _age(age: float | None) -> str:
    return "-" if age is None else f"{age:.1f}s"


def status_line(frame: Frame) -> str:
    """The frame as one plain line (what :class:`PlainView` prints each second)."""
    counters = frame.counters
    parts = [
        f"[{frame.elapsed:6.1f}s]",
        f"serving={frame.serving}",
        f"stream={frame.stream_state}{'+holds' if frame.holds_live else ''}",
        f"assets={len(frame.rows)}",
        f"updates={counters.get('updates', 0)}",
        f"rest_calls={counters.get('rest_api_calls', 0)}",
        f"reconnects={counters.get('reconnects', 0)}",
        f"fallbacks={counters.get('fallbacks', 0)}",
        f"cache_hits={frame.cache_hit_rate:.1f}%",
    ]
    if frame.phase is not None:
        parts.append(f"phase={frame.phase}")
    return " ".join(parts)


def _header(frame: Frame) -> Text:
    text = Text()
    text.append(frame.title, style="bold")
    clock = f"{frame.elapsed:.1f} s"
    if frame.duration is not None:
        clock += f" / {frame.duration:g} s"
    text.append(f"   {clock}\n")
    text.append("serving: ")
    text.append(frame.serving.upper(), style=_SOURCE_STYLE.get(frame.serving, "bold"))
    text.append(f"   stream: {frame.stream_state}")
    text.append("   holds: ")
    text.append(
        "live" if frame.holds_live else "from REST", style="green" if frame.holds_live else "yellow"
    )
    if frame.circuit is not None:
        style = "green" if frame.circuit == "closed" else "red"
        text.append("   REST circuit: ")
        text.append(frame.circuit, style=style)
    text.append(f"   cache hit rate: {frame.cache_hit_rate:.1f}%")
    if frame.phase is not None:
        text.append("\nphase: ")
        text.append(frame.phase, style="bold magenta" if frame.phase != "normal" else "dim")
    if frame.rest_error:
        text.append("\nlast REST error: ", style="red")
        text.append(frame.rest_error[:120])
    return text


def _balances_table(frame: Frame) -> Table:
    table = Table(title="Balances", title_justify="left", expand=False)
    table.add_column("asset", style="bold", no_wrap=True)
    for name in ("balance", "free", "held"):
        table.add_column(name, justify="right", no_wrap=True, overflow="fold")
    table.add_column("source", no_wrap=True)
    table.add_column("age", justify="right")
    table.add_column("trend", justify="center")
    for row in frame.rows:
        table.add_row(
            row.asset,
            display_amount(row.balance, row.decimals),
            display_amount(row.free, row.decimals),
            display_amount(row.held, row.decimals),
            Text(row.source, style=_SOURCE_STYLE.get(row.source, "")),
            _age(row.age),
            TREND_ARROWS.get(row.trend, "·"),
        )
    if frame.hidden_assets:
        table.caption = f"{frame.hidden_assets} empty asset(s) not shown"
    return table


def _counters(frame: Frame, *, vertical: bool) -> Text:
    text = Text()
    width = max(len(label) for _, label in COUNTER_LABELS)
    for index, (key, label) in enumerate(COUNTER_LABELS):
        if index:
            text.append("\n" if vertical else "   ")
        value = frame.counters.get(key, 0)
        text.append(f"{label:<{width}} " if vertical else f"{label} ")
        alarm = key in ("validation_failures", "callback_errors") and value
        text.append(str(value), style="bold red" if alarm else "bold")
    return text


#: Below this width the counters go under the balances instead of beside them.
SIDE_BY_SIDE_WIDTH = 110


def render_frame(frame: Frame, *, width: int = SIDE_BY_SIDE_WIDTH) -> RenderableType:
    """The live view of ``frame``: header, balances table, counters, event log.

    Args:
        frame: what to show.
        width: the terminal's width; a narrow terminal gets the counters under
            the balances, so that amounts are never cut (they are the point).
    """
    vertical = width >= SIDE_BY_SIDE_WIDTH
    counters = Panel(
        _counters(frame, vertical=vertical),
        title="Counters",
        title_align="left",
        border_style="dim",
        expand=not vertical,
    )
    middle: RenderableType
    if vertical:
        grid = Table.grid(padding=(0, 2))
        grid.add_row(_balances_table(frame), counters)
        middle = grid
    else:
        middle = Group(_balances_table(frame), counters)
    log = Text("\n".join(frame.log) if frame.log else "(no events yet)")
    return Group(
        Panel(_header(frame), title="balance-manager", border_style="blue"),
        middle,
        Panel(log, title="Events", title_align="left", border_style="dim"),
    )


class DemoView(Protocol):
    """Where frames and events go."""

    def start(self) -> None:
        """Called once before the first frame."""
        ...

    def update(self, frame: Frame) -> None:
        """Show ``frame``."""
        ...

    def event(self, line: str) -> None:
        """An event line was added to the log."""
        ...

    def stop(self) -> None:
        """Called once at the end (also after an error)."""
        ...


@dataclass
class PlainView:
    """Plain lines: every event as it happens, a status line every ``interval`` seconds.

    Args:
        out: where to write.
        interval: seconds of run time between two status lines.
    """

    out: TextIO
    interval: float = 1.0
    lines_written: int = 0
    _next_status: float = field(default=0.0, repr=False)

    def start(self) -> None:
        """Nothing to set up."""

    def update(self, frame: Frame) -> None:
        """Print a status line when one is due."""
        if frame.elapsed >= self._next_status:
            self._write(status_line(frame))
            self._next_status = frame.elapsed + self.interval

    def event(self, line: str) -> None:
        """Print the event line at once."""
        self._write(f"  {line}")

    def stop(self) -> None:
        """Flush what was written."""
        self.out.flush()

    def _write(self, line: str) -> None:
        print(line, file=self.out, flush=True)
        self.lines_written += 1


class LiveView:
    """A rich live panel redrawn in place (for a terminal).

    Args:
        console: the console to draw on.
        refresh_per_second: redraw rate.
    """

    def __init__(self, console: Console, *, refresh_per_second: float = 4.0) -> None:
        self.console = console
        self._live = Live(
            Text("starting…"),
            console=console,
            refresh_per_second=refresh_per_second,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=True,
        )
        self._started = False

    def start(self) -> None:
        """Take over the terminal's bottom lines."""
        if not self._started:
            self._live.start()
            self._started = True

    def update(self, frame: Frame) -> None:
        """Redraw with ``frame``."""
        self._live.update(render_frame(frame, width=self.console.width))

    def event(self, line: str) -> None:
        """Nothing: the frame carries the event log."""

    def stop(self) -> None:
        """Leave the last frame on screen and give the terminal back."""
        if self._started:
            self._live.stop()
            self._started = False
