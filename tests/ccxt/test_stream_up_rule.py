"""The manager counts a stream live only when the stream says it streams.

A snapshot is values, not a status: one that arrives while its source reports
``resyncing`` (a frame ccxt had already read when the resync began) must not make
the manager serve the values being resynchronised as live.
"""

from __future__ import annotations

import pytest

from balance_manager import BalanceManager, BalanceManagerConfig, ServingMode
from balance_manager.ccxt import CcxtRestSource, CcxtStreamSource
from balance_manager.core.sources import StreamState
from balance_manager.simulator import SimulatedKraken
from balance_manager.testing import ManualClock, wait_until

from .conftest import kraken_at

pytestmark = [pytest.mark.network, pytest.mark.asyncio]

CONFIG = BalanceManagerConfig(
    history_db_path=None, reconnect_initial_delay=0.05, reconnect_max_delay=0.2
)


async def test_a_snapshot_while_resyncing_does_not_make_the_stream_live(
    sim: SimulatedKraken, clock: ManualClock
) -> None:
    rest = CcxtRestSource(kraken_at(sim), config=CONFIG, clock=clock)
    stream = CcxtStreamSource(rest)
    async with BalanceManager(stream, rest, CONFIG, clock=clock) as manager:
        await wait_until(lambda: stream.connected)
        await clock.run_for(1.0, step=0.5)
        stream.request_resync("the test says the stream lost an update")
        assert stream.state is StreamState.RESYNCING
        assert manager.serving_mode is not ServingMode.WEBSOCKET
        # A balances frame ccxt had already read, handled before the connection is torn
        # down (delivered through the hook ccxt's receive loop calls).
        stream._on_message(
            {
                "channel": "balances",
                "type": "update",
                "sequence": 999,
                "data": [
                    {
                        "asset": "ETH", "asset_class": "currency", "amount": 0.5,
                        "balance": 99.0, "fee": 0, "wallet_type": "spot", "wallet_id": "main",
                        "ledger_id": "L-TEST", "ref_id": "R-TEST", "type": "deposit",
                        "subtype": "", "category": "deposit",
                        "timestamp": "2023-01-01T00:00:00Z",
                    }
                ],
            }
        )  # fmt: skip
        assert stream.state is StreamState.RESYNCING
        assert manager.serving_mode is not ServingMode.WEBSOCKET, (
            "a resyncing stream was counted live by a snapshot"
        )
