"""History in shared mode: one writer turns the ``ledger`` stream into rows, once each.

The leader's publish script puts every history row on the account's
``ledger`` stream, each ledger entry once (ledger ids are remembered in
Redis, so a new leader seeing an entry again adds nothing). A
:class:`HistoryWriter` consumes that stream as a member of one Redis Streams
consumer group, ``history``:

* it reads new rows (``XREADGROUP``), writes them and the latest values to the
  history store in one transaction, and only then acknowledges them (``XACK``):
  a writer that dies mid-batch leaves its rows pending, never lost;
* before reading new rows it claims rows another writer left pending for longer
  than ``claim_idle`` seconds (``XAUTOCLAIM``): a crashed writer's batch is
  finished by the next one;
* the store keeps one row per ledger entry (``INSERT OR IGNORE`` on a unique
  index), so a batch written, then claimed again because its writer died
  before acknowledging it, stores no ledger entry twice. Rows without a ledger
  id (a REST refresh, a hold change) may be written twice in that one case.

The leader runs one writer while it leads (its history goes to its own
``history_db_path``); candidates on other machines each keep the part written
while they led, unless the path is a database they share.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from balance_manager.core.models import Balance
from balance_manager.exceptions import PersistenceError, ProtocolError, SharedStateError
from balance_manager.shared.codec import decode_balance, text
from balance_manager.shared.connection import SharedRedis
from balance_manager.storage.sqlite import HistoryStore, StoredRow

__all__ = ["GROUP", "HistoryWriter"]

logger = logging.getLogger(__name__)

#: The consumer group of the history writers.
GROUP = "history"


class HistoryWriter:
    """Consumes the account's ``ledger`` stream into a history store (see the module docs).

    Args:
        redis: the account's Redis connection and keys.
        store: where rows go (opened by the caller).
        consumer: this writer's name in the group (unique per writer).
        batch: rows read at once.
        claim_idle: seconds a row may stay pending with another writer before
            this one takes it over.
        block: seconds one read waits for new rows.
    """

    def __init__(
        self,
        redis: SharedRedis,
        store: HistoryStore,
        *,
        consumer: str,
        batch: int = 500,
        claim_idle: float = 5.0,
        block: float = 0.5,
    ) -> None:
        self.redis = redis
        self.store = store
        self.consumer = consumer
        self.batch = batch
        self.claim_idle = claim_idle
        self.block = min(block, redis.timeout / 2)
        self.written = 0
        """Rows handed to the store (ledger entries already stored are ignored by it)."""
        self.acknowledged = 0
        self._stream = redis.keys.key("ledger")
        self._group_ready = False

    async def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if they do not exist."""
        try:
            await self.redis.client.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except Exception as exc:  # BUSYGROUP: it exists, which is what we want
            if "BUSYGROUP" not in str(exc):
                raise self.redis.error("XGROUP CREATE", exc) from None
        self._group_ready = True

    async def step(self) -> int:
        """One batch: claim what a dead writer left pending, else read new rows; write; ack.

        Returns:
            The rows acknowledged.

        Raises:
            SharedStateError: Redis could not be reached.
            PersistenceError: the store could not be written (nothing is acknowledged).
        """
        if not self._group_ready:
            await self.ensure_group()
        client = self.redis.client
        try:
            claimed = await client.xautoclaim(
                self._stream,
                GROUP,
                self.consumer,
                min_idle_time=max(1, int(self.claim_idle * 1000)),
                start_id="0-0",
                count=self.batch,
            )
            entries: list[Any] = list(claimed[1]) if claimed else []
            if not entries:
                reply: Any = await client.xreadgroup(
                    GROUP,
                    self.consumer,
                    {self._stream: ">"},
                    count=self.batch,
                    block=max(1, int(self.block * 1000)),
                )
                entries = [entry for _, items in reply or [] for entry in items]
        except SharedStateError:
            raise
        except Exception as exc:
            raise self.redis.error("XREADGROUP", exc) from None
        if not entries:
            return 0
        rows, latest = self._rows(entries)
        if rows:
            await self.store.write(rows, latest.values())
            self.written += len(rows)
        ids = [text(entry_id) for entry_id, _ in entries]
        try:
            await client.xack(self._stream, GROUP, *ids)
        except Exception as exc:
            raise self.redis.error("XACK", exc) from None
        self.acknowledged += len(ids)
        return len(ids)

    @staticmethod
    def _rows(entries: list[Any]) -> tuple[list[StoredRow], dict[str, Balance]]:
        rows: list[StoredRow] = []
        latest: dict[str, Balance] = {}
        for entry_id, fields in entries:
            if not fields:  # claimed after the stream trimmed it: nothing left to write
                continue
            got = {text(k): text(v) for k, v in fields.items()}
            try:
                value = decode_balance(got["v"])
            except (KeyError, ProtocolError) as exc:
                logger.error("skipping ledger row %s: %s", text(entry_id), exc)
                continue
            rows.append(
                StoredRow(
                    value.asset, value.timestamp, value.balance, value.source, got.get("l") or None
                )
            )
            latest[value.asset] = value
        return rows, latest

    async def run(self, stop: asyncio.Event) -> None:
        """Write until ``stop`` is set; Redis or store failures are logged and retried."""
        delay = 0.05
        while not stop.is_set():
            try:
                await self.step()
                delay = 0.05
            except (SharedStateError, PersistenceError) as exc:
                logger.warning("history writer %s: %s; retrying", self.consumer, exc)
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)

    def __repr__(self) -> str:
        return f"HistoryWriter({self.redis.keys.prefix}, consumer={self.consumer})"
