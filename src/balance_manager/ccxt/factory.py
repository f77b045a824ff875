"""Making a ccxt.pro exchange instance for a venue, optionally at other URLs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ccxt.pro as ccxt_pro

from balance_manager.credentials import Secret
from balance_manager.exceptions import ConfigError

__all__ = ["make_exchange"]


def _point(node: Any, rest_url: str | None, ws_url: str | None) -> Any:
    """``node`` (ccxt's ``urls["api"]``) with every REST and WebSocket endpoint replaced."""
    if isinstance(node, Mapping):
        return {key: _point(value, rest_url, ws_url) for key, value in node.items()}
    if isinstance(node, str):
        if rest_url is not None and node.startswith(("http://", "https://")):
            return rest_url
        if ws_url is not None and node.startswith(("ws://", "wss://")):
            return ws_url
    return node


def make_exchange(
    venue: str,
    *,
    api_key: str | None = None,
    api_secret: str | Secret | None = None,
    password: str | Secret | None = None,
    rest_url: str | None = None,
    ws_url: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Any:
    """A ``ccxt.pro`` instance of ``venue`` (ccxt's id: ``"binance"``, ``"okx"``...).

    Args:
        venue: ccxt's exchange id.
        api_key: the API key.
        api_secret: the API secret.
        password: the API passphrase, for venues that have one (OKX).
        rest_url: replaces every REST endpoint of the venue (a simulator, a proxy).
        ws_url: replaces every WebSocket endpoint of the venue.
        options: more constructor settings for ccxt (``{"options": {...}}``...).

    Raises:
        ConfigError: ccxt has no streaming class of that name, or a URL is not
            http(s)/ws(s).
    """
    cls = getattr(ccxt_pro, venue, None) if venue in ccxt_pro.exchanges else None
    if cls is None:
        raise ConfigError(
            "exchange", venue, "is not a ccxt.pro exchange id (see ccxt.pro.exchanges)"
        )
    if rest_url is not None and not rest_url.startswith(("http://", "https://")):
        raise ConfigError("rest_url", rest_url, "must be an http:// or https:// URL")
    if ws_url is not None and not ws_url.startswith(("ws://", "wss://")):
        raise ConfigError("ws_url", ws_url, "must be a ws:// or wss:// URL")
    settings: dict[str, Any] = {"enableRateLimit": True}
    if api_key is not None:
        settings["apiKey"] = api_key
    for name, value in (("secret", api_secret), ("password", password)):
        if value is not None:
            settings[name] = value.reveal() if isinstance(value, Secret) else value
    settings.update(options or {})
    exchange = cls(settings)
    if rest_url is not None or ws_url is not None:
        exchange.urls = dict(exchange.urls)
        exchange.urls["api"] = _point(exchange.urls["api"], rest_url, ws_url)
    return exchange
