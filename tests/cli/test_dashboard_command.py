"""`balance-manager dashboard`, and the dashboard of `make demo`."""

from __future__ import annotations

import asyncio
import errno
import re
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from tests.dashboard.helpers import streaming_manager

from balance_manager.cli.dashboard_command import open_dashboard, optional_dashboard
from balance_manager.cli.demo import DemoOptions, run_demo
from balance_manager.cli.main import main
from balance_manager.dashboard import TOKEN_ENV
from balance_manager.service.manager import BalanceManager
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, wait_until

WILDCARD = "0.0.0.0"  # noqa: S104 - the address whose binding must be refused


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_beyond_loopback_without_a_token_exits_2_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--host 0.0.0.0 without a token is refused before anything starts, in one line, exit 2."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert main(["dashboard", "--simulator", "--host", WILDCARD]) == 2
    line = one_line(capsys.readouterr().err)
    assert TOKEN_ENV in line
    assert WILDCARD in line


def test_a_short_token_is_refused_without_being_shown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token too short to be safe: exit 2; the message never shows it."""
    monkeypatch.setenv(TOKEN_ENV, "tiny-tok")
    assert main(["dashboard", "--simulator", "--host", WILDCARD]) == 2
    line = one_line(capsys.readouterr().err)
    assert "tiny-tok" not in line
    assert "at least 16 characters" in line


def test_without_credentials_it_suggests_the_simulator(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key in the environment and no --simulator: exit 2, naming both ways out."""
    for name in ("KRAKEN_API_KEY", "KRAKEN_API_SECRET", "KRAKEN_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["dashboard"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "no Kraken credentials" in line
    assert "dashboard --simulator" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["dashboard", "--port", "70000"],
        ["dashboard", "--port", "web"],
        ["dashboard", "--simulator", "--rest-url", "http://127.0.0.1:1"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A port out of range or a simulator given URLs: a usage error."""
    assert main(argv) == 2
    assert capsys.readouterr().err


@pytest.mark.network
@pytest.mark.asyncio
async def test_dashboard_serves_the_simulator_and_says_where(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dashboard --simulator` prints its loopback URL, serves the API there, and ends cleanly."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    running = asyncio.create_task(
        asyncio.to_thread(main, ["dashboard", "--simulator", "--port", "0", "--duration", "3"])
    )
    printed = ""

    def url_printed() -> bool:
        nonlocal printed
        printed += capsys.readouterr().out
        return "press Ctrl-C" in printed

    await wait_until(url_printed, within=20)
    found = re.search(r"dashboard of the simulator \(balances are not real\): (\S+)", printed)
    assert found, printed
    url = found.group(1)
    assert url.startswith("http://127.0.0.1:")
    async with aiohttp.ClientSession() as http, http.get(f"{url}api/status") as response:
        status = await response.json()
    assert status["exchange"] == "simulator"
    assert status["shared"]["mode"] == "single process"
    assert await asyncio.wait_for(running, 30) == 0


# -- the helpers, on a manual clock -------------------------------------------------------


@pytest_asyncio.fixture
async def manager(clock: ManualClock) -> AsyncIterator[BalanceManager]:
    async with SimulatedKraken(clock=clock, seed=2) as sim, streaming_manager(sim, clock) as m:
        yield m


@pytest.mark.network
@pytest.mark.asyncio
async def test_a_taken_port_falls_back_to_a_free_one(manager: BalanceManager) -> None:
    """The preferred port in use: a free one is taken (or, when asked, the error is raised)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        async with open_dashboard(manager, port=taken) as dashboard:
            assert dashboard.port not in (0, taken)
        with pytest.raises(OSError, match="in use") as info:
            async with open_dashboard(manager, port=taken, any_port_if_taken=False):
                pass
        assert info.value.errno == errno.EADDRINUSE
        async with optional_dashboard(manager, wanted=False) as none:
            assert none is None


@pytest.mark.network
@pytest.mark.asyncio
async def test_the_demo_says_where_its_dashboard_is() -> None:
    """`make demo` shows the dashboard's URL in its title and its log, and stops it after."""
    from tests.cli.test_demo import RecordingView

    view = RecordingView()
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(run_demo(DemoOptions(duration=30, seed=4), view, stop=stop), 20)
    url = re.search(
        r"dashboard: open (http://127\.0\.0\.1:\d+/) in a browser", "\n".join(view.events)
    )
    assert url, view.events
    assert url.group(1) in view.frames[0].title
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http, http.get(url.group(1)):
            pass
    quiet = RecordingView()
    await asyncio.wait_for(
        run_demo(DemoOptions(duration=30, seed=4, dashboard=False), quiet, stop=stop), 20
    )
    assert not any("dashboard" in line for line in quiet.events)
    assert "dashboard" not in quiet.frames[0].title
