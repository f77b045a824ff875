"""``balance-manager portfolio``: what the balances are worth in one quote currency.

Reads every balance and the prices that value them once (REST first; see
docs/portfolio.md), then prints a table (asset, amount, price, value,
allocation, the path of the price, its source and age) or, with ``--json``,
the portfolio as JSON with every amount an exact decimal string.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import TextIO

from rich.console import Console
from rich.table import Table

from balance_manager.cli.demo_view import display_amount
from balance_manager.core.amounts import round_to
from balance_manager.core.valuation import Portfolio
from balance_manager.service.manager import BalanceManager

__all__ = ["VALUE_PLACES", "portfolio_json", "portfolio_table", "print_portfolio", "read_portfolio"]

#: Decimal places of values in the table (the JSON keeps every digit).
VALUE_PLACES = 2


async def read_portfolio(manager: BalanceManager, quote: str) -> Portfolio:
    """The portfolio of a started manager in ``quote`` (see ``BalanceManager.portfolio``)."""
    return await manager.portfolio(quote)


def portfolio_json(portfolio: Portfolio) -> str:
    """The portfolio as indented JSON: amounts as exact strings, never floats."""
    return json.dumps(portfolio.to_dict(), indent=2)


def portfolio_table(portfolio: Portfolio, *, decimals: dict[str, int | None]) -> Table:
    """The table of ``balance-manager portfolio`` (largest value first, unvalued last)."""
    now = portfolio.valued_at
    quote = portfolio.quote
    table = Table()
    table.add_column("asset", style="bold")
    table.add_column("amount", justify="right")
    table.add_column(f"price ({quote})", justify="right")
    table.add_column(f"value ({quote})", justify="right")
    table.add_column("alloc %", justify="right")
    table.add_column("path")
    table.add_column("price source")
    for value in portfolio.assets.values():
        amount = display_amount(value.balance.total, decimals.get(value.asset))
        rate = value.rate
        if rate is None or value.value_total is None:
            table.add_row(value.asset, amount, "-", "unvalued", "-", "no price", "-")
            continue
        source = "-" if rate.source is None else f"{rate.source} {rate.age(now):.0f}s"
        if rate.from_last_trade:
            source += " last trade"
        if value.stale:
            source += " STALE"
        table.add_row(
            value.asset,
            amount,
            _significant(rate.rate),
            _value_text(value.value_total),
            f"{value.allocation or Decimal(0):.2f}",
            rate.path_text,
            source,
        )
    total = _value_text(portfolio.total)
    notes = [f"total {total} {quote}"]
    if portfolio.unvalued:
        notes.append(f"not included, no price: {', '.join(portfolio.unvalued)}")
    if portfolio.stale:
        stale = ", ".join(portfolio.stale)
        notes.append(f"stale (old or last-trade price, or cached balance): {stale}")
    if not portfolio.assets:
        notes.append("the account holds nothing")
    table.caption = "; ".join(notes)
    return table


def _value_text(value: Decimal) -> str:
    """A value for people: rounded to :data:`VALUE_PLACES` (the JSON keeps every digit)."""
    return display_amount(round_to(value, VALUE_PLACES), VALUE_PLACES)


def _significant(rate: Decimal, digits: int = 8) -> str:
    """A rate shown with ``digits`` significant digits (the JSON keeps them all)."""
    if not rate:
        return "0"
    shown = rate.quantize(Decimal(1).scaleb(rate.adjusted() - digits + 1)).normalize()
    return f"{shown:f}"


def print_portfolio(
    portfolio: Portfolio,
    out: TextIO,
    *,
    as_json: bool,
    exchange: str,
    decimals: dict[str, int | None],
) -> None:
    """Print ``portfolio`` as JSON or as a headed table."""
    if as_json:
        print(portfolio_json(portfolio), file=out)
        return
    when = datetime.fromtimestamp(portfolio.valued_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    console = Console(file=out, width=max(100, Console(file=out).width))
    console.print(f"Portfolio on {exchange} in {portfolio.quote}, {when}")
    console.print(portfolio_table(portfolio, decimals=decimals))
