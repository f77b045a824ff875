"""Kraken-looking ids from seeded streams: shape, repeatability, independence of streams."""

from __future__ import annotations

import random
import re

from balance_manager.simulator.model.ids import IdSource, kraken_id

ID = re.compile(r"^[A-Z][A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}$")


def test_ids_are_shaped_like_krakens() -> None:
    """Prefix letter, then 5, 5 and 6 base32 characters."""
    assert ID.match(kraken_id(random.Random(1), "O"))
    assert ID.match(IdSource(1).next("L"))


def test_each_stream_depends_only_on_the_seed_and_its_own_draws() -> None:
    """Drawing ledger ids or market orders never shifts the account's own order ids."""
    quiet, busy = IdSource(5), IdSource(5)
    for _ in range(7):
        busy.next("L")
        busy.next("O", "market")
    assert [busy.next("O") for _ in range(3)] == [quiet.next("O") for _ in range(3)]
    assert IdSource(5).next("O") != IdSource(6).next("O")
    assert IdSource(5).next("O") != IdSource(5).next("O", "market")
