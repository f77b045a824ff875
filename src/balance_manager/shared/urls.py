"""Redis URLs: what may be shown of them (sans-I/O).

A Redis URL may carry a password (``redis://:secret@host:6379/0``). It is never
printed, logged or put in an error as given: :func:`mask_url` replaces the
user information's password with ``***``.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["REDIS_SCHEMES", "mask_url"]

#: The URL schemes redis-py understands.
REDIS_SCHEMES = ("redis", "rediss", "unix")


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (and a ``password=`` query masked)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"***@{host}"
    query = "&".join(
        f"{name}=***" if name.lower() == "password" else f"{name}{eq}{value}"
        for name, eq, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    if not netloc and "://" in url:  # unix:///path: urlunsplit would drop the slashes
        shown = f"{parts.scheme}://{parts.path}"
        return f"{shown}?{query}" if query else shown
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
