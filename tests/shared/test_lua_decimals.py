"""The scripts' decimal arithmetic is exact: checked in a real Redis against Python's Decimal.

Lua numbers are doubles (2^53 + 1 is lost); the scripts add, subtract and
compare canonical decimal text digit by digit instead. These tests run that
code inside Redis (EVAL) on values far beyond 2^53 and with many decimals.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis
from hypothesis import given, settings, strategies as st

from balance_manager.core.amounts import EXACT_CONTEXT
from balance_manager.shared.amounts import encode_amount
from balance_manager.shared.lua import DECIMALS

PROGRAM = (
    DECIMALS
    + """
local op, x, y = ARGV[1], ARGV[2], ARGV[3]
if op == 'add' then return dadd(x, y) end
if op == 'sub' then return dsub(x, y) end
if op == 'cmp' then return dcmp(x, y) end
if op == 'check' then if dcheck(x) then return 1 else return 0 end end
"""
)


@pytest.fixture(scope="module")
def run(redis_url: str) -> Iterator[object]:
    """Runs the decimal library in Redis (synchronous client: hypothesis drives it)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    script = client.register_script(PROGRAM)

    def call(op: str, x: str, y: str = "0") -> object:
        return script(keys=[], args=[op, x, y])

    yield call
    client.close()


amounts = st.builds(
    lambda digits, places, negative: Decimal(("-" if negative else "") + str(digits)).scaleb(
        -places
    ),
    st.integers(0, 10**45),
    st.integers(0, 30),
    st.booleans(),
)


def test_the_double_trap_is_real(run) -> None:
    """In Lua, 2^53 + 1 as a number is lost; as text through the library it is exact."""
    client_result = run("add", "9007199254740993", "1")
    assert client_result == "9007199254740994"
    assert run("sub", "9007199254740993", "9007199254740992") == "1"


@settings(deadline=None, max_examples=300)
@given(amounts, amounts)
def test_add_sub_cmp_match_decimal_exactly(run, x: Decimal, y: Decimal) -> None:
    """dadd, dsub and dcmp agree with exact Decimal arithmetic on any two amounts."""
    a, b = encode_amount(x), encode_amount(y)
    assert run("add", a, b) == encode_amount(EXACT_CONTEXT.add(x, y))
    assert run("sub", a, b) == encode_amount(EXACT_CONTEXT.subtract(x, y))
    assert run("cmp", a, b) == (x > y) - (x < y)


@pytest.mark.parametrize(
    ("x", "y", "total"),
    [
        ("0.1", "0.2", "0.3"),
        ("99999999999999999999.99999999", "0.00000001", "100000000000000000000"),
        ("-5", "5", "0"),
        ("1.5", "-2.25", "-0.75"),
        (
            "123456789012345678901234567890",
            "0.000000000000000001",
            "123456789012345678901234567890.000000000000000001",
        ),
    ],
)
def test_known_sums(run, x: str, y: str, total: str) -> None:
    """Carries across chunks, sign changes and long fractions come out canonical."""
    assert run("add", x, y) == total


@pytest.mark.parametrize(
    ("text", "ok"), [("1.5", 1), ("0", 1), ("-0", 0), ("1.50", 0), ("01", 0), ("1e3", 0), ("", 0)]
)
def test_check_accepts_only_the_canonical_spelling(run, text: str, ok: int) -> None:
    """dcheck is the same rule as shared.amounts.is_canonical."""
    assert run("check", text) == ok


def test_garbage_is_an_error_not_a_number(run) -> None:
    """Text that is not a decimal makes the script fail rather than compute with it."""
    with pytest.raises(redis.ResponseError, match="not a decimal"):
        run("add", "12abc", "1")
