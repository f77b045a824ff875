"""Wire formatting shared by the simulator's REST and WebSocket layers.

Kraken's REST API writes amounts as strings at each asset's ledger decimals
(``"1.2435000000"`` for BTC, ``"25435.2100"`` for USD, PROTOCOL.md §4.2-§4.3)
inside an ``{"error": [...], "result": ...}`` envelope (§2). WebSocket v2
writes them as JSON numbers with full precision (§8.6): here a ``Decimal``
becomes a raw JSON number token written from its digits, never through
``float``.

This module also holds the simulator's fallback for the hold of an open order
(the client library's ``kraken/holds.py`` computes the same thing from the
``executions`` channel).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Any

import msgspec

from balance_manager.core.amounts import ZERO

__all__ = [
    "DEFAULT_FEE_RATE",
    "encode_json",
    "format_amount",
    "hold_for_order",
    "quantize",
    "rest_envelope",
    "rfc1123",
    "rfc3339",
    "wire_number",
    "wire_numbers",
]

#: Kraken's starter taker fee (0.26 %): the documented trade example charges
#: 0.3458 USD on a 132.9995 USD sale (fixture ws_executions_update_trade.json).
DEFAULT_FEE_RATE = Decimal("0.0026")

_encoder = msgspec.json.Encoder()


def rfc3339(unix_seconds: float) -> str:
    """RFC3339 UTC time with microseconds, as Kraken writes it (§8.1).

    >>> rfc3339(1695378222.925034)
    '2023-09-22T10:23:42.925034Z'
    """
    moment = datetime.fromtimestamp(unix_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc1123(unix_seconds: float) -> str:
    """The ``rfc1123`` field of ``/0/public/Time`` (two-digit year, §4.6)."""
    moment = datetime.fromtimestamp(int(unix_seconds), tz=UTC)
    return moment.strftime("%a, %d %b %y %H:%M:%S +0000")


def quantize(value: Decimal, decimals: int, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``value`` rounded to ``decimals`` places."""
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=rounding)


def format_amount(value: Decimal, decimals: int) -> str:
    """A REST amount string at ``decimals`` places (§4.2).

    >>> format_amount(Decimal("1.2435"), 10)
    '1.2435000000'
    """
    return f"{quantize(value, decimals):f}"


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


def rest_envelope(result: object = None, errors: Iterable[str] = ()) -> bytes:
    """Kraken's REST envelope (§2): ``{"error": [...], "result": ...}``.

    A failed call carries only ``error``, as in fixtures
    ``rest_error_invalid_nonce.json`` and ``rest_error_temporary_lockout.json``.
    """
    error_list = list(errors)
    body: dict[str, object] = {"error": error_list}
    if not error_list or result is not None:
        body["result"] = result if result is not None else {}
    return _encoder.encode(body)


def hold_for_order(
    side: str,
    order_type: str,
    remaining_qty: Decimal,
    limit_price: Decimal | None,
    fee_rate: Decimal,
    quote_decimals: int,
) -> Decimal:
    """What an open order holds: base units for a sell, quote units for a buy.

    A sell holds the quantity still to sell. A buy holds what the rest of the
    order can cost at its limit price plus the fee at ``fee_rate``, rounded up
    to the quote asset's ledger decimals so the hold always covers the payment.

    Args:
        side: ``buy`` or ``sell``.
        order_type: ``limit`` or ``market`` (a market buy is priced at ``limit_price``,
            the price it is expected to fill at).
        remaining_qty: base quantity not yet filled.
        limit_price: the order's limit price (required for a buy).
        fee_rate: fee as a fraction (``0.0026`` is 0.26 %).
        quote_decimals: ledger decimals of the quote asset.
    """
    if remaining_qty <= 0:
        return ZERO
    if side == "sell":
        return remaining_qty
    if limit_price is None:
        raise ValueError(f"a {order_type} buy needs a price to compute its hold")
    return quantize(remaining_qty * limit_price * (1 + fee_rate), quote_decimals, ROUND_UP)
