"""Tests of balance_manager.core.stats: named counters and callable names."""

from __future__ import annotations

import functools
import threading

from hypothesis import given, strategies as st

from balance_manager.core.stats import Counters, callable_name


def test_declared_counters_start_at_zero() -> None:
    """Names given at construction appear in the snapshot at 0."""
    assert Counters(["hits", "misses"]).snapshot() == {"hits": 0, "misses": 0}


def test_incr_adds_one_or_n() -> None:
    """incr() adds 1 by default, or n."""
    counters = Counters(["hits"])
    counters.incr("hits")
    counters.incr("hits", 5)
    assert counters.get("hits") == 6


def test_undeclared_counter_is_created_on_first_incr() -> None:
    """An unknown name reads as 0 and exists once incremented."""
    counters = Counters()
    assert counters.get("errors") == 0
    assert "errors" not in counters
    counters.incr("errors")
    assert "errors" in counters
    assert counters.snapshot() == {"errors": 1}


def test_snapshot_is_an_independent_copy() -> None:
    """Changing a snapshot does not change the counters, and later increments do not change it."""
    counters = Counters(["a"])
    snap = counters.snapshot()
    snap["a"] = 99
    counters.incr("a")
    assert counters.get("a") == 1
    assert snap == {"a": 99}


def test_reset_zeroes_and_keeps_declared_names() -> None:
    """reset() sets every counter to 0, keeps declared names and drops the others."""
    counters = Counters(["a"])
    counters.incr("a", 3)
    counters.incr("b")
    counters.reset()
    assert counters.snapshot() == {"a": 0}


def test_repr_lists_the_counters() -> None:
    """repr() shows each name and value."""
    counters = Counters(["hits"])
    counters.incr("hits", 2)
    assert repr(counters) == "Counters(hits=2)"


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 100))))
def test_counters_sum_their_increments(increments: list[tuple[str, int]]) -> None:
    """Each counter equals the sum of the increments given to it."""
    counters = Counters("abc")
    for name, n in increments:
        counters.incr(name, n)
    for name in "abc":
        assert counters.get(name) == sum(n for key, n in increments if key == name)


def test_readers_in_other_threads_never_see_a_torn_dict() -> None:
    """One writer creating new counters while another thread snapshots never raises."""
    counters = Counters()
    done = threading.Event()
    problems: list[BaseException] = []

    def read() -> None:
        try:
            while not done.is_set():
                snap = counters.snapshot()
                assert all(value >= 0 for value in snap.values())
        except BaseException as exc:  # collected and checked in the main thread
            problems.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(20000):
        counters.incr(f"name{i % 500}")
    done.set()
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert problems == []
    assert sum(counters.snapshot().values()) == 20000


def test_callable_name_uses_module_and_qualname_only() -> None:
    """callable_name() gives module.qualname, and for a partial only its type, never its args."""

    def handler(payload: object) -> None:
        """A sample callback."""

    assert callable_name(handler).endswith(
        "test_stats.test_callable_name_uses_module_and_qualname_only.<locals>.handler"
    )
    partial = functools.partial(handler, "hunter2-secret")
    assert callable_name(partial) == "functools.partial"
    assert "hunter2" not in callable_name(partial)
