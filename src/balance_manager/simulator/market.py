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

All randomness comes from ``random.Random(seed)``: the same seed and the same
ticks give the same prices, fills and ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from balance_manager.clock import Clock, SystemClock
from balance_manager.core.amounts import ZERO, round_to
from balance_manager.exceptions import ExchangeError
from balance_manager.simulator.exchange import SimExchange
from balance_manager.simulator.instruments import PairSpec
from balance_manager.simulator.ledger import Account, Order, Trade

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
        self.rng = random.Random(seed)
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
        """Fill everything most of the time, half now and then (a partial fill)."""
        pair = self.exchange.instruments.pair(order.symbol)
        if self.rng.random() < 0.7:
            return order.remaining
        half = round_to(order.remaining / 2, pair.lot_decimals, ROUND_DOWN)
        return half if half > 0 else order.remaining

    def _activity(self, account: Account, now: float) -> None:
        roll = self.rng.random()
        try:
            if roll < 0.04:
                asset = self.rng.choice(account.assets() or ["USD"])
                unit = _DEPOSIT_UNIT.get(asset, Decimal("0.01"))
                account.deposit(asset, unit * self.rng.randint(1, 100), now=now)
            elif roll < 0.06:
                free = account.free("USD") if "USD" in account.assets() else ZERO
                amount = Decimal(self.rng.randint(1, 50))
                if free > amount:
                    account.withdraw("USD", amount, now=now)
            elif roll < 0.26:
                self._place_bot_order(account, now)
            elif roll < 0.36 and self._bot_orders:
                order_id = self._bot_orders.pop(self.rng.randrange(len(self._bot_orders)))
                if account.order(order_id).is_open:
                    self.exchange.cancel_order(account, order_id, now=now)
        except ExchangeError as exc:
            # The bot tries things a real account could be refused; that is fine.
            logger.debug("demo activity refused: %s", exc.code)
        self._bot_orders = [o for o in self._bot_orders if account.order(o).is_open]

    def _place_bot_order(self, account: Account, now: float) -> None:
        usd_pairs = [p for p in self.exchange.instruments.pairs if p.quote == "USD"]
        pair = self.rng.choice(usd_pairs)
        side = self.rng.choice(("buy", "sell"))
        price = self.exchange.price(pair.symbol)
        offset = Decimal(self.rng.randint(1, 30)) / 10_000
        limit = price * (1 - offset) if side == "buy" else price * (1 + offset)
        qty = pair.ordermin * self.rng.randint(1, 5)
        order = self.exchange.place_order(
            account,
            pair.symbol,
            side,
            "limit",
            qty,
            now=now,
            price=round_to(limit, pair.pair_decimals, ROUND_HALF_UP),
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
