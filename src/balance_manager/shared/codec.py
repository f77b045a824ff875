"""How balances and events are written in Redis, and read back (sans-I/O).

A :class:`~balance_manager.core.models.Balance` is stored as a small JSON
object whose amounts are canonical decimal text (:mod:`balance_manager.shared.amounts`):
nothing goes through a float, on either side, and a value read back equals the
value written, field for field.

The ``events`` stream carries entries of four kinds, told apart by the field
``t``; each has the stream's sequence number ``q`` (one more than the entry
before: a follower that sees a gap reloads), the data set's generation ``g``
and the writing leader's epoch ``e``:

====  ===========  ========================================================
``t``  kind        other fields
====  ===========  ========================================================
``v``  value       ``a`` asset, ``v`` the value (JSON), ``k`` kind, ``l``
                   ledger id (empty if none), ``n`` Redis ms it was known current
``b``  beat        ``n`` Redis ms up to which every value was known current
                   (empty: not confirmed), ``m`` the leader's serving mode
``r``  reset       ``why``: every value was just written anew (a new leader,
                   or values dropped on overflow): reload the hash
``c``  connection  ``p`` the leader's ``connection_state`` payload (JSON)
====  ===========  ========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import msgspec

from balance_manager.core.models import Balance, Source
from balance_manager.exceptions import ProtocolError
from balance_manager.shared.amounts import decode_amount, encode_amount

__all__ = [
    "BeatEntry",
    "ConnectionEntry",
    "ResetEntry",
    "StreamEntry",
    "ValueEntry",
    "WireBalance",
    "decode_balance",
    "encode_balance",
    "parse_entry",
    "text",
]


class WireBalance(msgspec.Struct, frozen=True, omit_defaults=True):
    """A balance as stored: amounts as canonical text, times as Unix seconds."""

    a: str
    b: str
    h: str = "0"
    c: str = "0"
    u: str = "0"
    e: str = "0"
    s: str = "rest"
    x: float | None = None
    r: float = 0.0


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(WireBalance)
_SOURCES = {source.value: source for source in Source}


def encode_balance(balance: Balance) -> str:
    """``balance`` as the JSON text stored in Redis (exact)."""
    wire = WireBalance(
        a=balance.asset,
        b=encode_amount(balance.balance, name="balance"),
        h=encode_amount(balance.hold_trade, name="hold_trade"),
        c=encode_amount(balance.credit, name="credit"),
        u=encode_amount(balance.credit_used, name="credit_used"),
        e=encode_amount(balance.earn, name="earn"),
        s=balance.source.value,
        x=balance.exchange_time,
        r=balance.received_at,
    )
    return _encoder.encode(wire).decode()


def decode_balance(data: str | bytes) -> Balance:
    """The :class:`Balance` of stored JSON text.

    Raises:
        ProtocolError: the text is not a stored balance (wrong shape, an amount
            that is not canonical, an unknown source).
    """
    try:
        wire = _decoder.decode(data)
        source = _SOURCES[wire.s]
        return Balance(
            wire.a,
            decode_amount(wire.b, name="balance"),
            decode_amount(wire.h, name="hold_trade"),
            source,
            wire.x,
            float(wire.r),
            decode_amount(wire.c, name="credit"),
            decode_amount(wire.u, name="credit_used"),
            decode_amount(wire.e, name="earn"),
        )
    except (msgspec.ValidationError, msgspec.DecodeError, KeyError, ValueError) as exc:
        raise ProtocolError(f"not a stored balance: {exc}", raw=_preview(data)) from None


def text(value: object) -> str:
    """A Redis reply field as ``str`` (replies are ``bytes`` unless decoded)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _preview(data: object) -> str:
    return text(data)[:200]


@dataclass(frozen=True, slots=True)
class _Entry:
    """What every stream entry carries."""

    stream_id: str
    seq: int
    generation: str
    epoch: int


@dataclass(frozen=True, slots=True)
class ValueEntry(_Entry):
    """A new value of one asset."""

    balance: Balance
    kind: str
    ledger_id: str | None
    known_ms: int


@dataclass(frozen=True, slots=True)
class BeatEntry(_Entry):
    """The leader is alive; its values were known current up to ``confirmed_ms`` (or not)."""

    confirmed_ms: int | None
    mode: str


@dataclass(frozen=True, slots=True)
class ResetEntry(_Entry):
    """Every value was written anew: reload them."""

    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionEntry(_Entry):
    """The leader's stream changed state (its ``connection_state`` payload)."""

    payload: dict[str, Any]


StreamEntry: TypeAlias = ValueEntry | BeatEntry | ResetEntry | ConnectionEntry


def parse_entry(stream_id: object, fields: Mapping[Any, Any]) -> StreamEntry:
    """The typed entry of one ``events`` stream entry (as redis-py returns it).

    Raises:
        ProtocolError: the entry is not one this version writes.
    """
    got = {text(name): text(value) for name, value in fields.items()}
    sid = text(stream_id)
    try:
        kind = got["t"]
        common = (sid, int(got["q"]), got["g"], int(got["e"]))
        if kind == "v":
            return ValueEntry(
                *common,
                balance=decode_balance(got["v"]),
                kind=got.get("k", "update"),
                ledger_id=got.get("l") or None,
                known_ms=int(got["n"]),
            )
        if kind == "b":
            confirmed = got.get("n", "")
            return BeatEntry(
                *common, confirmed_ms=int(confirmed) if confirmed else None, mode=got["m"]
            )
        if kind == "r":
            return ResetEntry(*common, reason=got.get("why", ""))
        if kind == "c":
            payload = msgspec.json.decode(got["p"])
            if not isinstance(payload, dict):
                raise ValueError("the payload is not an object")
            return ConnectionEntry(*common, payload=payload)
    except (KeyError, ValueError, msgspec.DecodeError) as exc:
        raise ProtocolError(f"bad stream entry {sid}: {exc}", raw=repr(got)[:200]) from None
    raise ProtocolError(f"unknown stream entry type {kind!r} at {sid}", raw=repr(got)[:200])
