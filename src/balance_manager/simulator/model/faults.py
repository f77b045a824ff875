"""Faults on demand: what can go wrong with Kraken, injected when a test asks.

A :class:`Fault` names a :class:`FaultKind` and when it fires. The REST and
WebSocket layers offer each fault *opportunities*: every REST request is one
for the REST kinds; every frame the server is about to send is one for the
WebSocket kinds (for ``skip_sequence``, ``duplicate`` and ``reorder``, only
``balances`` and ``executions`` data frames, which carry a ``sequence``); every
private subscription is one for the token kinds. A fault fires on an
opportunity when

* ``after`` earlier opportunities have been let pass ("after N messages"),
* the clock has reached ``at`` (monotonic seconds; "at time T"), and
* its filters match (``endpoint`` for REST, e.g. ``"Balance"``; ``channel``
  for WebSocket frames, e.g. ``"balances"`` or ``"heartbeat"``),

and it fires ``times`` times (``1``: one-shot; ``None``: until cleared).
``silence`` is a state rather than an event: once fired it mutes the server
for ``seconds`` (``None``: until the fault is cleared).

What each kind does:

========================  ====================================================
kind                      effect
========================  ====================================================
``ws_drop``               close the socket abruptly (TCP abort, no close frame)
``ws_silence``            send nothing at all (no data, no heartbeat), socket open
``ws_lose``               lose this one frame; the others (heartbeats too) go on
``ws_delay``              hold the frame (and those behind it) ``seconds``
``ws_malformed``          send a truncated, invalid JSON frame before the frame
``ws_skip_sequence``      the frame's ``sequence`` jumps by 2 (one number lost)
``ws_duplicate``          send the frame twice
``ws_reorder``            send the frame after the next one of its channel
``token_reject``          the private subscription fails with the token error
``token_expire``          every token issued so far becomes invalid, then as reject
``http_error``            HTTP ``status`` (520) with a Cloudflare-like HTML body
``html_page``             an HTML page with HTTP ``status`` (200) instead of JSON
``rate_limit``            ``EAPI:Rate limit exceeded``
``service_unavailable``   ``EService:Unavailable``
``invalid_nonce``         ``EAPI:Invalid nonce``
``lockout``               ``EGeneral:Temporary lockout``
``slow_response``         answer only after ``seconds`` (on the injected clock)
``slow_answer``           read the account at once, deliver the answer ``seconds`` later
========================  ====================================================

Maintenance is a status, not a fault: :meth:`Faults.set_status` (REST
``SystemStatus``, a WebSocket ``status`` update, ``EService:Unavailable`` on
private calls).

Random plans (:meth:`Faults.random_plan`) draw kinds and trigger points from
``random.Random(seed)``, so the same seed gives the same plan.
"""

from __future__ import annotations

import enum
import itertools
import logging
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypedDict, Unpack

from balance_manager.exceptions import ConfigError
from balance_manager.simulator.model.results import NotAwaitable

__all__ = [
    "REST_KINDS",
    "SEQUENCED_KINDS",
    "TOKEN_KINDS",
    "WS_FRAME_KINDS",
    "Fault",
    "FaultKind",
    "Faults",
    "FiredFault",
    "Trigger",
]

logger = logging.getLogger(__name__)


class FaultKind(enum.Enum):
    """What goes wrong (see the module's table)."""

    WS_DROP = "ws_drop"
    WS_SILENCE = "ws_silence"
    WS_LOSE = "ws_lose"
    WS_DELAY = "ws_delay"
    WS_MALFORMED = "ws_malformed"
    WS_SKIP_SEQUENCE = "ws_skip_sequence"
    WS_DUPLICATE = "ws_duplicate"
    WS_REORDER = "ws_reorder"
    TOKEN_REJECT = "token_reject"  # noqa: S105 - a fault name, not a password
    TOKEN_EXPIRE = "token_expire"  # noqa: S105 - a fault name, not a password
    HTTP_ERROR = "http_error"
    HTML_PAGE = "html_page"
    RATE_LIMIT = "rate_limit"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INVALID_NONCE = "invalid_nonce"
    LOCKOUT = "lockout"
    SLOW_RESPONSE = "slow_response"
    SLOW_ANSWER = "slow_answer"


#: Kinds offered every outgoing WebSocket frame.
WS_FRAME_KINDS = frozenset(
    {
        FaultKind.WS_DROP,
        FaultKind.WS_SILENCE,
        FaultKind.WS_LOSE,
        FaultKind.WS_DELAY,
        FaultKind.WS_MALFORMED,
    }
)
#: Kinds offered only data frames that carry a ``sequence``.
SEQUENCED_KINDS = frozenset(
    {FaultKind.WS_SKIP_SEQUENCE, FaultKind.WS_DUPLICATE, FaultKind.WS_REORDER}
)
#: Kinds offered each private subscription.
TOKEN_KINDS = frozenset({FaultKind.TOKEN_REJECT, FaultKind.TOKEN_EXPIRE})
#: Kinds offered each REST request.
REST_KINDS = frozenset(
    {
        FaultKind.HTTP_ERROR,
        FaultKind.HTML_PAGE,
        FaultKind.RATE_LIMIT,
        FaultKind.SERVICE_UNAVAILABLE,
        FaultKind.INVALID_NONCE,
        FaultKind.LOCKOUT,
        FaultKind.SLOW_RESPONSE,
        FaultKind.SLOW_ANSWER,
    }
)

#: Kraken's error string for each REST error kind (docs/kraken.md, 'Error strings').
REST_ERROR_CODES = {
    FaultKind.RATE_LIMIT: "EAPI:Rate limit exceeded",
    FaultKind.SERVICE_UNAVAILABLE: "EService:Unavailable",
    FaultKind.INVALID_NONCE: "EAPI:Invalid nonce",
    FaultKind.LOCKOUT: "EGeneral:Temporary lockout",
}

#: Kinds that need ``seconds``.
_DELAYS = frozenset({FaultKind.WS_DELAY, FaultKind.SLOW_RESPONSE, FaultKind.SLOW_ANSWER})
_RANDOM_DEFAULT_KINDS = (
    FaultKind.WS_DROP,
    FaultKind.WS_DELAY,
    FaultKind.WS_MALFORMED,
    FaultKind.WS_SKIP_SEQUENCE,
    FaultKind.WS_DUPLICATE,
    FaultKind.WS_REORDER,
    FaultKind.HTTP_ERROR,
    FaultKind.HTML_PAGE,
    FaultKind.RATE_LIMIT,
    FaultKind.SERVICE_UNAVAILABLE,
    FaultKind.INVALID_NONCE,
)


class Trigger(TypedDict, total=False):
    """When a fault fires (the keyword arguments of the :class:`Faults` shortcuts)."""

    times: int | None
    after: int
    at: float | None
    endpoint: str | None
    channel: str | None


@dataclass(slots=True)
class Fault(NotAwaitable):
    """One injected fault and its trigger (see module docs).

    Attributes:
        kind: what goes wrong.
        times: how many opportunities it takes (``None``: until cleared).
        after: opportunities to let pass before the first firing.
        at: monotonic time before which it does not fire.
        seconds: delay (``ws_delay``, ``slow_response``) or duration
            (``ws_silence``; ``None`` there means until cleared).
        status: HTTP status for ``http_error`` (520) and ``html_page`` (200).
        endpoint: REST method it is limited to (``"Balance"``), if any.
        channel: WebSocket channel it is limited to (``"balances"``), if any.
        id: identifier for :meth:`Faults.clear`.
        fired: how many times it has fired.
        seen: how many opportunities it has been offered.
        fired_at: monotonic time of the last firing.
    """

    kind: FaultKind
    times: int | None = 1
    after: int = 0
    at: float | None = None
    seconds: float | None = None
    status: int | None = None
    endpoint: str | None = None
    channel: str | None = None
    id: int = 0
    fired: int = 0
    seen: int = 0
    fired_at: float | None = None

    _SYNC_CALLS: ClassVar[str] = "sim.faults.inject() or one of its shortcuts (drop_websocket()...)"

    @property
    def exhausted(self) -> bool:
        """Whether it will never fire again."""
        return self.times is not None and self.fired >= self.times

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly view (for the control endpoint)."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "times": self.times,
            "after": self.after,
            "at": self.at,
            "seconds": self.seconds,
            "status": self.status,
            "endpoint": self.endpoint,
            "channel": self.channel,
            "fired": self.fired,
            "seen": self.seen,
        }


@dataclass(frozen=True, slots=True)
class FiredFault:
    """A record of one firing (for tests and the control endpoint).

    Attributes:
        fault_id: the fault's id.
        kind: its kind.
        at: monotonic time of the firing.
        where: the endpoint or channel it hit.
    """

    fault_id: int
    kind: FaultKind
    at: float
    where: str


@dataclass(slots=True)
class _Hooks:
    """Actions the server wires in: revoking tokens and changing the status."""

    revoke_tokens: Callable[[], int] = lambda: 0
    set_status: Callable[[str], None] = lambda status: None
    get_status: Callable[[], str] = lambda: "online"
    listeners: list[Callable[[Fault], None]] = field(default_factory=list)


class Faults:
    """The fault registry: inject, inspect, clear (see module docs).

    Args:
        monotonic: the clock's monotonic time (``Clock.monotonic``).
    """

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._history: list[FiredFault] = []
        self._hooks = _Hooks()

    # -- wiring (by the server) --------------------------------------------------

    def wire(
        self,
        *,
        revoke_tokens: Callable[[], int],
        set_status: Callable[[str], None],
        get_status: Callable[[], str],
    ) -> None:
        """Connect the actions that some faults take (done by ``SimulatedKraken``)."""
        self._hooks.revoke_tokens = revoke_tokens
        self._hooks.set_status = set_status
        self._hooks.get_status = get_status

    def on_change(self, listener: Callable[[Fault], None]) -> None:
        """Call ``listener`` whenever a fault is injected or cleared (wakes idle loops)."""
        self._hooks.listeners.append(listener)

    # -- injecting ---------------------------------------------------------------

    def inject(
        self,
        kind: FaultKind | str,
        *,
        times: int | None = 1,
        after: int = 0,
        at: float | None = None,
        seconds: float | None = None,
        status: int | None = None,
        endpoint: str | None = None,
        channel: str | None = None,
    ) -> Fault:
        """Register a fault; returns it (keep it to :meth:`clear` it).

        Raises:
            ConfigError: unknown kind or an impossible trigger.
        """
        try:
            fault_kind = kind if isinstance(kind, FaultKind) else FaultKind(kind)
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            raise ConfigError("kind", kind, f"unknown fault; known: {known}") from None
        if times is not None and times < 1:
            raise ConfigError("times", times, "must be at least 1 (or None: until cleared)")
        if after < 0:
            raise ConfigError("after", after, "must not be negative")
        if seconds is not None and (seconds < 0 or math.isnan(seconds)):
            raise ConfigError("seconds", seconds, "must not be negative")
        if fault_kind in _DELAYS and seconds is None:
            raise ConfigError("seconds", seconds, f"{fault_kind.value} needs a delay")
        if fault_kind is FaultKind.HTTP_ERROR:
            status = 520 if status is None else status
        elif fault_kind is FaultKind.HTML_PAGE:
            status = 200 if status is None else status
        if status is not None and not 100 <= status <= 599:
            raise ConfigError("status", status, "must be an HTTP status code")
        fault = Fault(
            kind=fault_kind,
            times=times,
            after=after,
            at=at,
            seconds=seconds,
            status=status,
            endpoint=endpoint,
            channel=channel,
            id=next(self._ids),
        )
        self._faults.append(fault)
        self._changed(fault)
        return fault

    # Named shortcuts, one per kind.

    def drop_websocket(self, **trigger: Unpack[Trigger]) -> Fault:
        """Close the WebSocket abruptly (TCP abort, no close frame)."""
        return self.inject(FaultKind.WS_DROP, **trigger)

    def go_silent(self, seconds: float | None = None, **trigger: Unpack[Trigger]) -> Fault:
        """Stop sending anything for ``seconds`` (``None``: until cleared), socket open."""
        return self.inject(FaultKind.WS_SILENCE, seconds=seconds, **trigger)

    def lose_frame(self, **trigger: Unpack[Trigger]) -> Fault:
        """Lose the next frame (of ``channel``, if given) in flight; later frames flow.

        A lost ``balances`` or ``executions`` frame used its ``sequence``, as a
        real loss would: the channel's next frame shows the gap, and until one
        comes nothing on the connection reveals the loss.
        """
        return self.inject(FaultKind.WS_LOSE, **trigger)

    def delay_frames(self, seconds: float, **trigger: Unpack[Trigger]) -> Fault:
        """Hold the next frame (and those behind it) ``seconds`` on the clock."""
        return self.inject(FaultKind.WS_DELAY, seconds=seconds, **trigger)

    def malformed_frame(self, **trigger: Unpack[Trigger]) -> Fault:
        """Send an invalid JSON frame before the next frame."""
        return self.inject(FaultKind.WS_MALFORMED, **trigger)

    def skip_sequence(self, **trigger: Unpack[Trigger]) -> Fault:
        """Make the next sequenced frame skip one sequence number."""
        return self.inject(FaultKind.WS_SKIP_SEQUENCE, **trigger)

    def duplicate_frame(self, **trigger: Unpack[Trigger]) -> Fault:
        """Send the next sequenced frame twice."""
        return self.inject(FaultKind.WS_DUPLICATE, **trigger)

    def reorder_frames(self, **trigger: Unpack[Trigger]) -> Fault:
        """Send the next sequenced frame after the next frame of its channel."""
        return self.inject(FaultKind.WS_REORDER, **trigger)

    def reject_token(self, **trigger: Unpack[Trigger]) -> Fault:
        """Fail the next private subscription with the token error."""
        return self.inject(FaultKind.TOKEN_REJECT, **trigger)

    def expire_token(self, **trigger: Unpack[Trigger]) -> Fault:
        """At the next private subscription, invalidate every token issued so far."""
        return self.inject(FaultKind.TOKEN_EXPIRE, **trigger)

    def expire_tokens_now(self) -> int:
        """Invalidate every token issued so far, at once; returns how many."""
        return self._hooks.revoke_tokens()

    def http_error(self, status: int = 520, **trigger: Unpack[Trigger]) -> Fault:
        """Answer the next REST call with HTTP ``status`` and a Cloudflare-like page."""
        return self.inject(FaultKind.HTTP_ERROR, status=status, **trigger)

    def html_page(self, status: int = 200, **trigger: Unpack[Trigger]) -> Fault:
        """Answer the next REST call with an HTML page instead of JSON."""
        return self.inject(FaultKind.HTML_PAGE, status=status, **trigger)

    def rate_limit(self, **trigger: Unpack[Trigger]) -> Fault:
        """Answer the next REST call with ``EAPI:Rate limit exceeded``."""
        return self.inject(FaultKind.RATE_LIMIT, **trigger)

    def service_unavailable(self, **trigger: Unpack[Trigger]) -> Fault:
        """Answer the next REST call with ``EService:Unavailable``."""
        return self.inject(FaultKind.SERVICE_UNAVAILABLE, **trigger)

    def invalid_nonce(self, **trigger: Unpack[Trigger]) -> Fault:
        """Answer the next REST call with ``EAPI:Invalid nonce``."""
        return self.inject(FaultKind.INVALID_NONCE, **trigger)

    def lockout(self, **trigger: Unpack[Trigger]) -> Fault:
        """Answer the next REST call with ``EGeneral:Temporary lockout``."""
        return self.inject(FaultKind.LOCKOUT, **trigger)

    def slow_response(self, seconds: float, **trigger: Unpack[Trigger]) -> Fault:
        """Answer the next REST call only after ``seconds`` on the clock."""
        return self.inject(FaultKind.SLOW_RESPONSE, seconds=seconds, **trigger)

    def slow_answer(self, seconds: float, **trigger: Unpack[Trigger]) -> Fault:
        """Read the account for the next REST call at once, deliver the answer ``seconds`` later.

        The answer describes the account as it was when the request arrived: what
        happens meanwhile is not in it (a slow network on the way back).
        """
        return self.inject(FaultKind.SLOW_ANSWER, seconds=seconds, **trigger)

    def set_status(self, status: str) -> None:
        """Set the system status: ``online``, ``maintenance``, ``cancel_only``, ``post_only``."""
        self._hooks.set_status(status)

    def maintenance(self) -> None:
        """Enter maintenance (``set_status("maintenance")``)."""
        self.set_status("maintenance")

    def online(self) -> None:
        """Back to normal (``set_status("online")``)."""
        self.set_status("online")

    @property
    def status(self) -> str:
        """The current system status."""
        return self._hooks.get_status()

    def random_plan(
        self,
        seed: int,
        count: int,
        *,
        kinds: Sequence[FaultKind] = _RANDOM_DEFAULT_KINDS,
        max_after: int = 20,
    ) -> list[Fault]:
        """Inject ``count`` random one-shot faults, the same ones for the same ``seed``."""
        rng = random.Random(seed)
        plan = []
        for _ in range(count):
            kind = rng.choice(list(kinds))
            seconds = None
            if kind in _DELAYS:
                seconds = float(rng.randint(1, 5))
            plan.append(self.inject(kind, after=rng.randint(0, max_after), seconds=seconds))
        return plan

    # -- inspecting and clearing ---------------------------------------------------

    def active(self) -> list[Fault]:
        """Faults that may still fire or still act (silence), oldest first."""
        return [f for f in self._faults if not f.exhausted or self._silencing(f)]

    @property
    def history(self) -> tuple[FiredFault, ...]:
        """Every firing so far, oldest first."""
        return tuple(self._history)

    def clear(self, fault: Fault | int | None = None) -> None:
        """Remove one fault (by object or id), or every fault when none is given."""
        if fault is None:
            removed = self._faults
            self._faults = []
        else:
            fault_id = fault if isinstance(fault, int) else fault.id
            removed = [f for f in self._faults if f.id == fault_id]
            self._faults = [f for f in self._faults if f.id != fault_id]
        for gone in removed:
            self._changed(gone)

    # -- opportunities (called by the REST and WebSocket layers) ------------------

    def take(
        self,
        kinds: Iterable[FaultKind],
        *,
        endpoint: str | None = None,
        channel: str | None = None,
        limit: int | None = None,
    ) -> list[Fault]:
        """Offer one opportunity to the faults of ``kinds``; returns those that fire.

        ``limit`` caps how many may fire at this opportunity (oldest first): a
        REST request can be answered by one error only, and a fault that fired
        must also have acted, or :attr:`history` would claim what never happened.
        """
        wanted = frozenset(kinds)
        now = self._monotonic()
        fired: list[Fault] = []
        for fault in list(self._faults):
            if limit is not None and len(fired) >= limit:
                break
            if fault.kind not in wanted or fault.exhausted:
                continue
            if fault.endpoint is not None and fault.endpoint != endpoint:
                continue
            if fault.channel is not None and fault.channel != channel:
                continue
            if fault.at is not None and now < fault.at:
                continue
            fault.seen += 1
            if fault.seen <= fault.after:
                continue
            fault.fired += 1
            fault.fired_at = now
            self._history.append(FiredFault(fault.id, fault.kind, now, endpoint or channel or ""))
            logger.info("fault %s #%d fired on %s", fault.kind.value, fault.id, endpoint or channel)
            if fault.kind is FaultKind.TOKEN_EXPIRE:
                self._hooks.revoke_tokens()
            fired.append(fault)
        return fired

    def silenced(self) -> bool:
        """Whether a fired ``ws_silence`` fault is muting the server now."""
        return any(self._silencing(f) for f in self._faults)

    def silence_ends(self) -> float | None:
        """Monotonic end of the current silence (``inf`` until cleared), or ``None``."""
        ends = [
            math.inf if f.seconds is None else (f.fired_at or 0.0) + f.seconds
            for f in self._faults
            if self._silencing(f)
        ]
        return max(ends) if ends else None

    def _silencing(self, fault: Fault) -> bool:
        if fault.kind is not FaultKind.WS_SILENCE or fault.fired_at is None:
            return False
        if fault.seconds is None:
            return True
        return self._monotonic() < fault.fired_at + fault.seconds

    def _changed(self, fault: Fault) -> None:
        for listener in list(self._hooks.listeners):
            listener(fault)

    def __repr__(self) -> str:
        return f"Faults(active={len(self.active())}, fired={len(self._history)})"
