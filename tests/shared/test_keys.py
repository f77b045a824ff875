"""Tests of shared/keys.py: one cluster slot per account (URL masking: test_credentials.py)."""

from __future__ import annotations

import pytest

from balance_manager.exceptions import ConfigError
from balance_manager.shared.keys import KEY_NAMES, AccountKeys


def test_every_key_carries_the_account_hash_tag() -> None:
    """All keys of an account share the hash tag, so scripts run on Redis Cluster too."""
    keys = AccountKeys("bm", "main")
    assert keys.all() == [f"{{bm:main}}:{name}" for name in KEY_NAMES]
    assert keys.key("lease") == "{bm:main}:lease"
    with pytest.raises(KeyError):
        keys.key("nothing")


def test_accounts_and_namespaces_never_share_a_key() -> None:
    """Two accounts or two namespaces have disjoint keys."""
    a, b, c = AccountKeys("bm", "a"), AccountKeys("bm", "b"), AccountKeys("other", "a")
    assert not set(a.all()) & set(b.all())
    assert not set(a.all()) & set(c.all())


@pytest.mark.parametrize("bad", ["", "a b", "x{y}", "a" * 65, "é", None, 3])
def test_bad_names_are_refused(bad: object) -> None:
    """A label that would break the hash tag or the key layout is refused, naming it."""
    with pytest.raises(ConfigError, match="shared_account"):
        AccountKeys("bm", bad)  # type: ignore[arg-type]


def test_scan_pattern_escapes_the_braces() -> None:
    """The SCAN pattern matches the prefix literally (braces and stars escaped)."""
    assert AccountKeys("bm", "main").pattern() == "\\{bm:main\\}:*"


@pytest.mark.asyncio
async def test_delete_namespace_deletes_that_namespace_only(redis_url: str, namespace: str) -> None:
    """Every account's keys under the namespace go; a namespace it prefixes stays (no flush)."""
    import redis.asyncio as aioredis

    from balance_manager.shared.testing import delete_namespace

    client = aioredis.Redis.from_url(redis_url)
    mine = [AccountKeys(namespace, "a").key("meta"), AccountKeys(namespace, "b").key("lease")]
    neighbour = AccountKeys(namespace + "x", "a").key("meta")
    try:
        for key in (*mine, neighbour):
            await client.set(key, "1")
        await delete_namespace(redis_url, namespace)
        assert await client.exists(*mine) == 0
        assert await client.exists(neighbour) == 1
    finally:
        await client.delete(*mine, neighbour)
        await client.aclose()
