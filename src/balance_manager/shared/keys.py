"""Where one account's shared state lives in Redis: the key layout (sans-I/O).

Every key of an account starts with one hash tag, ``{<namespace>:<account>}``,
so all of them fall in one Redis Cluster slot and every script (which touches
several keys at once) also runs on a cluster. Different namespaces and
accounts never share a key, so tests and several deployments can share one
Redis; nothing ever flushes a database or deletes a key outside its prefix.

=================  ======  ==========================================================
key                type    what
=================  ======  ==========================================================
``lease``          string  ``<epoch>:<owner>`` of the leader, with a TTL (the lease)
``epoch``          string  counter: +1 at every acquisition (the fencing token)
``gen``            string  generation: set once per Redis data set; gone = data lost or voided
``meta``           hash    leader, mode, sequence, last confirmation (Redis ms), ``run``...
``balances``       hash    asset → the latest value (JSON, amounts as exact text)
``free``           hash    asset → its free amount (canonical decimal text)
``known``          hash    asset → Redis ms at which its value was known current
``events``         stream  every value and event, in order, with a sequence number
``ledger``         stream  one entry per ledger entry and history row, for the history writer
``ledger_ids``     zset    ledger ids already put on ``ledger`` (once each), by Redis ms
``reservations``   hash    reservation id → the reservation (JSON)
``expiry``         zset    reservation id → Redis ms after which it is reaped
``reserved``       hash    asset → total reserved (canonical decimal text)
``owned``          hash    ``owner|asset`` → what that owner has reserved
``caps``           hash    ``owner|asset`` → the owner's cap
``orders``         hash    client order id → reservation id (committed reservations)
=================  ======  ==========================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from balance_manager.exceptions import ConfigError

__all__ = ["KEY_NAMES", "NAME_PATTERN", "AccountKeys", "check_name"]

#: A namespace, an account label or an owner: letters, digits and ``._:-``,
#: at most 64 characters (no braces: they would break the hash tag).
NAME_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")

#: Every key of an account, in the order the scripts receive them (KEYS[1]...).
KEY_NAMES = (
    "lease",
    "epoch",
    "gen",
    "meta",
    "balances",
    "free",
    "known",
    "events",
    "ledger",
    "ledger_ids",
    "reservations",
    "expiry",
    "reserved",
    "owned",
    "caps",
    "orders",
)


def check_name(option: str, value: object) -> str:
    """``value`` if it can be a namespace, an account label or an owner.

    Raises:
        ConfigError: naming ``option`` and the value.
    """
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        raise ConfigError(
            option, value, "must be 1 to 64 characters among letters, digits and . _ : -"
        )
    return value


@dataclass(frozen=True, slots=True)
class AccountKeys:
    """The Redis keys of one account in one namespace.

    Args:
        namespace: the deployment's prefix (``redis_namespace``).
        account: the account's label (``shared_account``).

    Raises:
        ConfigError: either is not a valid name (see :data:`NAME_PATTERN`).
    """

    namespace: str
    account: str

    def __post_init__(self) -> None:
        check_name("redis_namespace", self.namespace)
        check_name("shared_account", self.account)

    @property
    def prefix(self) -> str:
        """``{namespace:account}:``, the start of every key (one cluster slot)."""
        return f"{{{self.namespace}:{self.account}}}:"

    def key(self, name: str) -> str:
        """The full key of ``name`` (one of :data:`KEY_NAMES`).

        Raises:
            KeyError: ``name`` is not a key of the layout.
        """
        if name not in KEY_NAMES:
            raise KeyError(name)
        return self.prefix + name

    def all(self) -> list[str]:
        """Every key, in :data:`KEY_NAMES` order (the scripts' KEYS)."""
        return [self.prefix + name for name in KEY_NAMES]

    def pattern(self) -> str:
        """A SCAN pattern matching exactly this account's keys (braces escaped)."""
        escaped = re.sub(r"([\[\]*?\\])", r"\\\1", self.prefix)
        return escaped.replace("{", "\\{").replace("}", "\\}") + "*"
