"""Fixtures for the Kraken protocol tests: the documented example messages.

The fixture files are Kraken's own example messages from the pages named in
docs/kraken.md, copied from ``shared/kraken/fixtures`` into
``tests/kraken/protocol/fixtures`` so the repository tests itself on a clean
clone; ``test_fixtures.py`` checks the copies still match the originals
whenever the shared folder is present.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: The copies used by every test.
FIXTURES_DIR = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    """The directory of the Kraken example messages (the in-repo copies)."""
    return FIXTURES_DIR


@pytest.fixture
def fixture_bytes(fixtures_dir: Path) -> Callable[[str], bytes]:
    """Read one fixture file's bytes by name."""

    def read(name: str) -> bytes:
        return (fixtures_dir / name).read_bytes()

    return read


@pytest.fixture
def fixture_json(fixtures_dir: Path) -> Callable[[str], Any]:
    """Parse one fixture file as JSON (with the stdlib, independent of our decoders)."""

    def load(name: str) -> Any:
        return json.loads((fixtures_dir / name).read_text(encoding="utf-8"))

    return load
