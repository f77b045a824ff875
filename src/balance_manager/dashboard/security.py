"""Who may see the dashboard: loopback by default, a token anywhere else.

* Bound to a loopback address (``127.0.0.1``, ``::1``, ``localhost``), the
  dashboard needs no token, but it answers only requests whose ``Host`` header
  names a loopback address: a web page elsewhere cannot reach it through DNS
  rebinding.
* Bound to any other address, a token is required (at least
  :data:`MIN_TOKEN_LENGTH` characters; the command line reads it from
  ``BALANCE_MANAGER_DASHBOARD_TOKEN``, never from an argument). Scripts send it
  as ``Authorization: Bearer <token>``; a browser enters it once on the login
  page and gets a cookie that holds a keyed hash of it, never the token itself.

The token never appears in a page, a response, a log line or a ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from balance_manager.exceptions import ConfigError

__all__ = [
    "COOKIE_NAME",
    "MIN_TOKEN_LENGTH",
    "TOKEN_ENV",
    "AccessPolicy",
    "is_loopback",
]

#: The variable the command line reads the token from.
TOKEN_ENV = "BALANCE_MANAGER_DASHBOARD_TOKEN"  # noqa: S105 - the variable's name, not a token
#: Shortest token accepted.
MIN_TOKEN_LENGTH = 16
#: The session cookie set by the login page.
COOKIE_NAME = "bm_dashboard"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is a loopback address."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_of(header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8765`` → ``::1``)."""
    header = header.strip()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


class AccessPolicy:
    """Decides whether a request may read the dashboard.

    Args:
        host: the address the server binds.
        token: the token, or ``None`` (allowed on loopback only).

    Raises:
        ConfigError: ``host`` is not loopback and no token was given, or the
            token is shorter than :data:`MIN_TOKEN_LENGTH` or has spaces or
            control characters (the message never shows it).
    """

    __slots__ = ("_cookie", "_token", "host", "loopback")

    def __init__(self, host: str, token: str | None = None) -> None:
        self.host = host
        self.loopback = is_loopback(host)
        if token is not None:
            if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH:
                raise ConfigError("token", "***", f"must be at least {MIN_TOKEN_LENGTH} characters")
            if not token.isprintable() or any(c.isspace() for c in token):
                raise ConfigError("token", "***", "must have no spaces or control characters")
        elif not self.loopback:
            raise ConfigError(
                "host",
                host,
                f"serving beyond loopback needs a token: set {TOKEN_ENV} "
                f"(at least {MIN_TOKEN_LENGTH} characters)",
            )
        self._token = token
        self._cookie = (
            hmac.new(
                token.encode(), b"balance-manager dashboard session", hashlib.sha256
            ).hexdigest()
            if token is not None
            else None
        )

    @property
    def needs_token(self) -> bool:
        """Whether requests must carry the token (or the login cookie)."""
        return self._token is not None

    def host_allowed(self, host_header: str | None) -> bool:
        """Whether a request's ``Host`` header is acceptable (loopback binds: loopback names)."""
        if not self.loopback:
            return True
        return host_header is not None and is_loopback(_host_of(host_header))

    def check_token(self, token: str | None) -> bool:
        """Whether ``token`` is the token (constant time)."""
        if self._token is None:
            return True
        return token is not None and hmac.compare_digest(token.encode(), self._token.encode())

    def authorized(self, authorization: str | None, cookie: str | None) -> bool:
        """Whether a request with these ``Authorization`` and cookie values may read."""
        if self._token is None:
            return True
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and self.check_token(value.strip()):
                return True
        return (
            cookie is not None
            and self._cookie is not None
            and hmac.compare_digest(cookie.encode(), self._cookie.encode())
        )

    @property
    def session_cookie(self) -> str:
        """The cookie value the login page sets (a keyed hash, not the token)."""
        if self._cookie is None:
            raise ConfigError("token", None, "no token: no login needed")
        return self._cookie

    def __repr__(self) -> str:
        return f"AccessPolicy(host={self.host!r}, token={'***' if self._token else None})"
