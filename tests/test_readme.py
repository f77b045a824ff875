"""The README gets a person started, and everything it shows runs as written.

Both quick starts run as they are written: the simulator's with ``connect(simulator=True)``,
the Kraken account's against a simulator that accepts a key pair shaped like Kraken's, found
through the same environment variables a user sets. The links point at files that exist,
and the word "seed" (the project's name for its original specification) is gone.
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
from pathlib import Path

import pytest
from tests.markdown_blocks import python_blocks, run_block_sync

from balance_manager import ConfigError, Credentials
from balance_manager.simulator import SimulatedKraken

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")

pytestmark = [pytest.mark.network]


def quick_start(marker: str) -> str:
    """The Python block between the README's snippet markers ``marker`` (used by docs/index.md)."""
    start, end = rf"<!-- --8<-- \[start:{marker}\] -->", rf"<!-- --8<-- \[end:{marker}\] -->"
    match = re.search(rf"{start}\n```python\n(.*?)```\n{end}", TEXT, re.S)
    assert match is not None, f"README.md has no {marker} block between snippet markers"
    return match[1]


@pytest.fixture(autouse=True)
def _private_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real credentials, and any history file in a temporary directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for name in ("KRAKEN_API_KEY", "KRAKEN_API_SECRET", "KRAKEN_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("BALANCE_MANAGER_CONFIG", raising=False)


def test_the_readme_is_short_and_has_what_a_person_needs() -> None:
    """What it is, the two commands, two quick starts, the key's permissions, and links."""
    assert len(TEXT.splitlines()) <= 150  # it was 448 lines, the reference included
    assert "make demo" in TEXT
    assert "make test" in TEXT
    for permission in ("Funds: Query", "WebSocket interface: On", "Query open orders & trades"):
        assert permission in TEXT
    assert len(python_blocks(README)) == 2
    for marker in ("quick-start-kraken", "quick-start-simulator"):
        assert len([line for line in quick_start(marker).splitlines() if line.strip()]) <= 14


def test_the_readme_never_says_seed() -> None:
    """Users do not know the project's word for its original specification."""
    assert not re.search(r"\bseed", TEXT, re.I)


def test_every_relative_link_of_the_readme_exists() -> None:
    """A link to docs/..., CHANGELOG.md or CONTRIBUTING.md names a file of the repository."""
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", TEXT)
    local = [link for link in links if "://" not in link]
    assert len(local) >= 10
    for link in local:
        assert (ROOT / link).is_file(), f"README.md links to a missing file: {link}"


def test_the_simulator_quick_start_runs_and_prints_what_it_says() -> None:
    """connect(simulator=True): BTC before and after a deposit, plain amounts, 'simulator'."""
    printed = run_block_sync(quick_start("quick-start-simulator"), {}, "README simulator")
    assert re.fullmatch(
        r"BTC 1\.2435 \(free 1\.2435, held 0\) via (rest|websocket)\n"
        r"BTC 1\.7435 \(free 1\.7435, held 0\) via websocket\n"
        r"simulator\n",
        printed,
    ), printed


def kraken_shaped() -> Credentials:
    """A key pair shaped like Kraken's (no ``sim-`` prefix): the manager takes it as a real one."""
    rng = random.Random(11)
    key = base64.b64encode(rng.randbytes(42)).decode()
    return Credentials.of(key, base64.b64encode(rng.randbytes(64)).decode())


@pytest.mark.asyncio
async def test_the_kraken_quick_start_runs_with_the_variables_a_user_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With KRAKEN_API_KEY/SECRET set, the block prints every balance of the account."""
    async with SimulatedKraken() as exchange:
        credentials = kraken_shaped()
        exchange.add_key(credentials=credentials)
        monkeypatch.setenv("KRAKEN_API_KEY", credentials.api_key)
        monkeypatch.setenv("KRAKEN_API_SECRET", credentials.api_secret.reveal())
        # Only the URLs change, as a user's configuration could change them.
        monkeypatch.setenv("BALANCE_MANAGER_REST_URL", exchange.rest_url)
        monkeypatch.setenv("BALANCE_MANAGER_WS_URL", exchange.ws_url)
        block = quick_start("quick-start-kraken")
        # The block calls asyncio.run(): it runs in a thread while the exchange serves here.
        printed = await asyncio.to_thread(run_block_sync, block, {}, "README Kraken")
    lines = sorted(re.sub(r" via (rest|websocket)$", "", line) for line in printed.splitlines())
    assert lines == [
        "BTC 1.2435 (free 1.2435, held 0)",
        "DOT 250 (free 250, held 0)",
        "ETH 12.5 (free 12.5, held 0)",
        "EUR 1500 (free 1500, held 0)",
        "USD 25435.21 (free 25435.21, held 0)",
        "USDT 6000 (free 6000, held 0)",
    ]
    assert credentials.api_secret.reveal() not in printed


def test_the_kraken_quick_start_without_credentials_names_the_variables() -> None:
    """No credentials: a ConfigError naming KRAKEN_API_KEY and KRAKEN_API_SECRET, no fake values."""
    with pytest.raises(ConfigError) as raised:
        run_block_sync(quick_start("quick-start-kraken"), {}, "README Kraken")
    assert "KRAKEN_API_KEY" in str(raised.value)
    assert "KRAKEN_API_SECRET" in str(raised.value)
