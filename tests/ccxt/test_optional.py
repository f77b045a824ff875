"""ccxt stays optional: the library imports and connects to Kraken without it."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_library_does_not_import_ccxt() -> None:
    """``import balance_manager`` (and its Kraken path) loads no ccxt module."""
    code = (
        "import sys, balance_manager, balance_manager.connect, balance_manager.cli.main;"
        "loaded = [m for m in sys.modules if m == 'ccxt' or m.startswith('ccxt.')];"
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
