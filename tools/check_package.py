"""The package check of ``make test``: build it, check it, install it fresh, run it.

1. ``python -m build`` makes the sdist, then the wheel *from the sdist* (so a file
   missing from the sdist breaks the wheel), with the development environment's
   setuptools (``--no-isolation``: no download of build tools on every run; ``build``
   still checks that the ``[build-system]`` requirements are met).
2. ``twine check --strict`` checks both: metadata, and a README that renders on PyPI.
3. The wheel must carry the version of ``pyproject.toml``, ``py.typed``, the
   ``balance-manager`` command and no test or tool code; the sdist must carry what
   users read (README, CHANGELOG) and the sources.
4. A fresh virtual environment (``venv --without-pip``: nothing in it) gets the wheel
   and its dependencies from ``--wheelhouse``, a directory of wheels downloaded once
   from the versions of ``requirements.lock`` (``make`` keeps it in ``.venv/wheelhouse``),
   with ``--no-index``: pip resolves the wheel's own requirements there, offline, and
   nothing comes from the development environment. ``pip check`` must find them
   consistent.
5. From outside the source tree, ``balance-manager --version`` of that environment
   must print the version, and ``import balance_manager`` must load the installed copy.

Prints each step with its time; exits non-zero at the first failure, saying why.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent


class CheckFailed(Exception):
    """A step of the check failed; the message says which and why."""


def run(argv: Sequence[str | Path], *, cwd: Path = ROOT) -> str:
    """Run ``argv``; return its output, or raise CheckFailed with it."""
    done = subprocess.run(  # noqa: S603 - our own fixed commands
        [str(arg) for arg in argv], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise CheckFailed(
            f"{' '.join(str(a) for a in argv)} exited {done.returncode}:\n"
            f"{done.stdout}{done.stderr}"
        )
    return done.stdout


def project_version() -> str:
    """The version written in pyproject.toml (the one place it is written)."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def check_wheel(wheel: Path, version: str) -> None:
    """The wheel's metadata, entry point and contents."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"balance_manager-{version}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    if f"\nVersion: {version}\n" not in metadata:
        raise CheckFailed(f"{wheel.name}: METADATA does not say Version: {version}")
    if "balance-manager = balance_manager.cli.main:main" not in entry_points:
        raise CheckFailed(f"{wheel.name}: no balance-manager command in entry_points.txt")
    if "balance_manager/py.typed" not in names:
        raise CheckFailed(f"{wheel.name}: py.typed is missing (type checkers would ignore us)")
    strays = [n for n in names if n.split("/")[0] not in ("balance_manager", info)]
    if strays:
        raise CheckFailed(f"{wheel.name}: files outside the package: {strays[:5]}")


def check_sdist(sdist: Path, version: str) -> None:
    """The sdist carries the sources and what users read."""
    top = f"balance_manager-{version}"
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
    for needed in ("pyproject.toml", "README.md", "CHANGELOG.md", "src/balance_manager/py.typed"):
        if f"{top}/{needed}" not in names:
            raise CheckFailed(f"{sdist.name}: {needed} is missing")


def main(argv: Sequence[str] | None = None) -> int:
    """Run every step; 0 when the package is right."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--wheelhouse", type=Path, required=True, help="wheels of the deps")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "package-check")
    options = parser.parse_args(argv)
    version = project_version()
    out: Path = options.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    dist, venv = out / "dist", out / "venv"
    started = time.perf_counter()

    def step(text: str) -> None:
        print(f"  {time.perf_counter() - started:5.1f} s  {text}", flush=True)

    python = sys.executable
    try:
        run([python, "-m", "build", "--no-isolation", "--outdir", dist, ROOT])
        (wheel,) = dist.glob("*.whl")
        (sdist,) = dist.glob("*.tar.gz")
        step(f"built {sdist.name} and, from it, {wheel.name}")
        run([python, "-m", "twine", "check", "--strict", wheel, sdist])
        step("twine check --strict: passed")
        check_wheel(wheel, version)
        check_sdist(sdist, version)
        step("contents: version, py.typed, the command, no stray files; sdist complete")
        run([python, "-m", "venv", "--without-pip", venv])
        fresh = venv / "bin" / "python"
        pip: list[str | Path] = [
            python,
            "-m",
            "pip",
            "--python",
            fresh,
            "--disable-pip-version-check",
        ]
        run([*pip, "install", "--quiet", "--no-index", "--find-links", options.wheelhouse, wheel])
        run([*pip, "check"])
        step("installed in a fresh venv, offline, with its dependencies; pip check: consistent")
        shown = run([venv / "bin" / "balance-manager", "--version"], cwd=out).strip()
        if shown != f"balance-manager {version}":
            raise CheckFailed(f"balance-manager --version printed {shown!r}, not {version}")
        where = run(
            [fresh, "-c", "import balance_manager; print(balance_manager.__file__)"], cwd=out
        )
        if not Path(where.strip()).resolve().is_relative_to(venv.resolve()):
            raise CheckFailed(f"the fresh venv imported balance_manager from {where.strip()}")
        step(f"{shown} (run from the fresh venv, imported from it)")
    except (CheckFailed, ValueError) as failure:
        print(f"package check failed: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
