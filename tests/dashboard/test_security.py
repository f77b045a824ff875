"""Who may read the dashboard: loopback by default, a token beyond, never the token shown."""

from __future__ import annotations

import pytest

from balance_manager.dashboard.security import (
    MIN_TOKEN_LENGTH,
    TOKEN_ENV,
    AccessPolicy,
    is_loopback,
)
from balance_manager.exceptions import ConfigError

WILDCARD = "0.0.0.0"  # noqa: S104 - the address whose binding must be refused
TOKEN = "correct-horse-battery-staple"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.5.6.7", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        (WILDCARD, False),
        ("::", False),
        ("192.168.1.4", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    """Only loopback addresses and localhost names count as loopback."""
    assert is_loopback(host) is loopback


def test_beyond_loopback_without_a_token_is_refused_naming_the_variable() -> None:
    """Binding 0.0.0.0 without a token is a ConfigError naming the host and the variable."""
    with pytest.raises(ConfigError) as info:
        AccessPolicy(WILDCARD)
    assert info.value.option == "host"
    assert TOKEN_ENV in str(info.value)


@pytest.mark.parametrize("token", ["short", "has space in it 1234", "tab\tinside-the-token"])
def test_weak_or_odd_tokens_are_refused_without_showing_them(token: str) -> None:
    """A short token, or one with spaces or control characters, is refused; the message hides it."""
    with pytest.raises(ConfigError) as info:
        AccessPolicy(WILDCARD, token)
    assert info.value.option == "token"
    assert token not in str(info.value)
    assert f"at least {MIN_TOKEN_LENGTH} characters" in str(info.value) or "spaces" in str(
        info.value
    )


def test_loopback_needs_no_token_but_checks_the_host_header() -> None:
    """On loopback anyone local may read, but only under a loopback Host (no DNS rebinding)."""
    policy = AccessPolicy("127.0.0.1")
    assert not policy.needs_token
    assert policy.authorized(None, None)
    assert policy.host_allowed("127.0.0.1:8765")
    assert policy.host_allowed("localhost:8765")
    assert policy.host_allowed("[::1]:8765")
    assert not policy.host_allowed("attacker.example:8765")
    assert not policy.host_allowed(None)


def test_a_token_is_checked_from_the_header_or_the_login_cookie() -> None:
    """Bearer token or the session cookie; anything else is refused; any Host beyond loopback."""
    policy = AccessPolicy(WILDCARD, TOKEN)
    assert policy.needs_token
    assert policy.host_allowed("dashboard.example:8765")
    assert policy.authorized(f"Bearer {TOKEN}", None)
    assert policy.authorized(f"bearer {TOKEN}", None)
    assert not policy.authorized("Bearer wrong-token-wrong-token", None)
    assert not policy.authorized(f"Basic {TOKEN}", None)
    assert not policy.authorized(None, None)
    assert policy.authorized(None, policy.session_cookie)
    assert not policy.authorized(None, "forged")


def test_the_cookie_and_the_repr_never_hold_the_token() -> None:
    """The login cookie is a keyed hash of the token, and repr masks it."""
    policy = AccessPolicy("127.0.0.1", TOKEN)
    assert TOKEN not in policy.session_cookie
    assert len(policy.session_cookie) == 64
    assert TOKEN not in repr(policy)
    assert "***" in repr(policy)


def test_no_token_no_cookie() -> None:
    """Without a token there is no session to log in to."""
    with pytest.raises(ConfigError):
        _ = AccessPolicy("127.0.0.1").session_cookie
