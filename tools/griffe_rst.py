"""A griffe extension: the reST bits of our docstrings, as Markdown, for the API reference.

Our docstrings are Google style (``Args:``, ``Returns:``, ``Raises:``) with a few
reStructuredText habits that mkdocstrings would otherwise print verbatim:

* roles, ``:class:`~balance_manager.simulator.SimulatedKraken``` →
  a link to the object when the reference documents it (an *optional*
  cross-reference: plain code when it does not, never a broken link);
* a paragraph ending in ``::`` before an indented example → ``:``;
* simple tables (``=====  =====`` rules) → Markdown tables.

Used by ``mkdocs.yml`` (mkdocstrings' ``extensions`` option); nothing in the
package imports it.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

__all__ = ["RstToMarkdown", "rst_to_markdown"]

_ROLE = re.compile(r":(?:py:)?(?P<role>[a-z]+):`(?P<tilde>~?)(?P<target>[^`<>]+)`")
_RULE = re.compile(r"^(?P<indent> *)=+(?: +=+)+ *$")


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring of a package once it is loaded (names resolve by then)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """Convert the docstrings of ``pkg`` and everything in it."""
        _convert_tree(pkg, set())


def _convert_tree(obj: griffe.Object, seen: set[str]) -> None:
    if obj.path in seen:
        return
    seen.add(obj.path)
    if obj.docstring is not None:
        obj.docstring.value = rst_to_markdown(obj.docstring.value, obj)
    for member in obj.members.values():
        if not member.is_alias and isinstance(member, griffe.Object):
            _convert_tree(member, seen)


def rst_to_markdown(text: str, scope: griffe.Object | None = None) -> str:
    """The docstring ``text`` in Markdown; roles resolve from ``scope`` where they can."""
    text = _ROLE.sub(lambda match: _reference(match, scope), text)
    text = _tables(text)
    return re.sub(r"(?m)(\S)::$", r"\1:", re.sub(r"(?m)^(\s*)::$", "", text))


def _reference(match: re.Match[str], scope: griffe.Object | None) -> str:
    target = match["target"].strip().rstrip("()")
    shown = target.rsplit(".", 1)[-1] if match["tilde"] else target.lstrip(".")
    if match["role"] in ("func", "meth"):
        shown += "()"
    identifier = _resolve(target.lstrip("."), scope)
    title = f"<code>{html.escape(shown)}</code>"
    return f'<autoref identifier="{html.escape(identifier)}" optional>{title}</autoref>'


def _resolve(target: str, scope: griffe.Object | None) -> str:
    """The full path of ``target`` as seen from ``scope`` (itself when unknown)."""
    if scope is None or target.startswith("balance_manager."):
        return target
    head, _, rest = target.partition(".")
    obj: griffe.Object | None = scope
    while obj is not None:
        try:
            resolved = obj.resolve(head)
        except (griffe.NameResolutionError, AttributeError, KeyError):
            obj = obj.parent
            continue
        return f"{resolved}.{rest}" if rest else resolved
    return target


def _tables(text: str) -> str:
    """Simple reST tables (a rule, a header, a rule, rows, a rule) as Markdown tables."""
    lines = text.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        rule = _RULE.match(lines[index])
        if rule is None:
            out.append(lines[index])
            index += 1
            continue
        spans = [m.span() for m in re.finditer(r"=+", lines[index])]
        rules = [index]
        end = index + 1
        while end < len(lines) and len(rules) < 3:
            if _RULE.match(lines[end]):
                rules.append(end)
            elif not lines[end].strip():
                break
            end += 1
        if len(rules) < 3:  # not a complete table: leave it alone
            out.append(lines[index])
            index += 1
            continue
        header = _cells(lines[rules[0] + 1 : rules[1]], spans)
        rows = _cells(lines[rules[1] + 1 : rules[2]], spans)
        out.append("")
        out.append("| " + " | ".join(" ".join(c) for c in header[0]) + " |")
        out.append("|" + "---|" * len(spans))
        out.extend("| " + " | ".join(" ".join(c) for c in row) + " |" for row in rows)
        out.append("")
        index = rules[2] + 1
    return "\n".join(out)


def _cells(lines: list[str], spans: list[tuple[int, int]]) -> list[list[list[str]]]:
    """Rows of cells (each a list of text pieces); a line with an empty first cell continues."""
    rows: list[list[list[str]]] = []
    for line in lines:
        pieces = []
        for number, (start, _) in enumerate(spans):
            stop = spans[number + 1][0] if number + 1 < len(spans) else None
            pieces.append(line[start:stop].strip().replace("|", r"\|"))
        if rows and not pieces[0]:
            for cell, piece in zip(rows[-1], pieces, strict=True):
                if piece:
                    cell.append(piece)
        else:
            rows.append([[piece] if piece else [] for piece in pieces])
    return rows
