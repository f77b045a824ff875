"""Kraken WebSocket v2 messages: typed structs, one fast decoder, and encoders.

:func:`decode_message` turns one text frame into one of the :data:`WsMessage`
types (the shapes are in docs/kraken.md, 'WebSocket v2'). It reads a small
envelope first (``channel``, ``method``, ``type``, ``sequence`` and the
still-undecoded ``data``), then decodes only the payload with a decoder built
once at import, so each byte is parsed once on the hot path (``balances``
updates). JSON numbers go straight to
``Decimal`` with every digit (``1e-08`` → ``Decimal('1E-8')``), never through
``float`` (docs/kraken.md, 'Numbers').

Kraken adds fields over time, so unknown fields are ignored; value lists that
the docs do not close (ledger ``type``, ``category``, wallet ids; see
docs/kraken.md, 'Balances updates') are
plain strings; a channel we do not know decodes to :class:`UnknownMessage`
instead of failing. A frame that is not JSON, or has the wrong shape, raises
:class:`~balance_manager.exceptions.ProtocolError` naming the JSON path, e.g.
``Expected `decimal`, got `str` - at `$.data[0].balance```.

The encoders at the bottom produce the server's exact shapes with JSON numbers
at full precision; the simulator sends them, so client and simulator share one
schema. The client's own requests (:func:`subscribe_request`,
:func:`ping_request`...) are here too, with :func:`decode_request` for the
simulator to read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Literal, TypeAlias

import msgspec

from balance_manager.credentials import Secret
from balance_manager.exceptions import ProtocolError
from balance_manager.kraken.protocol.rest import FiniteDecimals, protocol_error
from balance_manager.kraken.protocol.timefmt import format_rfc3339, parse_rfc3339

__all__ = [
    "HEARTBEAT",
    "AssetBalance",
    "BalancesSnapshotMessage",
    "BalancesUpdateMessage",
    "ClientRequest",
    "ErrorMessage",
    "Execution",
    "ExecutionFee",
    "ExecutionsMessage",
    "HeartbeatMessage",
    "InstrumentAsset",
    "InstrumentData",
    "InstrumentMessage",
    "InstrumentPair",
    "LedgerEntry",
    "MethodResponse",
    "PongMessage",
    "StatusInfo",
    "StatusMessage",
    "SubscriptionResult",
    "UnknownMessage",
    "WalletBalance",
    "WsMessage",
    "decode_message",
    "decode_request",
    "encode_balances_snapshot",
    "encode_balances_update",
    "encode_executions",
    "encode_heartbeat",
    "encode_method_response",
    "encode_pong",
    "encode_status",
    "ping_request",
    "subscribe_request",
    "unsubscribe_request",
]

# ---------------------------------------------------------------------------
# Payload structs (the items of `data`)
# ---------------------------------------------------------------------------


class WalletBalance(msgspec.Struct, frozen=True, gc=False):
    """One wallet of an asset in a ``balances`` snapshot.

    Attributes:
        type: ``spot`` or ``earn`` (not a closed list).
        id: ``main``, ``flex``, ``bonded``, ``flexible``, ``liquid``, ``locked``,
            ``closed``... (not a closed list).
        balance: the wallet's balance.
    """

    type: str
    id: str
    balance: Decimal

    def __post_init__(self) -> None:
        """Refuse NaN and infinities (msgspec accepts them from strings)."""
        if not self.balance.is_finite():
            raise ValueError(f"`balance` must be a finite number, got {self.balance}")


class AssetBalance(msgspec.Struct, frozen=True, gc=False):
    """One asset of a ``balances`` snapshot.

    Attributes:
        asset: v2 asset name (``BTC``, ``USD``).
        asset_class: ``currency`` (a placeholder for future classes).
        balance: the total across all wallets of this asset.
        wallets: the per-wallet balances.
    """

    asset: str
    asset_class: str
    balance: Decimal
    wallets: tuple[WalletBalance, ...]

    def __post_init__(self) -> None:
        """Refuse NaN and infinities (msgspec accepts them from strings)."""
        if not self.balance.is_finite():
            raise ValueError(f"`balance` must be a finite number, got {self.balance}")


class LedgerEntry(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One ledger entry of a ``balances`` update: one completed balance change.

    Attributes:
        ledger_id: the entry's id.
        ref_id: reference id; for a trade, the trade id (both legs share it).
        timestamp: RFC 3339 time of the change (see :attr:`time`).
        type: ``deposit``, ``withdrawal``, ``trade``, ``staking``... (not closed).
        asset: v2 asset name.
        asset_class: ``currency``.
        category: ``deposit``, ``trade``, ``staking-rewards``... (not closed).
        wallet_type: ``spot`` or ``earn``.
        wallet_id: ``main``, ``bonded``, ``flexible``, ``liquid``, ``locked``...
        amount: the change (negative for debits).
        fee: the fee of this change.
        balance: the asset's balance after the change (per wallet or all-wallet
            total is not documented; the session checks both).
        subtype: e.g. ``spottostaking``, when given.
        user: the sub-account, only with ``users: "all"``.
    """

    ledger_id: str
    ref_id: str
    timestamp: str
    type: str
    asset: str
    asset_class: str
    category: str
    wallet_type: str
    wallet_id: str
    amount: Decimal
    fee: Decimal
    balance: Decimal
    subtype: str | None = None
    user: str | None = None

    def __post_init__(self) -> None:
        """Refuse NaN and infinities (msgspec accepts them from strings)."""
        # Inline rather than a loop: this runs for every ledger entry.
        if not (self.amount.is_finite() and self.fee.is_finite() and self.balance.is_finite()):
            bad = next(
                name for name in ("amount", "fee", "balance") if not getattr(self, name).is_finite()
            )
            raise ValueError(f"`{bad}` must be a finite number, got {getattr(self, bad)}")

    @property
    def time(self) -> float:
        """``timestamp`` as Unix seconds."""
        return parse_rfc3339(self.timestamp)


class ExecutionFee(FiniteDecimals, msgspec.Struct, frozen=True, gc=False):
    """One fee of an execution: ``qty`` of ``asset``."""

    _amount_fields: ClassVar[tuple[str, ...]] = ("qty",)

    asset: str
    qty: Decimal


class Execution(FiniteDecimals, msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One item of the ``executions`` channel: an order event or a trade.

    Only ``order_id`` and ``exec_type`` are always present; order events
    (``pending_new``, ``new``, ``amended``, ``restated``) carry the order's
    fields, trades carry ``last_qty``/``last_price``/``cum_qty``/``fees``.

    Attributes:
        order_id: Kraken's order id.
        exec_type: ``pending_new``, ``new``, ``trade``, ``filled``, ``canceled``,
            ``expired``, ``amended``, ``restated``, ``iceberg_refill``... (not closed).
        order_status: ``pending_new``, ``new``, ``partially_filled``, ``filled``,
            ``canceled``, ``expired``.
        symbol: pair in v2 names, ``BTC/USD``.
        side: ``buy`` or ``sell``.
        order_type: ``limit``, ``market``, ``stop-loss-limit``, ``iceberg``...
        order_qty: order quantity (base asset).
        limit_price: limit price (quote asset), for priced order types.
        cum_qty: quantity filled so far.
        last_qty, last_price: this trade's quantity and price.
        cost: this trade's value (quote); ``cum_cost`` the order's so far.
        fees: fees charged by this trade.
        timestamp: RFC 3339 time of the event.
    """

    _amount_fields: ClassVar[tuple[str, ...]] = (
        "order_qty",
        "limit_price",
        "stop_price",
        "cum_qty",
        "cum_cost",
        "avg_price",
        "last_qty",
        "last_price",
        "cost",
        "fee_usd_equiv",
        "display_qty",
        "cash_order_qty",
    )

    order_id: str
    exec_type: str
    exec_id: str | None = None
    trade_id: int | None = None
    order_userref: int | None = None
    cl_ord_id: str | None = None
    symbol: str | None = None
    side: str | None = None
    order_type: str | None = None
    order_qty: Decimal | None = None
    cash_order_qty: Decimal | None = None
    display_qty: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str | None = None
    post_only: bool | None = None
    reduce_only: bool | None = None
    margin: bool | None = None
    fee_ccy_pref: str | None = None
    last_qty: Decimal | None = None
    last_price: Decimal | None = None
    liquidity_ind: str | None = None
    cost: Decimal | None = None
    timestamp: str | None = None
    order_status: str | None = None
    cum_qty: Decimal | None = None
    cum_cost: Decimal | None = None
    avg_price: Decimal | None = None
    fee_usd_equiv: Decimal | None = None
    fees: tuple[ExecutionFee, ...] | None = None
    amended: bool | None = None
    reason: str | None = None


class StatusInfo(msgspec.Struct, frozen=True, gc=False):
    """The item of a ``status`` message.

    Attributes:
        system: ``online``, ``cancel_only``, ``maintenance``, ``post_only``.
        connection_id: the connection's id (may exceed 2**63; Python ints are unbounded).
        api_version: ``v2``.
        version: the API software version, e.g. ``2.0.0``.
    """

    system: str
    connection_id: int | None = None
    api_version: str | None = None
    version: str | None = None


class InstrumentAsset(FiniteDecimals, msgspec.Struct, frozen=True, gc=False):
    """An asset of the ``instrument`` channel: v2 name and ledger ``precision``."""

    _amount_fields: ClassVar[tuple[str, ...]] = ("collateral_value", "margin_rate", "multiplier")

    id: str
    status: str
    precision: int
    precision_display: int
    borrowable: bool | None = None
    collateral_value: Decimal | None = None
    margin_rate: Decimal | None = None
    multiplier: Decimal | None = None


class InstrumentPair(FiniteDecimals, msgspec.Struct, frozen=True, gc=False):
    """A pair of the ``instrument`` channel (``BTC/USD``: base, quote, increments)."""

    _amount_fields: ClassVar[tuple[str, ...]] = (
        "qty_increment",
        "price_increment",
        "tick_size",
        "qty_min",
        "cost_min",
        "margin_initial",
    )

    symbol: str
    base: str
    quote: str
    status: str
    qty_precision: int | None = None
    qty_increment: Decimal | None = None
    price_precision: int | None = None
    price_increment: Decimal | None = None
    cost_precision: int | None = None
    tick_size: Decimal | None = None
    qty_min: Decimal | None = None
    cost_min: Decimal | None = None
    marginable: bool | None = None
    has_index: bool | None = None
    margin_initial: Decimal | None = None
    position_limit_long: int | None = None
    position_limit_short: int | None = None


class InstrumentData(msgspec.Struct, frozen=True, gc=False):
    """The ``data`` of an ``instrument`` message: assets and pairs."""

    assets: tuple[InstrumentAsset, ...] = ()
    pairs: tuple[InstrumentPair, ...] = ()


class SubscriptionResult(msgspec.Struct, frozen=True, gc=False):
    """``result`` of a subscribe/unsubscribe acknowledgement."""

    channel: str
    snapshot: bool | None = None
    warnings: tuple[str, ...] | None = None


# ---------------------------------------------------------------------------
# Messages (one decoded frame)
# ---------------------------------------------------------------------------


class StatusMessage(msgspec.Struct, frozen=True, gc=False):
    """``status`` channel: sent on connect and when the engine status changes."""

    channel: ClassVar[str] = "status"

    type: str
    data: tuple[StatusInfo, ...]


class HeartbeatMessage(msgspec.Struct, frozen=True, gc=False):
    """``heartbeat`` channel: about once a second while nothing else flows."""

    channel: ClassVar[str] = "heartbeat"


#: The one heartbeat instance (heartbeats carry no data).
HEARTBEAT = HeartbeatMessage()


class MethodResponse(msgspec.Struct, frozen=True, gc=False):
    """The answer to a request (``subscribe``, ``unsubscribe``...).

    Attributes:
        method: the request's method.
        success: whether it succeeded.
        result: for subscribe/unsubscribe, the channel (and snapshot flag).
        error: Kraken's error string when ``success`` is false.
        time_in, time_out: RFC 3339 times the server received and answered.
        req_id: the request's ``req_id``, echoed.
        warnings: deprecation notices and the like.
    """

    method: str
    success: bool
    time_in: str | None = None
    time_out: str | None = None
    result: SubscriptionResult | None = None
    error: str | None = None
    req_id: int | None = None
    warnings: tuple[str, ...] | None = None


class _OtherMethodResponse(msgspec.Struct, frozen=True, gc=False):
    # Any other method: its `result` shape is not ours to know, so it is skipped.
    method: str
    success: bool
    time_in: str | None = None
    time_out: str | None = None
    error: str | None = None
    req_id: int | None = None
    warnings: tuple[str, ...] | None = None


class _PongResult(msgspec.Struct, frozen=True, gc=False):
    warnings: tuple[str, ...] | None = None


class PongMessage(msgspec.Struct, frozen=True, gc=False):
    """The answer to :func:`ping_request`."""

    req_id: int | None = None
    time_in: str | None = None
    time_out: str | None = None
    success: bool | None = None
    error: str | None = None
    result: _PongResult | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Warnings the server attached (``result.warnings``), if any."""
        if self.result is None or self.result.warnings is None:
            return ()
        return self.result.warnings


class BalancesSnapshotMessage(msgspec.Struct, frozen=True, gc=False):
    """``balances`` snapshot: every asset and its wallets."""

    channel: ClassVar[str] = "balances"
    type: ClassVar[str] = "snapshot"

    data: tuple[AssetBalance, ...]
    sequence: int


class BalancesUpdateMessage(msgspec.Struct, frozen=True, gc=False):
    """``balances`` update: ledger entries of one completed transaction."""

    channel: ClassVar[str] = "balances"
    type: ClassVar[str] = "update"

    data: tuple[LedgerEntry, ...]
    sequence: int


class ExecutionsMessage(msgspec.Struct, frozen=True, gc=False):
    """``executions`` snapshot or update: order events and trades."""

    channel: ClassVar[str] = "executions"

    type: str
    data: tuple[Execution, ...]
    sequence: int | None = None


class InstrumentMessage(msgspec.Struct, frozen=True, gc=False):
    """``instrument`` snapshot or update: v2 asset names and precisions."""

    channel: ClassVar[str] = "instrument"

    type: str
    data: InstrumentData


class ErrorMessage(msgspec.Struct, frozen=True, gc=False):
    """A bare error frame such as ``{"Error": "Exceeded msg rate"}`` (not documented by Kraken)."""

    error: str


class UnknownMessage(msgspec.Struct, frozen=True, gc=False):
    """A channel this library does not decode (Kraken adds channels); safe to ignore."""

    channel: str
    type: str | None = None


#: Everything :func:`decode_message` can return.
WsMessage: TypeAlias = (
    StatusMessage
    | HeartbeatMessage
    | MethodResponse
    | PongMessage
    | BalancesSnapshotMessage
    | BalancesUpdateMessage
    | ExecutionsMessage
    | InstrumentMessage
    | ErrorMessage
    | UnknownMessage
)

# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


class _Envelope(msgspec.Struct, frozen=True, gc=False):
    # The fields that say what a frame is; `data` stays raw bytes until we know.
    channel: str | None = None
    method: str | None = None
    type: str | None = None
    data: msgspec.Raw = msgspec.Raw()
    sequence: int | None = None
    # Bare error frames: {"Error": ...} (nautilus' note) or {"error": ...}.
    error: str | None = None
    error_upper: str | None = msgspec.field(default=None, name="Error")


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_ledger_decoder = msgspec.json.Decoder(tuple[LedgerEntry, ...])
_assets_decoder = msgspec.json.Decoder(tuple[AssetBalance, ...])
_executions_decoder = msgspec.json.Decoder(tuple[Execution, ...])
_status_decoder = msgspec.json.Decoder(tuple[StatusInfo, ...])
_instrument_decoder = msgspec.json.Decoder(InstrumentData)
_subscription_response_decoder = msgspec.json.Decoder(MethodResponse)
_other_response_decoder = msgspec.json.Decoder(_OtherMethodResponse)
_pong_decoder = msgspec.json.Decoder(PongMessage)

# msgspec raises UnicodeDecodeError (not a DecodeError) for invalid UTF-8
# inside a JSON string of a bytes frame, and RecursionError for JSON nested
# deeper than it parses (``[[[[...`` 100,000 levels): malformed like any other.
_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def _excerpt(frame: bytes | str) -> str:
    text = frame if isinstance(frame, str) else frame[:200].decode("utf-8", "replace")
    return text[:200]


def _fail(
    exc: msgspec.MsgspecError | UnicodeDecodeError | RecursionError,
    frame: bytes | str,
    prefix: str = "$",
) -> ProtocolError:
    error = protocol_error(exc, prefix=prefix)
    # Server frames carry no secrets (the token only travels client → server).
    error.raw = _excerpt(frame)
    return error


def _missing(name: str, frame: bytes | str) -> ProtocolError:
    return ProtocolError(f"Object missing required field `{name}`", path="$", raw=_excerpt(frame))


def _payload(decoder: msgspec.json.Decoder[Any], env: _Envelope, frame: bytes | str) -> Any:
    if not env.data:
        raise _missing("data", frame)
    try:
        return decoder.decode(env.data)
    except _DECODE_ERRORS as exc:
        raise _fail(exc, frame, "$.data") from None


def _sequence(env: _Envelope, frame: bytes | str) -> int:
    if env.sequence is None:
        raise _missing("sequence", frame)
    return env.sequence


class _UpdateFrame(msgspec.Struct, frozen=True, gc=False):
    # The stream's common frame, a balances update, decoded in one pass to the end.
    channel: Literal["balances"]
    type: Literal["update"]
    data: tuple[LedgerEntry, ...]
    sequence: int


_update_decoder = msgspec.json.Decoder(_UpdateFrame)


def decode_message(frame: bytes | str) -> WsMessage:
    """Decode one WebSocket v2 text frame.

    A balances update (the stream's common frame) is decoded in one pass; any other
    frame, and any frame that does not decode so, goes through :func:`_decode_other`,
    which reads the envelope first and names what is wrong.

    Raises:
        ProtocolError: the frame is not JSON, or not a documented shape; the
            error's ``path`` names the offending field.
    """
    try:
        update = _update_decoder.decode(frame)
    except _DECODE_ERRORS:
        return _decode_other(frame)
    return BalancesUpdateMessage(update.data, update.sequence)


def _decode_other(frame: bytes | str) -> WsMessage:
    """:func:`decode_message` for every frame but a well-formed balances update."""
    try:
        env = _envelope_decoder.decode(frame)
    except _DECODE_ERRORS as exc:
        raise _fail(exc, frame) from None
    channel = env.channel
    if channel is not None:
        kind = env.type
        if channel == "balances":
            if kind == "update":
                return BalancesUpdateMessage(
                    _payload(_ledger_decoder, env, frame), _sequence(env, frame)
                )
            if kind == "snapshot":
                return BalancesSnapshotMessage(
                    _payload(_assets_decoder, env, frame), _sequence(env, frame)
                )
            raise ProtocolError(
                f"balances `type` must be snapshot or update, got {kind!r}",
                path="$.type",
                raw=_excerpt(frame),
            )
        if channel == "heartbeat":
            return HEARTBEAT
        if channel == "executions":
            if kind is None:
                raise _missing("type", frame)
            return ExecutionsMessage(kind, _payload(_executions_decoder, env, frame), env.sequence)
        if channel == "status":
            return StatusMessage(kind or "update", _payload(_status_decoder, env, frame))
        if channel == "instrument":
            return InstrumentMessage(kind or "snapshot", _payload(_instrument_decoder, env, frame))
        return UnknownMessage(channel, kind)
    method = env.method
    if method is not None:
        try:
            if method == "pong":
                pong: PongMessage = _pong_decoder.decode(frame)
                return pong
            if method in ("subscribe", "unsubscribe"):
                response: MethodResponse = _subscription_response_decoder.decode(frame)
                return response
            other: _OtherMethodResponse = _other_response_decoder.decode(frame)
        except _DECODE_ERRORS as exc:
            raise _fail(exc, frame) from None
        return MethodResponse(
            method=other.method,
            success=other.success,
            time_in=other.time_in,
            time_out=other.time_out,
            error=other.error,
            req_id=other.req_id,
            warnings=other.warnings,
        )
    error = env.error_upper if env.error_upper is not None else env.error
    if error is not None:
        return ErrorMessage(error)
    raise ProtocolError("a message needs a `channel` or a `method`", path="$", raw=_excerpt(frame))


# ---------------------------------------------------------------------------
# Client requests (and their decoding, for the simulator)
# ---------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
# Server frames carry JSON numbers with every digit: 1E-8, 0.0, 500.
_number_encoder = msgspec.json.Encoder(decimal_format="number")


def subscribe_request(
    channel: str,
    *,
    token: str | Secret | None,
    snapshot: bool | None = True,
    req_id: int | None = None,
    params: Mapping[str, object] | None = None,
) -> bytes:
    """``{"method":"subscribe","params":{...},"req_id":n}``.

    Args:
        channel: ``balances``, ``executions``...
        token: the WebSocket token (private channels); ``None`` for public ones.
        snapshot: the ``snapshot`` parameter; ``None`` leaves it out (for
            ``executions``, which uses ``snap_orders``/``snap_trades`` instead).
        req_id: echoed in the acknowledgement; top level, not inside ``params``.
        params: more parameters (``snap_orders``, ``users``, ``rebased``...).
    """
    body: dict[str, object] = {"channel": channel}
    if token is not None:
        body["token"] = token.reveal() if isinstance(token, Secret) else token
    if snapshot is not None:
        body["snapshot"] = snapshot
    if params:
        body.update(params)
    request: dict[str, object] = {"method": "subscribe", "params": body}
    if req_id is not None:
        request["req_id"] = req_id
    return _encoder.encode(request)


def unsubscribe_request(
    channel: str, *, token: str | Secret | None, req_id: int | None = None
) -> bytes:
    """``{"method":"unsubscribe","params":{"channel":...,"token":...}}``."""
    body: dict[str, object] = {"channel": channel}
    if token is not None:
        body["token"] = token.reveal() if isinstance(token, Secret) else token
    request: dict[str, object] = {"method": "unsubscribe", "params": body}
    if req_id is not None:
        request["req_id"] = req_id
    return _encoder.encode(request)


def ping_request(req_id: int | None = None) -> bytes:
    """``{"method":"ping","req_id":n}``."""
    if req_id is None:
        return b'{"method":"ping"}'
    return _encoder.encode({"method": "ping", "req_id": req_id})


class _RequestWire(msgspec.Struct, frozen=True):
    method: str
    params: dict[str, Any] | None = None
    req_id: int | None = None


_request_decoder = msgspec.json.Decoder(_RequestWire)


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """A client's request as the server sees it (for the simulator).

    Attributes:
        method: ``subscribe``, ``unsubscribe``, ``ping``...
        req_id: the request id, if any.
        channel: ``params.channel``, if any.
        token: ``params.token`` as a :class:`Secret` (never printed), if any.
        snapshot: ``params.snapshot``, if given.
        params: the other parameters (``snap_orders``, ``users``...).
    """

    method: str
    req_id: int | None = None
    channel: str | None = None
    token: Secret | None = None
    snapshot: bool | None = None
    params: dict[str, Any] = field(default_factory=dict)


def decode_request(frame: bytes | str) -> ClientRequest:
    """Decode a client's request frame (the simulator's side of :func:`subscribe_request`).

    Raises:
        ProtocolError: not JSON, no ``method``, or wrongly typed fields.
    """
    try:
        wire = _request_decoder.decode(frame)
    except _DECODE_ERRORS as exc:
        # No raw excerpt: requests carry the token.
        raise protocol_error(exc) from None
    params = dict(wire.params or {})
    channel = params.pop("channel", None)
    token = params.pop("token", None)
    snapshot = params.pop("snapshot", None)
    if channel is not None and not isinstance(channel, str):
        raise ProtocolError("Expected `str`", path="$.params.channel")
    if token is not None and not isinstance(token, str):
        raise ProtocolError("Expected `str`", path="$.params.token")
    if snapshot is not None and not isinstance(snapshot, bool):
        raise ProtocolError("Expected `bool`", path="$.params.snapshot")
    return ClientRequest(
        method=wire.method,
        req_id=wire.req_id,
        channel=channel,
        token=Secret(token) if token is not None else None,
        snapshot=snapshot,
        params=params,
    )


# ---------------------------------------------------------------------------
# Server frames (for the simulator): the fixtures' exact shapes
# ---------------------------------------------------------------------------

_HEARTBEAT_FRAME = b'{"channel":"heartbeat"}'


def _time_text(value: float | str) -> str:
    return value if isinstance(value, str) else format_rfc3339(value)


def encode_status(
    *,
    connection_id: int,
    system: str = "online",
    api_version: str = "v2",
    version: str = "2.0.0",
) -> bytes:
    """A ``status`` frame as sent on connect (fixture ``ws_status.json``)."""
    info = {
        "api_version": api_version,
        "connection_id": connection_id,
        "system": system,
        "version": version,
    }
    return _number_encoder.encode({"channel": "status", "data": [info], "type": "update"})


def encode_heartbeat() -> bytes:
    """A ``heartbeat`` frame."""
    return _HEARTBEAT_FRAME


def encode_method_response(
    method: str,
    *,
    success: bool,
    result: Mapping[str, object] | None = None,
    error: str | None = None,
    req_id: int | None = None,
    time_in: float | str,
    time_out: float | str,
    warnings: Iterable[str] | None = None,
) -> bytes:
    """The answer to a request: acknowledgement or failure.

    ``time_in``/``time_out`` are RFC 3339 text or Unix seconds (formatted at µs).
    """
    response: dict[str, object] = {"method": method}
    if error is not None:
        response = {"error": error, "method": method}
    if result is not None:
        response["result"] = result
    response["success"] = success
    response["time_in"] = _time_text(time_in)
    response["time_out"] = _time_text(time_out)
    if req_id is not None:
        response["req_id"] = req_id
    if warnings:
        response["warnings"] = list(warnings)
    return _number_encoder.encode(response)


def encode_pong(req_id: int | None, time_in: float | str, time_out: float | str) -> bytes:
    """The answer to a ping (fixture ``ws_pong.json``)."""
    pong: dict[str, object] = {"method": "pong"}
    if req_id is not None:
        pong["req_id"] = req_id
    pong["time_in"] = _time_text(time_in)
    pong["time_out"] = _time_text(time_out)
    return _number_encoder.encode(pong)


def encode_balances_snapshot(assets: Iterable[AssetBalance], sequence: int) -> bytes:
    """A ``balances`` snapshot frame, numbers at full precision."""
    return _number_encoder.encode(
        {"channel": "balances", "data": list(assets), "type": "snapshot", "sequence": sequence}
    )


def encode_balances_update(entries: Iterable[LedgerEntry], sequence: int) -> bytes:
    """A ``balances`` update frame: one transaction's ledger entries."""
    return _number_encoder.encode(
        {"channel": "balances", "type": "update", "data": list(entries), "sequence": sequence}
    )


def encode_executions(
    type: Literal["snapshot", "update"], executions: Iterable[Execution], sequence: int
) -> bytes:
    """An ``executions`` frame: order events and trades."""
    return _number_encoder.encode(
        {"channel": "executions", "type": type, "data": list(executions), "sequence": sequence}
    )
