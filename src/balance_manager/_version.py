"""The installed version of balance-manager (the one place it is written is ``pyproject.toml``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("balance-manager")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
