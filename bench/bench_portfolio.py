"""Benchmark of prices and valuation: a 30-asset portfolio valued per price update, ticker ingest.

Run: ``python bench/bench_portfolio.py`` (about 30 s). It prints the command, then:

* **valuation per price update**: one new ``PairPrice`` applied to the book and the whole
  30-asset portfolio valued again in USD, as the portfolio tracker does after a price
  change (``PriceIndex`` of every price, a rate per asset: 25 direct pairs, 2 inverse,
  2 one-hop, the quote itself; exact values, allocation), median of several repeats;
* **ticker ingest**: public WebSocket ``ticker`` frames through the price client's
  receive path (decode to exact ``Decimal``, a ``PairPrice`` per item, the price service's
  book and listener), frames per second, against a bare floor measured in the same run,
  alternating: ``msgspec.json.decode`` of the same frames to plain Python objects (no
  types, no ``Decimal``, nothing applied). The ratio is per round.

Targets are printed, never asserted.
"""

from __future__ import annotations

import random
import sys
import time
from decimal import Decimal
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from balance_manager.core.models import Balance, Source
from balance_manager.core.prices import PairPrice, PriceBook, pair_price
from balance_manager.core.valuation import PriceIndex, value_portfolio
from balance_manager.kraken.price_client import KrakenPriceFeed
from balance_manager.kraken.protocol.ticker import encode_ticker
from balance_manager.kraken.rest_client import KrakenRestClient
from balance_manager.runtime.clock import SystemClock
from balance_manager.service.prices import PriceService
from common import (
    ASSETS,
    T0,
    alternate,
    fmt_seconds,
    print_header,
    ratio_stats,
    report,
    stats_of,
)

REPEATS = 7
VALUATIONS = 400
FRAMES = 20_000
TARGET_VALUATION = 1e-3  # seconds: well under a millisecond per price update
TARGET_INGEST = 20_000  # ticker frames per second

#: Assets priced through an inverse pair (USD/X) or one hop through BTC (X/BTC, BTC/USD).
_INVERSE = ("JPY", "CAD")
_HOP = ("MLN", "REP")


def pairs_and_prices(rng: random.Random) -> dict[str, PairPrice]:
    """One price per pair valuing the 30 assets in USD (see module docs)."""
    prices: dict[str, PairPrice] = {}
    for asset in ASSETS:
        if asset == "USD":
            continue
        level = Decimal(rng.randint(1, 60_000_000)) / 1000
        if asset in _INVERSE:
            symbol = f"USD/{asset}"
        elif asset in _HOP:
            symbol = f"{asset}/BTC"
            level = Decimal(rng.randint(1, 90_000)) / 10_000_000
        else:
            symbol = f"{asset}/USD"
        prices[symbol] = _price(symbol, level)
    return prices


def _price(symbol: str, level: Decimal, received_at: float = T0) -> PairPrice:
    tick = level / 10_000
    return pair_price(
        symbol,
        bid=level - tick,
        ask=level + tick,
        last=level,
        source=Source.WEBSOCKET,
        received_at=received_at,
    )


def balances(rng: random.Random) -> dict[str, Balance]:
    """30 balances with ledger-decimal amounts, some held, some in earn."""
    held = {}
    for asset, (_, _, decimals) in ASSETS.items():
        amount = Decimal(rng.randint(1, 10**12)).scaleb(-decimals)
        hold = (amount / 4).quantize(Decimal(1).scaleb(-decimals)) if rng.random() < 0.3 else None
        held[asset] = Balance(
            asset,
            amount,
            hold_trade=hold or Decimal(0),
            earn=amount / 8 if rng.random() < 0.2 else Decimal(0),
            received_at=T0,
        )
    return held


def bench_valuation() -> None:
    rng = random.Random(18)
    prices = pairs_and_prices(rng)
    held = balances(rng)
    book = PriceBook()
    book.apply(prices.values())
    symbols = list(prices)
    updates = []
    for i in range(VALUATIONS):
        symbol = symbols[i % len(symbols)]
        old = prices[symbol].price
        assert old is not None
        updates.append(_price(symbol, old * (1 + Decimal(rng.randint(-20, 20)) / 10_000), T0 + i))
    first = value_portfolio(
        held,
        PriceIndex(book.snapshot().values(), book.known_current_at),
        quote="USD",
        now=T0,
        max_price_age=60.0,
    )
    assert first.complete, first.unvalued
    assert {len(v.rate.pairs) for v in first.assets.values() if v.rate} == {0, 1, 2}

    def run() -> float:
        started = time.perf_counter()
        for update in updates:
            book.apply((update,))
            index = PriceIndex(book.snapshot().values(), book.known_current_at)
            value_portfolio(held, index, quote="USD", now=update.received_at, max_price_age=60.0)
        return (time.perf_counter() - started) / len(updates)

    run()  # warm up
    samples = alternate({"valuation": run}, REPEATS)["valuation"]
    stats = stats_of(samples)
    report(
        "valuation of a 30-asset portfolio per price update (apply + value all)",
        stats.describe(fmt_seconds),
        target=f"<= {fmt_seconds(TARGET_VALUATION)}",
        met=stats.median <= TARGET_VALUATION,
    )
    report("valuations per second", f"{1 / stats.median:,.0f}")


def ticker_frames(rng: random.Random) -> list[bytes]:
    """Realistic ticker updates of the 30 pairs, one pair per frame, prices walking."""
    levels = {p.symbol: p.price for p in pairs_and_prices(rng).values()}
    symbols = list(levels)
    frames = []
    for i in range(FRAMES):
        symbol = symbols[rng.randrange(len(symbols))]
        level = levels[symbol]
        assert level is not None
        level = (level * (1 + Decimal(rng.randint(-20, 20)) / 10_000)).quantize(Decimal("1e-8"))
        levels[symbol] = level
        tick = Decimal("1e-8") * rng.randint(1, 500)
        frames.append(
            encode_ticker(
                "update",
                symbol,
                bid=level - tick,
                ask=level + tick,
                last=level,
                timestamp=T0 + i / 100,
                bid_qty=Decimal(rng.randint(1, 10**9)).scaleb(-8),
                ask_qty=Decimal(rng.randint(1, 10**9)).scaleb(-8),
            )
        )
    return frames


def bench_ingest() -> None:
    frames = ticker_frames(random.Random(6))
    rest = KrakenRestClient(base_url="http://127.0.0.1:9")  # never called
    feed = KrakenPriceFeed(rest, "ws://127.0.0.1:9/v2", clock=SystemClock())
    service = PriceService(feed, clock=SystemClock())
    told = [0]

    def listener(changed: frozenset[str]) -> None:
        told[0] += 1

    service.add_listener(listener)
    feed._sink = service._on_event  # the wiring start() does, without a socket
    receive = feed._receive
    decode = msgspec.json.decode

    def full() -> float:
        started = time.perf_counter()
        for frame in frames:
            receive(frame)
        return len(frames) / (time.perf_counter() - started)

    def floor() -> float:
        started = time.perf_counter()
        for frame in frames:
            decode(frame)
        return len(frames) / (time.perf_counter() - started)

    full()
    assert len(service.book) == 29
    assert told[0] > 0
    results = alternate({"ingest": full, "floor": floor}, REPEATS)
    ingest = stats_of(results["ingest"])
    report(
        "ticker ingest (decode exact, PairPrice, book, listener)",
        ingest.describe(lambda v: f"{v:,.0f} frames/s"),
        target=f">= {TARGET_INGEST:,} frames/s",
        met=ingest.median >= TARGET_INGEST,
    )
    report(
        "bare floor (msgspec.json.decode, untyped, same frames)",
        stats_of(results["floor"]).describe(lambda v: f"{v:,.0f} frames/s"),
    )
    ratio = ratio_stats(results["floor"], results["ingest"])
    report("ingest cost vs the floor (per round)", ratio.describe(lambda v: f"{v:.1f}x"))


def main() -> None:
    print_header("prices and portfolio valuation")
    bench_valuation()
    bench_ingest()


if __name__ == "__main__":
    main()
