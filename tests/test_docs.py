"""The documentation (docs/*.md and the site's mkdocs.yml) is true to the code and complete.

* every Python block of every page runs as written, in order, one namespace per page;
  docs/usage.md's output is checked line by line;
* every page is in the site's navigation, and every public name in the API reference;
* the tables that restate the code (options, events, errors) match it;
* user-facing text does not speak of "the seed" (the project's word for its original
  specification, unknown to users);
* every reference in the sources and docs can be followed by someone with only this
  repository (no private notes, no missing files, sections or anchors).

The site's strict build (``make docs-check``) checks links, anchors and references on top.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.markdown_blocks import python_blocks, run_block, run_page

import balance_manager
import balance_manager.ccxt
import balance_manager.exceptions
import balance_manager.simulator
import balance_manager.testing
from balance_manager import EVENTS, BalanceManagerConfig
from balance_manager.config import OPTION_BOUNDS
from balance_manager.exceptions import BalanceManagerError

ROOT = Path(__file__).resolve().parent.parent
DOCS_DIR = ROOT / "docs"
DOCS = sorted(DOCS_DIR.rglob("*.md"))
MKDOCS = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
#: Pages whose blocks a test of their own runs and checks.
CHECKED_ELSEWHERE = {"usage.md"}


def page(name: str) -> str:
    """The text of docs/``name``."""
    return (DOCS_DIR / name).read_text(encoding="utf-8")


def test_there_are_docs() -> None:
    """The scans below cover real files."""
    assert len(DOCS) >= 20


@pytest.fixture
def _private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """History files in a temporary directory, the working directory too; no credentials."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    for name in ("KRAKEN_API_KEY", "KRAKEN_API_SECRET", "KRAKEN_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("_private_state")
@pytest.mark.parametrize(
    "path",
    [p for p in DOCS if p.name not in CHECKED_ELSEWHERE and python_blocks(p)],
    ids=lambda p: str(p.relative_to(DOCS_DIR)),
)
def test_doc_blocks_run(path: Path) -> None:
    """The page's Python blocks run in order without error (their asserts hold)."""
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    run_page(python_blocks(path), namespace, path.name)


# -- docs/usage.md: the original specification's examples, output checked --------------------


@pytest.mark.network
@pytest.mark.asyncio
@pytest.mark.usefixtures("_private_state")
async def test_usage_page_runs_and_prints_what_it_says() -> None:
    """Basic usage, callbacks, strategy, risk, monitoring and health checks print true lines."""
    namespace: dict[str, Any] = {}
    printed: list[str] = []
    for index, block in enumerate(python_blocks(DOCS_DIR / "usage.md")):
        printed.append(await run_block(block, namespace, f"usage.md block {index}"))
    text = "".join(printed)
    manager = namespace["balance_manager"]
    simulator = namespace["simulator"]

    def block_output(marker: str) -> str:
        """What the block containing ``marker`` printed, less the callbacks' lines."""
        (out,) = [
            out
            for block, out in zip(python_blocks(DOCS_DIR / "usage.md"), printed, strict=True)
            if marker in block
        ]
        callbacks = ("Balance update: ", "Significant change in ")
        return "".join(line for line in out.splitlines(True) if not line.startswith(callbacks))

    basic = block_output("await balance_manager.initialize()").splitlines()
    assert "USDT Balance: 6000" in basic  # 5000 spot + 1000 in Kraken Rewards (USDT.F)
    assert "BTC: 1.2435 (free: 1.2435)" in basic
    assert "USD: 25435.21 (free: 25435.21)" in basic
    assert "E-" not in text  # every amount printed plain, as people read them
    assert not re.search(r"\d\.\d*0\b(?!%)", block_output("initialize()")), "noise zeros"

    (deposit_block,) = [b for b in python_blocks(DOCS_DIR / "usage.md") if '"USDT", "250"' in b]
    callbacks = printed[python_blocks(DOCS_DIR / "usage.md").index(deposit_block)].splitlines()
    assert callbacks == ["Balance update: USDT = 6250", "Significant change in USDT"]

    advanced = block_output("analyze_balance_trend")
    assert "Balance validation failed!" not in advanced
    assert re.search(r"^USDT: 6000 at \d", advanced, re.M)
    assert re.search(r"^USDT: 6250 at \d", advanced, re.M)

    strategy = block_output("strategy = TradingStrategy(").splitlines()
    assert strategy[:2] == ["True", "False"]
    assert len(strategy) == 3
    assert re.fullmatch(r"Canceled O[A-Z0-9-]+", strategy[2])
    assert not simulator.account().open_orders()
    assert simulator.balances()["USDT"] == 50

    # The risk check, recomputed from the exchange's truth: each asset valued in USD.
    risk = block_output("check_portfolio_risk(prices)").splitlines()
    truth = simulator.balances()
    values = {a: truth[a] * simulator.price(f"{a}/USD") for a in ("BTC", "ETH", "DOT", "USDT")}
    total = sum(values.values(), truth["USD"])
    shares = {asset: value / total for asset, value in values.items()}
    assert sorted(risk) == sorted(
        ["No USD price for EUR: left out of the total"]
        + [f"High exposure to {a}: {share:.1%}" for a, share in shares.items() if share > 0.1]
    )
    assert {line.split(":")[0] for line in risk[1:]} == {
        "High exposure to BTC",
        "High exposure to ETH",
    }

    monitoring = block_output("get_status()")
    assert "WebSocket connected: True" in monitoring
    assert "Tracked assets: 6" in monitoring
    assert re.search(r"Cache hit rate: \d+\.\d%", monitoring)

    assert manager.get_status()["initialized"] is False  # the last block closed it
    assert not simulator.running


# -- the site's navigation and the API reference ------------------------------------------------


def nav_pages() -> list[str]:
    """The pages named in mkdocs.yml's ``nav``."""
    nav = MKDOCS.split("\nnav:\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"([\w/.-]+\.md)\s*$", nav, re.M)


def test_every_page_is_in_the_site_navigation() -> None:
    """A page added to docs/ without a line in mkdocs.yml's nav is named here."""
    listed = nav_pages()
    assert len(listed) == len(set(listed)), "a page is listed twice"
    on_disk = {str(p.relative_to(DOCS_DIR)) for p in DOCS}
    missing = sorted(on_disk - set(listed))
    assert not missing, f"add these pages to the nav of mkdocs.yml: {missing}"
    assert not set(listed) - on_disk, "the nav lists a page that does not exist"


def reference_targets() -> set[str]:
    """Every ``::: identifier`` of the API reference pages."""
    targets: set[str] = set()
    for path in (DOCS_DIR / "reference").glob("*.md"):
        targets |= set(re.findall(r"^::: ([\w.]+)", path.read_text(encoding="utf-8"), re.M))
    return targets


@pytest.mark.parametrize(
    "module",
    [balance_manager, balance_manager.simulator, balance_manager.testing, balance_manager.ccxt],
)
def test_every_public_name_is_in_the_api_reference(module: Any) -> None:
    """Each name of the public modules' ``__all__`` has its entry in the API reference."""
    targets = reference_targets()
    documented_modules = {t for t in targets if t == module.__name__}
    missing = [
        name
        for name in module.__all__
        if not name.startswith("__")
        and f"{module.__name__}.{name}" not in targets
        and not documented_modules
        and not (
            module is balance_manager
            and isinstance(getattr(module, name), type)
            and issubclass(getattr(module, name), BalanceManagerError)
            and "balance_manager.exceptions" in targets
        )
    ]
    assert not missing, f"not in docs/reference/: {missing}"


# -- tables that restate the code -------------------------------------------------------------


def test_configuration_ranges_match_the_bounds() -> None:
    """The range column shows each option's bound from OPTION_BOUNDS, and only those."""
    text = page("configuration.md")
    ranges = dict(re.findall(r"^\| `(\w+)` \| [^|]* \| ([^|]*) \|", text, re.M))
    names = {spec.name for spec in dataclasses.fields(BalanceManagerConfig)}
    assert names <= set(ranges)
    for name in names:
        bound = OPTION_BOUNDS.get(name)
        assert ranges[name] == (bound.describe() if bound is not None else "—"), name


def test_configuration_table_matches_the_code() -> None:
    """Every option is in the table, with its default, and the table has no other option."""
    text = page("configuration.md")
    rows = dict(re.findall(r"^\| `(\w+)` \| `?([^|`]*)`? \|", text, re.M))
    names = {spec.name for spec in dataclasses.fields(BalanceManagerConfig)}
    assert set(rows) == names
    for spec in dataclasses.fields(BalanceManagerConfig):
        default = spec.default
        if isinstance(default, bool | int | float | str) and spec.name != "history_db_path":
            shown = rows[spec.name].strip().strip('"')
            assert shown == str(default) or Decimal(shown) == Decimal(str(default)), spec.name
        if isinstance(default, Decimal):
            assert Decimal(rows[spec.name]) == default, spec.name


def test_the_error_tree_is_the_class_tree() -> None:
    """docs/errors.md draws every exception under its real parent, and no other."""
    tree = page("errors.md").split("```text\n", 1)[1].split("```", 1)[0]
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in tree.splitlines():
        match = re.match(r"^([│ ├└─]*)(\w+Error)\b", line)
        assert match is not None, line
        depth, name = len(match[1]) // 4, match[2]
        stack = stack[:depth]
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    classes = {
        name: cls
        for name, cls in inspect.getmembers(balance_manager.exceptions, inspect.isclass)
        if issubclass(cls, BalanceManagerError)
    }
    assert set(parents) | {"BalanceManagerError"} == set(classes)
    for name, parent in parents.items():
        ours = [b.__name__ for b in classes[name].__bases__ if issubclass(b, BalanceManagerError)]
        assert ours == [parent], name


def test_the_events_table_lists_every_event() -> None:
    """docs/balances.md has one row per event name the manager accepts, and no other."""
    section = page("balances.md").split("## Events", 1)[1]
    rows = re.findall(r"^\| `(\w+)` \|", section, re.M)
    assert rows == list(EVENTS)


# -- words ------------------------------------------------------------------------------------


def user_facing_texts() -> dict[str, str]:
    """README, CHANGELOG, every page, and the docstrings the API reference shows."""
    texts = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in DOCS}
    for name in ("README.md", "CHANGELOG.md"):
        texts[name] = (ROOT / name).read_text(encoding="utf-8")
    for path in sorted((ROOT / "src" / "balance_manager").rglob("*.py")):
        texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    for path in sorted((ROOT / "examples").glob("*.py")):
        texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    return texts


def test_no_user_facing_text_calls_the_specification_the_seed() -> None:
    """'the seed's X', 'the seed asks...': users know a random seed, not our specification."""
    jargon = re.compile(r"\bseed's\b|\bthe seed (?:asks|budgets|documents|says|lists)\b", re.I)
    found = {name: jargon.findall(text) for name, text in user_facing_texts().items()}
    assert not {name: words for name, words in found.items() if words}


# -- references a reader can follow ------------------------------------------------------

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
