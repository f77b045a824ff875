"""The public surface is a decision: complete, sorted, unique, and every module declares it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import balance_manager

PACKAGE = Path(balance_manager.__file__).parent


def test_top_level_all_is_sorted_unique_and_importable() -> None:
    """balance_manager.__all__ has no duplicates, is sorted, and every name exists."""
    names = balance_manager.__all__
    assert len(names) == len(set(names))

    # ruff's RUF022 order: CONSTANTS, then Classes, then functions and dunders.
    def group(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert list(names) == sorted(names, key=group)
    for name in names:
        assert hasattr(balance_manager, name), name


def test_the_seed_names_are_public() -> None:
    """What the seed and the issues promise users can be imported from the package root."""
    for name in (
        "BalanceManager",
        "BalanceManagerConfig",
        "BalanceCache",
        "BalanceValidator",
        "BalanceHistory",
        "KrakenRestClient",
        "KrakenWebSocketClient",
        "connect",
    ):
        assert name in balance_manager.__all__
    simulator = importlib.import_module("balance_manager.simulator")
    assert "SimulatedKraken" in simulator.__all__


def test_every_module_declares_all() -> None:
    """Each module says what it exports (``__main__`` excepted)."""
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in {"__main__.py"}:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        declares = any(
            isinstance(node, ast.Assign | ast.AnnAssign)
            and any(
                getattr(t, "id", None) == "__all__"
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
            for node in tree.body
        )
        is_package_init = path.name == "__init__.py" and len(tree.body) <= 1
        if not declares and not is_package_init:
            missing.append(str(path.relative_to(PACKAGE)))
    assert missing == []


def test_py_typed_ships() -> None:
    """The package is marked typed (PEP 561)."""
    assert (PACKAGE / "py.typed").is_file()
