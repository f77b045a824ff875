"""The sans-I/O layers import no I/O: checked on the source, by AST.

The layer rules as a whole are import-linter's contracts in ``pyproject.toml``
(run by ``make lint``); this test is a second, independent look at the one
rule that matters most, including imports hidden inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import balance_manager

PACKAGE = Path(balance_manager.__file__).parent

#: Modules that open sockets, run event loops, talk HTTP or touch a database.
FORBIDDEN = {"asyncio", "socket", "aiohttp", "websockets", "sqlite3", "ssl", "selectors"}

#: Sans-I/O code: the core, Kraken's protocol, and the simulator's model.
SANS_IO = sorted(
    [
        *PACKAGE.glob("core/**/*.py"),
        *PACKAGE.glob("kraken/protocol/*.py"),
        *PACKAGE.glob("simulator/model/*.py"),
        PACKAGE / "ccxt" / "shapes.py",
    ]
)


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every module imported by the file at ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_sans_io_modules_exist() -> None:
    """The scan below covers real files (a renamed folder would make it vacuous)."""
    names = {p.name for p in SANS_IO}
    assert {
        "amounts.py",
        "models.py",
        "reconcile.py",
        "signing.py",
        "assets.py",
        "ledger.py",
    } <= names


@pytest.mark.parametrize("path", [p for p in SANS_IO if p.exists()], ids=lambda p: p.stem)
def test_sans_io_module_imports_no_io(path: Path) -> None:
    """A sans-I/O module imports no asyncio, socket, HTTP or database module."""
    assert imported_roots(path) & FORBIDDEN == set()


def test_core_never_reads_the_wall_clock() -> None:
    """Core modules take `now` as an argument instead of calling time.time()."""
    offenders = []
    for path in PACKAGE.glob("core/**/*.py"):
        text = path.read_text(encoding="utf-8")
        for call in ("time.time()", "time.monotonic()", "datetime.now(", "datetime.utcnow("):
            if call in text:
                offenders.append(f"{path.name}: {call}")
    assert offenders == []
