"""What the demo and ``watch`` show: a frame of plain data, and two ways to display it.

The engine (:mod:`balance_manager.cli.demo`) builds a :class:`Frame` a few times
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

from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.rule import Rule
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from balance_manager.core.amounts import display_amount

__all__ = [
    "ALERT_STYLES",
    "COUNTER_LABELS",
    "MIN_EVENTS",
    "SIDE_BY_SIDE_WIDTH",
    "SPARK_BARS",
    "TREND_ARROWS",
    "AlertLine",
    "AssetRow",
    "DemoView",
    "Frame",
    "FrameLayout",
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


#: Colour of an active alert by severity.
ALERT_STYLES: Mapping[str, str] = {"error": "bold red", "warning": "bold yellow", "info": "cyan"}


@dataclass(frozen=True, slots=True)
class AlertLine:
    """One active alert, as the view shows it.

    Attributes:
        severity: ``error``, ``warning`` or ``info``.
        text: ``low_balance EUR: EUR free 500 is below 1000 (for 3 s)``.
    """

    severity: str
    text: str


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
        alerts: the alerts firing now, oldest first.
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
    alerts: tuple[AlertLine, ...] = ()


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
    if frame.alerts:
        parts.append(f"alerts={len(frame.alerts)}")
    return " ".join(parts)


#: Between two items of a header or counters line; lines break only here.
_GAP = "   "


def _wrap_items(items: Sequence[Text], width: int, gap: str = _GAP) -> Text:
    """``items`` on as few lines as fit ``width``, breaking only between items, never inside."""
    text = Text()
    used = 0
    for item in items:
        size = item.cell_len
        if used and used + len(gap) + size > width:
            text.append("\n")
            used = 0
        elif used:
            text.append(gap)
            used += len(gap)
        text.append_text(item)
        used += size
    return text


def _item(label: str, value: str, style: str = "") -> Text:
    text = Text(label)
    text.append(value, style=style)
    return text


def _header(frame: Frame, width: int) -> Text:
    """Title, clock and phase; then the serving state; then the last REST error, in full."""
    clock = f"{frame.elapsed:.1f} s"
    if frame.duration is not None:
        clock += f" / {frame.duration:g} s"
    title = [Text("balance-manager", style="bold blue"), Text(frame.title, style="bold")]
    title.append(Text(clock))
    if frame.phase is not None:
        style = "bold magenta" if frame.phase != "normal" else "dim"
        title.append(_item("phase: ", frame.phase, style))
    status = [
        _item("serving: ", frame.serving.upper(), _SOURCE_STYLE.get(frame.serving, "bold")),
        _item("stream: ", frame.stream_state),
        _item(
            "holds: ",
            "live" if frame.holds_live else "from REST",
            "green" if frame.holds_live else "yellow",
        ),
    ]
    if frame.circuit is not None:
        circuit_style = "green" if frame.circuit == "closed" else "red"
        status.append(_item("REST circuit: ", frame.circuit, circuit_style))
    status.append(Text(f"cache hit rate: {frame.cache_hit_rate:.1f}%"))
    text = _wrap_items(title, width, gap="  ")
    text.append("\n")
    text.append_text(_wrap_items(status, width))
    if frame.rest_error:
        text.append("\nlast REST error: ", style="red")
        text.append(" ".join(frame.rest_error.split()))
    for alert in frame.alerts:
        text.append("\nALERT ", style=ALERT_STYLES.get(alert.severity, "bold"))
        text.append(alert.text)
    return text


def _balances_table(frame: Frame, rows: Sequence[AssetRow], hidden_rows: int) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True, expand=False
    )
    amounts = [
        [display_amount(value, row.decimals) for value in (row.balance, row.free, row.held)]
        for row in rows
    ]
    table.add_column("asset", style="bold", no_wrap=True)
    for index, name in enumerate(("balance", "free", "held")):
        # Amounts are the point: their column is never narrower than the longest one.
        longest = max((len(shown[index]) for shown in amounts), default=len(name))
        table.add_column(name, justify="right", no_wrap=True, min_width=max(longest, len(name)))
    # On a terminal too narrow for everything, these give way (wrapped, never cut).
    table.add_column("source", overflow="fold")
    table.add_column("age", justify="right", overflow="fold")
    table.add_column("trend", justify="center", overflow="fold")
    for row, shown in zip(rows, amounts, strict=True):
        table.add_row(
            row.asset,
            *shown,
            Text(row.source, style=_SOURCE_STYLE.get(row.source, "")),
            _age(row.age),
            TREND_ARROWS.get(row.trend, "·"),
        )
    notes = []
    if hidden_rows:
        notes.append(f"{hidden_rows} more asset(s) below the screen")
    if frame.hidden_assets:
        notes.append(f"{frame.hidden_assets} empty asset(s) not shown")
    if notes:
        table.caption = "; ".join(notes)
        table.caption_justify = "left"
    return table


def _counters(frame: Frame, *, vertical: bool, width: int) -> Text:
    items = []
    label_width = max(len(label) for _, label in COUNTER_LABELS)
    for key, label in COUNTER_LABELS:
        value = frame.counters.get(key, 0)
        alarm = key in ("validation_failures", "callback_errors") and value
        items.append(
            _item(
                f"{label:<{label_width}} " if vertical else f"{label} ",
                str(value),
                "bold red" if alarm else "bold",
            )
        )
    if vertical:
        return Text("\n").join(items)
    return _wrap_items(items, width)


#: From this width on, the counters stand beside the balances instead of under them.
SIDE_BY_SIDE_WIDTH = 110

#: Event lines the view keeps room for before it shortens the balances table.
MIN_EVENTS = 5


class FrameLayout:
    """The live view of a frame, laid out for the terminal it is drawn on.

    Everything is sized to the console (or to ``width`` × ``height``): the
    header breaks only between items, the balances table has no outer border,
    and the event log gets the remaining lines, newest events last, each in
    full. When the terminal is too short for every asset and
    :data:`MIN_EVENTS` events, the table shows fewer assets and says how many
    are below, so that the fallback and recovery events stay visible. Nothing
    is left for rich's ``Live`` to crop to ``...``.
    """

    def __init__(self, frame: Frame, *, width: int | None = None, height: int | None = None):
        self.frame = frame
        self.width = width
        self.height = height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width or options.max_width
        height = self.height or options.height or options.size.height
        lines = self.lines(console, options.update(width=width, height=None), width, height)
        for index, line in enumerate(lines):
            if index:
                yield Segment.line()
            yield from line
        yield Segment.line()

    def lines(
        self, console: Console, options: ConsoleOptions, width: int, height: int
    ) -> list[list[Segment]]:
        """The frame as at most ``height`` lines of at most ``width`` cells."""
        frame = self.frame

        def render(renderable: RenderableType) -> list[list[Segment]]:
            return console.render_lines(renderable, options, pad=False)

        beside = width >= SIDE_BY_SIDE_WIDTH
        header = render(_header(frame, width))
        counters = [] if beside else render(_counters(frame, vertical=False, width=width))
        rule = render(Rule("Events", align="left", style="dim"))
        events = [render(Text(line, overflow="fold")) for line in frame.log] or [
            render(Text("(no events yet)", style="dim"))
        ]

        def middle(rows: int) -> list[list[Segment]]:
            table = _balances_table(frame, frame.rows[:rows], len(frame.rows) - rows)
            if not beside:
                return render(table)
            grid = Table.grid(padding=(0, 2))
            counters_panel = Panel(
                _counters(frame, vertical=True, width=width),
                title="Counters",
                title_align="left",
                border_style="dim",
                expand=False,
            )
            grid.add_row(table, counters_panel)
            return render(grid)

        fixed = len(header) + len(counters) + len(rule)
        wanted = sum(len(event) for event in events[-MIN_EVENTS:])
        rows = len(frame.rows)
        table = middle(rows)
        while rows and fixed + len(table) + wanted > height:
            rows -= 1
            table = middle(rows)
        room = height - fixed - len(table)
        shown: list[list[Segment]] = []
        for event in reversed(events):
            if len(shown) + len(event) > room:
                break
            shown[:0] = event
        return [*header, *table, *counters, *rule, *shown][:height]


def render_frame(
    frame: Frame, *, width: int | None = None, height: int | None = None
) -> RenderableType:
    """The live view of ``frame`` (see :class:`FrameLayout`).

    Args:
        frame: what to show.
        width: columns to lay out for (default: the console's width); from
            :data:`SIDE_BY_SIDE_WIDTH` on, the counters stand beside the balances.
        height: lines to fit in (default: the console's height).
    """
    return FrameLayout(frame, width=width, height=height)


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
        self._live.update(render_frame(frame))

    def event(self, line: str) -> None:
        """Nothing: the frame carries the event log."""

    def stop(self) -> None:
        """Leave the last frame on screen and give the terminal back."""
        if self._started:
            self._live.stop()
            self._started = False
