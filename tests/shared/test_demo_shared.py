"""`balance-manager demo --shared`: real leader candidates, strategies and a SIGKILL, end to end."""

from __future__ import annotations

import io
import re

import pytest
import redis.asyncio as aioredis

from balance_manager.cli.demo_shared import SharedDemoOptions, run_shared_demo
from balance_manager.cli.main import EXIT_USAGE, main

pytestmark = [pytest.mark.network, pytest.mark.slow]


async def demo_keys(url: str) -> int:
    """How many keys any demo namespace holds in this Redis."""
    client = aioredis.Redis.from_url(url)
    try:
        return len([key async for key in client.scan_iter(match="\\{bm-demo-*", count=500)])
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_the_shared_demo_survives_a_leader_sigkill_and_matches_the_exchange(
    redis_url: str,
) -> None:
    """Two candidates, two strategies: the heir leads, orders were placed, the end matches exactly,
    and the demo leaves no key behind in the Redis it was given."""
    before = await demo_keys(redis_url)
    out = io.StringIO()
    code = await run_shared_demo(SharedDemoOptions(duration=6.0, redis_url=redis_url), out)
    printed = out.getvalue()
    assert code == 0, printed
    assert "SIGKILL the leader" in printed
    assert re.search(r"leads after \d+\.\d\d s", printed), printed
    assert re.search(r"epoch 2 ", printed), printed  # the heir's epoch, one above the first
    # Each leader served its dashboard while it led, and the demo said where.
    urls = re.findall(r"dashboard of the leader: (http://127\.0\.0\.1:\d+/)$", printed, re.M)
    assert len(urls) == 2, printed
    assert urls[0] != urls[1]
    placed = [int(n) for n in re.findall(r"(\d+) orders placed", printed)]
    assert len(placed) == 2, printed
    assert all(n > 0 for n in placed), printed
    assert "OK: " in printed
    assert "MISMATCH" not in printed
    assert await demo_keys(redis_url) == before


def test_redis_without_shared_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--redis only means something with --shared: said, not ignored."""
    assert main(["demo", "--redis", "redis://127.0.0.1:6379/0"]) == EXIT_USAGE
    assert "--redis goes with --shared" in capsys.readouterr().err
