"""Run the Python blocks of Markdown files (README.md, docs/*.md) as tests."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import re
from pathlib import Path
from typing import Any

__all__ = ["python_blocks", "run_block", "run_block_sync", "run_page"]


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)


def _compile(source: str, name: str) -> Any:
    return compile(source, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


async def run_block(source: str, namespace: dict[str, Any], name: str) -> str:
    """Run one block in the running loop (top-level await allowed); returns what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = eval(_compile(source, name), namespace)  # noqa: S307 - our own docs, on purpose
        if asyncio.iscoroutine(result):
            await result
    return out.getvalue()


def run_block_sync(source: str, namespace: dict[str, Any], name: str) -> str:
    """Run one block outside any event loop (blocks may call ``asyncio.run``)."""
    return run_page([source], namespace, name)[0]


def run_page(blocks: list[str], namespace: dict[str, Any], name: str) -> list[str]:
    """Run a page's blocks in order, as one session; returns what each printed.

    Blocks with top-level ``await`` share one event loop, as in ``python -m
    asyncio``; between blocks no loop runs, so a block may call ``asyncio.run``.
    """
    printed = []
    with asyncio.Runner() as runner:
        for index, source in enumerate(blocks):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = _compile(source, f"{name} block {index}")
                result = eval(code, namespace)  # noqa: S307 - our own documentation, on purpose
                if asyncio.iscoroutine(result):
                    runner.run(result)
            printed.append(out.getvalue())
    return printed
