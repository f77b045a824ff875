"""A seeded market: prices that wander, resting orders that fill, an account that lives.

:class:`MarketDriver` ticks on the injected clock (``SystemClock`` by default,
``ManualClock`` in tests). Each tick (:meth:`MarketDriver.step`, also callable
directly):

1. every pair's price takes a bounded random step (at most ``max_step_bp``
   basis points, kept within ``band`` of its starting price);
2. resting limit orders the new price reaches fill at their limit price,
   sometimes only partly (so clients see ``partially_filled``);
3. with ``activity`` on, the activity account lives a little: now and then a
   deposit or a small withdrawal, and a small bot that places and cancels
   limit orders near the price.

All randomness comes from ``seed``, in separate streams, so that what one
part does never shifts another: the price path is the same tick by tick
whatever orders are placed; the activity draws a fixed set of numbers per
tick; whether a fill is partial depends on the order and the seed only; and
the activity's orders take their ids from a stream of their own (origin
``market``), apart from the account's own orders. The same seed and the same
ticks give the same prices, fills and ledger, and an order id names the same
order from run to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from balance_manager.core.amounts import ZERO, round_to
from balance_manager.exceptions import ExchangeError
from balance_manager.runtime.clock import Clock, SystemClock
from balance_manager.simulator.model.exchange import SimExchange
from balance_manager.simulator.model.instruments import PairSpec
from balance_manager.simulator.model.ledger import Account, Order, Trade

__all__ = ["MarketDriver", "random_walk_step"]

logger = logging.getLogger(__name__)

#: Deposit step per asset for the demo activity (multiplied by 1..100).
_DEPOSIT_UNIT = {
    "USD": Decimal(5),
    "EUR": Decimal(5),
    "USDT": Decimal(5),
    "BTC": Decimal("0.0001"),
    "ETH": Decimal("0.002"),
    "DOT": Decimal("0.5"),
    "SOL": Decimal("0.05"),
}


def random_walk_step(
    price: Decimal,
    rng: random.Random,
    *,
    pair: PairSpec,
    max_step_bp: int = 20,
    band: Decimal = Decimal("0.5"),
) -> Decimal:
    """The next price: a step of at most ``max_step_bp`` basis points, bounded.

    The price stays within ``start * (1 - band)`` and ``start * (1 + band)``
    (``start`` is the pair's starting price); a step that would leave the band
    is reflected back into it. Steps are drawn as whole basis points so no
    ``float`` touches the price.
    """
    step = Decimal(rng.randint(-max_step_bp, max_step_bp)) / 10_000
    low = pair.start_price * (1 - band)
    high = pair.start_price * (1 + band)
    moved = price * (1 + step)
    if moved < low or moved > high:
        moved = price * (1 - step)
    tick = pair.tick_size
    return max(round_to(min(max(moved, low), high), pair.pair_decimals, ROUND_HALF_UP), tick)


class MarketDriver:
    """Moves the market on a clock (see module docs).

    Args:
        exchange: the exchange whose prices and orders it drives.
        clock: when ticks happen.
        seed: seeds every random choice.
        interval: seconds between ticks.
        max_step_bp: largest price step per tick, in basis points.
        band: how far (fraction of the starting price) prices may wander.
        activity_account: the account that gets demo activity (``None``: none).
    """

    def __init__(
        self,
        exchange: SimExchange,
        clock: Clock | None = None,
        *,
        seed: int = 0,
        interval: float = 1.0,
        max_step_bp: int = 20,
        band: Decimal = Decimal("0.5"),
        activity_account: Account | None = None,
    ) -> None:
        self.exchange = exchange
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.seed = seed
        #: The price path: one draw per pair per tick.
        self.rng = random.Random(f"{seed}/prices")
        self._activity_rng = random.Random(f"{seed}/activity")
        self.interval = interval
        self.max_step_bp = max_step_bp
        self.band = band
        self.activity_account = activity_account
        self.ticks = 0
        self._bot_orders: list[str] = []
        self._task: asyncio.Task[None] | None = None

    # -- one tick ------------------------------------------------------------------

    def step(self, now: float) -> list[Trade]:
        """One tick at wall-clock ``now``: move prices, fill crossed orders, act; returns fills."""
        self.ticks += 1
        instruments = self.exchange.instruments
        trades: list[Trade] = []
        for pair in instruments.pairs:
            price = self.exchange.price(pair.symbol)
            new = random_walk_step(
                price, self.rng, pair=pair, max_step_bp=self.max_step_bp, band=self.band
            )
            self.exchange.move_price(pair.symbol, new)
        trades.extend(self.exchange.fill_crossed(now=now, portion=self._portion))
        if self.activity_account is not None:
            self._activity(self.activity_account, now)
        return trades

    def _portion(self, order: Order) -> Decimal:
        """Fill everything most of the time, half now and then (a partial fill).

        The choice depends on the seed, the order and what is left of it only.
        """
        pair = self.exchange.instruments.pair(order.symbol)
        draw = random.Random(f"{self.seed}/fill/{order.order_id}/{order.remaining}")
        if draw.random() < 0.7:
            return order.remaining
        half = round_to(order.remaining / 2, pair.lot_decimals, ROUND_DOWN)
        return half if half > 0 else order.remaining

    def _activity(self, account: Account, now: float) -> None:
        # Every tick draws the same numbers, whatever happens with them: the
        # activity of tick n never depends on what earlier ticks could do.
        rng = self._activity_rng
        roll, pick, size = rng.random(), rng.random(), rng.randint(1, 100)
        side, offset, lots = rng.random(), rng.randint(1, 30), rng.randint(1, 5)
        try:
            if roll < 0.04:
                assets = sorted(_DEPOSIT_UNIT)
                asset = assets[int(pick * len(assets))]
                account.deposit(asset, _DEPOSIT_UNIT[asset] * size, now=now)
            elif roll < 0.06:
                free = account.free("USD") if "USD" in account.assets() else ZERO
                amount = Decimal(1 + size % 50)
                if free > amount:
                    account.withdraw("USD", amount, now=now)
            elif roll < 0.26:
                self._place_bot_order(account, now, pick, side < 0.5, offset, lots)
            elif roll < 0.36 and self._bot_orders:
                order_id = self._bot_orders.pop(int(pick * len(self._bot_orders)))
                if account.order(order_id).is_open:
                    self.exchange.cancel_order(account, order_id, now=now)
        except ExchangeError as exc:
            # The bot tries things a real account could be refused; that is fine.
            logger.debug("demo activity refused: %s", exc.code)
        self._bot_orders = [o for o in self._bot_orders if account.order(o).is_open]

    def _place_bot_order(
        self, account: Account, now: float, pick: float, buy: bool, offset_bp: int, lots: int
    ) -> None:
        usd_pairs = [p for p in self.exchange.instruments.pairs if p.quote == "USD"]
        pair = usd_pairs[int(pick * len(usd_pairs))]
        side = "buy" if buy else "sell"
        price = self.exchange.price(pair.symbol)
        offset = Decimal(offset_bp) / 10_000
        limit = price * (1 - offset) if side == "buy" else price * (1 + offset)
        order = self.exchange.place_order(
            account,
            pair.symbol,
            side,
            "limit",
            pair.ordermin * lots,
            now=now,
            price=round_to(limit, pair.pair_decimals, ROUND_HALF_UP),
            origin="market",
        )
        if order.is_open:
            self._bot_orders.append(order.order_id)

    # -- running on the clock --------------------------------------------------------

    async def run(self) -> None:
        """Tick every ``interval`` seconds on the clock, forever (cancel to stop)."""
        while True:
            await self.clock.sleep(self.interval)
            try:
                self.step(self.clock.time())
            except Exception:
                # One bad tick must not stop the market of a long demo.
                logger.exception("market tick %d failed", self.ticks)

    def start(self) -> None:
        """Run :meth:`run` in a background task."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="sim-market")

    async def stop(self) -> None:
        """Stop the background task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        """Whether the background task runs."""
        return self._task is not None and not self._task.done()

    def __repr__(self) -> str:
        return f"MarketDriver(ticks={self.ticks}, running={self.running})"
