"""What the simulator's synchronous calls return, with a clear error when awaited.

Starting and stopping the simulator does I/O and is awaited (``await sim.start()``);
everything that acts on the exchange (a deposit, an order, a fill, a price, a fault)
is a plain call that has happened when it returns. The manager's own methods are
mostly awaited, so ``await sim.deposit("BTC", "1")`` is an easy slip, and Python's
own answer (``object list can't be used in 'await' expression``) does not say
which call was wrong. The values these calls return say it instead:

* :class:`SyncList`, the list of ledger entries or trades of ``deposit``,
  ``withdraw``, ``transfer`` and ``set_price``, knows the call that made it;
* :class:`NotAwaitable`, a base of ``Order``, ``Trade``, ``LedgerEntry`` and
  ``Fault``, names the calls that return its class.

Awaiting either raises a :class:`TypeError` naming the call and saying to drop the
``await``. Type checkers see neither as awaitable (``__await__`` exists only at run
time), so ``mypy`` reports the same mistake before it runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, NoReturn, TypeVar

__all__ = ["NotAwaitable", "SyncList", "not_awaitable_message"]

T = TypeVar("T")

_ONLY_AWAITED = "only start(), stop() and restart() of the simulator are awaited"


def not_awaitable_message(calls: str) -> str:
    """The message for an ``await`` on the result of ``calls`` (e.g. ``"sim.deposit()"``)."""
    return (
        f"this value comes from {calls}, a synchronous call: it has already happened when it "
        f"returns and there is nothing to await; call it without 'await' ({_ONLY_AWAITED})"
    )


class NotAwaitable:
    """A base for values of synchronous calls: awaiting one raises a clear ``TypeError``."""

    __slots__ = ()

    #: The calls that return this class, as the error message names them.
    _SYNC_CALLS: ClassVar[str] = "this simulator call"

    if not TYPE_CHECKING:  # invisible to type checkers: awaiting stays a type error there

        def __await__(self) -> NoReturn:
            raise TypeError(not_awaitable_message(type(self)._SYNC_CALLS))


class SyncList(list[T]):
    """A list returned by a synchronous call; awaiting it names that call.

    Args:
        items: the values.
        call: the call that made the list, as users write it (``"sim.deposit()"``).
    """

    __slots__ = ("call",)

    def __init__(self, items: Iterable[T] = (), *, call: str = "this simulator call") -> None:
        super().__init__(items)
        self.call = call

    if not TYPE_CHECKING:

        def __await__(self) -> NoReturn:
            raise TypeError(not_awaitable_message(self.call))
