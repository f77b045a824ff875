"""A live web dashboard of a balance manager (``balance-manager dashboard``).

:class:`Dashboard` serves one page, a read-only JSON API and a server-push
event stream for a started manager; see :mod:`balance_manager.dashboard.server`
and ``docs/dashboard.md``. In shared mode it is given a
:class:`LeaderSharedStatus` (the leader, its epoch, the reservations per strategy).
"""

from balance_manager.dashboard.journal import EventJournal
from balance_manager.dashboard.payloads import SharedStatus
from balance_manager.dashboard.security import TOKEN_ENV, AccessPolicy
from balance_manager.dashboard.server import DEFAULT_PORT, Dashboard, serve_dashboard
from balance_manager.dashboard.shared_status import LeaderSharedStatus

__all__ = [
    "DEFAULT_PORT",
    "TOKEN_ENV",
    "AccessPolicy",
    "Dashboard",
    "EventJournal",
    "LeaderSharedStatus",
    "SharedStatus",
    "serve_dashboard",
]
