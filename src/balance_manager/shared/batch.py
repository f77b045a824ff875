"""What the leader has still to publish, and the payload of one publish script (sans-I/O).

The leader's manager tells every new value to an observer on its ingest path;
that observer only appends here (:meth:`PublishQueue.value`), so ingest never
waits on Redis. A task takes everything pending at once (:meth:`PublishQueue.take`)
and sends it as one fenced script call: the values, the reservations their
holds settle, the history rows and a beat land in Redis in one atomic step.

Around each stream event the tap takes a :meth:`~PublishQueue.mark` before the
manager applies it and, right after, adds what the values alone do not say:
the kind and ledger id of the values that event made (:meth:`PublishQueue.tag`),
and the client order ids whose holds it applied (:meth:`PublishQueue.settle`).
Both arrive before the next
:meth:`~PublishQueue.take` (nothing is awaited in between), so a reservation is
always settled in the same script as the hold that replaces it.

If Redis falls behind by more than ``max_pending`` values, the queue keeps only
the latest value of each asset and sends a *reset* (followers reload the whole
hash) instead of every event; rows of ledger entries are kept for history.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from balance_manager.core.models import Balance
from balance_manager.shared.amounts import encode_amount
from balance_manager.shared.codec import encode_balance

__all__ = ["Payload", "PublishQueue"]


@dataclass(slots=True)
class _Value:
    balance: Balance
    number: int = 0
    kind: str = "refresh"
    ledger_id: str | None = None


@dataclass(frozen=True, slots=True)
class Payload:
    """One publish script's argument, and what it carries (for counters).

    Attributes:
        json: the JSON text the script decodes.
        values: values in it.
        settled: client order ids it settles.
        history: history rows in it.
        reset: why the values replace the whole hash (empty: they do not).
    """

    json: str
    values: int
    settled: int
    history: int
    reset: str


@dataclass(slots=True)
class PublishQueue:
    """Pending values, settlements, history rows and connection events.

    Args:
        max_pending: values held before collapsing to the latest per asset.
    """

    max_pending: int = 100_000
    _values: list[_Value] = field(default_factory=list)
    _history: list[tuple[Balance, str]] = field(default_factory=list)
    _settle: list[str] = field(default_factory=list)
    _connections: list[dict[str, Any]] = field(default_factory=list)
    _reset: str = ""
    _beat: bool = False
    _appended: int = 0
    dropped_events: int = 0

    def __len__(self) -> int:
        return len(self._values) + len(self._history) + len(self._settle) + len(self._connections)

    @property
    def has_work(self) -> bool:
        """Whether :meth:`take` would send anything but a beat."""
        return bool(len(self) or self._reset)

    def value(self, balance: Balance) -> None:
        """A new value the manager holds (from its observer)."""
        self._appended += 1
        self._values.append(_Value(balance, self._appended))
        if len(self._values) > self.max_pending:
            self._collapse("overflow: Redis fell behind the stream")

    def mark(self) -> int:
        """A position: :meth:`tag` then names the values added after it."""
        return self._appended

    def tag(
        self,
        mark: int,
        *,
        kind: str,
        ledger_id: str | None = None,
        assets: Iterable[str] | None = None,
    ) -> bool:
        """Give the values added since ``mark`` (of ``assets``, if given) a kind and ledger id.

        Returns:
            Whether any value was tagged (``False``: the event changed no amount).
        """
        wanted = None if assets is None else set(assets)
        tagged = False
        for item in reversed(self._values):
            if item.number <= mark:
                break
            if wanted is None or item.balance.asset in wanted:
                item.kind, item.ledger_id, tagged = kind, ledger_id, True
        return tagged

    def assets_since(self, mark: int) -> set[str]:
        """The assets of the values added since ``mark``."""
        found: set[str] = set()
        for item in reversed(self._values):
            if item.number <= mark:
                break
            found.add(item.balance.asset)
        return found

    def history_row(self, balance: Balance, ledger_id: str) -> None:
        """A ledger entry that changed no amount: history still records it, once."""
        self._history.append((balance, ledger_id))

    def settle(self, client_order_ids: Iterable[str]) -> None:
        """Orders whose holds the manager just applied: their reservations go."""
        self._settle.extend(client_order_ids)

    def connection(self, payload: Mapping[str, Any]) -> None:
        """The leader's stream changed state (told to followers)."""
        self._connections.append(dict(payload))

    def reset(self, balances: Mapping[str, Balance], reason: str) -> None:
        """Replace everything pending with every current value (a new leader republishes)."""
        self._values = [_Value(b, self._appended, "snapshot") for b in balances.values()]
        self._reset = reason

    def beat(self) -> None:
        """Send a beat with the next take, even with nothing else to send."""
        self._beat = True

    def _collapse(self, reason: str) -> None:
        latest: dict[str, _Value] = {}
        for item in self._values:
            latest[item.balance.asset] = item
            if item.ledger_id is not None:
                self._history.append((item.balance, item.ledger_id))
        self.dropped_events += len(self._values) - len(latest)
        self._values = [_Value(v.balance, v.number, v.kind) for v in latest.values()]
        self._reset = reason

    def take(
        self,
        *,
        age_of: Callable[[Balance], float | None],
        confirmed_age: float | None,
        mode: str,
    ) -> Payload:
        """Everything pending as one script argument; the queue is empty afterwards.

        Args:
            age_of: seconds since a value was last known current (the manager's
                ``age_of``), measured now on the leader's clock.
            confirmed_age: seconds since every held value was last confirmed by
                a live source, or ``None`` when nothing is live (the beat then
                confirms nothing).
            mode: the leader's serving mode (``websocket``, ``rest``, ``cache``).
        """
        values = [
            [
                item.balance.asset,
                encode_balance(item.balance),
                encode_amount(item.balance.free, name="free"),
                _ms(age_of(item.balance)),
                item.kind,
                item.ledger_id or "",
            ]
            for item in self._values
        ]
        history = [[b.asset, encode_balance(b), ledger_id] for b, ledger_id in self._history]
        settle = list(dict.fromkeys(self._settle))
        body = {
            "reset": self._reset,
            "values": values,
            "hist": history,
            "settle": settle,
            "conn": [msgspec.json.encode(c).decode() for c in self._connections],
            "beat": -2 if not self._beat else -1 if confirmed_age is None else _ms(confirmed_age),
            "mode": mode,
        }
        payload = Payload(
            json=msgspec.json.encode(body).decode(),
            values=len(values),
            settled=len(settle),
            history=len(history),
            reset=self._reset,
        )
        self._values, self._history, self._settle, self._connections = [], [], [], []
        self._reset, self._beat = "", False
        return payload


def _ms(age: float | None) -> int:
    """An age in whole milliseconds, rounded up (a value is never made younger)."""
    if age is None or not math.isfinite(age):
        return 2**52  # unknown: as old as can be
    return max(0, math.ceil(age * 1000))
