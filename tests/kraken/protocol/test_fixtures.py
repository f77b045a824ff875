"""The in-repo fixture copies are Kraken's documented examples, unchanged and all valid JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

#: Where the originals live when this checkout sits beside the shared folder.
SHARED = Path("/work/shared/kraken/fixtures")


def test_every_copy_is_json(fixtures_dir: Path) -> None:
    """Each fixture copy parses as JSON (no truncated or edited file)."""
    files = sorted(fixtures_dir.glob("*.json"))
    assert len(files) == 32  # 27 + the 5 ticker fixtures of dac9d64
    for path in files:
        json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared fixtures are not beside this clone")
def test_copies_match_the_shared_originals(fixtures_dir: Path) -> None:
    """Every shared fixture has a byte-identical copy here."""
    for original in sorted(SHARED.glob("*.json")):
        assert (fixtures_dir / original.name).read_bytes() == original.read_bytes(), original.name
