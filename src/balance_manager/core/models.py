"""Domain values: one asset's balance, where it came from, and what changed.

:class:`Balance` is immutable and refuses to exist in an impossible state. It
reads both as an object (``b.free``) and as a mapping (``b["free"]``),
typed either way. ``free`` is derived, never stored, so ``free + hold_trade``
always equals ``balance`` (plus credit) for the same value: a reader can never
see a torn balance.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar, Literal, TypedDict, overload

import msgspec

from balance_manager.core.amounts import EXACT_CONTEXT, ZERO, display_amount, to_amount
from balance_manager.exceptions import BalanceStateError, InvalidAmountError, UnknownAssetError

__all__ = [
    "AMOUNT_FIELDS",
    "MAX_ASSET_NAME_LENGTH",
    "NOT_AN_ASSET_NAME",
    "Balance",
    "BalanceChange",
    "BalanceDict",
    "ChangeDict",
    "InexactBalance",
    "Source",
    "check_asset_name",
]


#: suffixed REST keys such as ``USDT.HOLD`` stay well below).
MAX_ASSET_NAME_LENGTH = 64
#: What a name that is not text is told.
NOT_AN_ASSET_NAME = "an asset name is a non-empty str"


def check_asset_name(name: object) -> str:
    """``name`` without surrounding whitespace, if it can be an asset name at all.

    An asset name is a non-empty ``str`` of at most :data:`MAX_ASSET_NAME_LENGTH`
    characters (whitespace around it included), none of them a control
    character. This is the check at the public edge (``get_balance``...): a
    list, a megabyte of text or an escape sequence is refused rather than
    looked up, cached or logged.

    Raises:
        UnknownAssetError: ``name`` is not such a name (its message shows the
            value shortened, and why).
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownAssetError(name, NOT_AN_ASSET_NAME)
    if len(name) > MAX_ASSET_NAME_LENGTH:
        raise UnknownAssetError(
            name, f"an asset name has at most {MAX_ASSET_NAME_LENGTH} characters, not {len(name):,}"
        )
    stripped = name.strip()
    if not stripped.isprintable():
        raise UnknownAssetError(name, "an asset name has no control characters")
    return stripped


class Source(enum.Enum):
    """Where a balance value came from."""

    WEBSOCKET = "websocket"
    """Streamed by the exchange's WebSocket (live)."""
    REST = "rest"
    """Read from the exchange's REST API."""
    CACHE = "cache"
    """Last known value, served because no live source could confirm it (stale)."""

    def __str__(self) -> str:
        return self.value


class BalanceDict(TypedDict):
    """The mapping shape of a balance, as returned by :meth:`Balance.to_dict`."""

    asset: str
    balance: Decimal
    free: Decimal
    hold_trade: Decimal
    credit: Decimal
    credit_used: Decimal
    earn: Decimal
    total: Decimal
    source: str
    timestamp: float
    exchange_time: float | None
    received_at: float


class ChangeDict(BalanceDict):
    """A :class:`BalanceChange` as a plain dict."""

    old_balance: Decimal | None
    old_free: Decimal | None
    delta: Decimal
    significant: bool
    kind: str
    ledger_id: str | None


# Sums and differences of amounts are exact whatever the caller's decimal context.
_add = EXACT_CONTEXT.add
_sub = EXACT_CONTEXT.subtract

#: The Decimal fields of a Balance, checked on construction.
AMOUNT_FIELDS = ("balance", "hold_trade", "credit", "credit_used", "earn")

_BALANCE_KEYS = (
    "asset",
    "balance",
    "free",
    "hold_trade",
    "credit",
    "credit_used",
    "earn",
    "total",
    "source",
    "timestamp",
    "exchange_time",
    "received_at",
)

AmountKey = Literal["balance", "free", "hold_trade", "credit", "credit_used", "earn", "total"]


class _Readable:
    """Mapping-style read access (``b["free"]``) over a struct's attributes."""

    __slots__ = ()
    _keys: tuple[str, ...] = ()

    def _get(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        value = getattr(self, key)
        return value.value if isinstance(value, Source) else value

    def keys(self) -> tuple[str, ...]:
        """The keys of the mapping shape."""
        return self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def get(self, key: str, default: Any = None) -> Any:
        """``self[key]``, or ``default`` when ``key`` is not one of :meth:`keys`."""
        return self._get(key) if key in self._keys else default

    def items(self) -> list[tuple[str, Any]]:
        """``(key, value)`` pairs, as ``dict.items()``."""
        return [(key, self._get(key)) for key in self._keys]


class Balance(_Readable, msgspec.Struct, frozen=True, gc=False):
    """One asset's balance at one moment, from one source.

    Attributes:
        asset: canonical asset name (``BTC``, ``USD``, ``USDT``...).
        balance: tradable total: spot funds plus funds Kraken lets you trade
            from the base asset (see docs/kraken.md, 'Our split: tradable and earn').
        hold_trade: the part of ``balance`` held by open orders (>= 0).
        source: where this value came from.
        exchange_time: the exchange's timestamp of the value (Unix seconds), if it gave one.
        received_at: local wall-clock time the value was received (Unix seconds); for a
            REST reading, when its request left (the exchange read the account after
            that: the value is known current from then, whatever the answer's travel).
        credit: credit line total (Kraken ``BalanceEx.credit``), 0 without one.
        credit_used: credit used (Kraken ``BalanceEx.credit_used``), 0 without one.
        earn: funds of this asset that are not tradable (staked, bonded, earn wallets).

    ``free`` and ``total`` are derived, never stored::

        free  = balance + credit - credit_used - hold_trade
        total = balance + earn

    ``exact`` is ``True``: the amounts are the digits the exchange wrote. A value
    decoded from a venue that only gives floats is an :class:`InexactBalance`
    (``exact`` is ``False``); the flag is a class attribute, so it costs no
    memory per value.

    Raises:
        BalanceStateError: an amount is not a finite Decimal, or ``hold_trade``,
            ``credit``, ``credit_used`` or ``earn`` is negative. ``balance`` may
            be negative: that is reported by the ``negative_balance`` rule, not
            refused, so a bad exchange value is visible rather than hidden.
    """

    _keys = _BALANCE_KEYS
    exact: ClassVar[bool] = True
    """Whether the amounts are the exchange's own digits (see :class:`InexactBalance`)."""

    asset: str
    balance: Decimal
    hold_trade: Decimal = ZERO
    source: Source = Source.REST
    exchange_time: float | None = None
    received_at: float = 0.0
    credit: Decimal = ZERO
    credit_used: Decimal = ZERO
    earn: Decimal = ZERO

    def __post_init__(self) -> None:
        # Fast path (every streamed update): Decimal balance and hold, the shared
        # ZERO for the rest. Same checks as below, without the loop.
        balance = self.balance
        hold = self.hold_trade
        if (
            type(balance) is Decimal
            and type(hold) is Decimal
            and self.credit is ZERO
            and self.credit_used is ZERO
            and self.earn is ZERO
            and type(self.asset) is str
            and self.asset
            and balance.is_finite()
            and (hold is ZERO or (hold.is_finite() and hold >= ZERO))
            and type(self.source) is Source
            and type(self.received_at) is float
            and self.received_at - self.received_at == 0.0  # finite: NaN and inf fail
            and (
                self.exchange_time is None
                or (
                    type(self.exchange_time) is float
                    and self.exchange_time - self.exchange_time == 0.0
                )
            )
        ):
            return
        self._check_slowly()

    def _check_slowly(self) -> None:
        if not self.asset or not isinstance(self.asset, str):
            raise BalanceStateError(str(self.asset), "asset", self.asset, "must be a non-empty str")
        if not isinstance(self.source, Source):
            raise BalanceStateError(self.asset, "source", self.source, "must be a Source")
        for name in ("received_at", "exchange_time"):
            moment = getattr(self, name)
            if moment is None and name == "exchange_time":
                continue
            if isinstance(moment, bool) or not isinstance(moment, int | float):
                raise BalanceStateError(self.asset, name, moment, "must be Unix seconds")
            if moment - moment != 0:
                raise BalanceStateError(self.asset, name, moment, "must be finite")
        for name in AMOUNT_FIELDS:
            value = getattr(self, name)
            if type(value) is not Decimal:
                try:
                    value = to_amount(value, name=name)
                except InvalidAmountError as exc:  # also FloatAmountError
                    raise BalanceStateError(self.asset, name, value, exc.reason) from None
                msgspec.structs.force_setattr(self, name, value)
            elif not value.is_finite():
                raise BalanceStateError(self.asset, name, value, "must be finite")
            if name != "balance" and value < 0:
                raise BalanceStateError(self.asset, name, value, "must not be negative")

    @property
    def free(self) -> Decimal:
        """Amount available to trade: ``balance + credit - credit_used - hold_trade``."""
        if self.credit or self.credit_used:
            return _sub(_add(self.balance, self.credit), _add(self.credit_used, self.hold_trade))
        return _sub(self.balance, self.hold_trade)

    @property
    def total(self) -> Decimal:
        """Everything held of this asset, tradable or not: ``balance + earn``.

        Not ccxt's ``total`` (``free + used``, tradable funds only): ccxt's
        ``used`` is our ``hold_trade`` and its ``total`` our ``balance``.
        """
        return _add(self.balance, self.earn) if self.earn else self.balance

    @property
    def timestamp(self) -> float:
        """Best known time of this value: the exchange's, else the local receive time."""
        return self.exchange_time if self.exchange_time is not None else self.received_at

    def age(self, now: float) -> float:
        """Seconds since this value was received, at wall-clock time ``now``."""
        return max(0.0, now - self.received_at)

    def replace(self, **changes: Any) -> Balance:
        """A copy with ``changes`` applied (validated again)."""
        return msgspec.structs.replace(self, **changes)

    def __str__(self) -> str:
        """One line for people: ``BTC 1.2435 (free 1.2432, held 0.0003) via websocket``."""
        parts = [f"free {display_amount(self.free)}", f"held {display_amount(self.hold_trade)}"]
        if self.earn:
            parts.append(f"earn {display_amount(self.earn)}")
        if self.credit or self.credit_used:
            parts.append(
                f"credit {display_amount(self.credit)}, used {display_amount(self.credit_used)}"
            )
        if not self.exact:
            parts.append("inexact")
        return f"{self.asset} {display_amount(self.balance)} ({', '.join(parts)}) via {self.source}"

    def __repr__(self) -> str:
        """Every field, amounts in plain notation (``0``, not ``Decimal('0E-10')``)."""
        fields = [
            f"asset={self.asset!r}",
            f"balance={display_amount(self.balance)}",
            f"hold_trade={display_amount(self.hold_trade)}",
            f"free={display_amount(self.free)}",
            f"source={self.source.value!r}",
        ]
        if self.exchange_time is not None:
            fields.append(f"exchange_time={self.exchange_time!r}")
        fields.append(f"received_at={self.received_at!r}")
        fields.extend(
            f"{name}={display_amount(getattr(self, name))}"
            for name in ("credit", "credit_used", "earn")
            if getattr(self, name)
        )
        return f"{type(self).__name__}({', '.join(fields)})"

    def to_dict(self) -> BalanceDict:
        """The mapping shape as a plain ``dict`` (amounts stay ``Decimal``)."""
        return {
            "asset": self.asset,
            "balance": self.balance,
            "free": self.free,
            "hold_trade": self.hold_trade,
            "credit": self.credit,
            "credit_used": self.credit_used,
            "earn": self.earn,
            "total": self.total,
            "source": self.source.value,
            "timestamp": self.timestamp,
            "exchange_time": self.exchange_time,
            "received_at": self.received_at,
        }

    @overload
    def __getitem__(self, key: Literal["asset", "source"]) -> str: ...
    @overload
    def __getitem__(self, key: AmountKey) -> Decimal: ...
    @overload
    def __getitem__(self, key: Literal["timestamp", "received_at"]) -> float: ...
    @overload
    def __getitem__(self, key: Literal["exchange_time"]) -> float | None: ...
    @overload
    def __getitem__(self, key: str) -> Any: ...
    def __getitem__(self, key: str) -> Any:
        return self._get(key)


class InexactBalance(Balance, frozen=True, gc=False):
    """A :class:`Balance` whose amounts went through a binary float on their way here.

    Some venues (or some of their channels, through ccxt) give amounts only as
    JSON numbers that the client library decodes to ``float``. The amounts are
    then the shortest decimals that round-trip those floats: right for up to 15
    significant digits, possibly not beyond. Everything else is a ``Balance``
    (same fields, same rules); ``exact`` is ``False`` and ``str()`` says
    ``inexact``. ``replace()`` keeps the type; a later exact reading of the
    same amounts replaces it with an exact ``Balance``.
    """

    exact: ClassVar[bool] = False


_CHANGE_KEYS = (
    *_BALANCE_KEYS,
    "old_balance",
    "old_free",
    "delta",
    "significant",
    "kind",
    "ledger_id",
)


class BalanceChange(_Readable, msgspec.Struct, frozen=True, gc=False):
    """The payload of ``balance_update`` and ``balance_change`` events.

    Reads like the new balance (``change["asset"]``, ``change["free"]``...) and
    adds what changed: ``old_balance``, ``delta`` (new - old balance),
    ``significant`` (past the history thresholds), ``kind`` (``snapshot``,
    ``update``, ``refresh``, ``hold``) and the exchange's ``ledger_id`` when the
    change came from a ledger entry.
    """

    _keys = _CHANGE_KEYS

    new: Balance
    old: Balance | None = None
    significant: bool = False
    kind: str = "update"
    ledger_id: str | None = None

    @property
    def asset(self) -> str:
        """The asset that changed."""
        return self.new.asset

    @property
    def balance(self) -> Decimal:
        """The new balance."""
        return self.new.balance

    @property
    def free(self) -> Decimal:
        """The new free amount."""
        return self.new.free

    @property
    def hold_trade(self) -> Decimal:
        """The new hold."""
        return self.new.hold_trade

    @property
    def credit(self) -> Decimal:
        """The new credit line total."""
        return self.new.credit

    @property
    def credit_used(self) -> Decimal:
        """The new credit used."""
        return self.new.credit_used

    @property
    def earn(self) -> Decimal:
        """The new non-tradable amount."""
        return self.new.earn

    @property
    def total(self) -> Decimal:
        """The new total, tradable or not."""
        return self.new.total

    @property
    def source(self) -> Source:
        """Where the new value came from."""
        return self.new.source

    @property
    def timestamp(self) -> float:
        """Time of the new value."""
        return self.new.timestamp

    @property
    def exchange_time(self) -> float | None:
        """The exchange's time of the new value."""
        return self.new.exchange_time

    @property
    def received_at(self) -> float:
        """Local receive time of the new value."""
        return self.new.received_at

    @property
    def old_balance(self) -> Decimal | None:
        """The balance before the change (``None`` for a first value)."""
        return self.old.balance if self.old is not None else None

    @property
    def old_free(self) -> Decimal | None:
        """The free amount before the change (``None`` for a first value)."""
        return self.old.free if self.old is not None else None

    @property
    def delta(self) -> Decimal:
        """``balance - old_balance`` (the whole balance for a first value)."""
        return (
            _sub(self.new.balance, self.old.balance) if self.old is not None else self.new.balance
        )

    def __str__(self) -> str:
        """One line for people: ``BTC 1.2435 → 1.244 (+0.0005) via websocket``."""
        new = self.new
        if self.old is None:
            return f"{new.asset} {display_amount(new.balance)} (first value) via {new.source}"
        return (
            f"{new.asset} {display_amount(self.old.balance)} → {display_amount(new.balance)} "
            f"({_signed(self.delta)}) via {new.source}"
        )

    def __repr__(self) -> str:
        """The change's fields, amounts in plain notation."""
        old = "None" if self.old is None else display_amount(self.old.balance)
        return (
            f"BalanceChange(asset={self.asset!r}, old_balance={old}, "
            f"balance={display_amount(self.balance)}, delta={_signed(self.delta)}, "
            f"free={display_amount(self.free)}, hold_trade={display_amount(self.hold_trade)}, "
            f"source={self.source.value!r}, kind={self.kind!r}, "
            f"significant={self.significant!r}, ledger_id={self.ledger_id!r})"
        )

    def to_dict(self) -> ChangeDict:
        """All fields as a plain ``dict``."""
        base = self.new.to_dict()
        return {
            **base,
            "old_balance": self.old_balance,
            "old_free": self.old_free,
            "delta": self.delta,
            "significant": self.significant,
            "kind": self.kind,
            "ledger_id": self.ledger_id,
        }

    @overload
    def __getitem__(self, key: Literal["asset", "source", "kind"]) -> str: ...
    @overload
    def __getitem__(self, key: AmountKey | Literal["delta"]) -> Decimal: ...
    @overload
    def __getitem__(self, key: Literal["old_balance", "old_free"]) -> Decimal | None: ...
    @overload
    def __getitem__(self, key: Literal["timestamp", "received_at"]) -> float: ...
    @overload
    def __getitem__(self, key: Literal["significant"]) -> bool: ...
    @overload
    def __getitem__(self, key: str) -> Any: ...
    def __getitem__(self, key: str) -> Any:
        return self._get(key)


def _signed(value: Decimal) -> str:
    """``value`` for people with an explicit sign when positive (``+0.0005``)."""
    text = display_amount(value)
    return f"+{text}" if value > 0 else text
