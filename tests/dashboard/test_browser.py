"""The dashboard in a real browser: Playwright driving headless Chromium against the simulator.

The simulator and the manager run on a manual clock in the test's event loop;
the browser's own waits are Playwright's bounded expectations. Each scenario
saves a screenshot under ``test-output/dashboard/`` (or
``$BALANCE_MANAGER_TEST_OUTPUT/dashboard/``). With
``BALANCE_MANAGER_UPDATE_SCREENSHOT=1`` the overview scenario also writes the
README's picture, ``docs/images/dashboard.png``.

Without Chromium (or without the ``playwright`` package) every test here is
skipped, saying what to install; the rest of the suite runs as usual.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from tests.dashboard.helpers import build_manager, streaming_manager
from tests.dashboard.test_shared_block import Funds

from balance_manager import BalanceManager
from balance_manager.core.alerts.rules import LowBalance
from balance_manager.core.amounts import display_amount, round_to
from balance_manager.core.freshness import ServingMode
from balance_manager.dashboard import Dashboard, LeaderSharedStatus
from balance_manager.exceptions import SharedStateError
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive, wait_until

# One browser for the module (launching one takes seconds): the tests, and the
# fixtures they use, run on the module's event loop.
pytestmark = [pytest.mark.network, pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("BALANCE_MANAGER_TEST_OUTPUT", ROOT / "test-output")) / "dashboard"
README_IMAGE = ROOT / "docs" / "images" / "dashboard.png"

#: Chromium's switches for a headless run on a machine without a display or a sandbox.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def find_chromium() -> str | None:
    """``$BALANCE_MANAGER_CHROMIUM``, else a Chromium or Chrome on the PATH."""
    named = os.environ.get("BALANCE_MANAGER_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM = find_chromium()
try:
    from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect
except ImportError:  # pragma: no cover - depends on the installed extras
    HAVE_PLAYWRIGHT = False
else:
    HAVE_PLAYWRIGHT = True

if not HAVE_PLAYWRIGHT:
    pytestmark.append(
        pytest.mark.skip(
            reason="browser tests need the playwright package: pip install -e '.[dev]'"
        )
    )
elif CHROMIUM is None:
    named = os.environ.get("BALANCE_MANAGER_CHROMIUM")
    pytestmark.append(
        pytest.mark.skip(
            reason=f"browser tests need Chromium: BALANCE_MANAGER_CHROMIUM={named} is no file"
            if named
            else "browser tests need Chromium: apt-get install chromium (Debian/Ubuntu), "
            "or set BALANCE_MANAGER_CHROMIUM to a Chromium or Chrome executable"
        )
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium from the system (never Playwright's own download)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


class PageProblems:
    """Console errors and uncaught exceptions of a page (a CSP violation is one)."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.messages.append(f"pageerror: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.messages.append(f"console: {message.text}")


@pytest_asyncio.fixture(loop_scope="module")
async def sim(clock: ManualClock) -> AsyncIterator[SimulatedKraken]:
    """A simulator on loopback, on the manual clock (on the module's loop)."""
    async with SimulatedKraken(clock=clock, seed=5) as simulator:
        yield simulator


@pytest_asyncio.fixture(loop_scope="module")
async def manager(sim: SimulatedKraken, clock: ManualClock) -> AsyncIterator[BalanceManager]:
    """A started manager, streaming with live holds (on the module's loop)."""
    async with streaming_manager(sim, clock) as started:
        yield started


@pytest_asyncio.fixture(loop_scope="module")
async def dashboard(manager: BalanceManager) -> AsyncIterator[Dashboard]:
    """A dashboard of the manager, the page's watchdog off (on the module's loop)."""
    async with Dashboard(manager, stall_after=0) as served:
        yield served


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page, 1280 pixels wide; fails the test if it logged an error."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    problems = PageProblems(opened)
    opened.problems = problems  # type: ignore[attr-defined]  # read by tests that expect errors
    yield opened
    await context.close()
    if not getattr(opened, "errors_expected", False):
        allowed = getattr(opened, "allowed_errors", ())
        assert [m for m in problems.messages if not any(a in m for a in allowed)] == []


async def shot(page: Page, name: str) -> Path:
    """Save a screenshot of the whole page under the test output folder."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def row(page: Page, asset: str) -> Any:
    return page.locator(f'#balance-rows tr[data-asset="{asset}"]')


def cell(page: Page, asset: str, field: str) -> Any:
    return row(page, asset).locator(f'[data-field="{field}"]')


async def open_page(page: Page, dashboard: Dashboard, sim: SimulatedKraken) -> None:
    """Load the page and wait until it shows every asset and says it is live."""
    await page.goto(dashboard.url)
    await expect(page.locator("#balance-rows tr[data-asset]")).to_have_count(len(sim.balances()))
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")


# -- scenarios ---------------------------------------------------------------------------------


async def test_the_page_loads_every_balance_exactly(
    page: Page, dashboard: Dashboard, sim: SimulatedKraken, manager: BalanceManager
) -> None:
    """Every asset, its balance, free, held, source and state; the simulator said to be one."""
    await open_page(page, dashboard, sim)
    for asset, amount in sim.balances().items():
        shown = await cell(page, asset, "balance").inner_text()
        assert Decimal(shown) == amount, asset
        assert await cell(page, asset, "source").inner_text() == "websocket"
        assert await row(page, asset).get_attribute("data-state") == "live"
    # The exact string is kept in the cell's title (the display may add the asset's zeros).
    assert Decimal(await cell(page, "BTC", "balance").get_attribute("title") or "") == Decimal(
        "1.2435"
    )
    await expect(page.locator("#exchange")).to_contain_text("simulator")
    await expect(page.locator("#serving")).to_have_attribute("data-source", "websocket")
    await expect(page.locator("#shared")).to_contain_text("single process")
    await expect(page.locator("#reservation-table")).to_be_hidden()
    # This manager has no price source: the portfolio panel says so, greyed, and shows no total.
    await expect(page.locator("#portfolio")).to_have_attribute("data-state", "unavailable")
    await expect(page.locator("#portfolio-note")).to_contain_text("no price source")
    await expect(page.locator("#portfolio-body")).to_be_hidden()
    await shot(page, "01-loaded")


async def test_a_deposit_appears_within_a_second_without_reload(
    page: Page, dashboard: Dashboard, sim: SimulatedKraken
) -> None:
    """A deposit on the exchange is in the table within a second, pushed, with no reload."""
    await open_page(page, dashboard, sim)
    await page.evaluate("window.__notReloaded = true")
    sim.deposit("BTC", "0.5")
    await expect(cell(page, "BTC", "balance")).to_have_text("1.74350", timeout=1000)
    await expect(cell(page, "BTC", "free")).to_have_text("1.74350", timeout=1000)
    assert await page.evaluate("window.__notReloaded === true")
    await expect(page.locator("#event-log li").first).to_contain_text(
        "BTC balance 1.24350 → 1.74350 (+0.50000) via websocket"
    )
    await shot(page, "02-deposit")


async def test_a_fault_marks_values_unconfirmed_then_shows_the_recovery(
    page: Page,
    dashboard: Dashboard,
    sim: SimulatedKraken,
    manager: BalanceManager,
    clock: ManualClock,
) -> None:
    """Stream and REST down: every row marked unconfirmed, the source in red; then live again."""
    await open_page(page, dashboard, sim)
    count = len(sim.balances())
    sim.faults.http_error(times=None)
    sim.faults.drop_websocket()
    await drive(clock, 60, until=lambda: manager.serving_mode is ServingMode.CACHE)
    await expect(page.locator("#serving")).to_have_attribute("data-source", "cache")
    await expect(page.locator('#balance-rows tr[data-state="unconfirmed"]')).to_have_count(count)
    await expect(cell(page, "BTC", "state")).to_contain_text("no live source confirms it")
    await expect(cell(page, "BTC", "source")).to_have_text("cache")
    await expect(page.locator("#sources")).to_contain_text("Last REST error")
    await shot(page, "03-fault-unconfirmed")

    sim.faults.clear()
    await drive(clock, 120, until=lambda: manager.serving_mode is ServingMode.WEBSOCKET)
    clock.advance(dashboard.tick_interval)  # the next status push
    await expect(page.locator("#serving")).to_have_attribute("data-source", "websocket")
    await expect(page.locator('#balance-rows tr[data-state="live"]')).to_have_count(count)
    await expect(page.locator("#event-log")).to_contain_text("serving from websocket")
    await shot(page, "04-recovered")


async def test_the_chart_draws_the_history_and_zooms(
    page: Page, dashboard: Dashboard, sim: SimulatedKraken, clock: ManualClock
) -> None:
    """BTC's history is drawn (balance and free), and a drag zooms in, Reset zoom out."""
    for amount in ("0.25", "0.5", "-0.3"):
        if amount.startswith("-"):
            sim.withdraw("BTC", amount[1:])
        else:
            sim.deposit("BTC", amount)
        await drive(clock, 60, step=0.5, io_pause=0.001)
    await open_page(page, dashboard, sim)
    await page.get_by_label("Asset").select_option("BTC")
    chart = page.locator("#chart")
    await expect(chart.locator("canvas")).to_be_visible()
    await expect(page.locator("#chart-summary")).to_contain_text("BTC over the last 24 hours: 4")
    await expect(page.locator("#chart-summary")).to_contain_text("highest 1.9935")
    assert int(await chart.get_attribute("data-points") or 0) >= 4
    await expect(page.locator(".u-legend")).to_contain_text("BTC balance")
    await expect(page.locator(".u-legend")).to_contain_text("free")
    whole = float(await chart.get_attribute("data-x-max") or 0) - float(
        await chart.get_attribute("data-x-min") or 0
    )
    assert whole > 150

    over = page.locator("#chart .u-over")
    box = await over.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    await page.mouse.move(box["x"] + box["width"] * 0.4, y)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
    await page.mouse.up()
    await expect(chart).not_to_have_attribute("data-x-max", re.compile(r"^$"))
    zoomed = float(await chart.get_attribute("data-x-max") or 0) - float(
        await chart.get_attribute("data-x-min") or 0
    )
    assert zoomed < whole / 2
    await shot(page, "05-chart-zoomed")

    await page.get_by_role("button", name="Reset zoom").focus()
    await page.keyboard.press("Enter")
    await wait_until(lambda: True)
    reset = float(await chart.get_attribute("data-x-max") or 0) - float(
        await chart.get_attribute("data-x-min") or 0
    )
    assert reset == pytest.approx(whole, rel=0.01)


async def test_a_zero_balance_renders_and_charts(
    page: Page, dashboard: Dashboard, sim: SimulatedKraken, manager: BalanceManager
) -> None:
    """An asset withdrawn to zero is a row of zeros (not hidden, not an error) and charts."""
    sim.withdraw("DOT", sim.free()["DOT"])
    await wait_until(
        lambda: (b := manager.sync_view().get_balance("DOT")) is not None and not b.balance
    )
    await open_page(page, dashboard, sim)
    await expect(cell(page, "DOT", "balance")).to_have_text(re.compile(r"^0(\.0+)?$"))
    await expect(cell(page, "DOT", "free")).to_have_text(re.compile(r"^0(\.0+)?$"))
    assert "zero" in (await row(page, "DOT").get_attribute("class") or "")
    await page.get_by_label("Asset").select_option("DOT")
    await expect(page.locator("#chart")).to_have_attribute("data-asset", "DOT")
    await expect(page.locator("#chart-summary")).to_contain_text("lowest 0")
    await expect(page.locator("#chart canvas")).to_be_visible()
    await shot(page, "06-zero-balance")


async def test_keyboard_and_screen_reader_basics(
    page: Page, dashboard: Dashboard, sim: SimulatedKraken
) -> None:
    """Headers, row headers, labels, landmarks and live regions; everything reachable by Tab."""
    await open_page(page, dashboard, sim)
    table = page.get_by_role("table", name=re.compile("Every asset held"))
    await expect(table).to_have_count(1)
    await expect(table.locator("caption")).to_contain_text("exact")
    for name in ("Asset", "Balance", "Free", "Held", "Earn", "Source", "Age", "State"):
        await expect(table.get_by_role("columnheader", name=name, exact=True)).to_have_count(1)
    for asset in sim.balances():
        await expect(table.get_by_role("rowheader", name=asset, exact=True)).to_have_count(1)
    await expect(page.get_by_role("combobox", name="Asset")).to_have_count(1)
    await expect(page.get_by_role("combobox", name="Window")).to_have_count(1)
    await expect(page.get_by_role("status")).to_contain_text("Live")
    await expect(page.get_by_role("log")).to_have_count(1)
    await expect(page.get_by_role("img", name=re.compile("Chart of"))).to_have_count(1)
    await expect(page.get_by_role("main")).to_have_count(1)
    assert await page.get_attribute("html", "lang") == "en"

    # Tab order: the skip link first, then the history controls, each showing focus.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to balances"
    reached = []
    for _ in range(4):
        await page.keyboard.press("Tab")
        reached.append(await page.evaluate("document.activeElement.id"))
    assert reached[:3] == ["history-asset", "history-hours", "history-reset"]
    # The asset picker works from the keyboard.
    await page.get_by_label("Asset").focus()
    before = await page.get_by_label("Asset").input_value()
    await page.keyboard.press("ArrowDown")
    after = await page.get_by_label("Asset").input_value()
    assert after != before
    await expect(page.locator("#chart")).to_have_attribute("data-asset", after)
    await shot(page, "07-keyboard")


async def test_the_page_resumes_after_its_stream_drops_without_losing_events(
    page: Page, dashboard: Dashboard, sim: SimulatedKraken, manager: BalanceManager
) -> None:
    """The stream dropped, events meanwhile: the page reconnects, shows each one exactly once."""
    await open_page(page, dashboard, sim)
    # The browser reports the stream cut off mid-way; nothing else may go wrong.
    page.allowed_errors = ("ERR_INCOMPLETE_CHUNKED_ENCODING",)  # type: ignore[attr-defined]
    assert dashboard.drop_clients() == 1
    sim.deposit("ETH", "1")
    sim.deposit("USDT", "250")
    await wait_until(lambda: manager.sync_view().get_balance("USDT").balance == Decimal("6250"))  # type: ignore[union-attr]
    await expect(cell(page, "USDT", "balance")).to_have_text("6250.0000", timeout=5000)
    await expect(cell(page, "ETH", "balance")).to_have_text("13.50000")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    log = page.locator("#event-log li")
    await expect(log.filter(has_text="ETH balance 12.50000 → 13.50000")).to_have_count(1)
    await expect(log.filter(has_text="USDT balance 6000.0000 → 6250.0000")).to_have_count(1)
    await shot(page, "08-resumed")


async def test_a_lost_server_is_shown_never_as_fresh_values(
    page: Page, manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """Server gone: the page says it is disconnected and no row keeps looking live."""
    dashboard = Dashboard(manager, stall_after=0)
    await dashboard.start()
    try:
        await open_page(page, dashboard, sim)
    finally:
        await dashboard.stop()
    page.errors_expected = True  # type: ignore[attr-defined]  # the browser logs the refusals
    await expect(page.locator("#connection")).not_to_have_attribute("data-state", "live")
    await expect(page.locator('#balance-rows tr[data-state="live"]')).to_have_count(0)
    await expect(page.locator('#balance-rows tr[data-state="unknown"]')).to_have_count(
        len(sim.balances())
    )
    await expect(cell(page, "BTC", "state")).to_contain_text("not receiving updates")
    await shot(page, "09-server-lost")


async def test_a_silent_server_is_noticed_by_the_page(
    page: Page, manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """No status push for stall_after seconds (the clock stands still): "Not updating"."""
    async with Dashboard(manager, stall_after=1) as dashboard:
        await open_page(page, dashboard, sim)
        await expect(page.locator("#connection")).to_have_attribute(
            "data-state", "stalled", timeout=4000
        )
        await expect(page.locator('#balance-rows tr[data-state="unknown"]')).to_have_count(
            len(sim.balances())
        )


async def test_a_shared_leader_shows_its_epoch_and_the_reservations_per_strategy(
    page: Page, manager: BalanceManager, sim: SimulatedKraken
) -> None:
    """The leader, its epoch and a table of exact reservations per strategy; when they cannot
    be read, the table says they are not known rather than keep the old ones.

    The shared block comes from a provider that answers from memory here (the dashboard
    reads a provider, never Redis): tests/shared/test_dashboard_serve.py runs the real one.
    """
    leader = {"role": "leader", "owner": "530e332a87634bba", "epoch": 7, "generation": "4660a1"}
    listing: list[Any] = [
        Funds("strategy-b", "USD", Decimal("100"), "held"),
        Funds("strategy-a", "USD", Decimal("250.123456789"), "committed"),
        Funds("strategy-a", "USD", Decimal("0.000000001"), "held"),
        Funds("strategy-a", "BTC", Decimal("0.01000000"), "held"),
    ]

    async def reservations() -> list[Any]:
        if not listing:
            raise SharedStateError("list", "Redis at redis://127.0.0.1:6379/0 unreachable")
        return listing

    provider = LeaderSharedStatus(lambda: leader, reservations, clock=manager.clock.time)
    async with Dashboard(manager, stall_after=0, shared_status=provider) as dashboard:
        await open_page(page, dashboard, sim)
        shared = page.locator("#shared")
        await expect(shared).to_contain_text("shared leader")
        await expect(shared).to_contain_text("530e332a87634bba")
        await expect(shared).to_contain_text("7")
        table = page.get_by_role("table", name=re.compile("Reservations per strategy"))
        await expect(table).to_be_visible()
        for name in ("Strategy", "Asset", "Reserved", "Reservations", "Committed"):
            await expect(table.get_by_role("columnheader", name=name, exact=True)).to_have_count(1)
        await expect(table.get_by_role("rowheader", name="strategy-a", exact=True)).to_have_count(2)
        usd = table.locator('tr[data-owner="strategy-a"][data-asset="USD"]')
        await expect(usd.locator('[data-field="reserved"]')).to_have_text("250.123456790")
        await expect(usd.locator('[data-field="count"]')).to_have_text("2")
        await expect(usd.locator('[data-field="committed"]')).to_have_text("1")
        btc = table.locator('tr[data-owner="strategy-a"][data-asset="BTC"]')
        await expect(btc.locator('[data-field="reserved"]')).to_have_text("0.01000000")
        await expect(table.locator('tr[data-owner="strategy-b"]')).to_have_count(1)
        await shot(page, "10-shared-leader")

        listing.clear()  # Redis unreachable from now on
        await dashboard.refresh_shared()
        await expect(table).to_have_attribute("data-state", "unknown")
        await expect(table.locator("tr[data-owner]")).to_have_count(0)
        await expect(table).to_contain_text("Not known now")
        await expect(shared).to_contain_text("unreachable")
        await shot(page, "11-shared-reservations-unknown")


@pytest_asyncio.fixture(loop_scope="module")
async def priced(sim: SimulatedKraken, clock: ManualClock) -> AsyncIterator[BalanceManager]:
    """A started manager that values from the simulator's prices (on the module's loop)."""
    async with streaming_manager(sim, clock, prices=True) as started:
        yield started


def usd(value: Decimal) -> str:
    """A value as the panel shows it: rounded to cents."""
    return display_amount(round_to(value, 2), 2)


async def test_the_portfolio_panel_shows_the_total_and_follows_a_deposit(
    page: Page, priced: BalanceManager, sim: SimulatedKraken, clock: ManualClock
) -> None:
    """The panel shows the total (live), each asset's value and share, and the chart; a deposit
    on the exchange changes the total without a reload, counted as a deposit, not the market;
    with the stream and REST down the total and the rows are marked stale."""
    before = await priced.portfolio("USD")
    async with Dashboard(priced, stall_after=0) as dashboard:
        await open_page(page, dashboard, sim)
        total = page.locator("#portfolio-total")
        await expect(page.locator("#portfolio-title")).to_have_text("Portfolio (USD)")
        await expect(total).to_have_text(f"{usd(before.total)} USD")
        await expect(total).to_have_attribute("data-state", "live")
        assert await total.get_attribute("title") == f"{before.total:f} USD (exact)"
        table = page.get_by_role("table", name=re.compile("What each asset held is worth"))
        for name in ("Asset", "Amount", "Price", "Value", "Allocation", "Price path", "State"):
            await expect(table.get_by_role("columnheader", name=name, exact=True)).to_have_count(1)
        btc = table.locator('tr[data-asset="BTC"]')
        await expect(btc.locator('[data-field="value"]')).to_have_text(
            usd(before.assets["BTC"].value_total or Decimal(0))
        )
        await expect(btc.locator('[data-field="path"]')).to_have_text("BTC→USD")
        await expect(btc).to_have_attribute("data-state", "live")
        await expect(table.locator('tr[data-asset="EUR"] [data-field="path"]')).to_have_text(
            "EUR→BTC→USD"
        )
        await expect(page.locator("#portfolio-chart canvas")).to_be_visible()
        await expect(page.get_by_role("img", name=re.compile("Portfolio value"))).to_have_count(1)

        await page.evaluate("window.__notReloaded = true")
        sim.deposit("BTC", "0.5")
        after = before.total + Decimal("0.5") * Decimal(60000)
        await expect(total).to_have_text(f"{usd(after)} USD", timeout=5000)
        await expect(total).to_have_attribute("data-state", "live")
        assert await page.evaluate("window.__notReloaded === true")
        await expect(page.locator("#portfolio-chart-summary")).to_contain_text(
            "1 deposit or withdrawal +30000.00, market 0.00", timeout=5000
        )
        await page.locator("#portfolio").scroll_into_view_if_needed()
        await shot(page, "12-portfolio-deposit")

        # Stream and REST down: the total and every valued row are marked stale, never fresh.
        sim.faults.http_error(times=None)
        sim.faults.drop_websocket(times=None)
        try:
            await drive(clock, 120, until=lambda: priced.serving_mode is ServingMode.CACHE)
            clock.advance(dashboard.tick_interval)  # the next status push
            await expect(total).to_have_attribute("data-state", "stale")
            await expect(page.locator("#portfolio-state")).to_contain_text("not fresh")
            await expect(table.locator('tr[data-state="live"]')).to_have_count(0)
            await expect(btc).to_have_attribute("data-state", "stale")
            await shot(page, "13-portfolio-stale")
        finally:
            sim.faults.clear()


# -- the README's picture ----------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def busy(clock: ManualClock) -> AsyncIterator[tuple[SimulatedKraken, BalanceManager]]:
    """A simulator with market activity (its bot trades on the account), and a manager that
    values the account from the simulator's prices (the picture shows the portfolio panel)."""
    simulator = SimulatedKraken(clock=clock, seed=3, market=True, market_interval=2.0)
    async with simulator, build_manager(simulator, clock, prices=True) as started:
        await wait_until(lambda: started.serving_mode is ServingMode.WEBSOCKET)
        yield simulator, started


async def test_overview_of_a_busy_account(
    page: Page, busy: tuple[SimulatedKraken, BalanceManager], clock: ManualClock
) -> None:
    """Ten minutes of market activity: the table, the chart and the log all show it."""
    sim, manager = busy
    async with Dashboard(manager, stall_after=0) as dashboard:
        # Steps shorter than the stream's heartbeat, so the stream never looks silent.
        sim.deposit("BTC", "0.25")
        await drive(clock, 300, step=0.5, io_pause=0.001)
        sim.withdraw("BTC", "0.1")
        await drive(clock, 300, step=0.5, io_pause=0.001)
        await open_page(page, dashboard, sim)
        await page.get_by_label("Asset").select_option("BTC")
        await page.get_by_label("Window").select_option("1")
        await expect(page.locator("#chart canvas")).to_be_visible()
        await expect(page.locator("#event-log li")).not_to_have_count(0)
        # The value chart holds one moment: its time axis spans minutes, not years.
        chart = page.locator("#portfolio-chart")
        await expect(chart).to_have_attribute("data-points", re.compile(r"[1-9]"))
        span = float(await chart.get_attribute("data-x-max") or "inf") - float(
            await chart.get_attribute("data-x-min") or "0"
        )
        assert span <= 3600, span
        path = await shot(page, "00-overview")
    if os.environ.get("BALANCE_MANAGER_UPDATE_SCREENSHOT") == "1":
        README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, README_IMAGE)


async def test_an_alert_shows_at_the_top_until_it_resolves(
    page: Page, dashboard: Dashboard, sim: SimulatedKraken, manager: BalanceManager
) -> None:
    """A firing alert is listed above the balances and logged; once resolved the list hides."""
    await open_page(page, dashboard, sim)
    monitor = manager.alerts
    assert monitor is not None
    await expect(page.locator("#alerts")).to_be_hidden()
    monitor.engine.remove_rule("low_balance")
    monitor.engine.add_rule(LowBalance({"DOT": "1000"}))
    try:
        monitor.evaluate_now()
        alerts = page.locator("#alert-list li")
        await expect(alerts).to_have_count(1)
        await expect(alerts.first).to_contain_text(
            "warning low_balance DOT: DOT free 250 is below 1000"
        )
        await expect(alerts.first).to_have_attribute("data-severity", "warning")
        await expect(page.locator("#event-log li").first).to_contain_text(
            "alert: warning low_balance DOT"
        )
        await shot(page, "10-alert")
    finally:
        monitor.engine.remove_rule("low_balance")
        monitor.engine.add_rule(LowBalance({}))
        monitor.evaluate_now()
    await expect(page.locator("#alerts")).to_be_hidden()
    await expect(page.locator("#event-log li").first).to_contain_text(
        "alert resolved: low_balance DOT"
    )
