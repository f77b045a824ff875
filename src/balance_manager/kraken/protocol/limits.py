"""Kraken's limits: the private REST call counter, modelled client-side, and the reconnect pace.

Kraken keeps one counter per API key: each private call adds its cost, the
counter decays over time at the account tier's rate, and a call that would
take it past the tier's maximum is refused with ``EAPI:Rate limit exceeded``
(and calls stay refused for a while, longer if they keep coming). Repeated
refusals are failed calls, and too many failed calls end in
``EGeneral:Temporary lockout``. So the client models the counter and
waits *before* sending instead of finding out afterwards.

:class:`KrakenCallCounter` is sans-I/O: :meth:`~KrakenCallCounter.reserve`
takes ``now`` and returns how long to wait. Reservations are booked in order
(first come, first served), so concurrent callers that each wait their
returned delay never overfill the counter together.

Cost table (:data:`COSTS`, shared with the simulator, which charges it).
``Balance``, ``BalanceEx``, ``TradeBalance`` and ``GetWebSocketsToken`` cost 1
in every source. Ledger and trade-history calls cost 2 in Kraken's newer guide
and 4 on the classic page; the client books the higher figure
(:data:`DISPUTED_COSTS`): over-estimating a cost only makes us wait a little
longer, while under-estimating it gets calls refused, and refusals count
towards a lockout.
The facts are in docs/kraken.md, 'The private call counter'.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, TypedDict

from balance_manager.core.backoff import backoff
from balance_manager.core.bounds import seconds
from balance_manager.exceptions import ConfigError

if TYPE_CHECKING:
    from balance_manager.config import BalanceManagerConfig

__all__ = [
    "COSTS",
    "DISPUTED_COSTS",
    "KRAKEN_SLOW_RECONNECT_FLOOR",
    "TIERS",
    "KrakenCallCounter",
    "RateLimitStatistics",
    "TierLimits",
    "cost_of",
    "kraken_reconnect_delays",
]

#: Kraken: after maintenance or a long outage, reconnect no faster than once per
#: 5 s (Cloudflare bans an IP for 10 minutes beyond about 150 connection
#: attempts per 10 minutes; see docs/kraken.md, 'Connection limits and reconnect pace').
KRAKEN_SLOW_RECONNECT_FLOOR: Final = 5.0

#: What Kraken charges each private REST method on the counter (1 for a method
#: not listed). ``AddOrder`` and ``CancelOrder`` are metered by the separate
#: matching-engine limiter, not this counter. Ledger and trade-history calls
#: cost 2 in Kraken's newer guide: see :data:`DISPUTED_COSTS`.
COSTS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "Balance": 1,
        "BalanceEx": 1,
        "GetWebSocketsToken": 1,
        "TradeBalance": 1,
        "AddOrder": 0,
        "CancelOrder": 0,
        "Ledgers": 2,
        "QueryLedgers": 2,
        "TradesHistory": 2,
        "QueryTrades": 2,
    }
)

#: Where Kraken's own pages disagree (the classic page says 4 where the newer
#: guide says 2), the higher figure. The client books it: over-estimating a
#: cost only makes it wait a little longer, under-estimating gets calls
#: refused, and refusals count towards a lockout. The simulator charges
#: :data:`COSTS`.
DISPUTED_COSTS: Final[Mapping[str, int]] = MappingProxyType(
    {"Ledgers": 4, "QueryLedgers": 4, "TradesHistory": 4, "QueryTrades": 4}
)


@dataclass(frozen=True, slots=True)
class TierLimits:
    """A verification tier's private call counter.

    Attributes:
        max_counter: the counter's maximum.
        decay_per_second: how much the counter drops each second.
    """

    max_counter: float
    decay_per_second: float


#: Kraken's verification tiers and their counters (docs/kraken.md, 'The private call counter').
TIERS: Final[Mapping[str, TierLimits]] = MappingProxyType(
    {
        "starter": TierLimits(15.0, 0.33),
        "intermediate": TierLimits(20.0, 0.5),
        "pro": TierLimits(20.0, 1.0),
    }
)


def cost_of(method: str, *, conservative: bool = True) -> int:
    """Counter cost of the private method ``method`` (1 for a method not in :data:`COSTS`).

    Args:
        method: the method's name (``BalanceEx``).
        conservative: where Kraken's pages disagree, the higher cost
            (:data:`DISPUTED_COSTS`), as the client books; ``False`` gives
            what the simulator charges.
    """
    if conservative and method in DISPUTED_COSTS:
        return DISPUTED_COSTS[method]
    return COSTS.get(method, 1)


class RateLimitStatistics(TypedDict):
    """What :meth:`KrakenCallCounter.get_statistics` returns."""

    max_counter: float
    decay_per_second: float
    margin: float
    reserved_calls: int
    delayed_calls: int
    penalties: int


class KrakenCallCounter:
    """Client-side model of Kraken's per-key REST call counter.

    The modelled level rises by each call's cost and decays continuously at
    ``decay_per_second``, never below 0. :meth:`reserve` plans every call so
    that the level stays at or below ``max_counter - margin``.

    Why a margin: Kraken says the counter is reduced "every couple of
    seconds", i.e. in steps, while this model decays continuously, so the real
    counter can lag the model by up to about two seconds of decay; it also
    counts a call when the call *arrives*, after network latency we cannot
    see. The default margin, ``max(1, 2 * decay_per_second)`` (1 for starter
    and intermediate, 2 for pro), absorbs both. It cannot absorb calls made
    with the same key by another process; :meth:`penalize` recovers from those.

    Args:
        max_counter: the tier's maximum counter value.
        decay_per_second: how much the counter drops per second.
        margin: headroom kept below ``max_counter`` (see above).

    Raises:
        ConfigError: an argument is out of range.

    Example:
        >>> counter = KrakenCallCounter.for_tier("starter")
        >>> [round(counter.reserve(now=0.0), 2) for _ in range(15)][-3:]
        [0.0, 0.0, 3.03]
    """

    __slots__ = (
        "_at",
        "_delayed",
        "_level",
        "_penalties",
        "_reserved",
        "decay_per_second",
        "margin",
        "max_counter",
    )

    def __init__(
        self, max_counter: float, decay_per_second: float, *, margin: float | None = None
    ) -> None:
        _check_positive("max_counter", max_counter)
        _check_positive("decay_per_second", decay_per_second)
        headroom = max(1.0, 2.0 * decay_per_second) if margin is None else margin
        if isinstance(headroom, bool) or not math.isfinite(headroom) or headroom < 0:
            raise ConfigError("margin", headroom, "must be a finite number >= 0")
        if headroom >= max_counter:
            raise ConfigError("margin", headroom, f"must be below max_counter ({max_counter:g})")
        self.max_counter = float(max_counter)
        self.decay_per_second = float(decay_per_second)
        self.margin = float(headroom)
        # The model: the level right after the last booked call, and that
        # call's (monotonic) send time, which may lie in the future.
        self._level = 0.0
        self._at = -math.inf
        self._reserved = 0
        self._delayed = 0
        self._penalties = 0

    @classmethod
    def for_tier(cls, tier: str, *, margin: float | None = None) -> KrakenCallCounter:
        """The counter of a Kraken verification tier: ``starter``, ``intermediate`` or ``pro``.

        Raises:
            ConfigError: unknown tier.
        """
        try:
            limits = TIERS[tier]
        except KeyError:
            raise ConfigError("kraken_tier", tier, f"must be one of {', '.join(TIERS)}") from None
        return cls(limits.max_counter, limits.decay_per_second, margin=margin)

    @classmethod
    def from_config(cls, config: BalanceManagerConfig) -> KrakenCallCounter:
        """The counter of ``config.kraken_tier``."""
        return cls.for_tier(config.kraken_tier)

    @property
    def limit(self) -> float:
        """The highest level :meth:`reserve` plans for: ``max_counter - margin``."""
        return self.max_counter - self.margin

    def level(self, now: float) -> float:
        """The modelled counter at ``now``, including calls already booked for later."""
        if now <= self._at:
            return self._level
        return max(0.0, self._level - self.decay_per_second * (now - self._at))

    def reserve(self, now: float, cost: int = 1) -> float:
        """Book a call of ``cost``; returns the seconds to wait before sending it.

        The call is booked at ``now + wait`` (never before a call booked
        earlier), so the caller must send it then, not sooner.

        Raises:
            ConfigError: ``cost`` is not a positive int, or larger than :attr:`limit`
                (such a call could never be sent safely).
        """
        if isinstance(cost, bool) or not isinstance(cost, int) or cost <= 0:
            raise ConfigError("cost", cost, "must be a positive int")
        if cost > self.limit:
            raise ConfigError("cost", cost, f"exceeds the counter's usable room ({self.limit:g})")
        start = max(now, self._at)
        level = self.level(start)
        send_at = start
        excess = level + cost - self.limit
        if excess > 0:
            send_at = start + excess / self.decay_per_second
            level = self.limit - cost
        self._level = level + cost
        self._at = send_at
        self._reserved += 1
        wait = send_at - now
        if wait > 0:
            self._delayed += 1
        return wait

    def penalize(self, now: float) -> float:
        """The exchange refused a call as rate-limited: assume the counter is full.

        Returns the seconds until a call of cost 1 fits again, a sensible
        ``retry_after`` for :class:`~balance_manager.exceptions.RateLimitedError`.
        """
        self._penalties += 1
        self._at = max(now, self._at)
        self._level = self.max_counter
        return (
            max(0.0, self._at - now) + (self.max_counter + 1 - self.limit) / self.decay_per_second
        )

    def get_statistics(self) -> RateLimitStatistics:
        """Settings and counts since creation."""
        return {
            "max_counter": self.max_counter,
            "decay_per_second": self.decay_per_second,
            "margin": self.margin,
            "reserved_calls": self._reserved,
            "delayed_calls": self._delayed,
            "penalties": self._penalties,
        }

    def __repr__(self) -> str:
        return (
            f"KrakenCallCounter(max_counter={self.max_counter:g}, "
            f"decay_per_second={self.decay_per_second:g}, margin={self.margin:g})"
        )


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(name, value, "must be a number")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(name, value, "must be a finite number > 0")


def kraken_reconnect_delays(
    rng: random.Random,
    *,
    initial: float = 1.0,
    maximum: float = 30.0,
    quick_retries: int = 2,
) -> Iterator[float]:
    """Kraken WebSocket reconnect delays, as Kraken advises.

    Kraken recommends "a few immediate retries after a random drop" and, after
    maintenance or a long outage, "no faster than one attempt per 5 s". So:

    * ``quick_retries`` quick attempts: nominal ``initial``, ``2 * initial``...
      each with equal jitter (about 1 s, then about 2 s by default);
    * then exponential with equal jitter from 10 s nominal (so 5-10 s, then
      10-20 s, ...) up to ``maximum``, never below 5 s (or below ``maximum``
      if that is smaller than 5 s, as tests configure).

    Kraken's own CLI does much the same: 1 s, 2 s, then 5-30 s. See
    docs/kraken.md, 'Connection limits and reconnect pace'.

    Args:
        rng: the source of jitter.
        initial: nominal first quick delay (``config.reconnect_initial_delay``).
        maximum: the largest delay (``config.reconnect_max_delay``).
        quick_retries: how many quick attempts come first.

    Raises:
        ConfigError: an argument is out of range (raised on the first ``next``).
    """
    if isinstance(quick_retries, bool) or not isinstance(quick_retries, int) or quick_retries < 0:
        raise ConfigError("quick_retries", quick_retries, "must be an int >= 0")
    initial = seconds("initial", initial)
    maximum = seconds("maximum", maximum)
    quick = backoff(initial=min(initial, maximum), maximum=maximum, rng=rng)
    for _ in range(quick_retries):
        yield next(quick)
    floor = min(KRAKEN_SLOW_RECONNECT_FLOOR, maximum)
    slow = backoff(initial=min(2.0 * floor, maximum), maximum=maximum, rng=rng)
    for delay in slow:
        yield max(floor, delay)
