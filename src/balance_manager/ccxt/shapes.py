"""What each venue's raw balance payloads look like, read exactly (sans-I/O).

ccxt turns every venue's balance into one unified structure whose numbers are
``float``. It also keeps what the venue sent, as decoded JSON, under ``info``
(REST) or as the raw message (WebSocket). This module reads those raw payloads
instead, per venue, so amounts keep the digits the venue wrote:

* a JSON **string** (``"1.2435000000"``) becomes a ``Decimal`` of that text:
  exact;
* a JSON **integer** is exact too;
* a JSON **number with a fraction** reaches us as a ``float`` (ccxt decodes
  the JSON): it becomes the shortest decimal that round-trips the float
  (``repr``), which equals what the venue wrote when that had at most 15
  significant digits and may not otherwise. Amounts that went through a float
  are :class:`~balance_manager.core.sources.InexactAmounts`, per asset.

Venues known here (facts from each venue's public API documentation, named in
each class): ``kraken``, ``binance``, ``okx``. Any other ccxt venue is read
from ccxt's unified structure (:class:`UnifiedShape`): floats, marked inexact.

Everything here is plain data in, plain data out: no ccxt import, no I/O.
Asset ids are turned into canonical names by a ``code`` function the caller
gives (ccxt's ``safe_currency_code``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from balance_manager.core.amounts import EXACT_CONTEXT, ZERO
from balance_manager.core.sources import AssetAmounts, InexactAmounts
from balance_manager.exceptions import ProtocolError

__all__ = [
    "SHAPES",
    "BinanceShape",
    "Capabilities",
    "KrakenShape",
    "OkxShape",
    "Reading",
    "StreamBook",
    "UnifiedShape",
    "VenueShape",
    "optional_amount",
    "parse_amount",
    "shape_for",
]

Code = Callable[[str], str]
"""Venue asset id → canonical name (ccxt's ``safe_currency_code``)."""

_add = EXACT_CONTEXT.add
_sub = EXACT_CONTEXT.subtract
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a venue's balance feeds give, as ``docs/venues.md`` tabulates it.

    Attributes:
        realtime: the stream pushes balance changes as they happen.
        holds: the stream gives the amount held by open orders (else REST does).
        snapshot_on_subscribe: the stream sends every balance when subscribed
            (else it sends nothing until a change, and the source reads REST).
        exact_rest: REST amounts are strings (exact).
        exact_stream: stream amounts are strings (exact).
        heartbeat: seconds between the stream's own messages while nothing
            changes, if it sends any (``None``: silent until a change).
        docs: the venue documentation pages the shapes come from.
    """

    realtime: bool
    holds: bool
    snapshot_on_subscribe: bool
    exact_rest: bool
    exact_stream: bool
    heartbeat: float | None
    docs: tuple[str, ...] = ()


@dataclass(slots=True)
class Reading:
    """Amounts read from one payload.

    Attributes:
        balances: canonical asset → its amounts after this payload.
        complete: the payload lists every asset of the account (absent: zero
            or not held); otherwise only the assets it names changed.
        exchange_time: the venue's time of the payload (Unix seconds), if given.
    """

    balances: dict[str, AssetAmounts] = field(default_factory=dict)
    complete: bool = False
    exchange_time: float | None = None


def parse_amount(value: object, path: str) -> tuple[Decimal, bool]:
    """One raw amount as ``(Decimal, exact)``.

    Strings and integers are exact; a float is read through ``repr`` (its
    shortest round-trip decimal) and is not. An amount is required: a missing
    one (``None``) or an empty string is not zero (see :func:`optional_amount`
    for the fields a venue documents as optional).

    Raises:
        ProtocolError: missing, empty, or not a finite number (NaN, infinity,
            text, a bool...), naming ``path`` and the value.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ProtocolError("empty amount", path=path, raw=value)
        if _PLAIN_NUMBER.fullmatch(text) is None:
            raise ProtocolError(f"not a decimal amount: {value[:40]!r}", path=path, raw=value)
        return Decimal(text), True
    if value is None:
        raise ProtocolError("missing amount", path=path, raw="None")
    if isinstance(value, bool):
        raise ProtocolError(f"not an amount: {value!r}", path=path, raw=repr(value))
    if isinstance(value, int):
        return Decimal(value), True
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ProtocolError(f"not a finite amount: {value!r}", path=path, raw=repr(value))
        return Decimal(repr(value)), False
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ProtocolError(f"not a finite amount: {value}", path=path, raw=str(value))
        return value, True
    raise ProtocolError(f"not an amount: {type(value).__name__}", path=path, raw=repr(value)[:200])


def optional_amount(value: object, path: str) -> tuple[Decimal, bool]:
    """An amount the venue documents as optional: absent (``None``) or ``""`` is zero.

    Raises:
        ProtocolError: present but not a finite number.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return ZERO, True
    return parse_amount(value, path)


def _amounts(
    asset: str,
    exact: bool,
    balance: Decimal,
    *,
    hold: Decimal | None = None,
    earn: Decimal = ZERO,
    credit: Decimal = ZERO,
    credit_used: Decimal = ZERO,
) -> AssetAmounts:
    kind = AssetAmounts if exact else InexactAmounts
    return kind(
        asset=asset,
        balance=balance,
        earn=earn,
        hold_trade=hold,
        credit=credit,
        credit_used=credit_used,
    )


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProtocolError(
            f"expected an object, got {type(value).__name__}", path=path, raw=repr(value)[:200]
        )
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProtocolError(
            f"expected a list, got {type(value).__name__}", path=path, raw=repr(value)[:200]
        )
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ProtocolError("expected a non-empty string", path=path, raw=repr(value)[:200])
    return value


def _millis(value: object) -> float | None:
    """Unix milliseconds (int or digit string) as seconds, if it is one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value / 1000.0
    if isinstance(value, str) and value.isdigit():
        return int(value) / 1000.0
    return None


class StreamBook:
    """Reads one connection's balance messages, in order (state per connection).

    The base reads nothing; each venue's shape makes its own.
    """

    def feed(self, message: object, code: Code) -> Reading | None:
        """The amounts one raw message sets, or ``None`` for a message about something else.

        Raises:
            ProtocolError: a balance message of the wrong shape.
        """
        del message, code
        return None


class VenueShape:
    """How one venue's raw balance payloads read (see the subclasses).

    Attributes:
        venue: ccxt's id of the venue (``"kraken"``...).
        capabilities: what its feeds give.
        reads_raw: REST ``info`` and stream messages are read here; ``False``
            means ccxt's unified (float) structure is read instead.
    """

    venue = ""
    capabilities = Capabilities(
        realtime=True,
        holds=False,
        snapshot_on_subscribe=False,
        exact_rest=False,
        exact_stream=False,
        heartbeat=None,
    )
    reads_raw = True

    def rest(self, info: object, code: Code) -> Reading:
        """Every balance from the raw REST answer (ccxt's ``fetch_balance()['info']``).

        Raises:
            ProtocolError: the answer does not have the documented shape.
        """
        raise NotImplementedError

    def book(self) -> StreamBook:
        """A reader for a new stream connection."""
        return StreamBook()

    def unified(self, balance: Mapping[str, Any], code: Code) -> Reading:
        """Every balance from ccxt's unified structure (floats: inexact).

        ``total`` is the balance; ``used`` the hold (``None``: unknown).
        """
        return read_unified(balance, code)


def read_unified(balance: Mapping[str, Any], code: Code) -> Reading:
    """ccxt's unified balance structure (``{"BTC": {"free", "used", "total"}, ...}``).

    Every asset ccxt lists is read, or the whole reading is refused: a reading
    that silently left one out would say the asset holds nothing. ``total`` is
    the balance (``free + used`` when ccxt gives no total but both parts);
    ``used`` the hold (``None``: unknown). Parts that do not add up are refused.

    Raises:
        ProtocolError: an asset without a total nor both parts, or whose parts
            contradict its total (``used > total``, ``free + used != total``).
    """
    reading = Reading(complete=True, exchange_time=_millis(balance.get("timestamp")))
    totals = balance.get("total")
    names: Iterable[str] = totals.keys() if isinstance(totals, Mapping) else ()
    for name in names:
        path = f"$.{name}"
        account = _mapping(balance.get(name), path)
        raw_free, raw_used, raw_total = (account.get(k) for k in ("free", "used", "total"))
        free = used = None
        exact = True
        if raw_free is not None:
            free, exact = parse_amount(raw_free, f"{path}.free")
        if raw_used is not None:
            used, used_exact = parse_amount(raw_used, f"{path}.used")
            exact = exact and used_exact
        if raw_total is not None:
            total, total_exact = parse_amount(raw_total, f"{path}.total")
            exact = exact and total_exact
        elif free is not None and used is not None:
            total = _add(free, used)
        else:
            raise ProtocolError(
                f"{name}: no total, and not both free and used", path=path, raw=repr(account)[:200]
            )
        if used is not None and used > total:
            raise ProtocolError(f"{name}: used {used} > total {total}", path=path, raw=str(total))
        if free is not None and used is not None and not _adds_up(free, used, total, exact):
            raise ProtocolError(
                f"{name}: free {free} + used {used} != total {total}", path=path, raw=str(total)
            )
        asset = code(name)
        reading.balances[asset] = _amounts(asset, exact, total, hold=used)
    return reading


def _adds_up(free: Decimal, used: Decimal, total: Decimal, exact: bool) -> bool:
    """``free + used == total``: exactly for exact parts; as binary floats when a part was
    a float (ccxt adds them so), never a tolerance for amounts that are exact."""
    if _add(free, used) == total:
        return True
    if exact:
        return False
    return math.isclose(float(free) + float(used), float(total), rel_tol=1e-12, abs_tol=0.0)


class UnifiedShape(VenueShape):
    """Any ccxt venue without a raw reader here: ccxt's unified floats, marked inexact."""

    reads_raw = False

    def __init__(self, venue: str) -> None:
        self.venue = venue

    def rest(self, info: object, code: Code) -> Reading:
        """Not used: a unified venue is read with :meth:`unified`."""
        raise NotImplementedError


# -- Kraken -------------------------------------------------------------------------

#: Kraken REST balance key suffixes whose funds are tradable (``.F``: Kraken
#: Rewards funds usable for trading); every other suffix is counted as earn.
_KRAKEN_TRADABLE_SUFFIXES = frozenset({"F"})
#: Kraken WebSocket wallets whose funds are tradable: spot, and the earn
#: wallet that REST shows as ``.F``.
_KRAKEN_TRADABLE_WALLETS = frozenset({("spot", "main"), ("earn", "liquid")})


#: How many recent ``balances`` sequences are remembered to recognise a duplicate.
_KRAKEN_DUPLICATE_WINDOW = 64


class _KrakenBook(StreamBook):
    """Kraken's ``balances`` channel: a snapshot of every wallet, then one update per entry.

    Every message carries the channel's ``sequence``: the snapshot's is the
    base, each update must be the previous + 1. A gap (a lost frame), a step
    back (a reordered one) or a repeated number with other content is a
    :class:`~balance_manager.exceptions.ProtocolError` (the stream resyncs); an
    exact repeat of a recent message is dropped.
    """

    def __init__(self) -> None:
        self._wallets: dict[str, dict[tuple[str, str], tuple[Decimal, bool]]] = {}
        self._sequence: int | None = None
        self._recent: dict[int, object] = {}

    def _in_sequence(self, kind: object, sequence: int, data: list[Any]) -> bool:
        """Whether to read the message (``False``: an exact duplicate, dropped).

        Raises:
            ProtocolError: a gap, a step back, or a repeat with other content.
        """
        last = self._sequence
        if kind == "snapshot":
            self._recent = {}
        elif last is not None and sequence != last + 1:
            if sequence <= last and self._recent.get(sequence, self) == data:
                return False
            how = "gap" if sequence > last else "out of order"
            raise ProtocolError(
                f"balances sequence {how}: got {sequence} after {last}",
                path="$.sequence",
                raw=str(sequence),
            )
        self._sequence = sequence
        self._recent[sequence] = data
        if len(self._recent) > _KRAKEN_DUPLICATE_WINDOW:
            del self._recent[next(iter(self._recent))]
        return True

    def feed(self, message: object, code: Code) -> Reading | None:
        if not isinstance(message, Mapping) or message.get("channel") != "balances":
            return None
        kind = message.get("type")
        if kind not in ("snapshot", "update"):
            return None
        data = _list(message.get("data"), "$.data")
        sequence = message.get("sequence")
        if not isinstance(sequence, int) or isinstance(sequence, bool):
            raise ProtocolError(
                "balances message without a sequence", path="$.sequence", raw=repr(sequence)
            )
        if not self._in_sequence(kind, sequence, data):
            return None
        if kind == "snapshot":
            self._wallets = {}
            for i, item in enumerate(data):
                item = _mapping(item, f"$.data[{i}]")
                asset = code(_text(item.get("asset"), f"$.data[{i}].asset"))
                wallets = self._wallets.setdefault(asset, {})
                for j, wallet in enumerate(_list(item.get("wallets", []), f"$.data[{i}].wallets")):
                    path = f"$.data[{i}].wallets[{j}]"
                    wallet = _mapping(wallet, path)
                    key = (str(wallet.get("type")), str(wallet.get("id")))
                    wallets[key] = parse_amount(wallet.get("balance"), f"{path}.balance")
                if not wallets:
                    wallets[("spot", "main")] = parse_amount(
                        item.get("balance"), f"$.data[{i}].balance"
                    )
            return Reading({asset: self._view(asset) for asset in self._wallets}, complete=True)
        reading = Reading()
        for i, item in enumerate(data):
            path = f"$.data[{i}]"
            item = _mapping(item, path)
            asset = code(_text(item.get("asset"), f"{path}.asset"))
            key = (str(item.get("wallet_type", "spot")), str(item.get("wallet_id", "main")))
            after, exact = parse_amount(item.get("balance"), f"{path}.balance")
            amount, amount_exact = parse_amount(item.get("amount"), f"{path}.amount")
            fee, fee_exact = parse_amount(item.get("fee"), f"{path}.fee")
            wallets = self._wallets.setdefault(asset, {})
            before = wallets.get(key, (ZERO, True))[0]
            change = _sub(amount, fee)
            others = [v for k, v in wallets.items() if k != key]
            total_before = _add(before, sum((v for v, _ in others), ZERO))
            # Kraken's docs do not say whether ``balance`` is the wallet's or the
            # asset's all-wallet total after the entry: whichever adds up is it.
            if _add(before, change) != after and _add(total_before, change) == after and others:
                after = _sub(after, sum((v for v, _ in others), ZERO))
            wallets[key] = (after, exact and amount_exact and fee_exact)
            reading.balances[asset] = self._view(asset)
        return reading

    def _view(self, asset: str) -> AssetAmounts:
        tradable = earn = ZERO
        exact = True
        for (wallet_type, wallet_id), (value, value_exact) in self._wallets[asset].items():
            exact = exact and value_exact
            if (wallet_type, wallet_id) in _KRAKEN_TRADABLE_WALLETS:
                tradable = _add(tradable, value)
            else:
                earn = _add(earn, value)
        # The balances channel carries no holds (they come from REST here).
        return _amounts(asset, exact, tradable, earn=earn)


class KrakenShape(VenueShape):
    """Kraken Spot: REST ``BalanceEx`` (strings) and WebSocket v2 ``balances`` (JSON numbers).

    Docs: "Get Extended Balance" (REST) and "Balances" (Spot WebSocket v2) on
    docs.kraken.com. REST keys carry Kraken's asset ids (``XXBT``) with an
    optional wallet suffix (``XBT.F`` tradable; ``.S``, ``.M``, ``.B``... earn);
    the stream gives every wallet of an asset in its snapshot, then one update
    per ledger entry with the balance after it, and no holds.
    """

    venue = "kraken"
    capabilities = Capabilities(
        realtime=True,
        holds=False,
        snapshot_on_subscribe=True,
        exact_rest=True,
        exact_stream=False,
        heartbeat=1.0,
        docs=(
            "docs.kraken.com: Spot REST, Get Extended Balance",
            "docs.kraken.com: Spot WebSocket v2, Balances",
        ),
    )

    def rest(self, info: object, code: Code) -> Reading:
        result = _mapping(_mapping(info, "$").get("result"), "$.result")
        sums: dict[str, list[Decimal]] = {}
        exactness: dict[str, bool] = {}
        for key, entry in result.items():
            path = f"$.result.{key}"
            entry = _mapping(entry, path)
            base, _, suffix = str(key).partition(".")
            asset = code(base)
            # ``credit`` and ``credit_used`` appear only on accounts with a credit line.
            values = [
                parse_amount(entry.get("balance"), f"{path}.balance"),
                parse_amount(entry.get("hold_trade"), f"{path}.hold_trade"),
                optional_amount(entry.get("credit"), f"{path}.credit"),
                optional_amount(entry.get("credit_used"), f"{path}.credit_used"),
            ]
            s = sums.setdefault(asset, [ZERO, ZERO, ZERO, ZERO, ZERO])
            exactness[asset] = exactness.get(asset, True) and all(e for _, e in values)
            index = 0 if not suffix or suffix in _KRAKEN_TRADABLE_SUFFIXES else 4
            s[index] = _add(s[index], values[0][0])
            for i in (1, 2, 3):
                s[i] = _add(s[i], values[i][0])
        return Reading(
            {
                asset: _amounts(
                    asset,
                    exactness[asset],
                    s[0],
                    hold=s[1],
                    credit=s[2],
                    credit_used=s[3],
                    earn=s[4],
                )
                for asset, s in sums.items()
            },
            complete=True,
        )

    def book(self) -> StreamBook:
        return _KrakenBook()


# -- Binance ------------------------------------------------------------------------


class _BinanceBook(StreamBook):
    """Binance's user data stream: ``outboundAccountPosition`` gives the assets an event changed."""

    def feed(self, message: object, code: Code) -> Reading | None:
        if not isinstance(message, Mapping):
            return None
        event = message.get("event", message)  # the WebSocket API wraps events
        if not isinstance(event, Mapping) or event.get("e") != "outboundAccountPosition":
            # ``balanceUpdate`` (a deposit, a withdrawal) is a delta that an
            # ``outboundAccountPosition`` with the new absolute amounts follows.
            return None
        reading = Reading(exchange_time=_millis(event.get("u", event.get("E"))))
        for i, item in enumerate(_list(event.get("B"), "$.B")):
            path = f"$.B[{i}]"
            item = _mapping(item, path)
            asset = code(_text(item.get("a"), f"{path}.a"))
            free, free_exact = parse_amount(item.get("f"), f"{path}.f")
            locked, locked_exact = parse_amount(item.get("l"), f"{path}.l")
            reading.balances[asset] = _amounts(
                asset, free_exact and locked_exact, _add(free, locked), hold=locked
            )
        return reading


class BinanceShape(VenueShape):
    """Binance Spot: ``GET /api/v3/account`` and the user data stream, all amounts strings.

    Docs: developers.binance.com, Spot API, "Account information (USER_DATA)"
    (``balances``: ``asset``, ``free``, ``locked``) and "User Data Stream
    Events" (``outboundAccountPosition``: ``B`` of ``a``, ``f``, ``l``). Free
    is what can be traded, locked is held by open orders: the balance is their
    sum. The stream sends nothing until the account changes.
    """

    venue = "binance"
    capabilities = Capabilities(
        realtime=True,
        holds=True,
        snapshot_on_subscribe=False,
        exact_rest=True,
        exact_stream=True,
        heartbeat=None,
        docs=(
            "developers.binance.com: Spot API, Account information (USER_DATA)",
            "developers.binance.com: Spot API, User Data Stream Events",
        ),
    )

    def rest(self, info: object, code: Code) -> Reading:
        root = _mapping(info, "$")
        reading = Reading(complete=True, exchange_time=_millis(root.get("updateTime")))
        for i, item in enumerate(_list(root.get("balances"), "$.balances")):
            path = f"$.balances[{i}]"
            item = _mapping(item, path)
            asset = code(_text(item.get("asset"), f"{path}.asset"))
            free, free_exact = parse_amount(item.get("free"), f"{path}.free")
            locked, locked_exact = parse_amount(item.get("locked"), f"{path}.locked")
            reading.balances[asset] = _amounts(
                asset, free_exact and locked_exact, _add(free, locked), hold=locked
            )
        return reading

    def book(self) -> StreamBook:
        return _BinanceBook()


# -- OKX ----------------------------------------------------------------------------


def _okx_details(data: object, path: str, code: Code, reading: Reading) -> None:
    for i, group in enumerate(_list(data, path)):
        group_path = f"{path}[{i}]"
        group = _mapping(group, group_path)
        time = _millis(group.get("uTime"))
        if time is not None:
            reading.exchange_time = max(time, reading.exchange_time or time)
        for j, item in enumerate(_list(group.get("details", []), f"{group_path}.details")):
            item_path = f"{group_path}.details[{j}]"
            item = _mapping(item, item_path)
            asset = code(_text(item.get("ccy"), f"{item_path}.ccy"))
            cash, cash_exact = parse_amount(item.get("cashBal"), f"{item_path}.cashBal")
            frozen, frozen_exact = parse_amount(item.get("frozenBal"), f"{item_path}.frozenBal")
            reading.balances[asset] = _amounts(
                asset, cash_exact and frozen_exact, cash, hold=frozen
            )


class _OkxBook(StreamBook):
    """OKX's ``account`` channel: a snapshot on subscribe, then the currencies that changed.

    A snapshot may come in pages (``curPage`` 1, 2... until ``lastPage``): the
    pages are collected and read as one complete snapshot when the last one
    comes. A page out of turn is a :class:`~balance_manager.exceptions.ProtocolError`
    (the stream resyncs). An event between two pages is newer than the
    snapshot: it is read at once, and the later pages do not undo it.
    """

    def __init__(self) -> None:
        self._pages: Reading | None = None  # the snapshot being collected
        self._next_page = 1
        self._newer: set[str] = set()  # assets events changed since its first page

    def feed(self, message: object, code: Code) -> Reading | None:
        if not isinstance(message, Mapping):
            return None
        arg = message.get("arg")
        if not isinstance(arg, Mapping) or arg.get("channel") != "account":
            return None
        if "data" not in message:
            return None  # the subscription's acknowledgement
        page = Reading()
        _okx_details(message.get("data"), "$.data", code, page)
        if message.get("eventType") != "snapshot":
            if self._pages is not None:
                self._pages.balances.update(page.balances)
                self._newer.update(page.balances)
            return page
        current = message.get("curPage", 1)
        last = message.get("lastPage", True)
        if not isinstance(current, int) or isinstance(current, bool) or not isinstance(last, bool):
            raise ProtocolError(
                "snapshot page without curPage/lastPage", path="$.curPage", raw=repr(current)
            )
        if current == 1:
            self._pages, self._next_page, self._newer = Reading(), 1, set()
        if self._pages is None or current != self._next_page:
            expected = self._next_page if self._pages is not None else 1
            self._pages = None
            raise ProtocolError(
                f"snapshot page {current} out of turn (expected {expected})",
                path="$.curPage",
                raw=str(current),
            )
        pages = self._pages
        for asset, amounts in page.balances.items():
            if asset not in self._newer:
                pages.balances[asset] = amounts
        if page.exchange_time is not None:
            pages.exchange_time = max(page.exchange_time, pages.exchange_time or 0.0)
        if not last:
            self._next_page += 1
            return None  # nothing to apply before the last page
        self._pages = None
        pages.complete = True
        return pages


class OkxShape(VenueShape):
    """OKX trading account: ``GET /api/v5/account/balance`` and the ``account`` channel.

    Docs: www.okx.com/docs-v5, "Trading Account: Get balance" and "WebSocket
    Private Channel: Account channel". Amounts are strings; per currency
    ``cashBal`` is the balance and ``frozenBal`` what is frozen (open orders
    among others): free is ``cashBal - frozenBal``. The channel pushes a
    snapshot when subscribed, then the currencies that changed.
    """

    venue = "okx"
    capabilities = Capabilities(
        realtime=True,
        holds=True,
        snapshot_on_subscribe=True,
        exact_rest=True,
        exact_stream=True,
        heartbeat=None,
        docs=(
            "okx.com/docs-v5: Trading Account, Get balance",
            "okx.com/docs-v5: WebSocket Private Channel, Account channel",
        ),
    )

    def rest(self, info: object, code: Code) -> Reading:
        root = _mapping(info, "$")
        status = root.get("code")
        if status not in (None, "0", 0):
            raise ProtocolError(f"OKX answered code {status!r}", path="$.code", raw=str(status))
        reading = Reading(complete=True)
        _okx_details(root.get("data"), "$.data", code, reading)
        return reading

    def book(self) -> StreamBook:
        return _OkxBook()


#: ccxt venue id → its raw reader.
SHAPES: dict[str, VenueShape] = {
    shape.venue: shape for shape in (KrakenShape(), BinanceShape(), OkxShape())
}


def shape_for(venue: str) -> VenueShape:
    """The raw reader of ``venue`` (a ccxt id), or ccxt's unified floats for any other."""
    return SHAPES.get(venue) or UnifiedShape(venue)
