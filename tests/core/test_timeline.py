"""Tests for balance_manager.core.timeline (compact, exact, bounded per-asset history)."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from balance_manager.core.models import Source
from balance_manager.core.timeline import MAX_SCALE, AssetTimeline, HistoryEntry, Timeline
from balance_manager.exceptions import BalanceStateError, ConfigError, FloatAmountError

T0 = 1_700_000_000.0


def decimals_28(min_exponent: int = -40, max_exponent: int = 40) -> st.SearchStrategy[Decimal]:
    """Any Decimal with up to 28 significant digits and an exponent in the range."""
    return st.builds(
        lambda sign, coefficient, exponent: Decimal(
            (sign, tuple(map(int, str(coefficient))), exponent)
        ),
        st.sampled_from([0, 1]),
        st.integers(min_value=0, max_value=10**28 - 1),
        st.integers(min_value=min_exponent, max_value=max_exponent),
    )


def fill(timeline: AssetTimeline, values: list[Decimal], *, start: float = T0) -> None:
    """Append ``values`` one second apart."""
    for offset, value in enumerate(values):
        timeline.append(start + offset, value, Source.WEBSOCKET)


# -- exactness ---------------------------------------------------------------------


@given(values=st.lists(decimals_28(), min_size=1, max_size=40))
def test_any_decimal_round_trips_exactly(values: list[Decimal]) -> None:
    """Every value comes back == what went in, and every change is the exact difference."""
    timeline = AssetTimeline("BTC")
    fill(timeline, values)
    entries = timeline.entries()
    assert [entry.balance for entry in entries] == values
    previous = Fraction(0)
    for entry, value in zip(entries, values, strict=True):
        # Fraction(Decimal) is exact, so this checks the change was not rounded.
        assert Fraction(entry.change) == Fraction(value) - previous
        previous = Fraction(value)


@given(
    values=st.lists(decimals_28(-12, 12), min_size=1, max_size=30),
    decimals=st.integers(min_value=0, max_value=20),
)
def test_round_trip_holds_whatever_the_declared_decimals(
    values: list[Decimal], decimals: int
) -> None:
    """A declared scale never costs exactness, even when values need more decimals."""
    timeline = AssetTimeline("ETH", decimals=decimals)
    fill(timeline, values)
    assert [entry.balance for entry in timeline.entries()] == values
    assert timeline.series()[1] == values


def test_values_beyond_int64_use_the_exact_side_table() -> None:
    """Values too large or too precise for an int64 at the scale are kept as Decimals."""
    timeline = AssetTimeline("XYZ", decimals=8)
    values = [Decimal("1.5"), Decimal("123456789012345.12345678"), Decimal("1e-30"), Decimal(2)]
    fill(timeline, values)
    assert timeline.exact_fallbacks == 2
    assert [entry.balance for entry in timeline.entries()] == values


def test_scale_grows_to_fit_more_decimals_without_the_side_table() -> None:
    """A value with more decimals rescales the column when every stored value still fits."""
    timeline = AssetTimeline("USDT")
    fill(timeline, [Decimal(100), Decimal("100.5"), Decimal("100.25"), Decimal("0.00000001")])
    assert timeline.scale == 8
    assert timeline.exact_fallbacks == 0
    assert timeline.latest() == HistoryEntry(
        "USDT", T0 + 3, Decimal("1e-8"), Decimal("-100.24999999"), Source.WEBSOCKET
    )


def test_rescale_is_refused_when_stored_values_would_overflow() -> None:
    """A huge stored value keeps the scale; the precise newcomer goes to the side table."""
    timeline = AssetTimeline("BIG")
    fill(timeline, [Decimal(9 * 10**18), Decimal("0.5")])
    assert timeline.scale == 0
    assert timeline.exact_fallbacks == 1
    assert [e.balance for e in timeline.entries()] == [Decimal(9 * 10**18), Decimal("0.5")]


class _CountingArray(array):  # type: ignore[type-arg]  # array's parameter is its typecode
    """An int64 column that counts how many times it is scanned whole."""

    scans = 0

    def __iter__(self) -> Iterator[int]:
        type(self).scans += 1
        return super().__iter__()


class _CountingDict(dict[int, Decimal]):
    """A side table that counts how many times it is scanned whole."""

    scans = 0

    def __iter__(self) -> Iterator[int]:
        type(self).scans += 1
        return super().__iter__()


def test_a_refused_rescale_is_not_retried_on_every_add() -> None:
    """Values needing a scale the column cannot take go to the side table without a rescan each."""
    timeline = AssetTimeline("BIG")
    fill(timeline, [Decimal(9 * 10**18)])
    timeline._amounts = _CountingArray("q", timeline._amounts)  # white box: count the scans
    _CountingArray.scans = 0
    values = [Decimal("0.5"), Decimal("0.25"), *[Decimal(f"0.{i:03d}1") for i in range(500)]]
    fill(timeline, values, start=T0 + 1)
    assert _CountingArray.scans <= 2  # refused once at scale 1, once at 2; then remembered
    assert timeline.scale == 0
    assert [e.balance for e in timeline.entries()] == [Decimal(9 * 10**18), *values]


def test_a_refused_rescale_is_tried_again_once_the_big_values_are_dropped() -> None:
    """After the values that blocked it are dropped and compacted, the column rescales."""
    timeline = AssetTimeline("BIG", max_entries=10)
    fill(timeline, [Decimal(9 * 10**18), Decimal("0.5")])
    assert timeline.exact_fallbacks == 1
    fill(timeline, [Decimal(i) + Decimal("0.5") for i in range(1000)], start=T0 + 2)
    assert timeline.scale == 1
    assert [e.balance for e in timeline.entries()] == [
        Decimal(i) + Decimal("0.5") for i in range(990, 1000)
    ]


def test_dropping_touches_only_the_dropped_side_values() -> None:
    """A drop removes its own side values without scanning the whole side table."""
    timeline = AssetTimeline("WIDE", max_entries=100, decimals=2)
    timeline._side = _CountingDict()  # white box: count the scans (empty so far)
    assert not timeline._side_order
    _CountingDict.scans = 0
    values = [Decimal(f"1e{30 + i % 5}") for i in range(250)]  # all in the side table
    fill(timeline, values)
    assert _CountingDict.scans == 0  # 150 drops, no compaction yet: no scan at all
    assert type(timeline._side) is _CountingDict  # the one counted
    assert timeline.exact_fallbacks == 100
    assert [e.balance for e in timeline.entries()] == values[-100:]


def test_a_side_value_of_one_timeline_never_shows_in_another() -> None:
    """Timelines without side values share nothing writable: one's side value stays its own."""
    plain, wide = AssetTimeline("A", decimals=2), AssetTimeline("B", decimals=2)
    fill(plain, [Decimal(1), Decimal(2)])
    fill(wide, [Decimal(1), Decimal("1e40")])
    fresh = AssetTimeline("C", decimals=2)
    fill(fresh, [Decimal(3)])
    assert (plain.exact_fallbacks, wide.exact_fallbacks, fresh.exact_fallbacks) == (0, 1, 0)
    assert plain.float_series() is not None
    assert fresh.float_series() is not None
    assert wide.float_series() is None


def test_more_than_max_scale_decimals_stay_exact() -> None:
    """Beyond MAX_SCALE decimals the value is exact via the side table."""
    timeline = AssetTimeline("WEI")
    tiny = Decimal(1).scaleb(-(MAX_SCALE + 2))
    fill(timeline, [Decimal(1), tiny])
    latest = timeline.latest()
    assert latest is not None
    assert latest.balance == tiny


# -- memory structure -----------------------------------------------------------------


def test_fast_path_costs_17_bytes_per_entry() -> None:
    """Values that fit the int64 column take 8 + 8 + 1 bytes each, nothing more."""
    timeline = AssetTimeline("BTC", decimals=10)
    fill(timeline, [Decimal(f"0.{i:010d}") + 1 for i in range(1, 2001)])
    assert timeline.exact_fallbacks == 0
    assert timeline.nbytes() / len(timeline) <= 17


def test_dropping_is_compacted_so_memory_stays_bounded() -> None:
    """After many drops, the dead prefix never exceeds a third of the live entries."""
    timeline = AssetTimeline("BTC", max_entries=1000, decimals=8)
    for i in range(50_000):
        timeline.append(T0 + i, Decimal(i), Source.REST)
    assert len(timeline) == 1000
    assert timeline.nbytes() <= 17 * (1000 * 4 // 3 + 1)


def test_side_table_values_survive_compaction() -> None:
    """Exact fallbacks stay attached to their entries when the columns are compacted."""
    timeline = AssetTimeline("MIX", max_entries=10, decimals=2)
    values = [Decimal(f"1e{30 + i % 7}") if i % 3 == 0 else Decimal(i) for i in range(2000)]
    fill(timeline, values)
    assert [entry.balance for entry in timeline.entries()] == values[-10:]
    assert timeline.exact_fallbacks == sum(1 for i in range(1990, 2000) if i % 3 == 0)


# -- bounds and pruning ---------------------------------------------------------------


def test_oldest_entries_are_dropped_beyond_max_entries() -> None:
    """The newest max_entries entries are kept, oldest first."""
    timeline = AssetTimeline("BTC", max_entries=3)
    fill(timeline, [Decimal(v) for v in (1, 2, 4, 8, 16)])
    assert [e.balance for e in timeline.entries()] == [4, 8, 16]


def test_first_retained_entry_reports_change_against_the_dropped_one() -> None:
    """The base value keeps the first retained entry's change honest."""
    timeline = AssetTimeline("BTC", max_entries=2)
    fill(timeline, [Decimal(10), Decimal(15), Decimal(12)])
    first = timeline.entries()[0]
    assert (first.balance, first.change) == (Decimal(15), Decimal(5))


def test_prune_before_drops_older_entries_and_counts_them() -> None:
    """prune_before removes entries strictly older than the cutoff."""
    timeline = AssetTimeline("BTC")
    fill(timeline, [Decimal(v) for v in (1, 2, 3, 4)])
    assert timeline.prune_before(T0 + 2) == 2
    assert [(e.balance, e.change) for e in timeline.entries()] == [
        (Decimal(3), Decimal(1)),
        (Decimal(4), Decimal(1)),
    ]
    assert timeline.prune_before(T0) == 0


def test_prune_everything_keeps_the_last_balance_for_the_next_change() -> None:
    """After everything is pruned, the next entry's change is still relative to the last value."""
    timeline = AssetTimeline("BTC")
    fill(timeline, [Decimal(5), Decimal(7)])
    assert timeline.prune_before(T0 + 100) == 2
    assert len(timeline) == 0
    assert timeline.latest() is None
    assert timeline.last_balance == Decimal(7)
    entry = timeline.append(T0 + 200, Decimal(6), Source.REST)
    assert entry.change == Decimal(-1)


def test_max_entries_must_be_positive() -> None:
    """A zero bound is refused with the config option's name."""
    with pytest.raises(ConfigError, match="history_max_entries"):
        AssetTimeline("BTC", max_entries=0)
    with pytest.raises(ConfigError, match="history_max_entries"):
        Timeline(max_entries=-1)


# -- ordering -------------------------------------------------------------------------


def test_out_of_order_timestamp_is_clamped_to_the_previous_one() -> None:
    """An earlier timestamp is stored as the previous entry's, keeping arrival order."""
    timeline = AssetTimeline("BTC")
    timeline.append(T0 + 10, Decimal(1), Source.WEBSOCKET)
    entry = timeline.append(T0 + 5, Decimal(2), Source.REST)
    assert entry.timestamp == T0 + 10
    assert timeline.clamped == 1
    assert [e.timestamp for e in timeline.entries()] == [T0 + 10, T0 + 10]


def test_non_finite_timestamp_and_float_balance_are_refused() -> None:
    """Bad inputs raise the project's errors instead of corrupting the columns."""
    timeline = AssetTimeline("BTC")
    with pytest.raises(BalanceStateError, match="timestamp"):
        timeline.append(math.nan, Decimal(1), Source.REST)
    with pytest.raises(FloatAmountError):
        timeline.append(T0, 0.1, Source.REST)  # type: ignore[arg-type]  # refusing floats is the point
    assert len(timeline) == 0


# -- reads ----------------------------------------------------------------------------


def test_entries_limit_keeps_the_newest_and_since_filters_by_time() -> None:
    """limit keeps the newest N of the window, oldest first; since cuts by timestamp."""
    timeline = AssetTimeline("BTC")
    fill(timeline, [Decimal(v) for v in range(1, 11)])
    assert [e.balance for e in timeline.entries(limit=3)] == [8, 9, 10]
    assert [e.balance for e in timeline.entries(since=T0 + 7)] == [8, 9, 10]
    assert [e.balance for e in timeline.entries(limit=2, since=T0 + 3)] == [9, 10]
    assert timeline.entries(limit=0) == []
    assert timeline.entries(since=T0 + 100) == []


def test_sources_round_trip() -> None:
    """Each entry keeps the source it was recorded with."""
    timeline = AssetTimeline("BTC")
    for offset, source in enumerate([Source.WEBSOCKET, Source.REST, Source.CACHE]):
        timeline.append(T0 + offset, Decimal(offset), source)
    assert [e.source for e in timeline.entries()] == [Source.WEBSOCKET, Source.REST, Source.CACHE]


def test_float_series_matches_series_and_declines_side_table_windows() -> None:
    """float_series gives the same points as floats, and None when a value is off-column."""
    timeline = AssetTimeline("BTC", decimals=8)
    fill(timeline, [Decimal("1.5"), Decimal("2.25"), Decimal("3.125")])
    result = timeline.float_series()
    assert result is not None
    times, values, first, last = result
    assert times == timeline.series()[0]
    assert values == [1.5, 2.25, 3.125]
    assert (first, last) == (Decimal("1.5"), Decimal("3.125"))
    timeline.append(T0 + 5, Decimal("1e40"), Source.REST)
    assert timeline.float_series() is None
    assert timeline.float_series(since=T0 + 10) is None  # empty window


# -- the container --------------------------------------------------------------------


def test_timeline_keeps_assets_apart() -> None:
    """Each asset has its own history; totals and pruning span all of them."""
    timeline = Timeline(max_entries=10, decimals={"BTC": 10})
    timeline.append("USD", T0, Decimal("100.5"), Source.REST)
    timeline.append("BTC", T0 + 1, Decimal("0.5"), Source.WEBSOCKET)
    timeline.append("BTC", T0 + 2, Decimal("0.75"), Source.WEBSOCKET)
    assert timeline.assets() == ["BTC", "USD"]
    assert timeline.total_entries() == len(timeline) == 3
    btc = timeline.get("BTC")
    assert btc is not None
    assert btc.scale == 10
    assert timeline.get("ETH") is None
    assert timeline.prune_before(T0 + 1) == 1
    assert timeline.assets() == ["BTC"]
    assert "USD" not in timeline
    assert "BTC" in timeline


def test_set_decimals_applies_to_later_and_existing_assets() -> None:
    """Declared decimals set the scale of a new asset and rescale an existing one."""
    timeline = Timeline()
    timeline.set_decimals("ETH", 10)
    timeline.append("ETH", T0, Decimal(1), Source.REST)
    timeline.append("USD", T0, Decimal(1), Source.REST)
    timeline.set_decimals("USD", 4)
    eth, usd = timeline.get("ETH"), timeline.get("USD")
    assert eth is not None
    assert usd is not None
    assert (eth.scale, usd.scale) == (10, 4)
    assert [e.balance for e in usd.entries()] == [1]


# -- model-based check ----------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), decimals_28(-20, 20)),
        st.tuples(st.just("prune"), st.integers(min_value=0, max_value=400)),
    ),
    max_size=300,
)


@settings(max_examples=60)
@given(ops=operations, max_entries=st.integers(min_value=1, max_value=20))
def test_timeline_behaves_like_a_bounded_list(
    ops: list[tuple[str, object]], max_entries: int
) -> None:
    """Appends, drops, prunes and compactions agree with a plain-list model."""
    timeline = AssetTimeline("BTC", max_entries=max_entries)
    model: list[tuple[float, Decimal]] = []
    last: Decimal | None = None
    base: Decimal | None = None
    for step, (kind, argument) in enumerate(ops):
        if kind == "append":
            assert isinstance(argument, Decimal)
            timeline.append(T0 + step, argument, Source.REST)
            model.append((T0 + step, argument))
            last = argument
            if len(model) > max_entries:
                base = model.pop(0)[1]
        else:
            assert isinstance(argument, int)
            cutoff = T0 + argument
            kept = [item for item in model if item[0] >= cutoff]
            if len(kept) < len(model):
                base = model[len(model) - len(kept) - 1][1]
            assert timeline.prune_before(cutoff) == len(model) - len(kept)
            model = kept
    assert [(e.timestamp, e.balance) for e in timeline.entries()] == model
    assert timeline.exact_fallbacks <= len(model)  # dropped entries left the side table
    assert timeline.last_balance == last
    if model:
        first = timeline.entries()[0]
        before = Fraction(0) if base is None else Fraction(base)
        assert Fraction(first.change) == Fraction(first.balance) - before
