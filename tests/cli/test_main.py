"""The command line: every command through ``main([...])``, exit codes, no secret in output."""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from tests.markdown_blocks import python_blocks
from tests.storage.backends import Backend

from balance_manager import __version__
from balance_manager.cli.main import CSV_COLUMNS, build_parser, main
from balance_manager.core.amounts import EXACT_CONTEXT
from balance_manager.core.models import Balance, Source
from balance_manager.core.trends import volatility
from balance_manager.credentials import Credentials
from balance_manager.service.history import BalanceHistory
from balance_manager.simulator import SimulatedKraken
from balance_manager.storage.base import StoredRow
from balance_manager.storage.sqlite import HistoryStore
from balance_manager.testing import ManualClock, wait_until

#: base64 of 64 bytes: shaped like a Kraken secret, known to no exchange.
FAKE_SECRET = (
    "c29tZS1zZWNyZXRzb21lLXNlY3JldHNvbWUtc2VjcmV0c29tZS1zZWNyZXRzb21lLXNlY3JldHNvbWUtc2Vjcg=="
)

CREDENTIAL_VARS = ("KRAKEN_API_KEY", "KRAKEN_API_SECRET", "KRAKEN_CREDENTIALS_FILE")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real credentials or options leak in; state files go to a temporary folder."""
    for name in CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("BALANCE_MANAGER_CONFIG", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[SimulatedKraken]:
    """A simulator on loopback (real clock: the CLI runs its own event loop in a thread)."""
    async with SimulatedKraken(seed=5, tier="pro") as simulator:
        yield simulator


@pytest.fixture
def tokens(sim: SimulatedKraken, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every WebSocket token the simulator issues (to check none is printed)."""
    issued: list[str] = []
    original = sim.auth.issue_token

    def recording(api_key: str, now: float) -> str:
        token = original(api_key, now)
        issued.append(token)
        return token

    monkeypatch.setattr(sim.auth, "issue_token", recording)
    return issued


@pytest.fixture
def sim_keys(sim: SimulatedKraken, monkeypatch: pytest.MonkeyPatch) -> SimulatedKraken:
    """The simulator's credential in the environment, as a user would set Kraken's."""
    monkeypatch.setenv("KRAKEN_API_KEY", sim.api_key)
    monkeypatch.setenv("KRAKEN_API_SECRET", sim.api_secret)
    return sim


async def run_cli(*argv: str) -> int:
    """``main(argv)`` in a worker thread, so the test's loop keeps serving the simulator."""
    return await asyncio.wait_for(asyncio.to_thread(main, list(argv)), timeout=60)


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "options.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text


def assert_one_line_error(err: str, expected: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expected in lines[0]
    assert "Traceback" not in err


# -- global options and usage --------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the version and exits 0."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"balance-manager {__version__}"


def test_python_dash_m_version() -> None:
    """`python -m balance_manager --version` works as a process."""
    done = subprocess.run(
        [sys.executable, "-m", "balance_manager", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"balance-manager {__version__}"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a command, usage goes to stderr and the exit code is 2."""
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "usage: balance-manager" in err
    assert "a command is required" in err


@pytest.mark.parametrize(
    "argv",
    [["demo", "--duration", "-1"], ["demo", "--seed", "x"], ["history"], ["nope"]],
    ids=["negative-duration", "bad-seed", "missing-asset", "unknown-command"],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """argparse's own usage errors exit 2."""
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("hours", ["1e300", "1e-12", "nan"])
def test_absurd_history_windows_are_usage_errors(
    hours: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--hours outside 1 ms to 10 years is refused by argparse (exit 2), saying the range."""
    assert main(["history", "XBT", "--hours", hours, "--db", str(tmp_path / "none.db")]) == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    assert "--hours" in err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """--help names the five commands and the exit codes."""
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "watch", "balances", "portfolio", "history", "simulator"):
        assert command in out
    assert "130 interrupted" in out


# -- configuration errors ------------------------------------------------------------------


def test_bad_config_option_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid option in --config is one line naming it, and exit code 2."""
    config = write_config(tmp_path, "cache_max_size = 0\n")
    assert main(["--config", config, "history", "BTC"]) == 2
    assert_one_line_error(
        capsys.readouterr().err,
        "invalid config option cache_max_size=0: must be between 1 and 1,000,000",
    )


def test_unreadable_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config file that does not exist is a configuration error."""
    assert main(["--config", str(tmp_path / "missing.toml"), "demo"]) == 2
    assert_one_line_error(capsys.readouterr().err, "config_file")


def test_bad_option_in_environment_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A BALANCE_MANAGER_* variable with a bad value is reported like a bad config file."""
    monkeypatch.setenv("BALANCE_MANAGER_WEBSOCKET_TIMEOUT", "soon")
    assert main(["history", "BTC"]) == 2
    assert_one_line_error(capsys.readouterr().err, "websocket_timeout")


@pytest.mark.parametrize("command", ["watch", "balances"])
def test_no_credentials_exits_2_with_a_hint(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without credentials, watch and balances say so in one line, suggest the demo, exit 2."""
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, "no Kraken credentials")
    assert "balance-manager demo" in err
    assert "balance-manager simulator" in err


def test_half_set_credentials_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key without a secret is a configuration error naming the missing variable."""
    monkeypatch.setenv("KRAKEN_API_KEY", "abc")
    assert main(["balances"]) == 2
    assert_one_line_error(capsys.readouterr().err, "KRAKEN_API_SECRET")


# -- balances ------------------------------------------------------------------------------


@pytest.mark.network
@pytest.mark.asyncio
async def test_balances_table(
    sim_keys: SimulatedKraken, capsys: pytest.CaptureFixture[str]
) -> None:
    """`balances` prints every asset with its exact balance and free amount, and whose they are."""
    sim_keys.place_order("BTC/USD", "buy", "limit", "0.01", price="30000")
    assert await run_cli("balances", "--rest-url", sim_keys.rest_url) == 0
    captured = capsys.readouterr()
    assert "Balances on simulator at" in captured.out  # the simulator's key: never real money
    for asset, amount in sim_keys.balances().items():
        assert asset in captured.out
        assert f"{amount.normalize():f}" in captured.out
    assert f"{sim_keys.free()['USD'].normalize():f}" in captured.out
    assert_no_secret(captured.out + captured.err, [sim_keys.api_secret])
    assert captured.err == ""


@pytest.mark.network
@pytest.mark.asyncio
async def test_portfolio_table_values_every_asset(
    sim_keys: SimulatedKraken, capsys: pytest.CaptureFixture[str]
) -> None:
    """`portfolio` shows each asset's value, allocation and price path, and the total."""
    argv = ("portfolio", "--rest-url", sim_keys.rest_url, "--ws-url", sim_keys.ws_url)
    assert await run_cli(*argv) == 0
    out = capsys.readouterr().out
    assert "Portfolio on simulator in USD" in out
    btc = next(line for line in out.splitlines() if line.startswith("│ BTC"))
    cells = [cell.strip() for cell in btc.split("│")[1:-1]]
    value = sim_keys.balances()["BTC"] * sim_keys.price("BTC/USD")
    assert cells[3] == f"{value:.2f}"
    assert cells[5] == "BTC→USD"
    assert "EUR→BTC→USD" in out
    assert "total " in out


@pytest.mark.network
@pytest.mark.asyncio
async def test_portfolio_json_is_exact_and_names_unvalued(
    sim_keys: SimulatedKraken, capsys: pytest.CaptureFixture[str]
) -> None:
    """`portfolio --quote EUR --json`: exact strings, and assets without a path are unvalued."""
    argv = ("portfolio", "--quote", "eur", "--json", "--rest-url", sim_keys.rest_url)
    assert await run_cli(*argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["quote"] == "EUR"
    assert set(data["unvalued"]) == {"DOT", "USDT"}
    rows = {row["asset"]: row for row in data["assets"]}
    btc = rows["BTC"]
    assert Decimal(btc["value"]) == sim_keys.balances()["BTC"] * sim_keys.price("BTC/EUR")
    assert rows["DOT"]["value"] is None
    values = [Decimal(row["value"]) for row in data["assets"] if row["value"] is not None]
    with localcontext(EXACT_CONTEXT):
        assert Decimal(data["total"]) == sum(values, Decimal(0))
    assert "E" not in btc["value"]


@pytest.mark.network
@pytest.mark.asyncio
async def test_portfolio_unknown_quote_exits_2(
    sim_keys: SimulatedKraken, capsys: pytest.CaptureFixture[str]
) -> None:
    """A quote currency no pair prices is one line naming it, exit code 2."""
    argv = ("portfolio", "--quote", "XYZ", "--rest-url", sim_keys.rest_url)
    assert await run_cli(*argv) == 2
    assert_one_line_error(capsys.readouterr().err, "'XYZ'")


@pytest.mark.network
@pytest.mark.asyncio
async def test_balances_table_shows_each_asset_at_its_display_decimals(
    sim_keys: SimulatedKraken, capsys: pytest.CaptureFixture[str]
) -> None:
    """REST's ten-decimal amounts and 0E-10 holds read plain, at Kraken's display decimals."""
    assert await run_cli("balances", "--rest-url", sim_keys.rest_url) == 0
    out = capsys.readouterr().out
    btc = next(line for line in out.splitlines() if "BTC" in line)
    assert [cell.strip() for cell in btc.split("│")[2:5]] == ["1.24350", "1.24350", "0.00000"]
    usd = next(line for line in out.splitlines() if "USD " in line)
    assert [cell.strip() for cell in usd.split("│")[2:4]] == ["25435.21", "25435.21"]
    assert "E-" not in out
    assert "1.2435000000" not in out


@pytest.mark.network
@pytest.mark.asyncio
async def test_balances_json_is_exact(
    sim_keys: SimulatedKraken, capsys: pytest.CaptureFixture[str]
) -> None:
    """`balances --json` parses, and every amount is a string equal to the exchange's value."""
    sim_keys.place_order("BTC/USD", "buy", "limit", "0.01", price="30000")
    assert await run_cli("balances", "--json", "--rest-url", sim_keys.rest_url) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert set(data) == set(sim_keys.balances())
    for asset, amount in sim_keys.balances().items():
        row = data[asset]
        assert isinstance(row["balance"], str)
        assert Decimal(row["balance"]) == amount
        assert Decimal(row["hold_trade"]) == sim_keys.holds().get(asset, Decimal(0))
        assert Decimal(row["free"]) == sim_keys.free()[asset]
        assert "E" not in row["balance"]
        assert row["source"] == "rest"
    assert_no_secret(captured.out + captured.err, [sim_keys.api_secret])


@pytest.mark.network
@pytest.mark.asyncio
async def test_bad_key_exits_3(
    sim: SimulatedKraken, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key the exchange does not know: `authentication failed: EAPI:Invalid key`, exit 3."""
    monkeypatch.setenv("KRAKEN_API_KEY", "not-a-key-the-exchange-knows")
    monkeypatch.setenv("KRAKEN_API_SECRET", sim.api_secret)
    assert await run_cli("balances", "--rest-url", sim.rest_url) == 3
    captured = capsys.readouterr()
    assert_one_line_error(captured.err, "authentication failed: EAPI:Invalid key")
    assert_no_secret(captured.out + captured.err, [sim.api_secret])


@pytest.mark.network
@pytest.mark.asyncio
async def test_bad_key_with_verbose_shows_the_traceback_but_no_secret(
    sim: SimulatedKraken, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """-v adds the traceback and logs, still without the secret."""
    monkeypatch.setenv("KRAKEN_API_KEY", "not-a-key-the-exchange-knows")
    monkeypatch.setenv("KRAKEN_API_SECRET", sim.api_secret)
    assert await run_cli("-v", "balances", "--rest-url", sim.rest_url) == 3
    captured = capsys.readouterr()
    assert "Traceback" in captured.err
    assert "authentication failed: EAPI:Invalid key" in captured.err
    assert_no_secret(captured.out + captured.err, [sim.api_secret])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.network
def test_unreachable_exchange_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An exchange that cannot be reached is one line and exit code 1."""
    monkeypatch.setenv("KRAKEN_API_KEY", "some-key")
    monkeypatch.setenv(
        "KRAKEN_API_SECRET",
        FAKE_SECRET,
    )
    config = write_config(tmp_path, "rest_max_retries = 0\n")
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["--config", config, "balances", "--rest-url", url]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err, "no answer from the exchange")
    assert FAKE_SECRET not in err


def test_bad_url_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A REST URL that is not http(s) is refused as configuration (exit 2)."""
    monkeypatch.setenv("KRAKEN_API_KEY", "some-key")
    monkeypatch.setenv(
        "KRAKEN_API_SECRET",
        FAKE_SECRET,
    )
    assert main(["balances", "--rest-url", "ftp://example.com"]) == 2
    assert_one_line_error(capsys.readouterr().err, "rest_url")


# -- watch, then history -------------------------------------------------------------------


@pytest.fixture
def kraken_shaped_keys(sim: SimulatedKraken, monkeypatch: pytest.MonkeyPatch) -> Credentials:
    """A key shaped like a real Kraken key (not the simulator's ``sim-``), in the environment.

    A manager cannot tell it from a real account, so it keeps history as for one.
    """
    key = base64.b64encode(b"k" * 42).decode()
    credentials = Credentials.of(key, sim.api_secret)
    sim.add_key(credentials=credentials)
    monkeypatch.setenv("KRAKEN_API_KEY", credentials.api_key)
    monkeypatch.setenv("KRAKEN_API_SECRET", sim.api_secret)
    return credentials


@pytest.mark.network
@pytest.mark.asyncio
async def test_watch_against_an_unreachable_exchange_refuses_old_values_as_current(
    sim: SimulatedKraken,
    kraken_shaped_keys: Credentials,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Old history and no exchange: `watch` says so and exits 1, unless --accept-stale."""
    first = await run_cli(
        "watch", "--rest-url", sim.rest_url, "--ws-url", sim.ws_url, "--duration", "1", "--plain"
    )
    assert first == 0
    capsys.readouterr()
    rest_url, ws_url = sim.rest_url, sim.ws_url
    await sim.stop()  # the exchange is gone; the account's history file remains
    refused = await run_cli(
        "watch", "--rest-url", rest_url, "--ws-url", ws_url, "--duration", "1", "--plain"
    )
    err = capsys.readouterr().err
    assert refused == 1
    assert_one_line_error(err, "cannot reach the exchange")
    assert "last known values from" in err
    assert "--accept-stale" in err
    accepted = await run_cli(
        "watch",
        "--rest-url",
        rest_url,
        "--ws-url",
        ws_url,
        "--duration",
        "1",
        "--plain",
        "--accept-stale",
    )
    out = capsys.readouterr().out
    assert accepted == 0
    assert "exchange unreachable" in out
    assert "last known values from" in out
    assert "cache" in out


@pytest.mark.network
@pytest.mark.asyncio
async def test_watch_shows_live_updates_and_records_history(
    sim: SimulatedKraken,
    kraken_shaped_keys: Credentials,
    tokens: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`watch --plain` streams a deposit live, prints no secret or token, and records history.

    History goes to the account's own file under XDG_STATE_HOME (its key's fingerprint).
    """
    watching = asyncio.create_task(
        run_cli(
            "watch",
            "--rest-url",
            sim.rest_url,
            "--ws-url",
            sim.ws_url,
            "--duration",
            "2.5",
            "--plain",
        )
    )
    await wait_until(lambda: sim.connections > 0 and bool(tokens), within=10)
    sim.deposit("BTC", "0.5")
    assert await watching == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "serving=websocket" in out
    assert "BTC balance 1.24350 → 1.74350 (+0.50000) via websocket" in out
    assert "Summary (ran for " in out
    # The start (nothing → REST → stream) is neither a fallback nor a recovery. (On
    # the real clock of a loaded machine the stream may stall long enough to look
    # silent: then a fallback and its recovery are real, and must come in pairs.)
    assert "(was cache)" not in out
    fallbacks = re.search(r"^  fallbacks: +(\d+)$", out, re.M)
    recoveries = re.search(r"^  recoveries: +(\d+)$", out, re.M)
    assert fallbacks is not None
    assert recoveries is not None
    assert int(recoveries.group(1)) == int(fallbacks.group(1))
    if fallbacks.group(1) == "0":
        assert "recovered" not in out
    assert tokens
    assert_no_secret(out + captured.err, [sim.api_secret, *tokens])
    assert captured.err == ""

    # The watch kept the history in the account's default database (under XDG_STATE_HOME).
    account = kraken_shaped_keys.fingerprint
    assert (tmp_path / "state" / "balance-manager" / account / "history.sqlite3").exists()
    assert kraken_shaped_keys.api_key not in str(list((tmp_path / "state").rglob("*")))
    assert await run_cli("history", "XBT", "--hours", "1") == 0
    history_out = capsys.readouterr().out
    assert "BTC: 2 entries in the last 1 h" in history_out
    assert "newest" not in history_out  # every entry is listed
    assert "1.74350" in history_out
    assert "trend: increasing" in history_out


@pytest.mark.network
@pytest.mark.asyncio
async def test_watch_against_an_unreachable_exchange_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`watch` that cannot read any balance says why in one line and exits 1."""
    monkeypatch.setenv("KRAKEN_API_KEY", "some-key")
    monkeypatch.setenv(
        "KRAKEN_API_SECRET",
        FAKE_SECRET,
    )
    config = write_config(tmp_path, "rest_max_retries = 0\nhistory_db_path = ':memory:'\n")
    port = free_port()
    code = await run_cli(
        "--config",
        config,
        "watch",
        "--rest-url",
        f"http://127.0.0.1:{port}",
        "--ws-url",
        f"ws://127.0.0.1:{port}/v2",
        "--duration",
        "1",
    )
    assert code == 1
    assert_one_line_error(capsys.readouterr().err, "cannot read balances from http://127.0.0.1")


# -- history -------------------------------------------------------------------------------


def make_history_db(path: Path, balances: list[str], account: str = "0123456789abcdef") -> None:
    """A history database of ``account`` with one BTC entry per minute, ending now."""

    async def fill() -> None:
        now = time.time()
        store = HistoryStore(str(path), account=account)
        history = BalanceHistory(store=store, clock=ManualClock(start=now))
        for index, amount in enumerate(balances):
            at = now - 60.0 * (len(balances) - index)
            history.record(
                Balance(asset="BTC", balance=Decimal(amount), source=Source.REST, received_at=at)
            )
        await history.close()

    asyncio.run(fill())


def test_history_of_a_file_with_several_accounts_needs_to_know_whose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without credentials, `history` of a file holding two accounts refuses to guess."""
    db = tmp_path / "history.sqlite3"
    make_history_db(db, ["1", "2"], account="aaaaaaaaaaaaaaaa")
    make_history_db(db, ["550", "560"], account="bbbbbbbbbbbbbbbb")
    assert main(["history", "BTC", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "2 accounts" in err
    assert "KRAKEN_API_KEY" in err
    credentials = Credentials.of("some-key", FAKE_SECRET)
    make_history_db(db, ["7", "8"], account=credentials.fingerprint)
    monkeypatch.setenv("KRAKEN_API_KEY", "some-key")
    monkeypatch.setenv("KRAKEN_API_SECRET", FAKE_SECRET)
    assert main(["history", "BTC", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "550" not in out
    assert "1.5" not in out
    assert "8" in out


def test_history_prints_entries_chart_and_trend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`history` lists the newest entries exactly, draws a chart, and gives the trend."""
    db = tmp_path / "history.sqlite3"
    make_history_db(db, ["1", "1.5", "2", "2.00000001", "3"])
    assert main(["history", "XXBT", "--db", str(db), "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "BTC: 5 entries in the last 24 h (newest 2 shown)" in out
    assert "2.00000001" in out
    assert "+0.99999999" in out
    assert "1.5" not in out.split("newest 2")[1].split("chart")[0]
    assert "chart  ▁▂▄▄█  (min 1.00000, max 3.00000)" in out  # BTC's 5 display decimals
    assert "trend: increasing" in out
    assert "change +2.00000 (+200.00%) over 5 points" in out


def test_history_volatility_is_a_sane_figure_after_a_dust_balance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A history that starts from a dust value gives a volatility people can read."""
    db = tmp_path / "history.sqlite3"
    balances = ["0.00000001", "92.2", "92.3", "92.1"]
    make_history_db(db, balances)
    assert main(["history", "BTC", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    expected = volatility([Decimal(b) for b in balances])
    assert expected is not None
    assert f"volatility {expected * 100:.2f}% per change" in out
    assert expected < 1
    assert "change +92.09999999 (more than 100× the start)" in out
    assert "e+" not in out
    assert "e-" not in out


def test_history_title_counts_entries_and_says_newest_only_when_it_cuts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One entry is 'entry'; 'newest N shown' appears only when more entries than N exist."""
    db = tmp_path / "history.sqlite3"
    make_history_db(db, ["1.5"])
    assert main(["history", "BTC", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].rstrip() == "BTC: 1 entry in the last 24 h"
    assert "newest" not in out


def test_history_of_an_asset_never_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An asset without entries is said so, with the assets that have some (exit 0)."""
    db = tmp_path / "history.sqlite3"
    make_history_db(db, ["1"])
    assert main(["history", "ETH", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "No history of ETH in the last 24 h (assets recorded: BTC)" in out
    assert "trend: not enough entries" in out


def test_closed_output_pipe_ends_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """When the output's reader goes away (`| head`), the command exits 1 without error text."""
    db = tmp_path / "history.sqlite3"
    make_history_db(db, ["1", "2"])
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as closed_pipe, monkeypatch.context() as patch:
        patch.setattr(sys, "stdout", closed_pipe)
        assert main(["history", "BTC", "--db", str(db)]) == 1
    assert capsys.readouterr().err == ""


def test_history_without_a_database_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database that does not exist is one line and exit 1 (nothing is created)."""
    missing = tmp_path / "none.sqlite3"
    assert main(["history", "BTC", "--db", str(missing)]) == 1
    assert_one_line_error(capsys.readouterr().err, "no history database at")
    assert not missing.exists()


def test_history_of_a_broken_database_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is not a history database is reported in one line, exit 1."""
    broken = tmp_path / "broken.sqlite3"
    broken.write_text("not a database", encoding="utf-8")
    assert main(["history", "BTC", "--db", str(broken)]) == 1
    assert_one_line_error(capsys.readouterr().err, "history database")


def test_history_when_history_is_not_persisted_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With history_db_path off and no --db there is nothing to read: exit 2."""
    monkeypatch.setenv("BALANCE_MANAGER_HISTORY_DB_PATH", "none")
    assert main(["history", "BTC"]) == 2
    assert_one_line_error(capsys.readouterr().err, "pass --db PATH")


# -- simulator -----------------------------------------------------------------------------


class InterruptWhenReady:
    """A text stream that presses Ctrl-C once the simulator has printed its last line."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        self.sink.write(text)
        if "market" in text:
            # Only press Ctrl-C when the command's own handler is in place.
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
            signal.raise_signal(signal.SIGINT)
        return len(text)

    def flush(self) -> None:
        self.sink.flush()


@pytest.mark.network
def test_simulator_runs_until_ctrl_c(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`simulator` prints its URLs and test credential, then stops cleanly on Ctrl-C (exit 130)."""
    from balance_manager.simulator.server import cli as simulator_cli

    real_run = simulator_cli.run
    seen: dict[str, Any] = {}

    async def run(args: Any, *, out: Any = None, stop: Any = None) -> int:
        seen["args"] = args
        return await real_run(args, out=InterruptWhenReady(out), stop=stop)

    monkeypatch.setattr(simulator_cli, "run", run)
    assert main(["simulator", "--seed", "9", "--no-market"]) == 130
    out = capsys.readouterr().out
    assert "REST base URL : http://127.0.0.1:" in out
    assert "API secret    : " in out  # printing the simulator's own key is its purpose
    assert seen["args"].seed == 9
    assert seen["args"].market is False
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- docs ----------------------------------------------------------------------------------


def test_docs_describe_every_command_and_exit_code() -> None:
    """docs/cli.md covers each command, each exit code and each credential variable."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    for word in ("demo", "watch", "balances", "history", "simulator", "--config", "--verbose"):
        assert f"`{word}" in doc or f"balance-manager {word}" in doc, word
    for code in ("0", "1", "2", "3", "130"):
        assert f"| {code} " in doc, code
    for name in (*CREDENTIAL_VARS, "BALANCE_MANAGER_CONFIG"):
        assert name in doc
    assert python_blocks(Path(__file__).resolve().parents[2] / "docs" / "cli.md")


@pytest.mark.parametrize(
    ("command", "heading"),
    [
        ("dashboard", "## `balance-manager dashboard`"),
        ("serve", "## `balance-manager serve` and `balance-manager reservations`"),
    ],
)
def test_the_options_tables_list_every_option(command: str, heading: str) -> None:
    """The options table of the command's section in docs/cli.md names its options, all of them."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    section = doc.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    documented = {
        option
        for first in re.findall(r"^\| (`--[^|]*) \|", section, re.M)
        for option in re.findall(r"--[\w-]+", first)
    }
    subcommands = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    parser = subcommands.choices[command]
    options = {o for a in parser._actions for o in a.option_strings if o.startswith("--")}
    assert documented == options - {"--help"}


# -- errors that name their cause, in a real process with warnings as errors --------------------


def run_process(
    *argv: str, env: dict[str, str], timeout: float = 90.0
) -> subprocess.CompletedProcess[str]:
    """``python -W error -m balance_manager ARGV`` with ``PYTHONWARNINGS=error``."""
    environ = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    environ.update({"PYTHONWARNINGS": "error", "PYTHONDEVMODE": "0"}, **env)
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "balance_manager", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=environ,
    )


def assert_clean_stderr(err: str) -> None:
    """No leaked session or connector, no ignored exception, no warning of any kind."""
    for noise in ("Unclosed", "unclosed", "Exception ignored", "Warning", "Traceback"):
        assert noise not in err, err


@pytest.mark.network
@pytest.mark.parametrize("command", ["balances", "watch"])
def test_a_malformed_secret_is_refused_before_any_connection(command: str, tmp_path: Path) -> None:
    """KRAKEN_API_SECRET=garbage: exit 2 at once, naming api_secret, and no socket was opened."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        urls = ["--rest-url", f"http://127.0.0.1:{port}"]
        if command == "watch":
            urls += ["--ws-url", f"ws://127.0.0.1:{port}/v2", "--duration", "1", "--plain"]
        done = run_process(
            command,
            *urls,
            env={
                "KRAKEN_API_KEY": "some-key",
                "KRAKEN_API_SECRET": "garbage",
                "XDG_STATE_HOME": str(tmp_path),
            },
        )
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected: the secret was checked first
    assert done.returncode == 2, done.stderr
    assert_one_line_error(done.stderr, "api_secret")
    assert "not valid base64" in done.stderr
    assert "garbage" not in done.stderr + done.stdout
    assert_clean_stderr(done.stderr)


@pytest.mark.network
@pytest.mark.parametrize("command", ["balances", "watch"])
def test_a_refused_connection_is_named_in_one_line(command: str, tmp_path: Path) -> None:
    """With nothing listening, the one error line says the connection was refused, by whom."""
    port = free_port()
    urls = ["--rest-url", f"http://127.0.0.1:{port}"]
    if command == "watch":
        urls += ["--ws-url", f"ws://127.0.0.1:{port}/v2", "--duration", "1", "--plain"]
    secret = FAKE_SECRET
    done = run_process(
        command,
        *urls,
        env={
            "KRAKEN_API_KEY": "some-key",
            "KRAKEN_API_SECRET": secret,
            "XDG_STATE_HOME": str(tmp_path),
        },
    )
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("balance-manager:")]
    assert len(errors) == 1, done.stderr
    assert f"connection refused by 127.0.0.1:{port}" in errors[0]
    assert not errors[0].startswith("balance-manager: circuit")
    assert secret not in done.stderr + done.stdout
    assert_clean_stderr(done.stderr)


@pytest.mark.network
@pytest.mark.asyncio
async def test_tls_against_a_plain_http_port_is_named(sim: SimulatedKraken, tmp_path: Path) -> None:
    """An https:// URL to a plain-HTTP server fails naming the TLS handshake."""
    url = sim.rest_url.replace("http://", "https://")
    done = await asyncio.to_thread(
        run_process,
        "balances",
        "--rest-url",
        url,
        env={
            "KRAKEN_API_KEY": sim.api_key,
            "KRAKEN_API_SECRET": sim.api_secret,
            "XDG_STATE_HOME": str(tmp_path),
            "BALANCE_MANAGER_REST_MAX_RETRIES": "0",
        },
    )
    assert done.returncode == 1, done.stderr
    assert_one_line_error(done.stderr, f"TLS handshake with {url.removeprefix('https://')} failed")
    assert_clean_stderr(done.stderr)


@pytest.mark.network
@pytest.mark.asyncio
async def test_a_wrong_key_fails_authentication_without_leaking_a_session(
    sim: SimulatedKraken, tmp_path: Path
) -> None:
    """`watch` with a key the exchange does not know: exit 3, one line, nothing left open."""
    done = await asyncio.to_thread(
        run_process,
        "watch",
        "--rest-url",
        sim.rest_url,
        "--ws-url",
        sim.ws_url,
        "--duration",
        "1",
        "--plain",
        env={
            "KRAKEN_API_KEY": "not-a-key-the-exchange-knows",
            "KRAKEN_API_SECRET": sim.api_secret,
            "XDG_STATE_HOME": str(tmp_path),
        },
    )
    assert done.returncode == 3, done.stderr
    assert_one_line_error(done.stderr, "authentication failed: EAPI:Invalid key")
    assert_clean_stderr(done.stderr)


@pytest.mark.network
def test_simulator_port_in_use_is_a_one_line_balance_manager_error(tmp_path: Path) -> None:
    """A busy port is reported in the documented `balance-manager:` format, exit 1."""
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = run_process("simulator", "--port", str(port), env={"XDG_STATE_HOME": str(tmp_path)})
    assert done.returncode == 1, done.stderr
    assert_one_line_error(done.stderr, f"cannot listen on 127.0.0.1:{port}")
    assert done.stderr.startswith("balance-manager: ")
    assert_clean_stderr(done.stderr)


@pytest.mark.network
@pytest.mark.parametrize("command", ["watch", "balances"])
def test_ctrl_c_while_the_exchange_hangs_at_start_ends_at_once_leaving_nothing_open(
    command: str, tmp_path: Path
) -> None:
    """One Ctrl-C during the first REST call ends the start: exit 130, one line, nothing open."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        environ = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
        environ.update(
            PYTHONWARNINGS="error",
            XDG_STATE_HOME=str(tmp_path),
            KRAKEN_API_KEY="some-key",
            KRAKEN_API_SECRET="c29tZS1zZWNyZXRzb21lLXNlY3JldHNvbWUtc2VjcmV0c29tZS1zZWNyZXRzb21l"
            "LXNlY3JldHNvbWUtc2Vjcg==",
        )
        urls = ["--rest-url", f"http://127.0.0.1:{port}"]
        if command == "watch":
            urls += ["--ws-url", f"ws://127.0.0.1:{port}/v2", "--plain"]
        process = subprocess.Popen(
            [sys.executable, "-W", "error", "-m", "balance_manager", command, *urls],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
        )
        silent.settimeout(60)
        connection, _ = silent.accept()  # the first REST call is on its way
        with connection:
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=30)  # not the minute of retries and timeouts
    assert process.returncode == 130, err
    assert_one_line_error(err, "interrupted")
    assert_clean_stderr(err)


# -- history on either backend, and its CSV export ---------------------------------------------


def fill_history(
    backend: Backend, rows: list[StoredRow], account: str = "aaaaaaaaaaaaaaaa"
) -> None:
    """Store ``rows`` for ``account`` in ``backend``'s database."""

    async def fill() -> None:
        async with backend.store(account) as store:
            await store.append_many(rows)

    asyncio.run(fill())


def test_history_and_its_csv_export_work_on_either_backend(
    history_backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    """`history --db URL` reads SQLite or PostgreSQL; `--export csv` writes exact amounts."""
    now = time.time()
    rows = [
        StoredRow("BTC", now - 7200.0, Decimal(5), Source.REST, None),  # before the window
        StoredRow("BTC", now - 600.0, Decimal("1E-8"), Source.WEBSOCKET, "L-1"),
        StoredRow("BTC", now - 300.0, Decimal("1234567890.123456789012345678"), Source.REST),
        StoredRow("BTC", now - 60.0, Decimal("1E+15"), Source.WEBSOCKET, "L-3"),
        StoredRow("ETH", now - 60.0, Decimal(7), Source.WEBSOCKET, "L-4"),
    ]
    fill_history(history_backend, rows)
    assert main(["history", "XBT", "--db", history_backend.url, "--hours", "1"]) == 0
    out = capsys.readouterr().out
    assert "BTC: 3 entries in the last 1 h" in out
    assert "1000000000000000.00000" in out  # BTC's 5 display decimals, nothing rounded
    assert "change +999999999999999.99999999" in out

    assert (
        main(["history", "BTC", "--db", history_backend.url, "--hours", "1", "--export", "csv"])
        == 0
    )
    lines = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert tuple(lines[0]) == CSV_COLUMNS
    assert [line[3] for line in lines[1:]] == [
        "0.00000001",
        "1234567890.123456789012345678",
        "1000000000000000",
    ]
    assert [line[4] for line in lines[1:]] == [
        "-4.99999999",  # against the entry before the window
        "1234567890.123456779012345678",
        "999998765432109.876543210987654322",  # 33 digits: exact, not rounded to 28
    ]
    assert [line[5] for line in lines[1:]] == ["websocket", "rest", "websocket"]
    assert [line[6] for line in lines[1:]] == ["L-1", "", "L-3"]
    assert [float(line[1]) for line in lines[1:]] == pytest.approx([r.timestamp for r in rows[1:4]])
    assert {line[2] for line in lines[1:]} == {"BTC"}
    assert lines[1][0].endswith("+00:00")


def test_history_of_an_unreachable_postgres_is_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A PostgreSQL history that cannot be reached: exit 1, one line, the password masked."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://bot:hunter2@127.0.0.1:{port}/history"
    assert main(["history", "BTC", "--db", url]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err, "history database")
    assert "hunter2" not in err
    assert "bot:***@127.0.0.1" in err


@pytest.mark.network
@pytest.mark.asyncio
async def test_watch_shows_alerts_firing_and_resolving(
    sim: SimulatedKraken,
    kraken_shaped_keys: Credentials,
    tokens: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With a low-balance threshold above the BTC held, `watch` shows the alert as active,
    then resolved once a deposit lifts BTC above it."""
    monkeypatch.setenv("BALANCE_MANAGER_ALERT_LOW_BALANCE", "XBT=2")
    args = ("watch", "--rest-url", sim.rest_url, "--ws-url", sim.ws_url, "--duration", "4")
    watching = asyncio.create_task(run_cli(*args, "--plain"))
    printed: list[str] = []
    errors: list[str] = []

    def printed_so_far() -> str:
        captured = capsys.readouterr()
        printed.append(captured.out)
        errors.append(captured.err)
        return "".join(printed)

    await wait_until(lambda: "alerts=1" in printed_so_far(), within=10)
    sim.deposit("BTC", "1")
    assert await watching == 0
    out = printed_so_far()
    assert "alert: warning low_balance BTC: BTC free 1.2435 is below 2" in out
    assert re.search(r"^\[ *[\d.]+s\] serving=.* alerts=1$", out, re.M)
    assert "alert resolved: low_balance BTC" in out
    assert "".join(errors) == ""
