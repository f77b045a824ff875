"""Every Python block in docs/*.md runs as written (one namespace per file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.markdown_blocks import python_blocks, run_block_sync

DOCS = sorted((Path(__file__).resolve().parent.parent / "docs").glob("*.md"))


def test_there_are_docs() -> None:
    """The scan below covers real files."""
    assert len(DOCS) >= 5


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_doc_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file's Python blocks run in order without error."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for index, block in enumerate(python_blocks(path)):
        run_block_sync(block, namespace, f"{path.name} block {index}")
