"""Where the manager keeps the latest balance of every asset.

The manager talks to a :class:`BalanceStore` only, so a shared store (several
processes trading one account) can replace :class:`InMemoryBalanceStore`
without touching the rest. The interface is synchronous on purpose: reads are
on every strategy's hot path. A shared implementation keeps a local mirror for
reads and publishes writes in the background.

The in-memory store holds one immutable :class:`~balance_manager.core.models.Balance`
per asset in a ``dict``. Replacing a dict entry and reading one are single
operations under the GIL, and a ``Balance`` never changes after it is made, so
readers in any thread see either the old value or the new one, never a mix:
``free + hold_trade == balance`` holds for every value read. ``snapshot()``
copies the dict with ``dict.copy()``, which runs without releasing the GIL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from balance_manager.core.models import Balance

__all__ = ["BalanceStore", "InMemoryBalanceStore"]


@runtime_checkable
class BalanceStore(Protocol):
    """The latest balance of each asset (canonical names)."""

    def get(self, asset: str) -> Balance | None:
        """The held balance of ``asset``, or ``None``."""
        ...

    def put(self, balance: Balance) -> Balance | None:
        """Hold ``balance`` for its asset; returns the value it replaces."""
        ...

    def remove(self, asset: str) -> Balance | None:
        """Forget ``asset``; returns the value removed."""
        ...

    def snapshot(self) -> dict[str, Balance]:
        """A consistent copy of every held balance."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, asset: object) -> bool: ...


class InMemoryBalanceStore:
    """A :class:`BalanceStore` in this process's memory (see the module docstring)."""

    __slots__ = ("_balances", "get")

    def __init__(self) -> None:
        self._balances: dict[str, Balance] = {}
        # ``get`` is the dict's own method: every read (``get_balance``, the sync
        # view) calls it, and a Python method around it would double its cost.
        self.get: Callable[[str], Balance | None] = self._balances.get

    def put(self, balance: Balance) -> Balance | None:
        old = self._balances.get(balance.asset)
        self._balances[balance.asset] = balance
        return old

    def remove(self, asset: str) -> Balance | None:
        return self._balances.pop(asset, None)

    def snapshot(self) -> dict[str, Balance]:
        return self._balances.copy()

    def __len__(self) -> int:
        return len(self._balances)

    def __contains__(self, asset: object) -> bool:
        return asset in self._balances

    def __repr__(self) -> str:
        return f"InMemoryBalanceStore({len(self._balances)} assets)"
