"""Kraken REST, sans-I/O: build signed requests, read envelopes, decode results.

The client side (``kraken/rest_client.py``) does::

    request = build_private_request("BalanceEx", None, nonce=nonces(), credentials=creds)
    status, body = <send request.method request.url(base) with request.headers, request.body>
    entries = decode_balance_ex(parse_envelope(body, method="BalanceEx", status=status))

The server side (the simulator) uses the encoders at the bottom
(:func:`encode_envelope`, :func:`format_amount`...), so both ends agree on the
exact shapes by construction. Those shapes are described in docs/kraken.md,
'REST envelope and HTTP status' and 'REST endpoints we call' (one section per
method, named after it).

Amounts decode straight to ``Decimal`` whether Kraken sends strings (the
documented schema) or numbers (the docs' own BalanceEx example). A result
of the wrong shape raises :class:`~balance_manager.exceptions.ProtocolError`
naming the JSON path, e.g. ``$.result.XXBT.balance``.
"""

from __future__ import annotations

import functools
import html
import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, ClassVar, Literal, TypeVar

import msgspec

from balance_manager._version import __version__
from balance_manager.core.amounts import ZERO, round_to
from balance_manager.credentials import Credentials, Secret, mask_key
from balance_manager.exceptions import ProtocolError, TransportError
from balance_manager.kraken.protocol.assets import RestBalanceEntry
from balance_manager.kraken.protocol.errors import exception_for, split_messages
from balance_manager.kraken.protocol.signing import encode_form, encode_json, sign

__all__ = [
    "PRIVATE_PREFIX",
    "PUBLIC_PREFIX",
    "AddOrderDescription",
    "AddOrderResult",
    "AssetRecord",
    "CancelOrderResult",
    "FiniteDecimals",
    "OpenOrder",
    "OrderDescription",
    "PreparedRequest",
    "RestEnvelope",
    "ServerTime",
    "SystemStatus",
    "SystemStatusValue",
    "TradeBalance",
    "WebSocketToken",
    "asset_fields",
    "balance_ex_result",
    "balance_result",
    "build_private_request",
    "build_public_request",
    "decode_add_order",
    "decode_assets",
    "decode_balance",
    "decode_balance_ex",
    "decode_cancel_order",
    "decode_open_orders",
    "decode_system_status",
    "decode_time",
    "decode_trade_balance",
    "decode_ws_token",
    "encode_envelope",
    "format_amount",
    "parse_envelope",
    "protocol_error",
    "read_envelope",
]

logger = logging.getLogger(__name__)

#: Path prefix of private methods (POST, signed).
PRIVATE_PREFIX = "/0/private/"
#: Path prefix of public methods (GET).
PUBLIC_PREFIX = "/0/public/"

_FORM_TYPE = "application/x-www-form-urlencoded"
_JSON_TYPE = "application/json"

# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------


@functools.cache
def _default_user_agent() -> str:
    return f"balance-manager/{__version__}"


def _masked_header(name: str, value: str) -> str:
    if name == "API-Sign":
        return "***"
    if name == "API-Key":
        return mask_key(value)
    return value


@dataclass(frozen=True, slots=True, eq=True)
class PreparedRequest:
    """One HTTP request, ready to send: the exact bytes that were signed.

    Attributes:
        method: ``"GET"`` (public) or ``"POST"`` (private).
        path: URI path, e.g. ``/0/private/BalanceEx``.
        headers: header name → value (includes ``API-Key``/``API-Sign`` when private).
        body: the request body; for private calls, exactly the signed bytes.
        query: query parameters (public calls), in order.

    The ``repr`` masks ``API-Sign`` entirely and shortens ``API-Key`` so a
    request can be logged.
    """

    method: Literal["GET", "POST"]
    path: str
    headers: dict[str, str] = field(hash=False)
    body: bytes = b""
    query: tuple[tuple[str, str], ...] = ()

    def url(self, base: str) -> str:
        """The full URL on ``base`` (e.g. ``https://api.kraken.com``), with the query."""
        url = base.rstrip("/") + self.path
        if self.query:
            url += "?" + urllib.parse.urlencode(self.query)
        return url

    def __repr__(self) -> str:
        headers = {name: _masked_header(name, value) for name, value in self.headers.items()}
        return (
            f"PreparedRequest(method={self.method!r}, path={self.path!r}, headers={headers!r}, "
            f"body=<{len(self.body)} bytes>, query={self.query!r})"
        )


def build_private_request(
    method: str,
    params: Mapping[str, object] | None,
    *,
    nonce: int,
    credentials: Credentials,
    encoding: Literal["form", "json"] = "form",
    user_agent: str | None = None,
) -> PreparedRequest:
    """A signed ``POST /0/private/<method>``.

    The nonce is the first body field; ``API-Sign`` is computed over exactly
    the body bytes returned, so nothing may re-encode them before sending (see
    docs/kraken.md, 'REST authentication and the signature').

    Args:
        method: the private method, e.g. ``"BalanceEx"``.
        params: other body fields, in the order to send them (``None``: none).
        nonce: a nonce from the key's :class:`~balance_manager.kraken.protocol.signing.NonceSource`.
        credentials: the API key and secret.
        encoding: ``"form"`` (``application/x-www-form-urlencoded``) or ``"json"``.
        user_agent: ``User-Agent`` header; defaults to ``balance-manager/<version>``.

    Raises:
        ValueError: ``params`` contains ``nonce`` (it is always the argument).
    """
    fields: dict[str, object] = {"nonce": nonce}
    if params:
        if "nonce" in params:
            raise ValueError("params must not contain 'nonce'; pass it as nonce=")
        fields.update(params)
    if encoding == "form":
        body = encode_form(fields).encode()
        content_type = _FORM_TYPE
    elif encoding == "json":
        body = encode_json(fields)
        content_type = _JSON_TYPE
    else:
        raise ValueError(f"encoding must be 'form' or 'json', got {encoding!r}")
    path = PRIVATE_PREFIX + method
    signature = sign(path, nonce, body, credentials.api_secret.reveal())
    headers = {
        "API-Key": credentials.api_key,
        "API-Sign": signature,
        "Content-Type": content_type,
        "Accept": _JSON_TYPE,
        "User-Agent": user_agent or _default_user_agent(),
    }
    return PreparedRequest("POST", path, headers, body)


def build_public_request(
    method: str,
    query: Mapping[str, object] | None = None,
    *,
    user_agent: str | None = None,
) -> PreparedRequest:
    """An unsigned ``GET /0/public/<method>`` (e.g. ``Assets``, ``Time``, ``SystemStatus``).

    Query values are written with ``str()``; lists and tuples become Kraken's
    comma lists (``asset=XBT,ETH``).
    """
    pairs: list[tuple[str, str]] = []
    for key, value in (query or {}).items():
        text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        pairs.append((key, text))
    headers = {"Accept": _JSON_TYPE, "User-Agent": user_agent or _default_user_agent()}
    return PreparedRequest("GET", PUBLIC_PREFIX + method, headers, b"", tuple(pairs))


# ---------------------------------------------------------------------------
# Envelope
# ---------------------------------------------------------------------------

_NULL = msgspec.Raw(b"null")


class _Envelope(msgspec.Struct, frozen=True):
    # `result` is kept as raw bytes so each method decodes it with its own type
    # in one pass; it may be absent, {} or null on errors.
    error: list[str]
    result: msgspec.Raw = msgspec.Raw()


_envelope_decoder = msgspec.json.Decoder(_Envelope)


class RestEnvelope(msgspec.Struct, frozen=True):
    """A successful response: the raw ``result`` and any warnings Kraken added.

    Attributes:
        result: the undecoded ``result`` JSON; pass it to a ``decode_*`` function.
        warnings: ``W...`` strings that came with the result (usually none).
    """

    result: msgspec.Raw
    warnings: tuple[str, ...] = ()


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"\s+")


def _excerpt(body: bytes, limit: int = 80) -> str:
    """A short, printable hint of a non-JSON body (its HTML title if it has one)."""
    match = _TITLE.search(body[:4096])
    chunk = match.group(1) if match else body[:1024]
    text = html.unescape(_TAGS.sub(" ", chunk.decode("utf-8", "replace")))
    text = _SPACES.sub(" ", text).strip()
    return text[:limit] + ("…" if len(text) > limit else "")


def _transport_error(body: bytes, method: str, status: int, content_type: str | None) -> Exception:
    kind = f" ({content_type.split(';')[0].strip()})" if content_type else ""
    hint = _excerpt(body)
    detail = f": {hint}" if hint else ""
    where = f"{method}: " if method else ""
    return TransportError(f"{where}HTTP {status}{kind}{detail}", status=status)


def read_envelope(
    body: bytes,
    *,
    method: str,
    status: int,
    content_type: str | None = None,
    now: float | None = None,
) -> RestEnvelope:
    """Check a REST response and return its ``result`` with any warnings.

    Args:
        body: the response body.
        method: the API method called (for messages), e.g. ``"Balance"``.
        status: the HTTP status code.
        content_type: the ``Content-Type`` header, if known.
        now: current Unix time, to turn ``EService: Throttled: <ts>`` into a wait.

    Raises:
        TransportError: the response is not a Kraken envelope: a non-JSON body
            (Cloudflare or maintenance HTML), or a non-200 status without one.
        ExchangeError: (or a subclass) the ``error`` array holds an ``E...`` string;
            the first one decides the class.
        ProtocolError: JSON without an ``error`` array, or success without ``result``.
    """
    looks_html = content_type is not None and "html" in content_type.lower()
    try:
        if looks_html:
            raise msgspec.DecodeError("HTML body")
        envelope = _envelope_decoder.decode(body)
    # ValidationError is a DecodeError subclass: caught first. RecursionError:
    # JSON nested too deeply to parse, which is no envelope either.
    except (msgspec.ValidationError, RecursionError) as exc:
        if status != 200:
            raise _transport_error(body, method, status, content_type) from None
        raise _protocol_error(exc, method=method) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        # Not JSON at all (invalid UTF-8 included): the request never got a
        # Kraken answer.
        raise _transport_error(body, method, status, content_type) from None
    errors, warnings = split_messages(envelope.error)
    if errors:
        # Kraken signals API errors in the body, not with HTTP codes, and
        # whether a rate limit also comes as HTTP 429 is UNCONFIRMED: mapping the
        # error string whatever the status is right in both cases.
        raise exception_for(errors[0], method=method, now=now)
    if status != 200:
        raise _transport_error(body, method, status, content_type)
    if not envelope.result:
        raise ProtocolError(f"{method}: success without a result", path="$.result")
    if warnings:
        logger.warning("Kraken %s returned warnings: %s", method, "; ".join(warnings))
    return RestEnvelope(envelope.result, tuple(warnings))


def parse_envelope(
    body: bytes,
    *,
    method: str,
    status: int,
    content_type: str | None = None,
    now: float | None = None,
) -> msgspec.Raw:
    """The raw ``result`` of a successful response; see :func:`read_envelope`.

    Warnings are logged; call :func:`read_envelope` to receive them instead.
    """
    return read_envelope(
        body, method=method, status=status, content_type=content_type, now=now
    ).result


# ---------------------------------------------------------------------------
# Result types and decoders
# ---------------------------------------------------------------------------

_PATH = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_FIELD_MESSAGE = re.compile(r"^`(?P<field>\w+)` must be")


def protocol_error(
    exc: msgspec.MsgspecError | UnicodeDecodeError | RecursionError,
    *,
    prefix: str = "$",
    context: str = "",
) -> ProtocolError:
    """Turn a msgspec error into a :class:`ProtocolError` carrying the JSON path.

    msgspec writes ``Expected `str`, got `int` - at `$.data[0].balance```; the
    path is split out into ``ProtocolError.path``. ``prefix`` re-roots it (a
    payload decoded on its own has paths from ``$``: with ``prefix="$.data"``
    they read ``$.data[0]...``); ``context`` is put in front of the message.
    A :class:`FiniteDecimals` failure names the field, which is appended to the path.
    A ``RecursionError`` (JSON nested deeper than msgspec parses) says so.
    """
    if isinstance(exc, RecursionError):
        return ProtocolError(f"{context}JSON nested too deeply", path=prefix)
    match = _PATH.match(str(exc))
    assert match is not None  # noqa: S101 - the pattern matches any string
    message = match.group("message")
    path = prefix + (match.group("path") or "$")[1:]
    named = _FIELD_MESSAGE.match(message)
    if named is not None:
        path += "." + named.group("field")
    return ProtocolError(f"{context}{message}", path=path)


def _protocol_error(
    exc: msgspec.MsgspecError | UnicodeDecodeError | RecursionError,
    *,
    method: str,
    prefix: str = "$",
) -> ProtocolError:
    # No raw excerpt: private results can hold a WebSocket token.
    return protocol_error(exc, prefix=prefix, context=f"{method}: " if method else "")


_T = TypeVar("_T")


def _decoder(kind: type[_T]) -> Callable[[msgspec.Raw | bytes, str], _T]:
    decoder = msgspec.json.Decoder(kind)

    def decode(raw: msgspec.Raw | bytes, method: str) -> _T:
        try:
            return decoder.decode(raw)
        except (
            msgspec.ValidationError,
            msgspec.DecodeError,
            UnicodeDecodeError,
            RecursionError,
        ) as exc:
            raise _protocol_error(exc, method=method, prefix="$.result") from None

    return decode


class FiniteDecimals:
    """Mixin for wire structs: refuse NaN and infinities in the named ``Decimal`` fields.

    msgspec decodes ``"NaN"`` or ``"Infinity"`` strings to ``Decimal`` like any
    other; no exchange amount may be one. A subclass lists its amount fields in
    ``_amount_fields``; msgspec reports the failure with the JSON path of the
    struct, and the message names the field.
    """

    __slots__ = ()
    _amount_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        """Check every field named in ``_amount_fields`` (``None`` is allowed)."""
        for name in self._amount_fields:
            value = getattr(self, name)
            if value is not None and not value.is_finite():
                raise ValueError(f"`{name}` must be a finite number, got {value}")


class WebSocketToken(msgspec.Struct, frozen=True):
    """``GetWebSocketsToken`` result: a credential, masked when printed.

    Attributes:
        token: the token; ``token.reveal()`` gives the string to subscribe with.
        expires: seconds within which the first private subscription must be made.
    """

    token: Secret
    expires: int


class _TokenWire(msgspec.Struct, frozen=True):
    token: str
    expires: int


class AssetRecord(FiniteDecimals, msgspec.Struct, frozen=True):
    """One entry of the public ``Assets`` result.

    Attributes:
        aclass: asset class (``currency``, ``tokenized_asset``).
        altname: Kraken's ISO code (``XBT``, ``USD``).
        decimals: ledger decimals.
        display_decimals: decimals shown to people.
        collateral_value: margin collateral weight, if given.
        status: ``enabled``, ``deposit_only``, ``withdrawal_only``,
            ``funding_temporarily_disabled``... (not a closed list), if given.
    """

    _amount_fields: ClassVar[tuple[str, ...]] = ("collateral_value",)

    aclass: str
    altname: str
    decimals: int
    display_decimals: int
    collateral_value: Decimal | None = None
    status: str | None = None


class ServerTime(msgspec.Struct, frozen=True):
    """``Time`` result: ``unixtime`` seconds and ``rfc1123`` text (two-digit year)."""

    unixtime: int
    rfc1123: str


#: The documented ``SystemStatus`` values; others are passed through.
SystemStatusValue = Literal["online", "maintenance", "cancel_only", "post_only"]


class SystemStatus(msgspec.Struct, frozen=True):
    """``SystemStatus`` result.

    Attributes:
        status: one of :data:`SystemStatusValue` (an unknown value is kept as is).
        timestamp: RFC 3339 time of the status.
    """

    status: str
    timestamp: str

    @property
    def online(self) -> bool:
        """Whether trading is fully available."""
        return self.status == "online"


class TradeBalance(FiniteDecimals, msgspec.Struct, frozen=True):
    """``TradeBalance`` result. Not a per-asset balance source.

    Attributes are Kraken's: ``eb`` equivalent balance, ``tb`` trade balance,
    ``m`` margin, ``n`` unrealised P/L, ``c`` cost basis, ``v`` valuation, ``e``
    equity, ``mf`` free margin, ``ml`` margin level (only with positions), ``uv``
    unexecuted order value (optional).
    """

    _amount_fields: ClassVar[tuple[str, ...]] = (
        "eb",
        "tb",
        "m",
        "n",
        "c",
        "v",
        "e",
        "mf",
        "ml",
        "uv",
    )

    eb: Decimal
    tb: Decimal
    m: Decimal
    n: Decimal
    c: Decimal
    v: Decimal
    e: Decimal
    mf: Decimal
    ml: Decimal | None = None
    uv: Decimal | None = None


class OrderDescription(FiniteDecimals, msgspec.Struct, frozen=True):
    """``descr`` of an open order: pair, side, order type and prices.

    ``price`` is the limit price for limit orders (``0`` for market orders);
    ``price2`` the secondary price; ``order`` Kraken's human summary.
    """

    _amount_fields: ClassVar[tuple[str, ...]] = ("price", "price2")

    pair: str
    type: str
    ordertype: str
    price: Decimal = ZERO
    price2: Decimal = ZERO
    leverage: str | None = None
    order: str | None = None
    close: str | None = None


class OpenOrder(FiniteDecimals, msgspec.Struct, frozen=True):
    """One entry of ``OpenOrders.open``, used to reconcile holds.

    Attributes:
        status: ``pending``, ``open``...
        descr: what the order is (pair, side, type, prices).
        vol: order volume (base asset).
        vol_exec: volume executed so far.
        cost, fee, price: totals so far (quote asset) and average price.
        opentm: Unix time the order was placed.
        userref: the client's reference, if any.
        oflags: order flags (``fciq``, ``post``...), comma separated.
    """

    _amount_fields: ClassVar[tuple[str, ...]] = (
        "vol",
        "vol_exec",
        "cost",
        "fee",
        "price",
        "stopprice",
        "limitprice",
    )

    status: str
    descr: OrderDescription
    vol: Decimal
    vol_exec: Decimal = ZERO
    cost: Decimal = ZERO
    fee: Decimal = ZERO
    price: Decimal = ZERO
    stopprice: Decimal | None = None
    limitprice: Decimal | None = None
    opentm: float | None = None
    starttm: float | None = None
    expiretm: float | None = None
    userref: int | None = None
    refid: str | None = None
    oflags: str = ""
    misc: str = ""

    @property
    def remaining(self) -> Decimal:
        """Volume not executed yet (``vol - vol_exec``)."""
        return self.vol - self.vol_exec


class _OpenOrdersWire(msgspec.Struct, frozen=True):
    open: dict[str, OpenOrder]


class AddOrderDescription(msgspec.Struct, frozen=True):
    """``descr`` of an ``AddOrder`` result: Kraken's summaries of the order and close."""

    order: str
    close: str | None = None


class AddOrderResult(msgspec.Struct, frozen=True):
    """``AddOrder`` result: the description and the new order ids (``txid``)."""

    descr: AddOrderDescription
    txid: list[str] = msgspec.field(default_factory=list)


class CancelOrderResult(msgspec.Struct, frozen=True):
    """``CancelOrder`` result: how many orders were canceled, and whether any is pending."""

    count: int
    pending: bool = False


def _check_finite_map(values: Mapping[str, Decimal], method: str) -> None:
    for key, value in values.items():
        if not value.is_finite():
            raise ProtocolError(
                f"{method}: balance must be a finite number, got {value}", path=f"$.result.{key}"
            )


class _FiniteBalanceEntry(FiniteDecimals, msgspec.Struct, frozen=True):
    _amount_fields: ClassVar[tuple[str, ...]] = ("balance", "hold_trade", "credit", "credit_used")

    balance: Decimal
    hold_trade: Decimal = ZERO
    credit: Decimal = ZERO
    credit_used: Decimal = ZERO


_decode_balance_map = _decoder(dict[str, Decimal])
_decode_balance_ex_map = _decoder(dict[str, _FiniteBalanceEntry])
_decode_token = _decoder(_TokenWire)
_decode_assets = _decoder(dict[str, AssetRecord])
_decode_time = _decoder(ServerTime)
_decode_status = _decoder(SystemStatus)
_decode_trade_balance = _decoder(TradeBalance)
_decode_open_orders = _decoder(_OpenOrdersWire)
_decode_add_order = _decoder(AddOrderResult)
_decode_cancel_order = _decoder(CancelOrderResult)


def decode_balance(raw: msgspec.Raw | bytes) -> dict[str, RestBalanceEntry]:
    """``Balance`` result: REST key → entry with only ``balance`` set."""
    values = _decode_balance_map(raw, "Balance")
    _check_finite_map(values, "Balance")
    return {key: RestBalanceEntry(balance=value) for key, value in values.items()}


def decode_balance_ex(raw: msgspec.Raw | bytes) -> dict[str, RestBalanceEntry]:
    """``BalanceEx`` result: REST key → balance, hold_trade, credit, credit_used.

    Absent ``hold_trade``/``credit``/``credit_used`` count as 0 (the documented
    formula; docs/kraken.md, 'BalanceEx').
    """
    entries = _decode_balance_ex_map(raw, "BalanceEx")
    return {
        key: RestBalanceEntry(
            balance=entry.balance,
            hold_trade=entry.hold_trade,
            credit=entry.credit,
            credit_used=entry.credit_used,
        )
        for key, entry in entries.items()
    }


def decode_ws_token(raw: msgspec.Raw | bytes) -> WebSocketToken:
    """``GetWebSocketsToken`` result, the token wrapped in a :class:`Secret`."""
    wire = _decode_token(raw, "GetWebSocketsToken")
    return WebSocketToken(token=Secret(wire.token), expires=wire.expires)


def decode_assets(raw: msgspec.Raw | bytes) -> dict[str, AssetRecord]:
    """``Assets`` result: REST key → record."""
    return _decode_assets(raw, "Assets")


def asset_fields(records: Mapping[str, AssetRecord]) -> dict[str, dict[str, object]]:
    """``Assets`` records as plain mappings, for :meth:`AssetNames.update_from_assets`.

    >>> names.update_from_assets(asset_fields(decode_assets(raw)))  # doctest: +SKIP
    """
    return {key: msgspec.structs.asdict(record) for key, record in records.items()}


def decode_time(raw: msgspec.Raw | bytes) -> ServerTime:
    """``Time`` result."""
    return _decode_time(raw, "Time")


def decode_system_status(raw: msgspec.Raw | bytes) -> SystemStatus:
    """``SystemStatus`` result."""
    return _decode_status(raw, "SystemStatus")


def decode_trade_balance(raw: msgspec.Raw | bytes) -> TradeBalance:
    """``TradeBalance`` result."""
    return _decode_trade_balance(raw, "TradeBalance")


def decode_open_orders(raw: msgspec.Raw | bytes) -> dict[str, OpenOrder]:
    """``OpenOrders`` result: order id (txid) → open order."""
    return _decode_open_orders(raw, "OpenOrders").open


def decode_add_order(raw: msgspec.Raw | bytes) -> AddOrderResult:
    """``AddOrder`` result."""
    return _decode_add_order(raw, "AddOrder")


def decode_cancel_order(raw: msgspec.Raw | bytes) -> CancelOrderResult:
    """``CancelOrder`` result."""
    return _decode_cancel_order(raw, "CancelOrder")


# ---------------------------------------------------------------------------
# Server side (the simulator): Kraken's exact shapes
# ---------------------------------------------------------------------------

# Decimals left in a result are written as strings, as Kraken's REST does.
_envelope_encoder = msgspec.json.Encoder(decimal_format="string")


def format_amount(value: Decimal, decimals: int, *, rounding: str = ROUND_HALF_EVEN) -> str:
    """``value`` as Kraken's REST writes it: a string with exactly ``decimals`` digits.

    >>> format_amount(Decimal("3E-9"), 10)
    '0.0000000030'
    >>> format_amount(Decimal("21.905"), 4)
    '21.9050'

    Never uses exponent notation; ``-0`` is written ``0``. Values with more
    digits than ``decimals`` are rounded with ``rounding`` (banker's by default).

    Raises:
        ValueError: ``value`` is not finite or ``decimals`` is negative.
    """
    quantized = round_to(value, decimals, rounding)  # never fails on a large balance
    if quantized.is_zero():
        quantized = abs(quantized)
    return f"{quantized:f}"


def _decimals_for(asset: str, decimals: Mapping[str, int], default: int | None) -> int:
    found = decimals.get(asset, default)
    if found is None:
        raise ValueError(f"no decimals known for asset {asset!r}")
    return found


def balance_result(
    balances: Mapping[str, Decimal], decimals: Mapping[str, int], *, default: int | None = None
) -> dict[str, str]:
    """A ``Balance`` result: REST key → amount string at the asset's decimals.

    Args:
        balances: REST key → balance.
        decimals: REST key → ledger decimals.
        default: decimals for keys missing from ``decimals`` (else ``ValueError``).
    """
    return {
        key: format_amount(value, _decimals_for(key, decimals, default))
        for key, value in balances.items()
    }


def balance_ex_result(
    entries: Mapping[str, RestBalanceEntry],
    decimals: Mapping[str, int],
    *,
    default: int | None = None,
) -> dict[str, dict[str, str]]:
    """A ``BalanceEx`` result: strings at the asset's decimals.

    ``credit`` and ``credit_used`` are written only when the account has a
    credit line (either is non-zero), as Kraken does.
    """
    out: dict[str, dict[str, str]] = {}
    for key, entry in entries.items():
        places = _decimals_for(key, decimals, default)
        row = {
            "balance": format_amount(entry.balance, places),
            "hold_trade": format_amount(entry.hold_trade, places),
        }
        if entry.credit or entry.credit_used:
            row["credit"] = format_amount(entry.credit, places)
            row["credit_used"] = format_amount(entry.credit_used, places)
        out[key] = row
    return out


def encode_envelope(result: Any = None, errors: tuple[str, ...] | list[str] = ()) -> bytes:
    """A REST response body: ``{"error":[...],"result":...}``.

    With errors and no result, ``result`` is omitted, Kraken's usual error shape
    ``{"error":["EAPI:Invalid nonce"]}``. Decimals left in ``result`` are written
    as strings; format amounts with :func:`format_amount` (or
    :func:`balance_result`) to get Kraken's fixed decimals.
    """
    if errors and result is None:
        return _envelope_encoder.encode({"error": list(errors)})
    return _envelope_encoder.encode({"error": list(errors), "result": result})
