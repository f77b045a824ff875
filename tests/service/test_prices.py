"""PriceService with a scripted price source, on a manual clock: REST first, stream, fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from decimal import Decimal

import pytest

from balance_manager.core.models import Source
from balance_manager.core.prices import (
    PairInfo,
    PairPrice,
    PriceSink,
    PriceStreamState,
    PriceStreamStatus,
    PriceUpdate,
    pair_price,
)
from balance_manager.exceptions import TransportError, UnknownAssetError
from balance_manager.service.prices import PriceService
from balance_manager.testing import ManualClock, drive

pytestmark = pytest.mark.asyncio


class ScriptedSource:
    """A price source whose REST answers and stream are driven by the test."""

    quiet_after = 5.0

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.rest_price = Decimal(100)
        self.rest_fails = False
        self.rest_calls: list[list[str]] = []
        self.followed: set[str] = set()
        self.sink: PriceSink | None = None
        self.connected = False
        self.last_message_at: float | None = None

    async def load_pairs(self) -> Sequence[PairInfo]:
        return [PairInfo("BTC/USD", "BTC", "USD"), PairInfo("ETH/BTC", "ETH", "BTC")]

    async def fetch_prices(self, symbols: Sequence[str]) -> list[PairPrice]:
        self.rest_calls.append(list(symbols))
        if self.rest_fails:
            raise TransportError("down")
        now = self.clock.time()
        return [
            pair_price(s, bid=self.rest_price, ask=self.rest_price, received_at=now)
            for s in symbols
        ]

    async def start(self, sink: PriceSink) -> None:
        self.sink = sink

    def follow(self, symbols: Iterable[str]) -> None:
        self.followed |= set(symbols)

    async def stop(self) -> None:
        self.sink = None

    def push(self, symbol: str, price: str) -> None:
        """The stream sends a price now."""
        assert self.sink is not None
        self.connected = True
        self.last_message_at = self.clock.monotonic()
        now = self.clock.time()
        self.sink(
            PriceUpdate(
                (
                    pair_price(
                        symbol, bid=price, ask=price, source=Source.WEBSOCKET, received_at=now
                    ),
                )
            )
        )

    def heartbeat(self) -> None:
        self.last_message_at = self.clock.monotonic()

    def drop(self) -> None:
        self.connected = False
        assert self.sink is not None
        self.sink(PriceStreamStatus(PriceStreamState.DISCONNECTED, "dropped"))


async def test_first_want_reads_rest_then_streams(clock: ManualClock) -> None:
    """Unpriced pairs are read over REST at once and followed on the stream."""
    source = ScriptedSource(clock)
    service = PriceService(source, clock=clock, poll_interval=3.0)
    changes: list[frozenset[str]] = []
    service.add_listener(changes.append)
    await service.want(["BTC/USD"])
    assert source.rest_calls == [["BTC/USD"]]
    assert source.followed == {"BTC/USD"}
    assert changes == [frozenset({"BTC/USD"})]
    price = service.book.get("BTC/USD")
    assert price is not None
    assert price.price == Decimal(100)
    await service.close()


async def test_quote_must_be_on_a_pair(clock: ManualClock) -> None:
    """A quote currency no pair knows is refused, naming it."""
    service = PriceService(ScriptedSource(clock), clock=clock)
    await service.check_quote("BTC")
    with pytest.raises(UnknownAssetError, match="XYZ"):
        await service.check_quote("XYZ")


async def test_live_stream_keeps_prices_current_without_rest(clock: ManualClock) -> None:
    """While the stream speaks its prices are current as of its last message; no REST poll."""
    source = ScriptedSource(clock)
    service = PriceService(source, clock=clock, poll_interval=3.0)
    await service.want(["BTC/USD"])
    source.push("BTC/USD", "101")
    for _ in range(10):
        await drive(clock, 1.0, step=1.0)
        source.heartbeat()
    service.confirm()
    assert service.book.age("BTC/USD", clock.time()) == 0.0
    assert source.rest_calls == [["BTC/USD"]]
    await service.close()


async def test_stream_down_falls_back_to_rest_polling(clock: ManualClock) -> None:
    """A dropped stream stops confirming prices; REST is polled and its prices are used."""
    source = ScriptedSource(clock)
    service = PriceService(source, clock=clock, poll_interval=3.0)
    await service.want(["BTC/USD"])
    source.push("BTC/USD", "101")
    source.drop()
    source.rest_price = Decimal(99)
    await drive(clock, 3.5, step=0.5)
    price = service.book.get("BTC/USD")
    assert price is not None
    assert (price.price, price.source) == (Decimal(99), Source.REST)
    assert len(source.rest_calls) == 2
    assert service.get_statistics()["stream_losses"] == 1
    await service.close()


async def test_prices_age_when_every_source_fails(clock: ManualClock) -> None:
    """With the stream down and REST failing, a price ages from its last confirmation."""
    source = ScriptedSource(clock)
    service = PriceService(source, clock=clock, poll_interval=3.0)
    await service.want(["BTC/USD"])
    source.push("BTC/USD", "101")
    await drive(clock, 2.0, step=1.0)
    source.heartbeat()
    service.confirm()
    heard = clock.time()
    source.drop()
    source.rest_fails = True
    await drive(clock, 30.0, step=1.0)
    service.confirm()
    assert service.book.age("BTC/USD", clock.time()) == pytest.approx(clock.time() - heard)
    assert service.last_error == "down"
    await service.close()
    await asyncio.sleep(0)


async def test_pairs_the_stream_does_not_price_are_polled(clock: ManualClock) -> None:
    """A pair the live stream never sent (refused, say) is read over REST; streamed ones not."""
    source = ScriptedSource(clock)
    service = PriceService(source, clock=clock, poll_interval=3.0)
    await service.want(["BTC/USD", "ETH/BTC"])
    source.push("BTC/USD", "101")
    source.rest_calls.clear()
    for _ in range(4):
        source.heartbeat()
        await drive(clock, 1.0, step=1.0)
    assert source.rest_calls == [["ETH/BTC"]]
    await service.close()


async def test_a_poll_answer_never_replaces_the_live_streams_price(clock: ManualClock) -> None:
    """A REST read of a pair the live stream follows keeps the stream's (newer) price."""
    source = ScriptedSource(clock)
    service = PriceService(source, clock=clock, poll_interval=3.0)
    await service.want(["BTC/USD"])  # REST first: 100
    source.push("BTC/USD", "200")  # then the stream's snapshot
    source.rest_price = Decimal(100)  # a REST answer that was in flight, stamped later
    # the fallback's own read (private), as it races the stream
    await service._read_rest(["BTC/USD"])
    price = service.book.get("BTC/USD")
    assert price is not None
    assert (price.price, price.source) == (Decimal(200), Source.WEBSOCKET)
    await service.close()


async def test_a_tracker_whose_prices_stop_turns_stale_without_any_event(
    clock: ManualClock,
) -> None:
    """Stream down and REST failing: nothing announces that prices got old, yet the tracker's
    latest valuation and value history say not fresh once max_price_age has passed."""
    from balance_manager.core.models import Balance
    from balance_manager.service.portfolio import PortfolioTracker

    source = ScriptedSource(clock)
    service = PriceService(source, clock=clock, poll_interval=10.0)
    balances = {"BTC": Balance("BTC", Decimal(1), source=Source.WEBSOCKET)}
    tracker = PortfolioTracker(
        "USD", balances=lambda: balances, prices=service, clock=clock, max_price_age=30.0
    )
    await tracker.start()
    source.push("BTC/USD", "100")
    await drive(clock, 1.0, step=0.5)
    latest = tracker.latest
    assert latest is not None
    assert latest.fresh
    source.rest_fails = True
    source.drop()
    await drive(clock, 60.0, step=1.0)
    latest = tracker.latest
    assert latest is not None
    assert not latest.fresh
    change = tracker.change_over(600)
    assert change is not None
    assert not change.end.fresh
    await tracker.close()
    await service.close()
