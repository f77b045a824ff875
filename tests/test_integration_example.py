"""The integration example runs against the simulator and every one of its checks passes."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys

import pytest
from examples.integration_example import Checks, eventually, run_example

from balance_manager.testing import ManualClock, drive


@pytest.mark.network
@pytest.mark.asyncio
async def test_example_passes_every_check(clock: ManualClock) -> None:
    """The example walks every step of the original Testing list, every check passing.

    On a manual clock driven by the test: the same steps as ``main()``, in no real time.
    """
    buffer = io.StringIO()
    run = asyncio.ensure_future(run_example(buffer, clock=clock))
    await drive(clock, 900.0, step=0.25, until=run.done)
    assert await asyncio.wait_for(run, timeout=10)
    out = buffer.getvalue()
    for step in (
        "WebSocket V2 integration",
        "Real-time balance updates",
        "Holds follow open orders",
        "Validation",
        "History tracking and trend analysis",
        "REST API fallback",
        "Error handling: REST fails too",
        "Recovery",
        "Status and statistics",
    ):
        assert step in out, step
    assert "[FAIL]" not in out
    assert "0 failed: every check passed" in out


def test_a_failed_check_fails_the_run() -> None:
    """One failed check is printed as FAIL and makes the whole run fail."""
    out = io.StringIO()
    checks = Checks(out)
    checks.step("a step")
    assert checks.check("this holds", True)
    assert not checks.check("this does not", False)
    assert not checks.all_passed
    assert checks.failed == ["this does not"]
    assert "Step 1: a step" in out.getvalue()
    assert "[FAIL] this does not" in out.getvalue()
    assert not Checks(io.StringIO()).all_passed  # no check at all is no success


@pytest.mark.asyncio
async def test_eventually_waits_on_the_clock(clock: ManualClock) -> None:
    """`eventually` is true once the condition holds, false once the clock passes the limit."""
    flag: list[bool] = []
    waiting = asyncio.ensure_future(eventually(lambda: bool(flag), clock, within=5))
    await clock.run_for(1.0)
    flag.append(True)
    await clock.run_for(0.1)
    assert await waiting is True
    never = asyncio.ensure_future(eventually(lambda: False, clock, within=5))
    await clock.run_for(6.0)
    assert await never is False


@pytest.mark.network
@pytest.mark.long
def test_example_runs_as_a_module() -> None:
    """`python -m examples.integration_example` exits 0 in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-m", "examples.integration_example"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "every check passed" in done.stdout
