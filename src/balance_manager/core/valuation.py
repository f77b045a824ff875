"""What the balances are worth in one quote currency (venue-neutral, sans-I/O, exact).

:func:`find_rate` prices one asset in a quote currency through a direct pair
(``BTC/USD``), its inverse (``USD/BTC``, as ``1 / price``) or one hop through
another asset (``DOT/EUR`` then ``EUR/USD``), and says which pairs it used
(:attr:`Rate.path`). :func:`value_portfolio` values every balance (total, free,
held and earn) with those rates and adds up the total and each asset's share.

Rules:

* A pair's price is its mid ``(bid + ask) / 2``; with only a bid, the bid; with only
  an ask, the last trade price but never above the ask; without a side, the last
  trade price. A rate using a last trade price is flagged
  (:attr:`Rate.from_last_trade`) and counts as stale: it may be old.
* Products and sums are exact (``EXACT_CONTEXT``). Only a path with an inverse
  pair divides: its rate is the product of its direct prices over the product of
  its inverted ones, one division rounded to :data:`RATE_DIGITS` significant digits.
  Allocation percentages are rounded to :data:`PERCENT_PLACES` decimal places.
* An asset without a rate is **unvalued**: its values are ``None``, it is listed
  in :attr:`Portfolio.unvalued` and left out of the total, never counted as zero.
* A rate is as old as its oldest price; one older than ``max_price_age`` is
  stale: its source is shown as ``cache`` and the portfolio is not ``fresh``.
* The quote currency itself is worth 1, with an empty path.

Which path wins when several exist: direct, then inverse, then one hop with the
fewest inversions, then the freshest, then the intermediary asset's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

import msgspec

from balance_manager.core.amounts import EXACT_CONTEXT, ZERO
from balance_manager.core.models import Balance, Source
from balance_manager.core.prices import PairInfo, PairPrice

__all__ = [
    "PERCENT_PLACES",
    "RATE_DIGITS",
    "AssetValue",
    "Portfolio",
    "PriceIndex",
    "Rate",
    "find_rate",
    "pairs_needed",
    "value_portfolio",
]

#: Significant digits kept by the one division of a path through an inverse pair.
RATE_DIGITS = 34
#: Decimal places of allocation percentages.
PERCENT_PLACES = 4

_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_INVERSE_CONTEXT = Context(prec=RATE_DIGITS, rounding=ROUND_HALF_EVEN)
_PERCENT_QUANTUM = Decimal(1).scaleb(-PERCENT_PLACES)
_SOURCE_RANK = {Source.WEBSOCKET: 0, Source.REST: 1, Source.CACHE: 2}


class Rate(msgspec.Struct, frozen=True):
    """The price of one unit of ``asset`` in ``quote``, and how it was found.

    Attributes:
        asset: the asset priced.
        quote: the quote currency.
        rate: ``quote`` per unit of ``asset``.
        path: the assets walked, ``("DOT", "EUR", "USD")`` for one hop; ``("USD",)``
            for the quote itself.
        pairs: the pairs used, as the venue lists them (``("DOT/EUR", "EUR/USD")``);
            an inverted pair is written with a leading ``1/`` (``1/USD/BTC``).
        source: the least live source of the prices used (``cache`` when stale;
            ``None`` for the quote itself, which needs no price).
        known_current_at: wall-clock time up to which every price used is known
            current (``None`` for the quote itself: always current).
        from_last_trade: a price used is a last trade price (no bid/ask).
    """

    asset: str
    quote: str
    rate: Decimal
    path: tuple[str, ...]
    pairs: tuple[str, ...] = ()
    source: Source | None = None
    known_current_at: float | None = None
    from_last_trade: bool = False

    @property
    def path_text(self) -> str:
        """The path as people read it: ``DOT→EUR→USD``."""
        return "→".join(self.path)

    def age(self, now: float) -> float:
        """Seconds since the rate was last known current (0 for the quote itself)."""
        at = self.known_current_at
        return 0.0 if at is None else max(0.0, now - at)


class AssetValue(msgspec.Struct, frozen=True):
    """One asset's balance valued in the quote currency.

    The ``value_*`` fields are ``None`` for an unvalued asset (no rate).

    Attributes:
        asset: canonical asset name.
        balance: the asset's balance as held (amounts, source, age).
        rate: how it was priced, or ``None``.
        value_total: value of ``balance.total`` (tradable plus earn).
        value_free: value of ``balance.free``.
        value_held: value of ``balance.hold_trade``.
        value_earn: value of ``balance.earn``.
        allocation: share of the portfolio's valued total, in percent.
        stale: the rate is older than the age allowed, or the balance is served
            from cache (no live source confirms it).
    """

    asset: str
    balance: Balance
    rate: Rate | None
    value_total: Decimal | None = None
    value_free: Decimal | None = None
    value_held: Decimal | None = None
    value_earn: Decimal | None = None
    allocation: Decimal | None = None
    stale: bool = False

    @property
    def valued(self) -> bool:
        """Whether a rate was found."""
        return self.rate is not None


class Portfolio(msgspec.Struct, frozen=True):
    """Every balance valued in ``quote`` at one moment.

    Attributes:
        quote: the quote currency.
        total: the sum of the valued assets' ``value_total`` (unvalued ones excluded).
        assets: asset → its value, largest value first, unvalued last.
        unvalued: assets held but without a rate (not in ``total``).
        stale: assets whose rate is older than the allowed age or uses a last trade
            price, or whose balance is served from cache.
        valued_at: wall-clock time of the valuation.
        max_price_age: the age beyond which a rate was stale.
    """

    quote: str
    total: Decimal
    assets: Mapping[str, AssetValue]
    unvalued: tuple[str, ...]
    stale: tuple[str, ...]
    valued_at: float
    max_price_age: float

    @property
    def complete(self) -> bool:
        """Whether every held asset was valued."""
        return not self.unvalued

    @property
    def fresh(self) -> bool:
        """Whether every rate was current within ``max_price_age`` and no balance was stale."""
        return not self.stale

    def allocation(self) -> dict[str, Decimal]:
        """Asset → share of the valued total, in percent (valued assets only)."""
        return {
            name: value.allocation
            for name, value in self.assets.items()
            if value.allocation is not None
        }

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict; amounts as strings (exact), times as Unix seconds."""
        return {
            "quote": self.quote,
            "total": f"{self.total:f}",
            "complete": self.complete,
            "fresh": self.fresh,
            "valued_at": self.valued_at,
            "unvalued": list(self.unvalued),
            "stale": list(self.stale),
            "assets": [_asset_dict(value, self.valued_at) for value in self.assets.values()],
        }


def _asset_dict(value: AssetValue, now: float) -> dict[str, object]:
    def text(amount: Decimal | None) -> str | None:
        return None if amount is None else f"{amount:f}"

    rate = value.rate
    return {
        "asset": value.asset,
        "total": text(value.balance.total),
        "free": text(value.balance.free),
        "held": text(value.balance.hold_trade),
        "earn": text(value.balance.earn),
        "balance_source": str(value.balance.source),
        "value": text(value.value_total),
        "value_free": text(value.value_free),
        "value_held": text(value.value_held),
        "value_earn": text(value.value_earn),
        "allocation": text(value.allocation),
        "rate": None if rate is None else text(rate.rate),
        "path": None if rate is None else list(rate.path),
        "pairs": None if rate is None else list(rate.pairs),
        "price_source": None if rate is None or rate.source is None else str(rate.source),
        "price_age": None if rate is None else rate.age(now),
        "from_last_trade": False if rate is None else rate.from_last_trade,
        "stale": value.stale,
    }


class PriceIndex:
    """Prices by base and quote asset, to find rates.

    Args:
        prices: the pairs' prices.
        known_current_at: up to when a symbol's price is known current
            (its ``received_at`` if omitted).
    """

    __slots__ = ("_by_base", "_by_quote", "_current")

    def __init__(
        self,
        prices: Iterable[PairPrice],
        known_current_at: Callable[[str], float | None] | None = None,
    ) -> None:
        self._by_base: dict[str, dict[str, PairPrice]] = {}
        self._by_quote: dict[str, dict[str, PairPrice]] = {}
        self._current: dict[str, float] = {}
        for price in prices:
            if price.price is None:
                continue
            self._by_base.setdefault(price.base, {})[price.quote] = price
            self._by_quote.setdefault(price.quote, {})[price.base] = price
            at = known_current_at(price.symbol) if known_current_at is not None else None
            self._current[price.symbol] = price.received_at if at is None else at

    def assets(self) -> frozenset[str]:
        """Every asset that appears in a priced pair."""
        return frozenset(self._by_base) | frozenset(self._by_quote)

    def step(self, asset: str, to: str) -> tuple[Decimal, PairPrice, bool] | None:
        """The pair from ``asset`` to ``to``: ``(its price, the pair, inverted)``.

        ``inverted`` means the pair is ``to/asset``: ``to`` per ``asset`` is then
        ``1 / price``, divided by the caller once for the whole path.
        """
        direct = self._by_base.get(asset, {}).get(to)
        if direct is not None and direct.price is not None:
            return direct.price, direct, False
        inverse = self._by_quote.get(asset, {}).get(to)
        if inverse is not None and inverse.price is not None:
            return inverse.price, inverse, True
        return None

    def neighbours(self, asset: str) -> set[str]:
        """Assets one pair away from ``asset``."""
        return set(self._by_base.get(asset, {})) | set(self._by_quote.get(asset, {}))

    def current_at(self, price: PairPrice) -> float:
        """Up to when ``price`` is known current."""
        return self._current.get(price.symbol, price.received_at)


def find_rate(
    asset: str, quote: str, index: PriceIndex, *, now: float, max_price_age: float
) -> Rate | None:
    """The rate of ``asset`` in ``quote``: direct, inverse or one hop (see module docs)."""
    if asset == quote:
        return Rate(asset=asset, quote=quote, rate=_ONE, path=(quote,))
    found = index.step(asset, quote)
    if found is not None:
        return _rate(asset, quote, (asset, quote), [found], index, now, max_price_age)
    best: tuple[tuple[int, float, str], Rate] | None = None
    for via in sorted(index.neighbours(asset)):
        if via == quote:
            continue
        first = index.step(asset, via)
        second = index.step(via, quote)
        if first is None or second is None:
            continue
        rate = _rate(asset, quote, (asset, via, quote), [first, second], index, now, max_price_age)
        key = (
            int(first[2]) + int(second[2]),
            -(rate.known_current_at or 0.0),
            via,
        )
        if best is None or key < best[0]:
            best = (key, rate)
    return None if best is None else best[1]


def _rate(
    asset: str,
    quote: str,
    path: tuple[str, ...],
    found: list[tuple[Decimal, PairPrice, bool]],
    index: PriceIndex,
    now: float,
    max_price_age: float,
) -> Rate:
    """The rate of a path: the product of its direct prices over the product of its inverted
    ones (exact), one division at the end, rounded to :data:`RATE_DIGITS` digits."""
    numerator = denominator = _ONE
    multiply = EXACT_CONTEXT.multiply
    for value, _, inverted in found:
        if inverted:
            denominator = multiply(denominator, value)
        else:
            numerator = multiply(numerator, value)
    value = numerator if denominator == _ONE else _INVERSE_CONTEXT.divide(numerator, denominator)
    steps = [(price, inverted) for _, price, inverted in found]
    current = min(index.current_at(price) for price, _ in steps)
    source = max((price.source for price, _ in steps), key=_SOURCE_RANK.__getitem__)
    if now - current > max_price_age:
        source = Source.CACHE
    return Rate(
        asset=asset,
        quote=quote,
        rate=value,
        path=path,
        pairs=tuple(("1/" if inverted else "") + price.symbol for price, inverted in steps),
        source=source,
        known_current_at=current,
        from_last_trade=any(price.from_last_trade for price, _ in steps),
    )


def value_portfolio(
    balances: Mapping[str, Balance],
    index: PriceIndex,
    *,
    quote: str,
    now: float,
    max_price_age: float,
) -> Portfolio:
    """Value every balance with a non-zero total in ``quote`` (see module docs)."""
    valued: list[AssetValue] = []
    unvalued: list[AssetValue] = []
    total = ZERO
    with localcontext(EXACT_CONTEXT):
        for name in sorted(balances):
            balance = balances[name]
            if not balance.total:
                continue
            rate = find_rate(name, quote, index, now=now, max_price_age=max_price_age)
            if rate is None:
                unvalued.append(AssetValue(asset=name, balance=balance, rate=None))
                continue
            r = rate.rate
            value = AssetValue(
                asset=name,
                balance=balance,
                rate=rate,
                value_total=balance.total * r,
                value_free=balance.free * r,
                value_held=balance.hold_trade * r,
                value_earn=balance.earn * r,
                stale=(
                    rate.source is Source.CACHE
                    or balance.source is Source.CACHE
                    or rate.from_last_trade
                ),
            )
            total += value.value_total or ZERO
            valued.append(value)
    shared = [_with_allocation(value, total) for value in valued]
    shared.sort(key=lambda v: (-(v.value_total or ZERO), v.asset))
    assets = {value.asset: value for value in shared + unvalued}
    return Portfolio(
        quote=quote,
        total=total,
        assets=assets,
        unvalued=tuple(value.asset for value in unvalued),
        stale=tuple(value.asset for value in shared if value.stale),
        valued_at=now,
        max_price_age=max_price_age,
    )


def _with_allocation(value: AssetValue, total: Decimal) -> AssetValue:
    if not total or value.value_total is None:
        return value
    with localcontext(EXACT_CONTEXT):
        share = (value.value_total * _HUNDRED / total).quantize(
            _PERCENT_QUANTUM, rounding=ROUND_HALF_EVEN
        )
    return msgspec.structs.replace(value, allocation=share)


def pairs_needed(assets: Iterable[str], quote: str, pairs: Iterable[PairInfo]) -> set[str]:
    """The pairs whose prices value ``assets`` in ``quote`` (symbols).

    A direct or inverse pair when there is one; otherwise every pair of every
    one-hop path (``A/X`` or ``X/A`` with ``X/Q`` or ``Q/X``), so that
    :func:`find_rate` can choose among them.
    """
    links: dict[str, dict[str, str]] = {}
    for pair in pairs:
        links.setdefault(pair.base, {})[pair.quote] = pair.symbol
        links.setdefault(pair.quote, {})[pair.base] = pair.symbol
    to_quote = links.get(quote, {})
    needed: set[str] = set()
    for asset in assets:
        if asset == quote:
            continue
        mine = links.get(asset, {})
        if quote in mine:
            needed.add(mine[quote])
            continue
        for via, symbol in mine.items():
            if via in to_quote:
                needed.add(symbol)
                needed.add(to_quote[via])
    return needed
