"""Security: secrets and tokens never leak; credentials stay off the command line; loopback.

A manager runs against the simulator through the faults that produce the most
messages (refused tokens, refused signatures, drops, rate limits, 5xx,
lockouts), with every logger at DEBUG. The API secret and every WebSocket
token the exchange issued are then searched for (as text, and in base64-free
raw form) in: every log record, the reprs and strings of every object a caller
can reach, every exception raised, ``get_status()`` / ``get_statistics()`` and
the bytes of the history database (and its WAL).

Credentials come from the environment or a file (a readable-by-others file is
warned about, without the secret), and the command line has no option for
them. The simulator and the metrics endpoint listen on loopback by default
(checked in the kernel's socket table), and ruff's security rules (bandit
set) are on and clean.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from balance_manager import BalanceManager, BalanceManagerConfig, KrakenRestClient
from balance_manager.cli.main import build_parser
from balance_manager.contrib.prometheus import serve_metrics
from balance_manager.credentials import Credentials, load_credentials
from balance_manager.exceptions import BalanceManagerError
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, drive, drive_until_done, wait_until

from .harness import build_manager, reliability_config, start_streaming

ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> set[str]:
    """Addresses the kernel lists as listening on TCP ``port`` (from /proc/net/tcp{,6})."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table, encoding="ascii") as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local, state = fields[1], fields[3]
                address, _, hex_port = local.rpartition(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


#: 127.0.0.1 and ::1 as /proc/net/tcp{,6} write them.
LOOPBACK = {"0100007F", "00000000000000000000000001000000"}


class Secrets:
    """The strings that must never show: the API secret and every issued token."""

    def __init__(self, sim: SimulatedKraken) -> None:
        self.values: list[str] = [sim.api_secret]
        issue = sim.auth.issue_token

        def recording_issue(api_key: str, now: float) -> str:
            token = issue(api_key, now)
            self.values.append(token)
            return token

        sim.auth.issue_token = recording_issue  # type: ignore[method-assign]

    @property
    def tokens(self) -> list[str]:
        """The WebSocket tokens issued so far."""
        return self.values[1:]

    def find_in(self, text: str | bytes) -> list[str]:
        """Which secret values occur in ``text`` (described, never printed in full)."""
        data = text.encode() if isinstance(text, str) else text
        return [
            f"{'secret' if i == 0 else 'token'} {value[:4]}…"
            for i, value in enumerate(self.values)
            if value.encode() in data
        ]


def _strings_of(manager: BalanceManager) -> Iterator[str]:
    """Every repr, str and status/statistics text a caller can reach from ``manager``."""
    rest = manager.rest_client
    ws = manager.websocket_client
    objects: list[Any] = [manager, manager.config, rest, ws, manager.history, manager.cache]
    if ws is not None:
        objects.append(getattr(ws, "session", None))
    if isinstance(rest, KrakenRestClient):
        objects += [rest.breaker, rest.limiter]
    for obj in objects:
        yield repr(obj)
        yield str(obj)
    yield json.dumps(manager.get_status(), default=str)
    yield json.dumps(manager.get_statistics(), default=str)
    for balance in manager.sync_view().get_all_balances().values():
        yield repr(balance)


@pytest.mark.network
@pytest.mark.asyncio
async def test_secret_and_tokens_never_leak(
    clock: ManualClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Through faults at DEBUG: no secret or token in logs, reprs, errors, status or the DB."""
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "history.sqlite3"
    errors: list[BaseException] = []
    async with SimulatedKraken(clock=clock, seed=13) as sim:
        secrets = Secrets(sim)
        manager = build_manager(sim, clock, reliability_config(db))
        try:
            await start_streaming(manager)
            sim.deposit("BTC", "0.5")
            injections: list[Callable[[], object]] = [
                lambda: sim.faults.reject_token(times=2),
                lambda: sim.faults.expire_token(),
                lambda: sim.faults.rate_limit(times=2),
                lambda: sim.faults.invalid_nonce(times=2),
                lambda: sim.faults.http_error(520, times=3),
                lambda: sim.faults.html_page(times=2),
                lambda: sim.faults.service_unavailable(times=2),
            ]
            for inject in injections:
                inject()
                sim.faults.drop_websocket()
                sim.deposit("USD", "1")
                await drive(clock, 40.0, step=1.0)
            sim.faults.lockout(times=3)
            try:
                await drive_until_done(clock, manager.refresh_all_balances())
            except BalanceManagerError as error:
                errors.append(error)
            sim.faults.clear()
            await drive(
                clock,
                60.0,
                step=1.0,
                until=lambda: bool(manager.websocket_client and manager.websocket_client.connected),
            )
            await wait_until(
                lambda: bool(manager.websocket_client and manager.websocket_client.connected)
            )
            texts = list(_strings_of(manager))
        finally:
            await manager.close()
        # A client with a wrong secret: refused, and the message does not show it.
        wrong = Credentials.of(
            sim.api_key,
            "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZy1zZWNyZXR3cm9uZy1zZWNyZXQtd3Jvbmctc2VjcmV0LQ==",
        )
        secrets.values.append(wrong.api_secret.reveal())
        bad = BalanceManager(
            rest_client=KrakenRestClient.from_credentials(
                wrong, sim.rest_url, config=manager.config, clock=clock, rng=random.Random(3)
            ),
            config=manager.config,
            clock=clock,
        )
        try:
            await drive_until_done(clock, bad.initialize())
        except BalanceManagerError as error:
            errors.append(error)
        texts += list(_strings_of(bad))
        await bad.close()
    assert len(secrets.tokens) >= 5, "the scenario should have issued several tokens"
    assert errors, "the scenario should have raised errors to inspect"
    for raised in errors:
        texts += [str(raised), repr(raised), repr(raised.args)]
        cause = raised.__cause__
        if cause is not None:
            texts.append(str(cause))
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            texts.append(str(record.exc_info[1]))
    texts.append(caplog.text)
    leaks = {leak for text in texts for leak in secrets.find_in(text)}
    assert not leaks, f"found {sorted(leaks)} in logs, reprs, errors or status"
    stored = _read_all(tmp_path)
    assert stored, "the history database should exist"
    assert not secrets.find_in(stored), "a secret or token is in the history database"


def _read_all(folder: Path) -> bytes:
    """The bytes of the history database, its WAL and shared memory in ``folder``."""
    return b"".join(path.read_bytes() for path in folder.glob("history.sqlite3*"))


def test_credentials_file_readable_by_others_is_warned_about_without_the_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file other users can read loads, with a warning naming it (never the secret)."""
    secret = (
        "c2VjcmV0LWZpbGUtc2VjcmV0LWZpbGUtc2VjcmV0LWZpbGVzZWNyZXQtZmlsZS1zZWNyZXQtZmlsZS1zZWNyZQ=="
    )
    path = tmp_path / "kraken.key"
    path.write_text(f"KEY=file-key-123456789\nSECRET={secret}\n", encoding="utf-8")
    path.chmod(0o644)
    caplog.set_level(logging.DEBUG)
    credentials = load_credentials({"KRAKEN_CREDENTIALS_FILE": str(path)})
    assert credentials is not None
    assert credentials.api_secret.reveal() == secret
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(str(path) in w and "chmod 600" in w for w in warnings), warnings
    assert secret not in caplog.text
    assert secret not in repr(credentials)
    caplog.clear()
    path.chmod(0o600)
    load_credentials({"KRAKEN_CREDENTIALS_FILE": str(path)})
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_credentials_from_the_environment_stay_masked() -> None:
    """Key and secret from KRAKEN_API_KEY / KRAKEN_API_SECRET load; repr and config mask them."""
    secret = (
        "ZW52LXNlY3JldC1lbnYtc2VjcmV0LWVudi1zZWNyZXRlbnYtc2VjcmV0LWVudi1zZWNyZXQtZW52LXNlY3JldA=="
    )
    credentials = load_credentials(
        {"KRAKEN_API_KEY": "env-key-0123456789", "KRAKEN_API_SECRET": secret}
    )
    assert credentials is not None
    config = BalanceManagerConfig(credentials=credentials, history_db_path=None)
    for text in (repr(credentials), str(credentials), repr(config), str(config)):
        assert secret not in text
        assert "env-key-0123456789" not in text  # the key is shortened too


def _option_strings(parser: argparse.ArgumentParser) -> Iterator[str]:
    """Every option string of ``parser`` and of its sub-commands."""
    for action in parser._actions:  # argparse has no public walk of its options
        yield from action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _option_strings(sub)


def test_the_command_line_takes_no_credentials() -> None:
    """No command or option accepts a key or secret (the process list shows argv)."""
    options = set(_option_strings(build_parser()))
    assert "--rest-url" in options  # the walk does reach the sub-commands
    for option in options:
        for word in ("secret", "key", "token", "password", "credential"):
            assert word not in option.lower(), option


@pytest.mark.network
@pytest.mark.asyncio
async def test_simulator_listens_on_loopback_by_default(clock: ManualClock) -> None:
    """SimulatedKraken() binds 127.0.0.1 only, as the kernel's socket table shows."""
    async with SimulatedKraken(clock=clock) as sim:
        assert sim.host == "127.0.0.1"
        addresses = _listening(sim.port)
        assert addresses, "no listening socket found"
        assert addresses <= LOOPBACK, addresses


@pytest.mark.network
@pytest.mark.asyncio
async def test_metrics_endpoint_listens_on_loopback_by_default(clock: ManualClock) -> None:
    """With metrics on and no host given, /metrics is served on 127.0.0.1 only."""
    pytest.importorskip("prometheus_client")
    assert BalanceManagerConfig().metrics_host == "127.0.0.1"
    async with SimulatedKraken(clock=clock, seed=2) as sim:
        manager = build_manager(sim, clock, reliability_config(None, metrics_enabled=True))
        try:
            metrics = serve_metrics(manager)
            await start_streaming(manager)
            port = metrics.port
            assert port
            addresses = _listening(port)
            assert addresses, "no listening socket found"
            assert addresses <= LOOPBACK, addresses
        finally:
            await manager.close()


def test_bandit_rules_are_on_and_the_code_is_clean() -> None:
    """ruff's security rules (flake8-bandit, "S") are selected and src passes them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lint = config["tool"]["ruff"]["lint"]
    assert "S" in lint["select"]
    ignored = ",".join(lint.get("ignore", [])) or "S0"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--select",
            "S",
            "--ignore",
            ignored,
            "--quiet",
            "src",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
