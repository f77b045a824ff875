"""Kraken-looking identifiers, drawn from an injected random generator.

Kraken's ids are three dash-separated blocks of base32 letters and digits,
e.g. ``AAICKV-NMQSR-ZO5IJD`` (ledger entries, fixtures
``ws_balances_update_*.json``) or ``OK4GJX-KSTLS-7DZZO5`` (orders,
``ws_executions_update_trade.json``). The first letter tells the kind of
object (``L`` ledger, ``O`` order, ``T`` trade...). Drawing them from a seeded
:class:`random.Random` keeps a simulator run repeatable.

:class:`IdSource` gives every kind of id (and every origin of orders) a
stream of its own, derived from one seed: the account's third API order has
the same id in every run with that seed, however many ledger entries or
market orders came between, so an id names the same thing from run to run.
"""

from __future__ import annotations

import base64
import random

__all__ = ["BASE32_ALPHABET", "IdSource", "kraken_id", "random_b64"]

#: RFC 4648 base32 alphabet: the characters seen in Kraken's ids.
BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def kraken_id(rng: random.Random, prefix: str) -> str:
    """A new id shaped like Kraken's: ``prefix`` + 5 chars, 5 chars, 6 chars.

    >>> kraken_id(random.Random(1), "L")[0], len(kraken_id(random.Random(1), "L"))
    ('L', 18)
    """
    chars = [rng.choice(BASE32_ALPHABET) for _ in range(16)]
    first = prefix[:1] + "".join(chars[:5])
    return f"{first}-{''.join(chars[5:10])}-{''.join(chars[10:16])}"


class IdSource:
    """Kraken-looking ids, one independent seeded stream per kind (and per origin).

    >>> ids = IdSource(7)
    >>> ids.next("O") == IdSource(7).next("O")  # the first order id of seed 7, always
    True
    >>> ids.next("L") == IdSource(7).next("L")  # whatever was drawn in other streams
    True

    Args:
        seed: the seed every stream derives from (an ``int`` or a ``str``).
    """

    __slots__ = ("_seed", "_streams")

    def __init__(self, seed: int | str) -> None:
        self._seed = seed
        self._streams: dict[tuple[str, str], random.Random] = {}

    def next(self, prefix: str, stream: str = "") -> str:
        """The next id of kind ``prefix`` (``O``, ``L``, ``T``...) in ``stream``."""
        key = (prefix, stream)
        rng = self._streams.get(key)
        if rng is None:
            # A str seed is hashed with SHA-512: the same stream in every process.
            rng = self._streams[key] = random.Random(f"{self._seed}/{prefix}/{stream}")
        return kraken_id(rng, prefix)


def random_b64(rng: random.Random, n_bytes: int, *, padded: bool = True) -> str:
    """``n_bytes`` random bytes as standard base64 (with ``+`` and ``/``)."""
    text = base64.b64encode(rng.getrandbits(8 * n_bytes).to_bytes(n_bytes, "big")).decode()
    return text if padded else text.rstrip("=")
