"""Number formatting shared by the simulator's layers.

The wire shapes themselves come from the client library's protocol modules
(``kraken/protocol/rest.py``: envelope and REST amount strings;
``kraken/protocol/ws_messages.py``: WebSocket v2 frames;
``kraken/protocol/timefmt.py``: timestamps; ``kraken/protocol/holds.py``: holds),
so client and simulator share one schema. What is left here:
:func:`plain` writes a ``Decimal`` the way Kraken's documented WebSocket
messages look (``0.005``, ``0.0``, ``500``; docs/kraken.md, 'Numbers'), and
:func:`wire_number` does the same as a raw JSON token for the few frames the
protocol modules have no encoder for (``instrument``, an answer to a request
that has no ``method``). Rounding to ``n`` decimals is
:func:`balance_manager.core.amounts.round_to`, shared with the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

__all__ = ["encode_json", "plain", "wire_number", "wire_numbers"]

_encoder = msgspec.json.Encoder()
_ONE = Decimal(1)
_ZERO_POINT_ZERO = Decimal("0.0")


def plain(value: Decimal) -> Decimal:
    """``value`` without trailing zeros or a positive exponent, zero as ``0.0``.

    ``Decimal("0.0050000000")`` → ``0.005``, ``Decimal("500.0000")`` → ``500``,
    ``Decimal(0)`` → ``0.0``: the look of the documented messages (fixtures
    ``ws_balances_update_*.json``), with every significant digit kept.
    """
    if value == 0:
        return _ZERO_POINT_ZERO
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return normal.quantize(_ONE)
    return normal


def wire_number(value: Decimal | int) -> msgspec.Raw:
    """A JSON number token for ``value``, written in plain notation from its digits.

    Trailing zeros are dropped and a zero is written ``0.0``, which is how the
    documented messages look (``"fee": 0.0``, ``"balance": 500``,
    ``"amount": -0.005``; fixtures ``ws_balances_update_*.json``).
    """
    if isinstance(value, int):
        return msgspec.Raw(str(value).encode())
    if value == 0:
        return msgspec.Raw(b"0.0")
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return msgspec.Raw(text.encode())


def wire_numbers(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``mapping`` with every ``Decimal`` value written as a JSON number token."""
    return {key: wire_number(v) if isinstance(v, Decimal) else v for key, v in mapping.items()}


def encode_json(message: object) -> bytes:
    """Compact JSON of ``message`` (``Decimal`` values must already be :func:`wire_number`)."""
    return _encoder.encode(message)
