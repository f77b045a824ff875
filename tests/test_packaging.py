"""pyproject.toml describes a package that builds wherever its own requirements say it can.

The full check (build, twine, a fresh install, ``--version``) is ``make package-check``
(tools/check_package.py); these are the fast facts behind it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import balance_manager

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def minimum(requirements: list[str], name: str) -> tuple[int, ...]:
    """The lower bound ``>=X.Y`` of ``name`` in ``requirements``."""
    for requirement in requirements:
        match = re.fullmatch(rf"{name}\s*>=\s*([\d.]+)", requirement.strip())
        if match:
            return tuple(int(part) for part in match[1].split("."))
    raise AssertionError(f"no lower bound for {name} in {requirements}")


def test_the_build_needs_a_setuptools_that_reads_our_license_field() -> None:
    """``license = "MIT"`` (an SPDX string) is refused by setuptools before 77."""
    assert isinstance(PYPROJECT["project"]["license"], str)
    assert minimum(PYPROJECT["build-system"]["requires"], "setuptools") >= (77,)
    assert minimum(PYPROJECT["project"]["optional-dependencies"]["dev"], "setuptools") >= (77,)


def test_the_version_is_written_once_and_read_from_the_installed_metadata() -> None:
    """pyproject.toml holds the version; the package reports the installed one, the same."""
    assert balance_manager.__version__ == PYPROJECT["project"]["version"]
    version_file = (ROOT / "src" / "balance_manager" / "_version.py").read_text(encoding="utf-8")
    assert PYPROJECT["project"]["version"] not in version_file
