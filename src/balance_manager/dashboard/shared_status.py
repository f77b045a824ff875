"""The shared-mode block of a leader's dashboard: who leads, with which epoch, what is reserved.

:class:`LeaderSharedStatus` is a
:data:`~balance_manager.dashboard.payloads.SharedStatus` provider built from two
callables, so that this package never imports the shared package or Redis:
the leader candidate's status (read in memory) and a listing of the account's
reservations (read from Redis by the caller's function). It fails soft: when
the listing cannot be read, the block has no reservations (never the old ones
shown as current) and says why, with the time of the last good listing.

Wiring it to a :class:`~balance_manager.shared.leader.SharedLeader` (what
``balance-manager serve --dashboard`` does)::

    reservations = Reservations(leader.redis, config)

    async def listing():
        return (await reservations.list()).reservations.values()

    status = LeaderSharedStatus(leader.get_status, listing, clock=manager.clock.time)
    async with Dashboard(manager, shared_status=status) as dashboard:
        ...
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from balance_manager.dashboard.payloads import ReservedFunds, shared_leader_block
from balance_manager.exceptions import BalanceManagerError

__all__ = ["LeaderSharedStatus", "describe_failure"]

logger = logging.getLogger(__name__)


def describe_failure(exc: BaseException) -> str:
    """``exc`` in words fit for a page: this library's messages (which mask passwords), else
    only the error's type (a foreign message might quote a URL with its password)."""
    if isinstance(exc, BalanceManagerError):
        return " ".join(str(exc).split())
    return f"{type(exc).__name__} (details in the log)"


class LeaderSharedStatus:
    """Reads a leader's shared-mode block (a ``SharedStatus`` provider).

    Args:
        leader_status: the candidate's status now (``role``, ``owner``,
            ``epoch``, ``generation``), e.g. ``SharedLeader.get_status``.
        list_reservations: every live reservation of the account (may raise
            when the shared state cannot be reached).
        clock: the time of a listing (Unix seconds).
    """

    def __init__(
        self,
        leader_status: Callable[[], Mapping[str, Any]],
        list_reservations: Callable[[], Awaitable[Iterable[ReservedFunds]]],
        *,
        clock: Callable[[], float],
    ) -> None:
        self._leader_status = leader_status
        self._list = list_reservations
        self._clock = clock
        self.listed_at: float | None = None
        """When the reservations were last read successfully."""

    async def __call__(self) -> dict[str, Any]:
        """The block now: the leader's status and a fresh listing, or why there is none."""
        try:
            listing = list(await self._list())
        except Exception as exc:  # fail soft: the dashboard shows why, and goes on
            if not isinstance(exc, BalanceManagerError):
                logger.exception("dashboard: listing the reservations failed")
            return shared_leader_block(
                self._leader_status(),
                None,
                listed_at=self.listed_at,
                error=f"reservations not read: {describe_failure(exc)}",
            )
        self.listed_at = self._clock()
        return shared_leader_block(self._leader_status(), listing, listed_at=self.listed_at)

    def __repr__(self) -> str:
        return f"LeaderSharedStatus(listed_at={self.listed_at})"
