"""The docs hold: every Python block in docs/*.md runs as written (one namespace per file),
and every reference in the sources and docs can be followed by someone with only this
repository (no private notes, no missing files, sections or anchors)."""

from __future__ import annotations

import re
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


# -- references a reader can follow ------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
#: Files whose comments, docstrings and prose users read without the project's private notes.
SCANNED = sorted(
    [
        *(ROOT / "src").rglob("*.py"),
        *DOCS,
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
    ]
)
#: Repository paths that may be named before they exist (being written on another branch).
PENDING_FILES = frozenset({"docs/architecture.md"})

#: Citations of notes that users of the repository do not have.
UNREACHABLE = re.compile(r"PROTOCOL\.md|shared/kraken|§\s*\d")
#: A repository path named in prose or code: docs/..., examples/..., bench/..., tests/...
REPO_PATH = re.compile(r"(?<![\w./-])((?:docs|examples|bench|tests)/[\w*./-]*[\w*])")
#: A citation of a section: docs/kraken.md, 'Nonces'
SECTION_CITATION = re.compile(r"(docs/[\w-]+\.md),\s+'([^']+)'")
#: A Markdown link: [text](target)
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: Code blocks of a Markdown file (headings inside them are not headings).
FENCED = re.compile(r"^```.*?^```", re.M | re.S)


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _headings(path: Path) -> dict[str, str]:
    """A Markdown file's headings: anchor → heading text (without backticks)."""
    text = FENCED.sub("", path.read_text(encoding="utf-8"))
    titles = re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.M)
    return {_anchor(title): title.replace("`", "") for title in titles}


def test_the_reference_scan_covers_real_files() -> None:
    """The scan below reads the source tree, every doc, the README and CONTRIBUTING."""
    names = {_relative(path) for path in SCANNED}
    assert {"README.md", "CONTRIBUTING.md", "docs/kraken.md"} <= names
    assert "src/balance_manager/kraken/protocol/signing.py" in names


@pytest.mark.parametrize("path", SCANNED, ids=_relative)
def test_no_citation_of_unpublished_notes(path: Path) -> None:
    """No file cites the private protocol notes (PROTOCOL.md, shared/kraken, bare §n)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = [f"{n}: {line.strip()}" for n, line in enumerate(lines, 1) if UNREACHABLE.search(line)]
    assert not found, "cite docs/kraken.md by section name instead:\n" + "\n".join(found)


@pytest.mark.parametrize("path", SCANNED, ids=_relative)
def test_named_repository_paths_exist(path: Path) -> None:
    """Every docs/, examples/, bench/ or tests/ path a file names exists (globs match)."""
    missing = []
    for name in sorted(set(REPO_PATH.findall(path.read_text(encoding="utf-8")))):
        if name in PENDING_FILES:
            continue
        exists = any(ROOT.glob(name)) if "*" in name else (ROOT / name).exists()
        if not exists:
            missing.append(name)
    assert not missing, f"{_relative(path)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("path", SCANNED, ids=_relative)
def test_cited_sections_exist(path: Path) -> None:
    """Every "docs/x.md, 'Section'" citation names a heading of that file.

    A citation may wrap across comment lines: their ``#``/``#:`` markers are dropped first.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    text = " ".join(" ".join(re.sub(r"^\s*#:?", "", line) for line in lines).split())
    missing = []
    for doc, section in SECTION_CITATION.findall(text):
        target = ROOT / doc
        if doc in PENDING_FILES and not target.exists():
            continue
        if not target.exists() or section not in _headings(target).values():
            missing.append(f"{doc}, '{section}'")
    assert not missing, f"{_relative(path)} cites sections that do not exist: {missing}"


MARKDOWN = [path for path in SCANNED if path.suffix == ".md"]


@pytest.mark.parametrize("path", MARKDOWN, ids=_relative)
def test_markdown_links_resolve(path: Path) -> None:
    """Every relative link of a Markdown file reaches a file, and its #anchor a heading."""
    broken = []
    for target in MARKDOWN_LINK.findall(FENCED.sub("", path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if linked.is_relative_to(ROOT) and _relative(linked) in PENDING_FILES:
            continue
        reached = linked.exists() and (
            not anchor or linked.suffix != ".md" or anchor in _headings(linked)
        )
        if not reached:
            broken.append(target)
    assert not broken, f"{_relative(path)} has links that lead nowhere: {broken}"
