"""The demo's views: the rich live panel, the plain lines, and the sparkline."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from hypothesis import example, given, strategies as st
from rich.console import Console
from rich.live_render import LiveRender

from balance_manager.cli.demo_view import (
    COUNTER_LABELS,
    SPARK_BARS,
    AlertLine,
    AssetRow,
    Frame,
    LiveView,
    PlainView,
    display_amount,
    render_frame,
    sparkline,
    status_line,
)


def make_frame(**changes: object) -> Frame:
    values: dict[str, object] = {
        "title": "demo (simulator, seed 0)",
        "elapsed": 12.34,
        "duration": 30.0,
        "serving": "rest",
        "stream_state": "disconnected",
        "holds_live": False,
        "circuit": "closed",
        "rest_error": None,
        "cache_hit_rate": 97.5,
        "counters": {"updates": 17, "rest_api_calls": 9, "reconnects": 2, "fallbacks": 1},
        "rows": (
            AssetRow(
                "BTC",
                Decimal("1.2435000000"),
                Decimal("1.2432"),
                Decimal("0.0003"),
                "rest",
                0.4,
                "increasing",
            ),
            AssetRow(
                "USD", Decimal("25435.21"), Decimal("25435.21"), Decimal(0), "rest", None, None
            ),
        ),
        "log": ("[   7.5s] fault: WebSocket dropped (TCP abort)",),
        "phase": "drop websocket",
    }
    values.update(changes)
    return Frame(**values)  # type: ignore[arg-type]  # test data built from a dict


def rendered(frame: Frame, width: int = 140) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(render_frame(frame, width=width))
    return console.export_text()


def test_live_panel_shows_balances_sources_counters_and_events() -> None:
    """The panel shows each balance exactly, its source, age and trend, the counters and the log."""
    text = rendered(make_frame())
    assert "serving: REST" in text
    assert "1.2435" in text
    assert "1.2432" in text
    assert "0.0003" in text
    assert "25435.21" in text
    assert "↑" in text
    assert "0.4s" in text
    assert "REST calls" in text
    assert "fault: WebSocket dropped" in text
    assert "phase: drop websocket" in text
    assert "cache hit rate: 97.5%" in text


@pytest.mark.parametrize("width", [80, 100, 140])
def test_amounts_are_never_cut_on_a_narrow_terminal(width: int) -> None:
    """From 80 columns up, every amount shows in full on one line, and every counter too."""
    rows = (
        AssetRow(
            "USDT",
            Decimal("1234567890.12345678"),
            Decimal("1234567889.12345678"),
            Decimal("1.00000001"),
            "websocket",
            12.5,
            "stable",
        ),
    )
    text = rendered(make_frame(rows=rows), width=width)
    for amount in ("1234567890.12345678", "1234567889.12345678", "1.00000001"):
        assert amount in text, (width, amount)
    assert "…" not in text
    assert "callback errors" in text


def test_amounts_show_at_the_asset_display_decimals_without_exponents() -> None:
    """REST's ten-decimal BTC and its 0E-10 hold read at BTC's 5 display decimals, never 0E-10."""
    row = AssetRow(
        "BTC",
        Decimal("1.2435000000"),
        Decimal("1.2435000000"),
        Decimal("0E-10"),
        "rest",
        0.4,
        None,
        decimals=5,
    )
    usd = AssetRow(
        "USD", Decimal("25435.2100"), Decimal("25435.2100"), Decimal(0), "rest", 0.4, None, 2
    )
    text = rendered(make_frame(rows=(row, usd)))
    assert "1.24350" in text
    assert "0.00000" in text
    assert "25435.21 " in text
    assert "25435.2100" not in text
    assert "E-" not in text


def test_live_panel_shows_the_last_rest_error_and_hidden_assets() -> None:
    """A failing REST source and empty assets are visible."""
    text = rendered(make_frame(rest_error="BalanceEx: HTTP 520", hidden_assets=3, circuit="open"))
    assert "last REST error: BalanceEx: HTTP 520" in text
    assert "3 empty asset(s) not shown" in text
    assert "REST circuit: open" in text


def test_status_line_is_one_plain_line() -> None:
    """The plain status line carries the serving source, the stream and the counters."""
    line = status_line(make_frame())
    assert "\n" not in line
    assert line.startswith("[  12.3s] serving=rest stream=disconnected ")
    assert "rest_calls=9" in line
    assert "fallbacks=1" in line
    assert "phase=drop websocket" in line
    watch_line = status_line(make_frame(phase=None, holds_live=True, stream_state="streaming"))
    assert "stream=streaming+holds" in watch_line
    assert "phase=" not in watch_line


def test_plain_view_prints_events_at_once_and_status_once_a_second() -> None:
    """Events print as they come; status lines at most once per second of run time."""
    out = io.StringIO()
    view = PlainView(out)
    view.start()
    view.update(make_frame(elapsed=0.0))
    view.event("[   0.1s] source: serving from rest (was websocket)")
    view.update(make_frame(elapsed=0.5))
    view.update(make_frame(elapsed=1.0))
    view.stop()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("[   0.0s] serving=")
    assert lines[1] == "  [   0.1s] source: serving from rest (was websocket)"
    assert lines[2].startswith("[   1.0s] serving=")
    assert view.lines_written == 3


def test_live_view_draws_on_its_console() -> None:
    """The live view draws the frame on its console and gives the terminal back when stopped."""
    out = io.StringIO()
    view = LiveView(Console(file=out, width=140, force_terminal=True, color_system=None))
    view.start()
    view.update(make_frame())
    view.event("ignored: the frame carries the log")
    view.stop()
    view.stop()  # twice is harmless
    assert "25435.21" in out.getvalue()


def test_amounts_display_exactly_without_noise() -> None:
    """Trailing zeros and exponents are dropped, never digits."""
    assert display_amount(Decimal("1.2435000000")) == "1.2435"
    assert display_amount(Decimal("0E-10")) == "0"
    assert display_amount(Decimal("1500")) == "1500"
    assert display_amount(Decimal("1.5E+3")) == "1500"
    assert display_amount(Decimal("-0.00000001")) == "-0.00000001"


def test_sparkline_draws_low_to_high() -> None:
    """Lowest value, lowest bar; highest value, highest bar; a flat series is mid height."""
    assert sparkline([Decimal(1), Decimal(2), Decimal(3)]) == "▁▄█"
    assert sparkline([Decimal(5)] * 3) == "▄▄▄"
    assert sparkline([]) == ""
    with pytest.raises(ValueError, match="width"):
        sparkline([Decimal(1)], width=0)


@given(
    values=st.lists(st.decimals(allow_nan=False, allow_infinity=False, places=8), min_size=1),
    width=st.integers(1, 80),
)
# A span of 28 digits, where (high - low) * 7 / span rounds to just under 7.
@example(values=[Decimal("1E-8"), Decimal("-19481345264756218884.55343338")], width=2)
def test_sparkline_fits_its_width_and_uses_only_bars(values: list[Decimal], width: int) -> None:
    """Any series gives at most ``width`` bar characters, one per value when it fits."""
    line = sparkline(values, width)
    assert len(line) == min(len(values), width)
    assert set(line) <= set(SPARK_BARS)
    if len(values) <= width and max(values) > min(values):
        assert line[values.index(max(values))] == SPARK_BARS[-1]
        assert line[values.index(min(values))] == SPARK_BARS[0]


# -- the layout at 80×24 and 160×50 ----------------------------------------------------------


#: Twelve events as the demo logs them during an outage, some longer than 80 columns.
OUTAGE_LOG = tuple(
    f"[{20.0 + index * 0.3:6.1f}s] {text}"
    for index, text in enumerate(
        [
            "strategy: buy 0.0002 BTC/USD @ 59956.3 (OX5QK4-ZAGAG-VNTHTF)",
            "strategy: cancelled OTFXJ4-BY4DS-35MKAR",
            "strategy: sell 0.0001 BTC/USD @ 60238.9 (OGSDPH-K4KK5-QK4BYB)",
            "fault: REST answers HTTP 520 and the WebSocket goes silent (both sources down)",
            "source: serving from rest (was websocket)",
            "stream: disconnected (WebSocket silent for more than 2 s)",
            "warning: REST refresh failed: BalanceEx: HTTP 520 (text/html): api.kraken.com | "
            "520: Web server is returning an unknown error",
            "source: serving from cache (was rest)",
            "strategy: paused (balances are not confirmed by any source)",
            "validation: warning stale_data on BTC, DOT, ETH, EUR, SOL, USD, USDT",
            "fault: every fault cleared",
            "source: serving from websocket (was cache)",
        ]
    )
)


def outage_frame() -> Frame:
    """A demo frame with seven assets, every counter, a REST error and a full event log."""
    rows = tuple(
        AssetRow(
            asset,
            Decimal(amount),
            Decimal(amount),
            Decimal("0.0003"),
            "cache",
            5.3,
            "increasing",
            places,
        )
        for asset, amount, places in [
            ("BTC", "1.24665", 5),
            ("DOT", "297.25", 4),
            ("ETH", "12.542", 5),
            ("EUR", "1500", 2),
            ("SOL", "0.12", 4),
            ("USD", "25350.8144", 2),
            ("USDT", "6010", 4),
        ]
    )
    return make_frame(
        serving="cache",
        circuit="open",
        phase="outage",
        rest_error="BalanceEx: HTTP 520 (text/html): api.kraken.com | 520: Web server is "
        "returning an unknown error (circuit 'kraken-rest' open; next attempt in 1.64 s)",
        cache_hit_rate=100.0,
        counters={name: 7 for name, _ in COUNTER_LABELS},
        rows=rows,
        log=OUTAGE_LOG,
    )


def on_screen(frame: Frame, width: int, height: int) -> list[str]:
    """What a live terminal of ``width``×``height`` shows: rich's Live crops to the height."""
    console = Console(
        file=io.StringIO(), width=width, height=height, record=True, color_system=None
    )
    console.print(LiveRender(render_frame(frame), vertical_overflow="ellipsis"))
    return console.export_text().splitlines()


@pytest.mark.parametrize(("width", "height", "events"), [(80, 24, 5), (160, 50, 12)])
def test_the_live_view_fits_the_terminal_with_the_recent_events_visible(
    width: int, height: int, events: int
) -> None:
    """At 80×24 and 160×50 nothing is cropped to '...' and the newest events show in full."""
    lines = on_screen(outage_frame(), width, height)
    assert len(lines) <= height
    assert all(line.strip() not in ("...", "…") for line in lines), "\n".join(lines)
    assert all(len(line) <= width for line in lines)
    joined = " ".join(" ".join(line.split()) for line in lines)
    for event in OUTAGE_LOG[-events:]:
        assert " ".join(event.split()) in joined, event
    for asset in ("BTC", "DOT", "ETH", "EUR", "SOL", "USD", "USDT"):
        assert any(line.lstrip().startswith(asset) for line in lines), asset
    assert "25350.8144" in joined
    assert "callback errors 7" in joined


@pytest.mark.parametrize(("width", "height"), [(80, 24), (160, 50)])
def test_the_header_never_wraps_mid_phrase(width: int, height: int) -> None:
    """The title line is one line, and each status item stays whole on its line."""
    lines = on_screen(outage_frame(), width, height)
    assert any("demo (simulator, seed 0)" in line and "12.3 s / 30 s" in line for line in lines)
    for phrase in (
        "serving: CACHE",
        "stream: disconnected",
        "holds: from REST",
        "REST circuit: open",
        "cache hit rate: 100.0%",
        "phase: outage",
    ):
        assert any(phrase in line for line in lines), phrase


def test_a_long_account_gives_way_to_the_events_and_says_how_many_assets_are_hidden() -> None:
    """With more assets than rows, the table is cut with a count, and events still show."""
    rows = tuple(
        AssetRow(
            f"A{index:02d}", Decimal(index), Decimal(index), Decimal(0), "websocket", 0.1, None
        )
        for index in range(30)
    )
    lines = on_screen(outage_frame().__class__(**{**_fields(outage_frame()), "rows": rows}), 80, 24)
    assert len(lines) <= 24
    joined = " ".join(lines)
    assert "more asset" in joined
    for event in OUTAGE_LOG[-5:]:
        assert " ".join(event.split()) in " ".join(" ".join(line.split()) for line in lines)


def _fields(frame: Frame) -> dict[str, object]:
    return {name: getattr(frame, name) for name in frame.__dataclass_fields__}


def test_active_alerts_show_under_the_header_and_in_the_status_line() -> None:
    """Each active alert is one ALERT line in the panel; the plain status line counts them."""
    alerts = (
        AlertLine("warning", "low_balance EUR: EUR free 500 is below 1000 (for 3 s)"),
        AlertLine("error", "stream_down: the stream has been down for 61.0 s (bound 60 s)"),
    )
    text = rendered(make_frame(alerts=alerts))
    lines = [line for line in text.splitlines() if line.startswith("ALERT ")]
    assert lines == [
        "ALERT low_balance EUR: EUR free 500 is below 1000 (for 3 s)",
        "ALERT stream_down: the stream has been down for 61.0 s (bound 60 s)",
    ]
    assert text.index("ALERT") < text.index("USD")  # above the balances
    assert status_line(make_frame(alerts=alerts)).endswith(" alerts=2")
    assert "ALERT" not in rendered(make_frame())
    assert "alerts=" not in status_line(make_frame())
