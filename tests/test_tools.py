"""tools/griffe_rst.py: the reST of our docstrings becomes Markdown the reference can show."""

from __future__ import annotations

from tools.griffe_rst import rst_to_markdown


def test_roles_become_optional_links_with_short_titles() -> None:
    """:class:`~a.b.C` shows ``C`` linked to a.b.C; :meth: adds (); unknown targets stay plain."""
    text = rst_to_markdown(
        "See :class:`~balance_manager.Balance` and :meth:`BalanceManager.close`."
    )
    assert text == (
        'See <autoref identifier="balance_manager.Balance" optional><code>Balance</code></autoref>'
        ' and <autoref identifier="BalanceManager.close" optional>'
        "<code>BalanceManager.close()</code></autoref>."
    )
    assert ":class:" not in text
    assert ":meth:" not in text


def test_a_literal_block_marker_becomes_a_colon() -> None:
    """'Example::' introduces the indented example as 'Example:'; a lone '::' disappears."""
    text = rst_to_markdown("Example::\n\n    code()\n\nText\n::\n\n    more()\n")
    assert "::" not in text
    assert text.startswith("Example:\n\n    code()")


def test_simple_tables_become_markdown_tables_with_continuation_lines() -> None:
    """Rules of '=' delimit columns; a line with an empty first cell continues the row above."""
    table = "\n".join(
        [
            "Intro.",
            "",
            "=======  ===========",
            "kind     effect",
            "=======  ===========",
            "``a``    does this",
            "         and that",
            "``b|c``  other",
            "=======  ===========",
            "",
            "After.",
        ]
    )
    lines = rst_to_markdown(table).splitlines()
    assert lines[lines.index("| kind | effect |") + 1 :][:3] == [
        "|---|---|",
        "| ``a`` | does this and that |",
        r"| ``b\|c`` | other |",
    ]
    assert lines[-1] == "After."


def test_a_lone_rule_is_left_alone() -> None:
    """A line of '=' that does not open a complete table is kept as it is."""
    assert rst_to_markdown("Title\n=====  ===\nno table") == "Title\n=====  ===\nno table"
