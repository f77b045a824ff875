"""Without an optional extra installed, the rest works and asking for it says what to install.

Each case runs in a fresh interpreter where importing the extra's package fails,
as on a machine where only ``pip install balance-manager`` was run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BLOCK = """
import importlib.abc, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {package!r} or name.startswith({package!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Missing())
"""


def run_without(package: str, code: str) -> subprocess.CompletedProcess[str]:
    script = BLOCK.format(package=package) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_command_line_starts_without_redis() -> None:
    done = run_without(
        "redis",
        """
        from balance_manager.cli.main import main
        assert main(["--version"]) == 0
        assert main(["serve", "--help"]) == 0
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "--redis URL" in done.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["reservations", "--redis", "redis://:hunter2@127.0.0.1:1/0"],
        ["demo", "--shared", "--redis", "redis://:hunter2@127.0.0.1:1/0"],
    ],
    ids=["reservations", "demo-shared"],
)
def test_shared_commands_without_redis_are_a_usage_error_naming_the_extra(
    argv: list[str],
) -> None:
    done = run_without(
        "redis",
        f"""
        import sys
        from balance_manager.cli.main import main
        sys.exit(main({argv!r}))
        """,
    )
    assert done.returncode == 2, done.stderr
    output = done.stdout + done.stderr
    assert "pip install 'balance-manager[redis]'" in output
    assert "Traceback" not in output
    assert "hunter2" not in output


def test_connect_to_redis_without_redis_raises_config_error() -> None:
    done = run_without(
        "redis",
        """
        import asyncio
        import balance_manager
        from balance_manager.exceptions import ConfigError

        async def main():
            try:
                async with balance_manager.connect(redis_url="redis://:hunter2@127.0.0.1:1/0"):
                    pass
            except ConfigError as error:
                print("ConfigError:", error)

        asyncio.run(main())
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "ConfigError:" in done.stdout
    assert "balance-manager[redis]" in done.stdout
    assert "hunter2" not in done.stdout


@pytest.mark.parametrize("package", ["redis", "psycopg", "ccxt", "prometheus_client"])
def test_the_package_imports_without_each_extra(package: str) -> None:
    done = run_without(
        package,
        """
        import balance_manager, balance_manager.cli.main, balance_manager.dashboard
        print("ok")
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
