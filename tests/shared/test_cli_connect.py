"""The interfaces of shared mode: `reservations` and `serve`, and connect(redis_url=...)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from tests.shared.conftest import FakeLeader, delete_namespace, shared_config

from balance_manager import connect
from balance_manager.cli.main import EXIT_FAILURE, EXIT_USAGE, main
from balance_manager.config import BalanceManagerConfig
from balance_manager.core.models import Balance
from balance_manager.exceptions import ConfigError
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.keys import AccountKeys
from balance_manager.shared.reservations import Reservations
from balance_manager.shared.testing import free_port


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def _publish_and_reserve(shared: SharedRedis) -> None:
    """Publish BTC and USD, reserve 123.45 USD as r1 and commit it as cl-1."""
    leader = FakeLeader(shared)
    await leader.lead()
    await leader.publish(
        {
            "BTC": Balance("BTC", Decimal("1.2345678901234567890")),
            "USD": Balance("USD", Decimal(500)),
        },
        reset="test",
    )
    reservations = Reservations(shared, shared_config())
    await reservations.reserve("USD", "123.45", owner="strat-a", reservation_id="r1")
    await reservations.commit("r1", "cl-1")


def test_reservations_lists_exact_amounts(
    redis_url: str, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The listing shows each reservation and free, reserved and available per asset, exactly."""

    async def setup() -> None:
        shared = SharedRedis(redis_url, AccountKeys(namespace, "acct"))
        try:
            await _publish_and_reserve(shared)
        finally:
            await shared.close()

    asyncio.run(setup())
    try:
        _check_listing(redis_url, namespace, capsys)
    finally:
        asyncio.run(delete_namespace(redis_url, namespace))


def _check_listing(redis_url: str, namespace: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["reservations", "--redis", redis_url, "--namespace", namespace, "--account", "acct"]
    code, out, _ = run_cli([*args, "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    (only,) = data["reservations"]
    assert (only["id"], only["owner"], only["amount"], only["state"]) == (
        "r1",
        "strat-a",
        "123.45",
        "committed",
    )
    assert only["client_order_id"] == "cl-1"
    assert data["assets"]["USD"] == {"free": "500", "reserved": "123.45", "available": "376.55"}
    assert data["assets"]["BTC"]["free"] == "1.234567890123456789"
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    assert "strat-a" in out
    assert "376.55" in out


def test_reservations_against_an_unreachable_redis_hides_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unreachable Redis is a one-line runtime error that never shows the password."""
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    code, out, err = run_cli(["reservations", "--redis", url], capsys)
    assert code == EXIT_FAILURE
    assert "unreachable" in err
    assert "hunter2" not in err + out


def test_serve_needs_redis_and_credentials(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve without a Redis URL or without credentials is a usage error naming what is missing."""
    for name in ("KRAKEN_API_KEY", "KRAKEN_API_SECRET", "KRAKEN_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("BALANCE_MANAGER_REDIS_URL", raising=False)
    code, _, err = run_cli(["serve"], capsys)
    assert code == EXIT_USAGE
    assert "redis_url" in err
    code, _, err = run_cli(["serve", "--redis", "redis://127.0.0.1:1/0"], capsys)
    assert code == EXIT_USAGE
    assert "KRAKEN_API_KEY" in err


def test_serve_dashboard_options_are_checked_before_any_io(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--dashboard-port alone, or a dashboard beyond loopback without a token: usage errors."""
    monkeypatch.delenv("BALANCE_MANAGER_DASHBOARD_TOKEN", raising=False)
    monkeypatch.setenv("KRAKEN_API_KEY", "key")
    monkeypatch.setenv("KRAKEN_API_SECRET", "c2VjcmV0")
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    code, _, err = run_cli(["serve", "--redis", unreachable, "--dashboard-port", "9000"], capsys)
    assert code == EXIT_USAGE
    assert "--dashboard" in err
    code, out, err = run_cli(
        ["serve", "--redis", unreachable, "--dashboard", "--dashboard-host", "192.0.2.1"], capsys
    )
    assert code == EXIT_USAGE
    assert "BALANCE_MANAGER_DASHBOARD_TOKEN" in err
    assert "leader candidate" not in out  # refused before it became one


@pytest.mark.asyncio
async def test_connect_with_redis_url_gives_a_follower(
    shared: SharedRedis, redis_url: str, namespace: str
) -> None:
    """connect(redis_url=...) follows the account with Kraken's names; it takes no exchange args."""
    await _publish_and_reserve(shared)
    config = BalanceManagerConfig(
        history_db_path=None, redis_namespace=namespace, shared_account="acct"
    )
    async with connect(redis_url=redis_url, config=config) as follower:
        btc = await follower.get_balance("XBT")
        assert btc is not None
        assert btc.balance == Decimal("1.2345678901234567890")
        listing = await follower.reservations.list(owner="strat-a")
        assert set(listing.reservations) == {"r1"}
    assert not follower.get_status()["initialized"]
    with pytest.raises(ConfigError, match="redis_url"):
        connect(redis_url=redis_url, simulator=True)  # type: ignore[call-overload]


def test_config_never_shows_the_redis_password() -> None:
    """repr and as_dict mask the Redis password; a URL of another scheme is refused by name."""
    config = BalanceManagerConfig(history_db_path=None, redis_url="redis://:hunter2@h:6379/0")
    assert "hunter2" not in repr(config)
    assert config.as_dict()["redis_url"] == "redis://:***@h:6379/0"
    with pytest.raises(ConfigError, match="redis_url") as refused:
        BalanceManagerConfig(redis_url="http://:hunter2@h")
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ConfigError, match="shared_account"):
        BalanceManagerConfig(shared_account="a{b}")
    env = BalanceManagerConfig.from_env(
        {"BALANCE_MANAGER_REDIS_URL": "unix:///tmp/r.sock", "BALANCE_MANAGER_LEASE_TTL": "2.5"}
    )
    assert env.redis_url == "unix:///tmp/r.sock"
    assert env.lease_ttl == 2.5
