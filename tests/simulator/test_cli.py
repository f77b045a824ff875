"""``balance-manager simulator``: options, the printed URLs and credentials, clean shutdown."""

from __future__ import annotations

import argparse
import asyncio
import io

import aiohttp
import pytest

from balance_manager.simulator.server.cli import add_arguments, run

from .helpers import WAIT


class FlushedOutput(io.StringIO):
    """Captured output that signals each flush (run() flushes once everything is printed)."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed = asyncio.Event()

    def flush(self) -> None:
        super().flush()
        self.flushed.set()


def parse(*argv: str) -> argparse.Namespace:
    """Parse simulator options."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_loopback_free_port_market_on() -> None:
    """Without options: 127.0.0.1, port 0, seed 0, market on, starter tier."""
    args = parse()
    assert (args.host, args.port, args.seed, args.market, args.tier) == (
        "127.0.0.1",
        0,
        0,
        True,
        "starter",
    )
    assert parse("--no-market", "--seed", "9").market is False


@pytest.mark.network
@pytest.mark.asyncio
async def test_run_prints_urls_and_a_working_key_then_stops() -> None:
    """run() prints REST and WS URLs and a key pair, serves, and stops when asked."""
    out = FlushedOutput()
    stop = asyncio.Event()
    task = asyncio.create_task(run(parse("--no-market"), out=out, stop=stop))
    await asyncio.wait_for(out.flushed.wait(), WAIT)
    text = out.getvalue()
    assert "API key" in text
    assert "API secret" in text
    rest_url = next(line.split(": ", 1)[1] for line in text.splitlines() if "REST" in line)
    assert "ws://127.0.0.1:" in text
    async with (
        aiohttp.ClientSession() as session,
        session.get(rest_url.strip() + "/0/public/SystemStatus") as response,
    ):
        assert (await response.json())["result"]["status"] == "online"
    stop.set()
    assert await asyncio.wait_for(task, WAIT) == 0
