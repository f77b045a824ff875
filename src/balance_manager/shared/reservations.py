"""Fund reservations: set funds aside across every process and machine, never twice.

A reservation says "these funds are mine until my order's hold replaces them".
:meth:`Reservations.reserve` runs one Lua script that, in one indivisible
step for everybody: reaps expired reservations, checks that the account's
free amount (as the leader last published it, known current within
``shared_stale_after``) minus everything already reserved covers the amount,
checks the owner's cap if one is set, and records the reservation. So the
total reserved never exceeds free at the moment of any reservation, whatever
the number of clients (see ``docs/shared.md`` for what it promises exactly).

Its life::

    reserve ──► held ──commit(client order id)──► committed ──leader sees the hold──► settled
                  │                                   │
                  └──release / TTL──► gone            └──release (reject, cancel) / timeout──► gone

* **reserve** is idempotent on its id: the same id and terms return the same
  reservation; other terms are refused.
* **commit** (just before the order is sent, with the order's client order id,
  Kraken's ``cl_ord_id``) fails with :class:`ReservationLostError` if the
  reservation is gone (expired, voided): then do not send the order.
* **settle** is the leader's: the script that publishes the order's hold (from
  ``executions``) deletes the reservation in the same step, so the amount is
  never counted twice or zero times.
* **release** on a reject or cancel; a held reservation never committed is
  reaped after ``reservation_ttl``, a committed one never settled after
  ``reservation_settle_timeout``.

Amounts are exact (canonical decimal text, digit-wise arithmetic in Lua).
When Redis cannot be reached, every call fails closed with
:class:`~balance_manager.exceptions.SharedStateError`: nothing is reserved
without the shared ledger of reservations.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from balance_manager.config import BalanceManagerConfig
from balance_manager.core.models import check_asset_name
from balance_manager.core.sources import AssetNaming, PlainNames
from balance_manager.exceptions import (
    ConfigError,
    ExchangeError,
    InsufficientFundsError,
    ReservationCapError,
    ReservationError,
    ReservationLostError,
    SharedStateError,
)
from balance_manager.shared.amounts import decode_amount, encode_amount
from balance_manager.shared.codec import text
from balance_manager.shared.connection import SharedRedis
from balance_manager.shared.keys import NAME_PATTERN, check_name

__all__ = ["Hold", "Reservation", "ReservationList", "Reservations", "new_client_order_id"]


def new_client_order_id() -> str:
    """A fresh client order id in Kraken's short UUID form (32 hex digits)."""
    return uuid.uuid4().hex


class _Stored(msgspec.Struct):
    id: str
    asset: str
    amount: str
    owner: str
    state: str
    order: str
    created: str
    expires: str
    gen: str


@dataclass(frozen=True, slots=True)
class Reservation:
    """One reservation as Redis holds it.

    Attributes:
        id: its id (idempotency key).
        asset: the asset (canonical name).
        amount: the amount set aside (exact).
        owner: who reserved it (a strategy's name).
        state: ``held`` or ``committed``.
        client_order_id: the order's client order id once committed.
        created_ms: Redis time it was made (ms).
        expires_ms: Redis time after which it is reaped (ms).
        generation: the Redis data set it belongs to.
    """

    id: str
    asset: str
    amount: Decimal
    owner: str
    state: str
    client_order_id: str | None
    created_ms: int
    expires_ms: int
    generation: str

    @classmethod
    def from_json(cls, data: str | bytes) -> Reservation:
        """The reservation of its stored JSON (amount exact)."""
        stored = msgspec.json.decode(data, type=_Stored)
        return cls(
            id=stored.id,
            asset=stored.asset,
            amount=decode_amount(stored.amount, name="amount"),
            owner=stored.owner,
            state=stored.state,
            client_order_id=stored.order or None,
            created_ms=int(stored.created),
            expires_ms=int(stored.expires),
            generation=stored.gen,
        )

    @property
    def committed(self) -> bool:
        """Whether its order was sent (it waits for the leader to settle it)."""
        return self.state == "committed"


@dataclass(frozen=True, slots=True)
class ReservationList:
    """Every reservation of the account and the totals, at one instant.

    Attributes:
        reservations: by id.
        reserved: total reserved per asset (exact).
        free: free per asset as the leader last published it (exact).
        caps: ``(owner, asset)`` → cap.
        now_ms: Redis time of the reading.
    """

    reservations: dict[str, Reservation]
    reserved: dict[str, Decimal]
    free: dict[str, Decimal]
    caps: dict[tuple[str, str], Decimal]
    now_ms: int

    def available(self, asset: str) -> Decimal:
        """Free minus reserved for ``asset`` (what a reservation could still get)."""
        return self.free.get(asset, Decimal(0)) - self.reserved.get(asset, Decimal(0))


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


def _ms(seconds: float, option: str) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ConfigError(option, seconds, "must be a number of seconds")
    if not 0 < seconds < math.inf:
        raise ConfigError(option, seconds, "must be a positive number of seconds")
    return max(1, math.ceil(seconds * 1000))


class Reservations:
    """Reserve, commit, release and list an account's fund reservations.

    Args:
        redis: the account's Redis connection and keys.
        config: ``reservation_ttl``, ``reservation_settle_timeout``, ``shared_stale_after``.
        names: asset naming (``XBT`` → ``BTC``); plain upper-casing by default.
    """

    def __init__(
        self,
        redis: SharedRedis,
        config: BalanceManagerConfig | None = None,
        *,
        names: AssetNaming | None = None,
    ) -> None:
        self.redis = redis
        self.config = config or BalanceManagerConfig()
        self.names: AssetNaming = names or PlainNames()

    def _asset(self, asset: str) -> str:
        return self.names.canonical(check_asset_name(asset))

    async def reserve(
        self,
        asset: str,
        amount: object,
        *,
        owner: str,
        ttl: float | None = None,
        reservation_id: str | None = None,
    ) -> Reservation:
        """Set ``amount`` of ``asset`` aside for ``owner``, if free minus reserved covers it.

        Args:
            asset: any spelling of the asset.
            amount: exact and positive (``str``, ``int`` or ``Decimal``; never a float).
            owner: who reserves (letters, digits, ``._:-``): caps and listings go by it.
            ttl: seconds it lives until committed (``reservation_ttl`` by default).
            reservation_id: an idempotency key; the same id and terms return the
                same reservation. A fresh id by default.

        Raises:
            InsufficientFundsError: free minus reserved does not cover it.
            ReservationCapError: the owner's cap on the asset would be exceeded.
            ReservationError: the id exists with other terms.
            SharedStateError: Redis unreachable, no leader since Redis started
                (or since it restarted from persistence or failed over: see
                ``docs/shared.md``), or the free amount is not known current within
                ``shared_stale_after``.
            InvalidAmountError: ``amount`` is not an exact positive amount.
            ConfigError: a bad owner, id or ttl.
        """
        name = self._asset(asset)
        text_amount = encode_amount(amount, name="amount")
        if Decimal(text_amount) <= 0:
            raise ConfigError("amount", amount, "must be above 0")
        check_name("owner", owner)
        rid = reservation_id if reservation_id is not None else uuid.uuid4().hex
        if not isinstance(rid, str) or NAME_PATTERN.fullmatch(rid) is None:
            raise ConfigError("reservation_id", rid, "must be 1 to 64 of letters, digits, ._:-")
        ttl_ms = _ms(self.config.reservation_ttl if ttl is None else ttl, "ttl")
        max_age_ms = _ms(self.config.shared_stale_after, "shared_stale_after")
        reply = await self.redis.run(
            "reserve", rid, name, text_amount, owner, ttl_ms, max_age_ms, operation="reserve"
        )
        status = reply[0]
        if status == "OK":
            return Reservation.from_json(reply[1])
        if status == "INSUFFICIENT":
            raise InsufficientFundsError(rid, name, text_amount, text(reply[1]))
        if status == "CAP":
            raise ReservationCapError(rid, owner, name, text(reply[1]), text(reply[2]))
        if status == "CONFLICT":
            raise ReservationError(rid, "exists with other terms (asset, amount or owner)")
        if status == "STALE":
            raise SharedStateError(
                "reserve",
                f"the free amount of {name} is not known current within "
                f"{self.config.shared_stale_after:g} s (is a leader running?): refused",
            )
        if status == "NOGEN":
            raise SharedStateError(
                "reserve", "no leader has published since Redis started: refused"
            )
        if status == "ROLLEDBACK":
            raise SharedStateError("reserve", f"{text(reply[1])}: refused")
        raise SharedStateError("reserve", f"unexpected reply {status!r}")

    async def commit(
        self,
        reservation: Reservation | str,
        client_order_id: str | None = None,
        *,
        ttl: float | None = None,
    ) -> Reservation:
        """The order is being sent with ``client_order_id``: wait for its hold to settle this.

        Call it before sending the order; if it raises, do not send.

        Args:
            reservation: the reservation or its id.
            client_order_id: the order's ``cl_ord_id`` (a fresh one by default:
                read it back from the result's ``client_order_id``).
            ttl: seconds to wait for the settle (``reservation_settle_timeout``).

        Raises:
            ReservationLostError: the reservation is gone: do not send the order.
            ReservationError: it was committed with another client order id, or
                that id is taken.
            SharedStateError: Redis unreachable (do not send the order).
        """
        rid = reservation.id if isinstance(reservation, Reservation) else reservation
        order = client_order_id or new_client_order_id()
        ttl_ms = _ms(self.config.reservation_settle_timeout if ttl is None else ttl, "ttl")
        reply = await self.redis.run("commit", rid, order, ttl_ms, operation="commit")
        status = reply[0]
        if status == "OK":
            return Reservation.from_json(reply[1])
        if status == "LOST":
            raise ReservationLostError(rid, "gone (expired, released, settled or voided)")
        raise ReservationError(rid, f"cannot commit with {order!r}: {text(reply[1])}")

    async def release(self, reservation: Reservation | str) -> bool:
        """Give the funds back (a rejected or cancelled order). Idempotent.

        Returns:
            Whether it still existed.

        Raises:
            SharedStateError: Redis unreachable.
        """
        rid = reservation.id if isinstance(reservation, Reservation) else reservation
        reply = await self.redis.run("release", rid, operation="release")
        return bool(reply[0] == "OK")

    async def list(self, *, asset: str | None = None, owner: str | None = None) -> ReservationList:
        """Every live reservation (expired ones reaped first), and the totals.

        Raises:
            SharedStateError: Redis unreachable.
        """
        flat, reserved, free, caps, now_ms = await self.redis.run("list", operation="list")
        wanted = self._asset(asset) if asset is not None else None
        found = {}
        for rid, raw in _pairs(flat).items():
            item = Reservation.from_json(raw)
            if (wanted is None or item.asset == wanted) and (owner is None or item.owner == owner):
                found[rid] = item
        cap_map = {}
        for slot, cap in _pairs(caps).items():
            who, _, what = slot.partition("|")
            cap_map[(who, what)] = decode_amount(cap, name="cap")
        return ReservationList(
            reservations=found,
            reserved={a: decode_amount(v, name="reserved") for a, v in _pairs(reserved).items()},
            free={a: decode_amount(v, name="free") for a, v in _pairs(free).items()},
            caps=cap_map,
            now_ms=int(now_ms),
        )

    async def set_cap(self, owner: str, asset: str, cap: object | None) -> None:
        """Cap what ``owner`` may hold reserved of ``asset`` (``None`` removes the cap).

        Caps live in Redis: a Redis that lost its data lost them too (set them again).

        Raises:
            SharedStateError: Redis unreachable.
        """
        check_name("owner", owner)
        value = "" if cap is None else encode_amount(cap, name="cap")
        await self.redis.run("set_cap", owner, self._asset(asset), value, operation="set_cap")

    @asynccontextmanager
    async def hold(
        self, asset: str, amount: object, *, owner: str, ttl: float | None = None
    ) -> AsyncIterator[Hold]:
        """Reserve for one order; release on the way out unless the order went out.

        ::

            async with reservations.hold("USD", "250", owner="strategy-a") as hold:
                cl_ord_id = await hold.commit()          # before sending
                await rest.add_order({..., "cl_ord_id": cl_ord_id})

        On leaving: a reservation never committed is released; a committed one
        is left for the leader to settle, unless the block raised an
        :class:`~balance_manager.exceptions.ExchangeError` (the exchange refused
        the order: nothing is held), in which case it is released too.

        Raises:
            InsufficientFundsError, ReservationCapError, SharedStateError: as :meth:`reserve`.
        """
        reservation = await self.reserve(asset, amount, owner=owner, ttl=ttl)
        held = Hold(self, reservation)
        try:
            yield held
        except BaseException as exc:
            if not held.committed or isinstance(exc, ExchangeError):
                await held.release_quietly()
            raise
        if not held.committed:
            await held.release_quietly()


class Hold:
    """One reservation inside :meth:`Reservations.hold`."""

    def __init__(self, reservations: Reservations, reservation: Reservation) -> None:
        self._reservations = reservations
        self.reservation = reservation

    @property
    def committed(self) -> bool:
        """Whether :meth:`commit` succeeded."""
        return self.reservation.committed

    @property
    def client_order_id(self) -> str | None:
        """The client order id, once committed."""
        return self.reservation.client_order_id

    async def commit(self, client_order_id: str | None = None) -> str:
        """Commit before sending the order; returns the client order id to send with it.

        Raises:
            ReservationLostError: gone: do not send the order.
        """
        self.reservation = await self._reservations.commit(self.reservation, client_order_id)
        return str(self.reservation.client_order_id)

    async def release(self) -> bool:
        """Release now (e.g. the order was refused)."""
        return await self._reservations.release(self.reservation)

    async def release_quietly(self) -> None:
        """Release, ignoring Redis being unreachable (the TTL reaps it then)."""
        try:
            await self.release()
        except SharedStateError:
            return
