"""Compact in-memory balance history: one column store per asset.

The original specification budgets ~800 bytes per history entry. A Python object per entry cannot
get near a small budget: a ``(float, Decimal)`` tuple alone costs ~190 bytes.
So each asset keeps its history as three parallel ``array.array`` columns:

========== ======== ===== ==========================================================
column     typecode bytes content
========== ======== ===== ==========================================================
timestamp  ``'d'``  8     Unix seconds, non-decreasing
amount     ``'q'``  8     the balance as an integer count of ``10**-scale`` units
source     ``'b'``  1     index of the :class:`~balance_manager.core.models.Source`
========== ======== ===== ==========================================================

17 bytes per entry. ``scale`` is per asset: the asset's ledger decimals when
they are known (Kraken ``Assets.decimals``; docs/kraken.md, 'Assets'), else the
fewest decimals that hold every value seen so far (at most 18). When a value
needs more decimals, the column is rescaled in place if every stored value
still fits in int64.

Exactness is never traded for space. A value that cannot be stored exactly as
an int64 at the column's scale (more than 18 decimals, or too large) is kept as
its ``Decimal`` in a sparse side table, and its amount cell holds a sentinel.
The side table's indexes are kept in order beside it, so dropping the oldest
entries removes only their own side values (O(1) per drop, however large the
table). A rescale that cannot fit the stored values is remembered as refused
until the next compaction, so a stream of values that need more decimals than
the column can give goes to the side table in O(1) each instead of re-scanning
the column on every add.
What goes in comes out ``==`` (it may come back with more trailing zeros:
``Decimal("1.5")`` stored at scale 8 reads as ``Decimal("1.50000000")``).

Order: entries are kept in arrival order, which is the order in which the
balance evolved. A timestamp earlier than the previous entry's is *clamped* to
it (and counted in :attr:`AssetTimeline.clamped`) rather than inserted further
back: inserting would reorder the balance sequence and falsify the ``change``
of the entries after it, and exchange and local clocks do disagree slightly.

Bounds: at most ``max_entries`` per asset; the oldest entries are dropped by
moving a start offset, and the columns are compacted once the dead prefix is a
quarter of them, so dropping is amortised O(1). The balance of the last dropped
entry is kept as the *base*, so the first retained entry still reports its
``change`` against its true predecessor: its slot stays readable until the
compaction, which decodes it, so a drop itself decodes nothing.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import cast

import msgspec

from balance_manager.core.amounts import decimal_places, to_amount
from balance_manager.core.changes import EXACT_CONTEXT, difference
from balance_manager.core.models import Source
from balance_manager.exceptions import BalanceStateError, ConfigError

__all__ = [
    "MAX_SCALE",
    "AssetTimeline",
    "HistoryEntry",
    "Timeline",
]

#: Most decimals an amount column uses; beyond, values go to the exact side table.
MAX_SCALE = 18

_INT64_MAX = 2**63 - 1
#: Amount cell marker meaning "the exact value is in the side table".
_SENTINEL = -(2**63)
#: Compaction happens when at least this many dead slots lead the columns...
_COMPACT_MIN = 256
#: ...and they make up at least 1/_COMPACT_RATIO of them.
_COMPACT_RATIO = 4
#: Rough cost of one side-table slot besides the Decimal itself (dict slot + int key).
_SIDE_SLOT_BYTES = 64

_SOURCES: tuple[Source, ...] = tuple(Source)
#: The side table and its order of every timeline without side values: shared, never
#: written (``_encode_slow`` gives a timeline its own before the first write).
_NO_SIDE: dict[int, Decimal] = {}
_NO_SIDE_ORDER: deque[int] = deque()
_scaleb = EXACT_CONTEXT.scaleb
#: Exact ``a - b`` (see ``core.changes.EXACT_CONTEXT``), bound once for the hot path.
_subtract = EXACT_CONTEXT.subtract


class HistoryEntry(msgspec.Struct, frozen=True, gc=False):
    """One recorded balance of one asset.

    Attributes:
        asset: the asset.
        timestamp: when the balance took this value (Unix seconds).
        balance: the balance (exact).
        change: ``balance`` minus the previous entry's balance (exact); for the
            first value ever recorded, the whole balance.
        source: where the value came from.
    """

    asset: str
    timestamp: float
    balance: Decimal
    change: Decimal
    source: Source


def _places(value: Decimal) -> int:
    """Decimals ``value`` really needs (trailing zeros ignored): ``1.2500`` → 2."""
    places = decimal_places(value)
    digits = value.as_tuple().digits
    trailing = 0
    while trailing < places and trailing < len(digits) and digits[-1 - trailing] == 0:
        trailing += 1
    return places - trailing


def _encode(value: Decimal, scale: int) -> int | None:
    """``value * 10**scale`` as an int64, or ``None`` when that is not exact or too big."""
    # EXACT_CONTEXT: scaleb never rounds there, so an integral result is exact.
    scaled = _scaleb(value, scale)
    if scaled.adjusted() >= 19:  # |scaled| >= 10**19 > int64 range: skip the big int
        return None
    number = int(scaled)
    if number != scaled or not -_INT64_MAX <= number <= _INT64_MAX:
        return None
    return number


class AssetTimeline:
    """The history of one asset, as compact columns (see the module docstring).

    Args:
        asset: the asset's name.
        max_entries: most entries kept; the oldest are dropped beyond.
        decimals: the asset's ledger decimals, if known (the amount scale).

    Raises:
        ConfigError: ``max_entries`` is not a positive int, or ``decimals`` is negative.
    """

    __slots__ = (
        "_amounts",
        "_base",
        "_last",
        "_last_ts",
        "_refused_scale",
        "_scale",
        "_side",
        "_side_order",
        "_sources",
        "_start",
        "_times",
        "asset",
        "clamped",
        "max_entries",
    )

    def __init__(self, asset: str, *, max_entries: int = 10_000, decimals: int | None = None):
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigError("history_max_entries", max_entries, "must be a positive int")
        self.asset = asset
        """The asset's name."""
        self.max_entries = max_entries
        """Most entries kept."""
        self.clamped = 0
        """Entries whose timestamp was earlier than their predecessor's and was clamped."""
        self._times = array("d")
        self._amounts = array("q")
        self._sources = array("b")
        self._start = 0  # physical index of the oldest live entry
        # physical index -> exact value (sentinel cells), and its indexes in order; both the
        # shared empty ones until the first side value (most assets never have one)
        self._side: dict[int, Decimal] = _NO_SIDE
        self._side_order: deque[int] = _NO_SIDE_ORDER
        # Smallest scale a rescale was refused at since the last compaction (values only
        # grow meanwhile, so any scale at or above it would be refused again).
        self._refused_scale = MAX_SCALE + 1
        self._scale = -1  # -1: not chosen yet (no decimals given, no value seen)
        self._base: Decimal | None = None  # last dropped balance, once compacted away
        self._last: Decimal | None = None  # balance of the newest entry (as given)
        self._last_ts = float("-inf")
        if decimals is not None:
            self.set_decimals(decimals)

    # -- writing ---------------------------------------------------------------

    def set_decimals(self, decimals: int) -> None:
        """Use ``decimals`` (the asset's ledger decimals) as the amount scale.

        Takes effect at once when nothing is stored yet; otherwise the column is
        rescaled up to ``decimals`` if every stored value still fits (a smaller
        scale is never applied to stored values, which may need it).

        Raises:
            ConfigError: ``decimals`` is negative or not an int.
        """
        if isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0:
            raise ConfigError("decimals", decimals, "must be a non-negative int")
        wanted = min(decimals, MAX_SCALE)
        if self._scale < 0 or not self._amounts:
            self._scale = wanted
        elif wanted > self._scale:
            self._try_rescale(wanted)

    def append(self, timestamp: float, balance: Decimal, source: Source) -> HistoryEntry:
        """Record ``balance`` at ``timestamp`` and return the new entry.

        A ``timestamp`` earlier than the previous entry's is clamped to it (see
        the module docstring). When the timeline is full, the oldest entry is
        dropped first.

        Args:
            timestamp: Unix seconds (finite).
            balance: the balance; a ``Decimal`` (``int`` and ``str`` are converted,
                ``float`` is refused).
            source: where the value came from.

        Raises:
            BalanceStateError: ``timestamp`` is not finite.
            InvalidAmountError: ``balance`` is not an exact finite amount.
        """
        previous = self._last
        self.add(timestamp, balance, source)
        balance = cast(Decimal, self._last)  # as stored: converted if it was not a Decimal
        change = balance if previous is None else _subtract(balance, previous)
        return HistoryEntry(self.asset, self._last_ts, balance, change, source)

    def add(self, timestamp: float, balance: Decimal, source: Source) -> None:
        """:meth:`append` without building the entry (the hot path of a stream)."""
        if type(balance) is not Decimal or not balance.is_finite():
            balance = to_amount(balance, name="balance")  # converts, or raises naming it
        if not math.isfinite(timestamp):
            raise BalanceStateError(self.asset, "timestamp", timestamp, "must be finite")
        if timestamp < self._last_ts:
            timestamp = self._last_ts
            self.clamped += 1
        live = len(self._amounts) - self._start
        if live >= self.max_entries:
            self._drop(live - self.max_entries + 1)
        number = _encode(balance, self._scale) if self._scale >= 0 else None
        if number is None:  # first value, or it needs another scale or the side table
            number = self._encode_slow(balance)
        self._times.append(timestamp)
        self._amounts.append(number)
        # tuple.index compares by identity first: cheaper than hashing an Enum member.
        self._sources.append(_SOURCES.index(source))
        self._last = balance
        self._last_ts = timestamp

    def prune_before(self, timestamp: float) -> int:
        """Drop every entry older than ``timestamp``; return how many were dropped."""
        cut = bisect_left(self._times, timestamp, self._start)
        count = cut - self._start
        if count > 0:
            self._drop(count)
        return count

    # -- reading ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._times) - self._start

    @property
    def scale(self) -> int | None:
        """Decimals of the amount column (``None`` until chosen)."""
        return self._scale if self._scale >= 0 else None

    @property
    def last_balance(self) -> Decimal | None:
        """Balance of the newest entry, or of the last one ever dropped, or ``None``."""
        return self._last

    @property
    def last_timestamp(self) -> float:
        """Timestamp of the newest entry (``-inf`` before the first)."""
        return self._last_ts

    def latest(self) -> HistoryEntry | None:
        """The newest entry, or ``None`` when the timeline is empty."""
        end = len(self._times)
        return self._entry(end - 1) if end > self._start else None

    def entries(self, limit: int | None = None, since: float | None = None) -> list[HistoryEntry]:
        """Entries oldest → newest, of the window selected by ``since`` and ``limit``.

        Args:
            limit: keep only the newest ``limit`` entries of the window (0 or less: none).
            since: only entries with ``timestamp >= since``.
        """
        low, high = self._window(limit, since)
        if low >= high:
            return []
        balances = self._decode_range(low, high)
        previous = self._value_before(low)
        times, codes, asset = self._times, self._sources, self.asset
        out: list[HistoryEntry] = []
        for offset, balance in enumerate(balances):
            index = low + offset
            out.append(
                HistoryEntry(
                    asset,
                    times[index],
                    balance,
                    difference(balance, previous),
                    _SOURCES[codes[index]],
                )
            )
            previous = balance
        return out

    def series(self, since: float | None = None) -> tuple[list[float], list[Decimal]]:
        """``(timestamps, balances)`` of the entries with ``timestamp >= since``, oldest first."""
        low, high = self._window(None, since)
        if low >= high:
            return [], []
        return self._times[low:high].tolist(), self._decode_range(low, high)

    def float_series(
        self, since: float | None = None
    ) -> tuple[list[float], list[float], Decimal, Decimal] | None:
        """Like :meth:`series` but with balances as floats, for statistics.

        Converting the int64 column to floats (correctly rounded ``n / 10**scale``)
        is about ten times faster than building ``Decimal`` objects. Only the
        window's first and last balances are returned exactly.

        Returns:
            ``(timestamps, values, first_balance, last_balance)``, or ``None`` when
            the window is empty or holds a value from the exact side table (then
            use :meth:`series`, which handles any magnitude).
        """
        low, high = self._window(None, since)
        if low >= high or (self._side_order and self._side_order[-1] >= low):
            return None
        divisor = 10**self._scale
        values = [number / divisor for number in self._amounts[low:high]]
        return self._times[low:high].tolist(), values, self._decode(low), self._decode(high - 1)

    def __iter__(self) -> Iterator[HistoryEntry]:
        return iter(self.entries())

    def nbytes(self) -> int:
        """Bytes held by this timeline's data.

        The column buffers (17 bytes per slot, counting dropped slots awaiting
        compaction) plus the exact side table. It leaves out the fixed
        per-asset overhead and the allocator's over-allocation; the benchmark
        measures those with ``tracemalloc``.
        """
        columns = (
            len(self._times) * self._times.itemsize
            + len(self._amounts) * self._amounts.itemsize
            + len(self._sources) * self._sources.itemsize
        )
        side = sum(sys.getsizeof(value) + _SIDE_SLOT_BYTES for value in self._side.values())
        return columns + side

    @property
    def exact_fallbacks(self) -> int:
        """Live entries held in the exact side table (not as int64)."""
        order = self._side_order
        base_kept = bool(order) and order[0] < self._start  # the last dropped one (the base)
        return len(self._side) - base_kept

    def __repr__(self) -> str:
        return (
            f"AssetTimeline(asset={self.asset!r}, entries={len(self)}, "
            f"scale={self.scale}, max_entries={self.max_entries})"
        )

    # -- internals ---------------------------------------------------------------

    def _window(self, limit: int | None, since: float | None) -> tuple[int, int]:
        low, high = self._start, len(self._times)
        if since is not None:
            low = bisect_left(self._times, since, low, high)
        if limit is not None:
            low = max(low, high - max(limit, 0))
        return low, high

    def _decode(self, index: int) -> Decimal:
        number = self._amounts[index]
        if number == _SENTINEL:
            return self._side[index]
        return Decimal(number).scaleb(-self._scale)

    def _decode_range(self, low: int, high: int) -> list[Decimal]:
        exponent = -self._scale
        side = self._side
        # Decimal(n) has at most 19 digits, so scaleb never rounds in the default context.
        out = [Decimal(number).scaleb(exponent) for number in self._amounts[low:high]]
        if side:
            for index in range(low, high):
                if index in side:
                    out[index - low] = side[index]
        return out

    def _value_before(self, index: int) -> Decimal | None:
        # The last dropped slot stays readable until compaction (see _drop).
        return self._decode(index - 1) if index > 0 else self._base

    def _entry(self, index: int) -> HistoryEntry:
        balance = self._decode(index)
        return HistoryEntry(
            self.asset,
            self._times[index],
            balance,
            difference(balance, self._value_before(index)),
            _SOURCES[self._sources[index]],
        )

    def _encode_slow(self, balance: Decimal) -> int:
        """Encode ``balance`` after choosing or growing the scale; else use the side table."""
        if self._scale < 0:
            self._scale = min(_places(balance), MAX_SCALE)
            number = _encode(balance, self._scale)
            if number is not None:
                return number
        needed = _places(balance)
        if self._scale < needed <= MAX_SCALE and self._try_rescale(needed):
            number = _encode(balance, self._scale)
            if number is not None:
                return number
        # Physical index the entry is about to take (after any drop/compaction).
        index = len(self._amounts)
        if self._side is _NO_SIDE:  # the first side value: a table of its own
            self._side = {}
        if self._side_order is _NO_SIDE_ORDER:
            self._side_order = deque()
        self._side[index] = balance
        self._side_order.append(index)
        return _SENTINEL

    def _try_rescale(self, scale: int) -> bool:
        """Rescale the live amounts to ``scale`` if they all still fit in int64.

        A refusal is remembered (``_refused_scale``) until the next compaction: O(1)
        then, instead of a scan of the column on every add.
        """
        if scale >= self._refused_scale:
            return False
        self._compact()
        factor = 10 ** (scale - self._scale)
        live = [number for number in self._amounts if number != _SENTINEL]
        if live and max(max(live), -min(live)) * factor > _INT64_MAX:
            self._refused_scale = scale
            return False
        self._amounts = array(
            "q",
            (number if number == _SENTINEL else number * factor for number in self._amounts),
        )
        self._scale = scale
        return True

    def _drop(self, count: int) -> None:
        new_start = self._start + count
        order = self._side_order
        # Only the dropped entries' own side values go, and not the last one's: the last
        # dropped slot is the base of the first kept entry, decoded only at compaction.
        while order and order[0] < new_start - 1:
            del self._side[order.popleft()]
        self._start = new_start
        if self._start >= _COMPACT_MIN and self._start * _COMPACT_RATIO >= len(self._times):
            self._compact()

    def _compact(self) -> None:
        start = self._start
        if not start:
            return
        self._base = self._decode(start - 1)
        del self._times[:start]
        del self._amounts[:start]
        del self._sources[:start]
        if self._side:
            self._side = {i - start: value for i, value in self._side.items() if i >= start}
            self._side_order = deque(self._side)
        self._start = 0
        self._refused_scale = MAX_SCALE + 1  # values were dropped: a rescale may fit now


class Timeline:
    """Histories of every asset, each an :class:`AssetTimeline`.

    Args:
        max_entries: most entries kept per asset.
        decimals: known ledger decimals per asset (the amount scale).

    Raises:
        ConfigError: ``max_entries`` is not a positive int.
    """

    __slots__ = ("_assets", "_decimals", "max_entries")

    def __init__(self, *, max_entries: int = 10_000, decimals: Mapping[str, int] | None = None):
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigError("history_max_entries", max_entries, "must be a positive int")
        self.max_entries = max_entries
        """Most entries kept per asset."""
        self._assets: dict[str, AssetTimeline] = {}
        self._decimals: dict[str, int] = dict(decimals or {})

    def set_decimals(self, asset: str, decimals: int) -> None:
        """Tell the ledger decimals of ``asset`` (see :meth:`AssetTimeline.set_decimals`)."""
        self._decimals[asset] = decimals
        timeline = self._assets.get(asset)
        if timeline is not None:
            timeline.set_decimals(decimals)

    def append(
        self, asset: str, timestamp: float, balance: Decimal, source: Source
    ) -> HistoryEntry:
        """Record ``balance`` of ``asset`` at ``timestamp`` (see :meth:`AssetTimeline.append`)."""
        return self.timeline_for(asset).append(timestamp, balance, source)

    def timeline_for(self, asset: str) -> AssetTimeline:
        """The timeline of ``asset``, created (empty) when it has none yet."""
        timeline = self._assets.get(asset)
        if timeline is None:
            timeline = AssetTimeline(
                asset, max_entries=self.max_entries, decimals=self._decimals.get(asset)
            )
            self._assets[asset] = timeline
        return timeline

    def get(self, asset: str) -> AssetTimeline | None:
        """The timeline of ``asset``, or ``None`` if nothing was ever recorded for it.

        A name that is not a ``str`` (a list...) has no timeline: ``None``.
        """
        return self._assets.get(asset) if isinstance(asset, str) else None

    def assets(self) -> list[str]:
        """Assets with at least one retained entry, sorted."""
        return sorted(asset for asset, timeline in self._assets.items() if len(timeline))

    def total_entries(self) -> int:
        """Entries retained across all assets."""
        return sum(len(timeline) for timeline in self._assets.values())

    def prune_before(self, timestamp: float) -> int:
        """Drop every entry older than ``timestamp`` in every asset; return how many."""
        return sum(timeline.prune_before(timestamp) for timeline in self._assets.values())

    def nbytes(self) -> int:
        """Data bytes of every asset (see :meth:`AssetTimeline.nbytes`)."""
        return sum(timeline.nbytes() for timeline in self._assets.values())

    @property
    def clamped(self) -> int:
        """Out-of-order timestamps clamped, across all assets."""
        return sum(timeline.clamped for timeline in self._assets.values())

    def __len__(self) -> int:
        return self.total_entries()

    def __contains__(self, asset: object) -> bool:
        timeline = self._assets.get(asset) if isinstance(asset, str) else None
        return timeline is not None and len(timeline) > 0

    def __repr__(self) -> str:
        return (
            f"Timeline(assets={len(self._assets)}, entries={self.total_entries()}, "
            f"max_entries={self.max_entries})"
        )
