"""docs/kraken.md: every Python block runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "kraken.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_the_doc_has_examples() -> None:
    """The scan finds the document's Python examples (a moved file would make it vacuous)."""
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_python_block_runs(number: int) -> None:
    """Each Python block of docs/kraken.md runs without error (its asserts hold)."""
    code = compile(BLOCKS[number], f"{DOC.name}[block {number}]", "exec")
    exec(code, {"__name__": f"docs_kraken_{number}"})  # noqa: S102 - our own documentation
