"""A live web dashboard of a balance manager (``balance-manager dashboard``).

:class:`Dashboard` serves one page, a read-only JSON API and a server-push
event stream for a started manager; see :mod:`balance_manager.dashboard.server`
and ``docs/dashboard.md``.
"""

from balance_manager.dashboard.journal import EventJournal
from balance_manager.dashboard.security import TOKEN_ENV, AccessPolicy
from balance_manager.dashboard.server import DEFAULT_PORT, Dashboard, serve_dashboard

__all__ = [
    "DEFAULT_PORT",
    "TOKEN_ENV",
    "AccessPolicy",
    "Dashboard",
    "EventJournal",
    "serve_dashboard",
]
