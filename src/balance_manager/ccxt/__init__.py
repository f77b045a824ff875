"""Other venues through ccxt: exact balances behind the same source interfaces as Kraken's.

Needs the ``ccxt`` extra (``pip install balance-manager[ccxt]``). This package
sits beside :mod:`balance_manager.kraken`: the core and the services never
import it (import-linter checks). Its modules import the real ``ccxt`` package
by absolute imports only (``import ccxt.pro``), so the two names never mix.

* :class:`CcxtRestSource`: a ``RestSource`` on ccxt's ``fetch_balance``;
* :class:`CcxtStreamSource`: a ``StreamSource`` on ccxt.pro's ``watch_balance``;
* :mod:`balance_manager.ccxt.shapes`: each venue's raw payloads read exactly,
  and what each venue's feeds give (``docs/venues.md``);
* :func:`make_exchange`: a ccxt.pro instance, optionally at other URLs.

::

    exchange = make_exchange("binance", api_key=key, api_secret=secret)
    rest = CcxtRestSource(exchange)
    async with BalanceManager(CcxtStreamSource(rest), rest) as manager:
        print(await manager.get_balance("USDT"))
"""

from __future__ import annotations

from balance_manager.ccxt.factory import make_exchange
from balance_manager.ccxt.rest_source import CcxtNames, CcxtRestSource, translate_error
from balance_manager.ccxt.shapes import SHAPES, Capabilities, VenueShape, shape_for
from balance_manager.ccxt.stream_source import CcxtStreamSource

__all__ = [
    "SHAPES",
    "Capabilities",
    "CcxtNames",
    "CcxtRestSource",
    "CcxtStreamSource",
    "VenueShape",
    "make_exchange",
    "shape_for",
    "translate_error",
]
