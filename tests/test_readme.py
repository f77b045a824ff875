"""The README's code runs as written: the seed's usage examples against the simulator.

Every ```python block of README.md runs in order in one namespace (top-level
``await`` allowed), with the printed lines checked; the seed's two integration
classes are then exercised. docs/*.md blocks run per file in tests/test_docs.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.markdown_blocks import python_blocks, run_block

from balance_manager import BalanceManagerConfig
from balance_manager.config import OPTION_BOUNDS
from balance_manager.testing import wait_until

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

pytestmark = [pytest.mark.network]


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the default history database out of the real home directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for name in ("KRAKEN_API_KEY", "KRAKEN_API_SECRET", "KRAKEN_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.asyncio
async def test_quick_start_runs() -> None:
    """The quick start (connect(simulator=True)) prints BTC from the simulator, labelled so."""
    block = next(b for b in python_blocks(README) if "balance_manager.connect(" in b)
    printed = await run_block(block, {}, "README quick start")
    # Plain amounts: never REST's 1.2435000000 or its 0E-10 hold; the exchange named.
    assert re.fullmatch(
        r"BTC 1\.2435 \(free 1\.2435, held 0\) via (websocket|rest) on simulator\n", printed
    )


@pytest.mark.asyncio
async def test_seed_usage_examples_run_as_written() -> None:
    """Basic, callbacks, advanced, strategy, risk, monitoring and health checks all work."""
    blocks = [b for b in python_blocks(README) if "balance_manager.connect(" not in b]
    namespace: dict[str, Any] = {}
    printed: dict[str, str] = {}
    close_block = next(b for b in blocks if "await balance_manager.close()" in b)
    for index, block in enumerate(b for b in blocks if b is not close_block):
        printed[block] = await run_block(block, namespace, f"README block {index}")
        if "await balance_manager.initialize()" in block:
            manager = namespace["balance_manager"]
            await wait_until(lambda: manager.get_status()["websocket"]["connected"])  # noqa: B023
    manager = namespace["balance_manager"]
    simulator = namespace["simulator"]

    basic = next(text for block, text in printed.items() if "initialize()" in block)
    lines = basic.splitlines()
    assert "USDT Balance: 6000" in lines  # 5000 spot + 1000 in Kraken Rewards (USDT.F)
    assert "BTC: 1.2435 (free: 1.2435)" in lines
    assert "USD: 25435.21 (free: 25435.21)" in lines
    assert not re.search(r"\.\d*0\b", basic), basic  # no noise zeros in amounts
    for text in printed.values():  # every amount printed plain, as people read them
        assert "E-" not in text

    # Event callbacks: a deposit is an update and a significant change.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        simulator.deposit("USDT", "250")
        await wait_until(lambda: "Significant change in USDT" in out.getvalue())
    assert "Balance update: USDT = 6250\n" in out.getvalue()

    # The seed's TradingStrategy: position check and low-balance protection.
    strategy_class = namespace["TradingStrategy"]
    closed: list[bool] = []

    class Strategy(strategy_class):  # type: ignore[misc, valid-type]
        async def close_positions(self) -> None:
            closed.append(True)

    strategy = Strategy(manager)
    assert await strategy.can_open_position(Decimal("100"))
    assert not await strategy.can_open_position(Decimal("1000000"))
    with contextlib.redirect_stdout(io.StringIO()):
        simulator.withdraw("USDT", "6245")
        await wait_until(lambda: bool(closed))

    # The seed's RiskManager: USD and EUR exceed 10 % of the (small) USDT total.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        await namespace["RiskManager"](manager).check_portfolio_risk()
    assert "High exposure to USD" in out.getvalue()
    assert "High exposure to EUR" in out.getvalue()

    monitoring = next(text for block, text in printed.items() if "get_status()" in block)
    assert "WebSocket connected: True" in monitoring
    assert "Tracked assets: 6" in monitoring
    assert re.search(r"Cache hit rate: \d+\.\d%", monitoring)
    advanced = next(text for block, text in printed.items() if "analyze_balance_trend" in block)
    assert "Balance validation failed!" not in advanced
    assert re.search(r"^USDT: 6000 at \d", advanced, re.M)

    await run_block(close_block, namespace, "README close")
    assert manager.get_status()["initialized"] is False


def test_configuration_ranges_match_the_bounds() -> None:
    """The README's range column shows each option's bound from OPTION_BOUNDS, and only those."""
    text = README.read_text(encoding="utf-8")
    ranges = dict(re.findall(r"^\| `(\w+)` \| [^|]* \| ([^|]*) \|", text, re.M))
    names = {spec.name for spec in dataclasses.fields(BalanceManagerConfig)}
    assert names <= set(ranges)
    for name in names:
        bound = OPTION_BOUNDS.get(name)
        assert ranges[name] == (bound.describe() if bound is not None else "—"), name


def test_configuration_table_matches_the_code() -> None:
    """Every config option is in the README's table, with its default."""
    text = README.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+)` \| `?([^|`]*)`? \|", text, re.M))
    for spec in dataclasses.fields(BalanceManagerConfig):
        assert spec.name in rows, f"{spec.name} missing from the README configuration table"
        default = spec.default
        if isinstance(default, bool | int | float | str) and spec.name != "history_db_path":
            shown = rows[spec.name].strip().strip('"')
            assert shown == str(default) or Decimal(shown) == Decimal(str(default)), spec.name
        if isinstance(default, Decimal):
            assert Decimal(rows[spec.name]) == default, spec.name
