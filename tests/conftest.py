"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest

from balance_manager.testing import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting at a fixed, known time."""
    return ManualClock()
