"""Tests of kraken.protocol.ws_session: transitions, sequences, continuity, holds."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from balance_manager.core.sources import StreamLedgerUpdate
from balance_manager.exceptions import AuthenticationError, ProtocolError
from balance_manager.kraken.protocol.ws_messages import (
    AssetBalance,
    Execution,
    LedgerEntry,
    WalletBalance,
    encode_balances_snapshot,
    encode_balances_update,
    encode_executions,
    encode_heartbeat,
    encode_method_response,
    encode_pong,
    encode_status,
)
from balance_manager.kraken.protocol.ws_session import (
    TRANSITIONS,
    BalancesSnapshot,
    ErrorReceived,
    Heartbeat,
    HoldsChanged,
    InvalidTransition,
    KrakenSession,
    MessageRejected,
    Pong,
    ResyncStarted,
    SessionEvent,
    SessionState,
    StatusChanged,
    Subscribed,
    SubscriptionFailed,
    Trigger,
)

D = Decimal
TOKEN = "G38a1tGFzqGiUCmnegBcm8d4nfP3tytiNQz6tkCBYXY"
NOW = 1_700_000_000.0
FixtureBytes = Callable[[str], bytes]


def snapshot_frame(sequence: int, **assets: Any) -> bytes:
    """A balances snapshot: asset=amount (one spot wallet) or asset=[(type, id, amount)...]."""
    items = []
    for asset, spec in assets.items():
        wallets = spec if isinstance(spec, list) else [("spot", "main", spec)]
        items.append(
            AssetBalance(
                asset=asset,
                asset_class="currency",
                balance=sum((D(w[2]) for w in wallets), D(0)),
                wallets=tuple(WalletBalance(t, i, D(a)) for t, i, a in wallets),
            )
        )
    return encode_balances_snapshot(items, sequence)


def entry(
    asset: str,
    amount: str,
    balance: str,
    *,
    fee: str = "0",
    ledger_id: str = "L1",
    wallet: tuple[str, str] = ("spot", "main"),
) -> LedgerEntry:
    """One ledger entry."""
    return LedgerEntry(
        ledger_id=ledger_id,
        ref_id="R1",
        timestamp="2023-09-22T10:23:42.925034Z",
        type="deposit",
        asset=asset,
        asset_class="currency",
        category="deposit",
        wallet_type=wallet[0],
        wallet_id=wallet[1],
        amount=D(amount),
        fee=D(fee),
        balance=D(balance),
    )


def ack(req_id: int, channel: str, *, success: bool = True, error: str | None = None) -> bytes:
    """The server's answer to our subscribe number ``req_id``."""
    return encode_method_response(
        "subscribe",
        success=success,
        result={"channel": channel, "snapshot": True} if success else None,
        error=error,
        req_id=req_id,
        time_in=NOW,
        time_out=NOW,
    )


def state(session: KrakenSession) -> SessionState:
    """The session's state (a call, so mypy does not narrow it across inputs)."""
    return session.state


def sent(session: KrakenSession) -> list[dict[str, Any]]:
    """The frames the session wants sent, parsed."""
    return [json.loads(frame) for frame in session.data_to_send()]


def kinds(events: list[SessionEvent]) -> list[str]:
    """Event class names, in order."""
    return [type(event).__name__ for event in events]


def streaming(first: bytes, *, executions: bool = False) -> KrakenSession:
    """A session through connect, token and subscription, fed ``first`` as the snapshot."""
    session = KrakenSession(subscribe_executions=executions)
    session.token_received(TOKEN)
    session.connection_opened()
    session.data_to_send()
    session.feed(ack(1, "balances"), NOW)
    session.feed(first, NOW)
    assert state(session) is SessionState.STREAMING
    return session


# -- transitions --------------------------------------------------------------------------


def test_connect_authenticate_subscribe() -> None:
    """open → AUTHENTICATING; token → SUBSCRIBING with a balances subscribe (snapshot) queued."""
    session = KrakenSession()
    assert state(session) is SessionState.CONNECTING
    session.connection_opened()
    assert state(session) is SessionState.AUTHENTICATING
    assert session.data_to_send() == []
    session.token_received(TOKEN)
    assert state(session) is SessionState.SUBSCRIBING
    assert sent(session) == [
        {
            "method": "subscribe",
            "params": {"channel": "balances", "token": TOKEN, "snapshot": True},
            "req_id": 1,
        }
    ]
    assert session.data_to_send() == []  # the queue was emptied


def test_token_before_open_subscribes_on_open() -> None:
    """A token fetched before connecting is used as soon as the socket opens."""
    session = KrakenSession(subscribe_executions=True)
    session.token_received(TOKEN)
    assert state(session) is SessionState.CONNECTING
    session.connection_opened()
    assert state(session) is SessionState.SUBSCRIBING
    frames = sent(session)
    assert [f["params"]["channel"] for f in frames] == ["balances", "executions"]
    assert frames[1]["params"] == {
        "channel": "executions",
        "token": TOKEN,
        "snap_orders": True,
        "snap_trades": False,
    }


def test_ack_then_snapshot_reaches_streaming(fixture_bytes: FixtureBytes) -> None:
    """The ack gives Subscribed; the fixture snapshot gives BalancesSnapshot and STREAMING."""
    session = KrakenSession()
    session.token_received(TOKEN)
    session.connection_opened()
    assert session.feed(ack(1, "balances"), NOW) == [Subscribed("balances")]
    events = session.feed(fixture_bytes("ws_balances_snapshot.json"), NOW)
    assert kinds(events) == ["BalancesSnapshot"]
    snapshot = events[0]
    assert isinstance(snapshot, BalancesSnapshot)
    assert snapshot.sequence == 1
    matic = snapshot.balances["MATIC"]
    assert (matic.tradable, matic.earn, matic.total) == (D(300), D(200), D(500))
    assert matic.wallets == {("spot", "main"): D(300), ("earn", "flex"): D(200)}
    assert snapshot.balances["USD"].tradable == D("80595.4943")
    assert state(session) is SessionState.STREAMING
    assert session.sequence() == 1


def test_illegal_inputs_raise_invalid_transition() -> None:
    """Opening twice is a caller bug and raises; the table has no such entry."""
    session = KrakenSession()
    session.connection_opened()
    with pytest.raises(InvalidTransition) as info:
        session.connection_opened()
    assert (info.value.state, info.value.trigger) == (SessionState.AUTHENTICATING, Trigger.OPENED)
    assert (SessionState.AUTHENTICATING, Trigger.OPENED) not in TRANSITIONS


def test_every_state_is_reachable_and_left() -> None:
    """The table reaches every state and every state but CLOSED's reconnect has an exit."""
    targets = set(TRANSITIONS.values())
    sources = {state for state, _ in TRANSITIONS}
    assert targets == set(SessionState) - {SessionState.CONNECTING}
    assert sources == set(SessionState)


def test_connection_lost_forgets_the_token_and_reconnects(fixture_bytes: FixtureBytes) -> None:
    """After a loss the session is CLOSED, sends nothing, and resubscribes with a new token."""
    session = streaming(fixture_bytes("ws_balances_snapshot.json"))
    session.ping(NOW)
    session.connection_lost("reset by peer")
    assert state(session) is SessionState.CLOSED
    assert session.data_to_send() == []
    session.connection_lost("reported twice")  # idempotent
    assert session.wallets()["BTC"].tradable == D("1.2")  # last known values are kept
    session.connection_opened()
    assert state(session) is SessionState.AUTHENTICATING  # the old token is gone
    assert session.data_to_send() == []
    session.token_received("fresh-token")
    assert sent(session)[0]["params"]["token"] == "fresh-token"
    assert session.sequence() is None  # no base until the new snapshot


def test_updates_before_the_snapshot_are_ignored(fixture_bytes: FixtureBytes) -> None:
    """An update with no snapshot to build on is ignored and counted."""
    session = KrakenSession()
    session.token_received(TOKEN)
    session.connection_opened()
    assert session.feed(fixture_bytes("ws_balances_update_deposit.json"), NOW) == []
    assert session.counters.ignored == 1
    assert state(session) is SessionState.SUBSCRIBING


def test_messages_before_open_never_raise(fixture_bytes: FixtureBytes) -> None:
    """Data arriving in CONNECTING or CLOSED is ignored, never raised."""
    session = KrakenSession()
    assert session.feed(fixture_bytes("ws_balances_snapshot.json"), NOW) == []
    assert session.feed(fixture_bytes("ws_balances_update_deposit.json"), NOW) == []
    assert state(session) is SessionState.CONNECTING


# -- sequences ----------------------------------------------------------------------------


def test_deposit_in_sequence_applies(fixture_bytes: FixtureBytes) -> None:
    """Snapshot BTC 0.01 (seq 1) + the deposit fixture (seq 2) → 0.02, continuity ok."""
    session = streaming(snapshot_frame(1, BTC="0.01"))
    events = session.feed(fixture_bytes("ws_balances_update_deposit.json"), NOW)
    (update,) = events
    assert isinstance(update, StreamLedgerUpdate)
    assert (update.asset, update.balance, update.earn) == ("BTC", D("0.02"), D(0))
    assert update.continuity_ok
    assert (update.ledger_id, update.kind, update.amount, update.fee) == (
        "ADKKFF-WEA5A-CNUBHG",
        "deposit",
        D("0.01"),
        D(0),
    )
    assert update.exchange_time == 1695378222.925034
    assert update.received_at == NOW
    assert session.sequence() == 2
    assert session.counters.updates == 1


def test_trade_legs_apply_in_order(fixture_bytes: FixtureBytes) -> None:
    """Both legs of the documented trade (seq 9, 10) apply after a snapshot at seq 8."""
    session = streaming(snapshot_frame(8, BTC="0.01", USD="367.3463"))
    btc = session.feed(fixture_bytes("ws_balances_update_trade_btc_leg.json"), NOW)
    usd = session.feed(fixture_bytes("ws_balances_update_trade_usd_leg.json"), NOW)
    assert isinstance(btc[0], StreamLedgerUpdate)
    assert isinstance(usd[0], StreamLedgerUpdate)
    assert (btc[0].balance, btc[0].continuity_ok) == (D("0.005"), True)
    # 367.3463 + 132.9995 - 0.3458 fee = 500
    assert (usd[0].balance, usd[0].continuity_ok) == (D(500), True)
    assert btc[0].ref_id == usd[0].ref_id
    assert session.counters.continuity_breaks == 0


def test_gap_starts_a_resync_and_the_snapshot_ends_it(fixture_bytes: FixtureBytes) -> None:
    """A jump from 1 to 9 resubscribes; updates wait; the new snapshot resumes streaming."""
    session = streaming(fixture_bytes("ws_balances_snapshot.json"))
    events = session.feed(fixture_bytes("ws_balances_update_trade_btc_leg.json"), NOW)
    assert events == [ResyncStarted("balances", "sequence gap: got 9 after 1")]
    assert state(session) is SessionState.RESYNCING
    assert (session.counters.gaps, session.counters.resyncs) == (1, 1)
    frames = sent(session)
    assert [(f["method"], f["params"]["channel"]) for f in frames] == [
        ("unsubscribe", "balances"),
        ("subscribe", "balances"),
    ]
    assert frames[1]["params"]["snapshot"] is True
    assert frames[1]["params"]["token"] == TOKEN
    # Updates are ignored until the snapshot (its sequence is the new base, whatever it is).
    assert session.feed(fixture_bytes("ws_balances_update_trade_usd_leg.json"), NOW) == []
    assert session.feed(snapshot_frame(20, BTC="0.005", USD="500"), NOW)
    assert state(session) is SessionState.STREAMING
    assert session.sequence() == 20
    assert session.wallets()["USD"].tradable == D(500)


def test_out_of_order_update_resyncs(fixture_bytes: FixtureBytes) -> None:
    """An older sequence that is not a known duplicate is out of order: resync."""
    session = streaming(snapshot_frame(5, BTC="0.01"))
    events = session.feed(fixture_bytes("ws_balances_update_deposit.json"), NOW)  # seq 2 < 5
    assert events == [ResyncStarted("balances", "sequence out of order: got 2 after 5")]


def test_exact_duplicate_is_dropped_not_resynced(fixture_bytes: FixtureBytes) -> None:
    """The same update twice (same sequence, same ledger ids) is counted, not applied."""
    session = streaming(snapshot_frame(1, BTC="0.01"))
    session.feed(fixture_bytes("ws_balances_update_deposit.json"), NOW)
    assert session.feed(fixture_bytes("ws_balances_update_deposit.json"), NOW) == []
    assert session.counters.duplicates == 1
    assert session.counters.resyncs == 0
    assert state(session) is SessionState.STREAMING
    assert session.wallets()["BTC"].tradable == D("0.02")  # applied once


def test_same_sequence_with_other_ids_is_not_a_duplicate() -> None:
    """A repeated sequence carrying different ledger ids resyncs instead."""
    session = streaming(snapshot_frame(1, BTC="0"))
    session.feed(encode_balances_update([entry("BTC", "1", "1", ledger_id="A")], 2), NOW)
    events = session.feed(encode_balances_update([entry("BTC", "1", "2", ledger_id="B")], 2), NOW)
    assert kinds(events) == ["ResyncStarted"]
    assert session.counters.duplicates == 0


def test_duplicate_window_remembers_the_last_64_messages() -> None:
    """A replay of any of the last 64 updates is a duplicate; an older one is out of order."""
    session = streaming(snapshot_frame(1, BTC="0"))
    frames = {
        seq: encode_balances_update([entry("BTC", "1", str(seq - 1), ledger_id=f"L{seq}")], seq)
        for seq in range(2, 71)
    }
    for seq in range(2, 71):
        assert kinds(session.feed(frames[seq], NOW)) == ["StreamLedgerUpdate"]
    assert session.feed(frames[70 - 63], NOW) == []  # the 64th most recent: remembered
    assert session.counters.duplicates == 1
    events = session.feed(frames[70 - 64], NOW)  # one older: forgotten
    assert kinds(events) == ["ResyncStarted"]
    assert session.counters.duplicates == 1


def test_every_asset_shares_one_key_tuple_per_wallet_kind() -> None:
    """Wallet keys are shared, not one tuple (and two strings) per asset: from snapshots
    and from updates that open a wallet alike."""
    session = streaming(
        snapshot_frame(
            1,
            **{f"A{n}": [("spot", "main", "1"), ("earn", "flexible", "2")] for n in range(50)},
        )
    )
    session.feed(encode_balances_update([entry("NEW", "5", "5", ledger_id="L-NEW")], 2), NOW)
    keys = [key for asset in session._wallets.values() for key in asset]
    assert len(keys) == 101
    assert len({id(key) for key in keys}) == 2  # ("spot", "main") and ("earn", "flexible")


# -- continuity ---------------------------------------------------------------------------


def test_continuity_break_applies_the_balance_and_resyncs(fixture_bytes: FixtureBytes) -> None:
    """Snapshot BTC 1.2 then deposit 'balance 0.02': 0.02 is kept, flagged, and resynced."""
    session = streaming(fixture_bytes("ws_balances_snapshot.json"))
    events = session.feed(fixture_bytes("ws_balances_update_deposit.json"), NOW)
    assert kinds(events) == ["StreamLedgerUpdate", "ResyncStarted"]
    update = events[0]
    assert isinstance(update, StreamLedgerUpdate)
    assert not update.continuity_ok
    assert update.balance == D("0.02")
    assert session.counters.continuity_breaks == 1
    assert state(session) is SessionState.RESYNCING


def test_per_wallet_balance_reading() -> None:
    """With several wallets, a balance equal to the wallet's new value is read per wallet."""
    session = streaming(snapshot_frame(1, MATIC=[("spot", "main", "300"), ("earn", "flex", "200")]))
    (update,) = session.feed(encode_balances_update([entry("MATIC", "10", "310")], 2), NOW)
    assert isinstance(update, StreamLedgerUpdate)
    assert update.continuity_ok
    assert (update.balance, update.earn) == (D(310), D(200))


def test_all_wallet_total_reading() -> None:
    """A balance equal to the asset's new total is read as the total (the docs' wording)."""
    session = streaming(snapshot_frame(1, MATIC=[("spot", "main", "300"), ("earn", "flex", "200")]))
    (update,) = session.feed(encode_balances_update([entry("MATIC", "-5", "494", fee="1")], 2), NOW)
    assert isinstance(update, StreamLedgerUpdate)
    assert update.continuity_ok
    assert (update.balance, update.earn) == (D(294), D(200))


def test_earn_wallet_update() -> None:
    """An update to an earn wallet moves the earn view, not the tradable one."""
    session = streaming(snapshot_frame(1, DOT=[("spot", "main", "1")]))
    (update,) = session.feed(
        encode_balances_update([entry("DOT", "2", "2", wallet=("earn", "bonded"))], 2), NOW
    )
    assert isinstance(update, StreamLedgerUpdate)
    assert update.continuity_ok  # new wallet: 0 + 2 = 2 per wallet
    assert (update.balance, update.earn) == (D(1), D(2))


def test_new_asset_after_the_snapshot() -> None:
    """A deposit of an asset absent from the snapshot starts from zero."""
    session = streaming(snapshot_frame(1, USD="1"))
    (update,) = session.feed(encode_balances_update([entry("SOL", "3", "3")], 2), NOW)
    assert isinstance(update, StreamLedgerUpdate)
    assert (update.asset, update.balance, update.continuity_ok) == ("SOL", D(3), True)


def test_snapshot_wallets_keep_every_digit() -> None:
    """A wallet of 29 significant digits is read exactly (the default context rounds at 28)."""
    value = "100000000.99999999999999999999"
    session = streaming(snapshot_frame(1, BTC=[("spot", "main", value), ("earn", "flex", "1")]))
    assert session.wallets()["BTC"].tradable == D(value)
    (update,) = session.feed(encode_balances_update([entry("BTC", "0", value)], 2), NOW)
    assert isinstance(update, StreamLedgerUpdate)
    assert update.continuity_ok  # no false break from a rounded wallet


def test_an_unreadable_timestamp_still_applies_the_entry() -> None:
    """An entry whose timestamp is not RFC 3339 is applied and emitted, its time unknown."""
    session = streaming(snapshot_frame(1, BTC="1"))
    bad = msgspec.structs.replace(entry("BTC", "1", "2"), timestamp="not a time")
    (update,) = session.feed(encode_balances_update([bad], 2), NOW)
    assert isinstance(update, StreamLedgerUpdate)
    assert (update.balance, update.exchange_time, update.continuity_ok) == (D(2), None, True)
    assert state(session) is SessionState.STREAMING


def test_multi_entry_update_emits_one_event_per_entry_in_order() -> None:
    """Each ledger entry of one update becomes its own StreamLedgerUpdate, in order."""
    session = streaming(snapshot_frame(1, BTC="1", USD="0"))
    entries = [
        entry("BTC", "-0.5", "0.5", ledger_id="A"),
        entry("USD", "100", "99.5", fee="0.5", ledger_id="B"),
    ]
    events = session.feed(encode_balances_update(entries, 2), NOW)
    assert [e.ledger_id for e in events if isinstance(e, StreamLedgerUpdate)] == ["A", "B"]
    assert session.counters.ledger_entries == 2


# -- subscriptions, status, pings, errors ------------------------------------------------


def test_balances_subscription_failure_closes(fixture_bytes: FixtureBytes) -> None:
    """A refused balances subscription (bad token) closes the session, with the error."""
    session = KrakenSession()
    session.token_received(TOKEN)
    session.connection_opened()
    session.data_to_send()
    events = session.feed(ack(1, "balances", success=False, error="ESession:Invalid session"), NOW)
    assert events == [SubscriptionFailed("balances", "ESession:Invalid session")]
    failure = events[0]
    assert isinstance(failure, SubscriptionFailed)
    assert isinstance(failure.exception, AuthenticationError)
    assert state(session) is SessionState.CLOSED


def test_executions_subscription_failure_keeps_streaming(fixture_bytes: FixtureBytes) -> None:
    """A refused executions subscription leaves balances streaming, holds not live."""
    session = KrakenSession(subscribe_executions=True)
    session.token_received(TOKEN)
    session.connection_opened()
    session.data_to_send()
    session.feed(ack(1, "balances"), NOW)
    events = session.feed(
        ack(2, "executions", success=False, error="EGeneral:Permission denied"), NOW
    )
    assert events == [SubscriptionFailed("executions", "EGeneral:Permission denied")]
    session.feed(fixture_bytes("ws_balances_snapshot.json"), NOW)
    assert state(session) is SessionState.STREAMING
    assert not session.holds_live


def test_status_heartbeat_and_bare_errors(fixture_bytes: FixtureBytes) -> None:
    """status, heartbeat and bare error frames become their events."""
    session = KrakenSession()
    session.connection_opened()
    assert session.feed(fixture_bytes("ws_status.json"), NOW) == [
        StatusChanged("online", 13834774380200032777)
    ]
    assert session.system == "online"
    assert session.feed(encode_status(connection_id=1, system="maintenance"), NOW) == [
        StatusChanged("maintenance", 1)
    ]
    assert session.feed(encode_heartbeat(), NOW) == [Heartbeat()]
    assert session.feed(b'{"Error":"Exceeded msg rate"}', NOW) == [
        ErrorReceived("Exceeded msg rate")
    ]
    assert session.feed(b'{"channel":"level3","type":"update","data":[]}', NOW) == []


def test_ping_and_pong_measure_the_round_trip() -> None:
    """ping(now) queues a ping with a fresh req_id; its pong carries sent_at and rtt."""
    session = KrakenSession()
    session.connection_opened()
    session.ping(100.0)
    session.ping(101.0)
    frames = sent(session)
    assert frames == [{"method": "ping", "req_id": 1}, {"method": "ping", "req_id": 2}]
    assert session.feed(encode_pong(2, 101.0, 101.0), 101.25) == [Pong(2, 101.0, 0.25)]
    assert session.feed(encode_pong(99, 0.0, 0.0), 102.0) == [Pong(99, None, None)]


def test_malformed_frames_are_rejected_not_raised() -> None:
    """A malformed frame is counted and reported as MessageRejected."""
    session = streaming(snapshot_frame(1, BTC="1"))
    events = session.feed(b'{"channel":"balances","type":"update","data":[{"ledger_id":"L', NOW)
    (rejected,) = events
    assert isinstance(rejected, MessageRejected)
    assert isinstance(rejected.error, ProtocolError)
    assert session.counters.rejected == 1
    assert state(session) is SessionState.STREAMING


def test_a_lost_update_is_caught_by_the_next_sequence() -> None:
    """After a rejected frame the next update shows a gap, which resyncs."""
    session = streaming(snapshot_frame(1, BTC="1"))
    session.feed(b"garbage", NOW)  # this was sequence 2
    events = session.feed(encode_balances_update([entry("BTC", "1", "3")], 3), NOW)
    assert kinds(events) == ["ResyncStarted"]


def test_request_resync() -> None:
    """A manager request resyncs when streaming, and is a no-op when not connected."""
    session = KrakenSession()
    assert session.request_resync("REST disagrees") == []
    session = streaming(snapshot_frame(1, BTC="1"))
    assert session.request_resync("REST disagrees") == [ResyncStarted("balances", "REST disagrees")]
    assert session.request_resync("again") == []  # already waiting for a snapshot
    assert session.counters.resyncs == 1
    with pytest.raises(ValueError, match="channel"):
        session.request_resync("x", channel="trades")


def test_has_data_to_send_says_whether_frames_are_queued() -> None:
    """The read loop's per-frame check: true exactly while data_to_send() would return frames."""
    session = streaming(snapshot_frame(1, BTC="1"))
    assert not session.has_data_to_send
    assert session.data_to_send() == []
    session.request_resync("REST disagrees")
    assert session.has_data_to_send
    assert session.data_to_send() != []
    assert not session.has_data_to_send


def test_no_token_in_reprs_or_events(fixture_bytes: FixtureBytes) -> None:
    """The token never shows in the session's repr or any event's repr."""
    session = KrakenSession(subscribe_executions=True)
    session.token_received(TOKEN)
    session.connection_opened()
    events = session.feed(ack(1, "balances", success=False, error="EAPI:Invalid key"), NOW)
    text = repr(session) + repr(events) + repr(session.counters)
    assert TOKEN not in text
    assert "state=CLOSED" in repr(session)


# -- executions → holds ---------------------------------------------------------------------


def order(order_id: str, side: str, qty: str, price: str, **more: Any) -> Execution:
    """A new limit order on BTC/USD."""
    return Execution(
        order_id=order_id,
        exec_type="new",
        order_status="new",
        symbol="BTC/USD",
        side=side,
        order_type="limit",
        order_qty=D(qty),
        limit_price=D(price),
        cum_qty=D(0),
        **more,
    )


def holds_session() -> KrakenSession:
    """A streaming session with executions subscribed and an empty orders snapshot."""
    session = KrakenSession(subscribe_executions=True)
    session.token_received(TOKEN)
    session.connection_opened()
    session.data_to_send()
    session.feed(ack(1, "balances"), NOW)
    session.feed(ack(2, "executions"), NOW)
    session.feed(snapshot_frame(1, BTC="1", USD="1000"), NOW)
    live_before_snapshot = session.holds_live
    assert not live_before_snapshot  # acknowledged, but no snapshot yet
    # An empty snapshot still says "holds are live now".
    assert session.feed(encode_executions("snapshot", [], 1), NOW) == [
        HoldsChanged({}, frozenset())
    ]
    assert session.holds_live
    return session


def test_executions_drive_holds(fixture_bytes: FixtureBytes) -> None:
    """New orders, a fill and a cancel produce HoldsChanged with the new holds."""
    session = holds_session()
    events = session.feed(encode_executions("update", [order("O1", "buy", "1", "100")], 2), NOW)
    assert events == [HoldsChanged({"USD": D("100.2600")}, frozenset())]
    events = session.feed(
        encode_executions("update", [order("OK4GJX-KSTLS-7DZZO5", "sell", "0.01", "26599.9")], 3),
        NOW,
    )
    assert events == [HoldsChanged({"BTC": D("0.01")}, frozenset())]
    # The documented trade (partially fills the sell), re-sequenced to follow ours.
    trade = json.loads(fixture_bytes("ws_executions_update_trade.json"))
    trade["sequence"] = 4
    events = session.feed(json.dumps(trade), NOW)
    assert events == [HoldsChanged({"BTC": D("0.005")}, frozenset())]
    cancel = Execution(order_id="O1", exec_type="canceled", order_status="canceled")
    events = session.feed(encode_executions("update", [cancel], 5), NOW)
    assert events == [HoldsChanged({"USD": D(0)}, frozenset())]
    assert session.holds() == {"BTC": D("0.005")}


def test_executions_gap_resyncs_only_executions() -> None:
    """A gap on executions resubscribes executions; balances keep applying meanwhile."""
    session = holds_session()
    events = session.feed(encode_executions("update", [order("O1", "buy", "1", "1")], 5), NOW)
    assert events == [ResyncStarted("executions", "sequence gap: got 5 after 1")]
    assert state(session) is SessionState.RESYNCING
    frames = sent(session)
    assert [(f["method"], f["params"]["channel"]) for f in frames] == [
        ("unsubscribe", "executions"),
        ("subscribe", "executions"),
    ]
    (update,) = session.feed(encode_balances_update([entry("BTC", "1", "2")], 2), NOW)
    assert isinstance(update, StreamLedgerUpdate)
    events = session.feed(encode_executions("snapshot", [order("O1", "buy", "1", "1")], 1), NOW)
    assert kinds(events) == ["HoldsChanged"]
    assert state(session) is SessionState.STREAMING


def test_executions_ignored_when_not_subscribed(fixture_bytes: FixtureBytes) -> None:
    """Without subscribe_executions, executions frames change nothing."""
    session = streaming(snapshot_frame(1, BTC="1"))
    assert session.feed(fixture_bytes("ws_executions_update_trade.json"), NOW) == []
    assert session.holds() == {}


# -- properties ---------------------------------------------------------------------------


@given(st.lists(st.binary(max_size=120), max_size=20))
@settings(max_examples=100, deadline=None)
def test_any_frames_never_raise_out_of_feed(frames: list[bytes]) -> None:
    """Whatever the server sends, feed() returns events and never raises."""
    session = streaming(snapshot_frame(1, BTC="1"))
    for frame in frames:
        session.feed(frame, NOW)
    assert session.counters.messages == 2 + len(frames)  # the ack, the snapshot, then ours


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=8),  # sequence offset from the last one
            st.sampled_from(["A", "B"]),  # ledger id
            st.decimals(min_value=-5, max_value=5, places=2),
        ),
        max_size=25,
    )
)
@settings(max_examples=150, deadline=None)
def test_sequence_rules_match_a_model(steps: list[tuple[int, str, Decimal]]) -> None:
    """For any order of updates: next → applied, exact repeat → dropped, else → resync."""
    session = streaming(snapshot_frame(1, BTC="100"))
    last = 1
    seen: dict[int, str] = {}  # the model's record of applied sequences
    expected = {"applied": 0, "duplicates": 0, "resyncs": 0}
    for offset, ledger_id, amount in steps:
        sequence = max(0, last - 4 + offset)
        before = session.wallets()["BTC"].tradable
        frame = encode_balances_update(
            [entry("BTC", str(amount), str(before + amount), ledger_id=ledger_id)], sequence
        )
        events = session.feed(frame, NOW)
        if sequence == last + 1:
            assert kinds(events) == ["StreamLedgerUpdate"]
            expected["applied"] += 1
            seen[sequence] = ledger_id
            last = sequence
        elif seen.get(sequence) == ledger_id:
            assert events == []
            expected["duplicates"] += 1
        else:
            assert kinds(events) == ["ResyncStarted"]
            expected["resyncs"] += 1
            # The new snapshot's sequence is the new base, whatever it is.
            session.feed(snapshot_frame(sequence, BTC=str(before)), NOW)
            assert state(session) is SessionState.STREAMING
            last, seen = sequence, {}
        assert session.sequence() == last
    counters = session.counters
    assert (counters.updates, counters.duplicates, counters.resyncs) == (
        expected["applied"],
        expected["duplicates"],
        expected["resyncs"],
    )
    assert counters.continuity_breaks == 0


# -- silences ---------------------------------------------------------------------------


def test_a_silence_resyncs_balances_and_executions() -> None:
    """After a silence a live session resubscribes both channels; their updates wait."""
    session = streaming(snapshot_frame(1, USD="10"), executions=True)
    session.feed(ack(2, "executions"), NOW)
    session.feed(encode_executions("snapshot", [], 1), NOW)
    session.data_to_send()
    events = session.silence_ended(3.0)
    assert kinds(events) == ["ResyncStarted", "ResyncStarted"]
    assert [e.channel for e in events if isinstance(e, ResyncStarted)] == ["balances", "executions"]
    assert state(session) is SessionState.RESYNCING
    methods = [(f["method"], f["params"]["channel"]) for f in sent(session)]
    assert methods == [
        ("unsubscribe", "balances"),
        ("subscribe", "balances"),
        ("unsubscribe", "executions"),
        ("subscribe", "executions"),
    ]
    update = encode_balances_update([entry("USD", "5", "15")], 2)
    assert session.feed(update, NOW) == []  # waits for its snapshot


def test_a_silence_before_streaming_changes_nothing() -> None:
    """A silence while still subscribing is the watchdog's business, not a resync."""
    session = KrakenSession()
    session.token_received(TOKEN)
    session.connection_opened()
    assert session.silence_ended(5.0) == []
    assert state(session) is SessionState.SUBSCRIBING


def test_heartbeats_are_expected_until_pings_prove_the_server_sends_none() -> None:
    """Silences ended by our own pong, with no heartbeat ever seen, turn the check off."""
    session = streaming(snapshot_frame(1, USD="10"))
    assert session.expects_heartbeats
    for _ in range(3):
        session.silence_ended(5.0, by_pong=True)
        session.feed(snapshot_frame(9, USD="10"), NOW)  # the resync's snapshot
    assert not session.expects_heartbeats
    assert session.silence_ended(5.0) == []


def test_one_heartbeat_keeps_the_check_on_for_good() -> None:
    """Once a heartbeat was seen (on any connection), silences always count."""
    session = streaming(snapshot_frame(1, USD="10"))
    session.feed(encode_heartbeat(), NOW)
    for _ in range(5):
        assert session.silence_ended(5.0, by_pong=True)
        session.feed(snapshot_frame(9, USD="10"), NOW)
    assert session.expects_heartbeats
    session.connection_lost("drop")
    assert session.heartbeats_seen
