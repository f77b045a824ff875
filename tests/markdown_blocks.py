"""Run the Python blocks of Markdown files (README.md, docs/*.md) as tests."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import re
from pathlib import Path
from typing import Any


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)


async def run_block(source: str, namespace: dict[str, Any], name: str) -> str:
    """Run one block (top-level await allowed); returns what it printed."""
    code = compile(source, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = eval(code, namespace)  # noqa: S307 - our own README, on purpose
        if asyncio.iscoroutine(result):
            await result
    return out.getvalue()


def run_block_sync(source: str, namespace: dict[str, Any], name: str) -> str:
    """Run one block outside any event loop (blocks may call ``asyncio.run``)."""
    code = compile(source, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = eval(code, namespace)  # noqa: S307 - our own documentation, on purpose
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    return out.getvalue()
