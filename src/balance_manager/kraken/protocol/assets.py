"""Asset names: one mapping between Kraken's REST keys and WebSocket v2 names.

Canonical names are the WebSocket v2 display names (``BTC``, ``USD``, ``DOGE``),
the ones traders know. REST uses legacy keys for older assets (``XXBT``,
``ZUSD``, ``XXDG``) and Kraken's ISO codes in ``altname`` (``XBT``, ``XDG``)
(docs/kraken.md, 'REST keys and altnames'). :class:`AssetNames` maps every spelling to the canonical
name and back; it starts from a built-in table of the legacy keys and learns
the rest from the REST ``Assets`` response.

Suffixed balances (policy)
--------------------------
REST balance keys may carry a suffix that names a separate balance of the same
coin (docs/kraken.md, 'Suffixes'). We give users two named views of each asset
(docs/kraken.md, 'Our split: tradable and earn'):

* **tradable** (``Balance.balance``): what can be spent on spot. It is the base
  key plus the ``.F`` key. Kraken documents ``.F`` as balances "earning
  automatically in Kraken Rewards" that are traded through the base asset, and
  ``hold_trade`` on the base key can exceed the base key's own balance because
  open orders draw on ``.F`` funds (docs/kraken.md, 'BalanceEx'; infinity-grid
  issues #80 and #81).
* **total** (``Balance.total`` = ``balance + earn``): everything held. ``earn``
  collects the keys that are not spendable on spot: ``.S`` (staked), ``.M``
  (opt-in rewards), ``.P`` (parachain bonded), ``.B`` (yield-bearing
  products), ``.T`` (tokenized), ``.HOLD`` and any suffix we do not know.

The rule is conservative on purpose: a suffix whose meaning is unconfirmed is
never counted as free to trade, so ``free`` can be understated, never overstated.

On WebSocket v2, earn holdings are wallets of the base asset instead of
suffixed keys (docs/kraken.md, 'Balances snapshot'). The ``spot`` wallet is
tradable; of the ``earn`` wallets only ``liquid`` is, because both it and ``.F``
are what Kraken calls "Kraken Rewards" (docs/kraken.md, 'Suffixes' and
'Balances updates'). That mapping is not documented (docs/kraken.md,
'WebSocket v2 names'); the manager
cross-checks WebSocket and REST views and reports a disagreement, so an error in
it shows up as a ``source_inconsistency`` issue rather than a wrong number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

import msgspec

from balance_manager.core.amounts import EXACT_CONTEXT, ZERO
from balance_manager.core.models import MAX_ASSET_NAME_LENGTH, NOT_AN_ASSET_NAME
from balance_manager.exceptions import UnknownAssetError

__all__ = [
    "DEFAULT_ASSETS",
    "NOT_TRADABLE_SUFFIXES",
    "TRADABLE_SUFFIXES",
    "AssetInfo",
    "AssetNames",
    "FoldedBalance",
    "RestBalanceEntry",
    "fold_rest_balances",
    "wallet_is_tradable",
]

_add = EXACT_CONTEXT.add

#: Suffixes whose funds are spendable on spot through the base asset.
TRADABLE_SUFFIXES = frozenset({"F"})
#: Suffixes documented as separate, not spendable balances (counted in ``earn``).
NOT_TRADABLE_SUFFIXES = frozenset({"S", "M", "P", "B", "T", "HOLD"})
#: WebSocket v2 wallets that are spendable on spot: ``(wallet_type, wallet_id)``.
_TRADABLE_WALLETS = frozenset({("spot", "main"), ("earn", "liquid")})

#: Kraken ISO codes (REST ``altname``) that differ from the v2 names
#: (docs/kraken.md, 'REST keys and altnames').
_ALTNAME_TO_V2 = {"XBT": "BTC", "XDG": "DOGE"}


#: The longest asset name a caller may ask for (Kraken's are a few characters;
class AssetInfo(msgspec.Struct, frozen=True):
    """What we know of one asset.

    Attributes:
        name: canonical (WebSocket v2) name, e.g. ``BTC``.
        rest_key: REST key, e.g. ``XXBT``.
        altname: Kraken's ISO code, e.g. ``XBT``.
        decimals: ledger decimals (REST ``Assets.decimals``), if known.
        display_decimals: display decimals, if known.
        status: ``enabled``, ``deposit_only``... if known.
    """

    name: str
    rest_key: str
    altname: str
    decimals: int | None = None
    display_decimals: int | None = None
    status: str | None = None


def _info(
    rest_key: str, altname: str, decimals: int | None = None, display: int | None = None
) -> AssetInfo:
    return AssetInfo(
        name=_ALTNAME_TO_V2.get(altname, altname),
        rest_key=rest_key,
        altname=altname,
        decimals=decimals,
        display_decimals=display,
    )


#: Built-in table: the legacy prefixed REST keys (a closed set of older assets)
#: and a few common assets. Decimals of XXBT (10, display 5), ZUSD and ZEUR (4,
#: display 2) are the documented ones (Kraken's example, kept in
#: tests/kraken/protocol/fixtures/rest_assets.json); the others
#: are typical ledger decimals without display decimals, replaced by the live
#: ``Assets`` response when the manager starts.
DEFAULT_ASSETS: tuple[AssetInfo, ...] = (
    _info("XXBT", "XBT", 10, 5),
    _info("XETH", "ETH", 10),
    _info("XLTC", "LTC", 10),
    _info("XETC", "ETC", 10),
    _info("XMLN", "MLN", 10),
    _info("XREP", "REP", 10),
    _info("XXDG", "XDG", 8),
    _info("XXLM", "XLM", 8),
    _info("XXMR", "XMR", 10),
    _info("XXRP", "XRP", 8),
    _info("XZEC", "ZEC", 10),
    _info("ZUSD", "USD", 4, 2),
    _info("ZEUR", "EUR", 4, 2),
    _info("ZGBP", "GBP", 4),
    _info("ZCAD", "CAD", 4),
    _info("ZJPY", "JPY", 2),
    _info("USDT", "USDT", 8),
    _info("USDC", "USDC", 8),
    _info("DAI", "DAI", 10),
    _info("DOT", "DOT", 10),
    _info("SOL", "SOL", 10),
    _info("ADA", "ADA", 8),
    _info("MATIC", "MATIC", 10),
)


class AssetNames:
    """Every spelling of an asset ↔ its canonical name, and ledger decimals.

    Args:
        assets: the assets to know; defaults to :data:`DEFAULT_ASSETS`.

    Names not in the table pass through unchanged (new assets have no prefix
    and the same name on REST and v2), upper-cased only when that spelling is
    known: ``AAPLx`` stays ``AAPLx``.
    """

    __slots__ = ("_by_name", "_by_spelling", "_decimals")

    def __init__(self, assets: Iterable[AssetInfo] = DEFAULT_ASSETS) -> None:
        self._by_name: dict[str, AssetInfo] = {}
        self._by_spelling: dict[str, str] = {}
        # decimals() answers, by the spelling asked: it runs on every validated
        # update. Cleared whenever an asset is learnt.
        self._decimals: dict[str, int | None] = {}
        for info in assets:
            self.add(info)

    def add(self, info: AssetInfo) -> None:
        """Learn (or update) one asset."""
        self._decimals.clear()
        self._by_name[info.name] = info
        for spelling in (info.name, info.rest_key, info.altname):
            self._by_spelling[spelling] = info.name
            self._by_spelling.setdefault(spelling.upper(), info.name)

    def update_from_assets(self, result: Mapping[str, Mapping[str, object]]) -> None:
        """Learn from a REST ``Assets`` result (``{rest_key: {altname, decimals, ...}}``)."""
        for rest_key, fields in result.items():
            altname = str(fields.get("altname") or rest_key)
            decimals = fields.get("decimals")
            display = fields.get("display_decimals")
            status = fields.get("status")
            base, dot, suffix = altname.partition(".")
            name = _ALTNAME_TO_V2.get(base, base) + (f".{suffix.upper()}" if dot else "")
            self.add(
                AssetInfo(
                    name=name,
                    rest_key=rest_key,
                    altname=altname,
                    decimals=decimals if isinstance(decimals, int) else None,
                    display_decimals=display if isinstance(display, int) else None,
                    status=status if isinstance(status, str) else None,
                )
            )

    def split(self, name: str) -> tuple[str, str | None]:
        """``(canonical base, suffix or None)`` of a balance key.

        >>> AssetNames().split("XBT.F")
        ('BTC', 'F')
        >>> AssetNames().split("ZUSD")
        ('USD', None)

        Raises:
            UnknownAssetError: ``name`` is not a ``str``.
        """
        if not isinstance(name, str):
            raise UnknownAssetError(name, NOT_AN_ASSET_NAME)
        base, dot, suffix = name.partition(".")
        return self.canonical(base), (suffix.upper() if dot else None)

    def canonical(self, name: str) -> str:
        """The canonical name of any spelling: ``XXBT``, ``XBT``, ``xbt``, ``BTC`` → ``BTC``.

        A suffixed key keeps its suffix on the canonical base (``XBT.F`` → ``BTC.F``).

        Raises:
            UnknownAssetError: ``name`` is not a ``str`` (a list, ``None``, bytes...).
        """
        if not isinstance(name, str):
            raise UnknownAssetError(name, NOT_AN_ASSET_NAME)
        if "." in name:
            base, suffix = self.split(name)
            return f"{base}.{suffix}"
        found = self._by_spelling.get(name)
        if found is not None:
            return found
        return self._by_spelling.get(name.upper(), name)

    def rest_key(self, name: str) -> str:
        """The REST key of an asset (``BTC`` → ``XXBT``); unknown names are unchanged."""
        info = self._by_name.get(self.canonical(name))
        return info.rest_key if info is not None else name

    def info(self, name: str) -> AssetInfo | None:
        """What is known of an asset, by any spelling."""
        return self._by_name.get(self.canonical(name))

    def decimals(self, name: str) -> int | None:
        """Ledger decimals of an asset, if known.

        Raises:
            UnknownAssetError: ``name`` is not a ``str``.
        """
        try:
            return self._decimals[name]
        except (KeyError, TypeError):  # TypeError: unhashable, refused by info() below
            pass
        info = self.info(name)
        found = info.decimals if info is not None else None
        # Remembered only for names of sane length: the cache stays small.
        if len(self._decimals) < 10_000 and len(name) <= MAX_ASSET_NAME_LENGTH:
            self._decimals[name] = found
        return found

    def display_decimals(self, name: str) -> int | None:
        """Decimals Kraken shows the asset with (``Assets.display_decimals``), if known."""
        info = self.info(name)
        return info.display_decimals if info is not None else None

    def known(self) -> list[str]:
        """Canonical names of every known asset, sorted."""
        return sorted(self._by_name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.canonical(name) in self._by_name

    def __repr__(self) -> str:
        return f"AssetNames({len(self._by_name)} assets)"


def wallet_is_tradable(wallet_type: str, wallet_id: str) -> bool:
    """Whether a WebSocket v2 wallet's funds are spendable on spot (see module docs)."""
    if wallet_type == "spot":
        return True
    return (wallet_type, wallet_id) in _TRADABLE_WALLETS


class RestBalanceEntry(msgspec.Struct, frozen=True):
    """One REST ``BalanceEx`` (or ``Balance``) entry, amounts already exact."""

    balance: Decimal
    hold_trade: Decimal = ZERO
    credit: Decimal = ZERO
    credit_used: Decimal = ZERO


class FoldedBalance(msgspec.Struct, frozen=True):
    """An asset's REST entries folded into the two views (see module docs)."""

    asset: str
    balance: Decimal
    hold_trade: Decimal
    credit: Decimal
    credit_used: Decimal
    earn: Decimal
    keys: tuple[str, ...]


def fold_rest_balances(
    entries: Mapping[str, RestBalanceEntry], names: AssetNames
) -> dict[str, FoldedBalance]:
    """Fold REST keys (``XXBT``, ``XBT.F``, ``ETH2.S``...) into canonical assets.

    Tradable suffixes add to ``balance``; the others, and unknown ones, add to
    ``earn``. Holds and credit add up from every key of the asset.
    """
    acc: dict[str, list[Decimal]] = {}
    keys: dict[str, list[str]] = {}
    for key, entry in entries.items():
        base, suffix = names.split(key)
        tradable = suffix is None or suffix in TRADABLE_SUFFIXES
        sums = acc.get(base)
        if sums is None:  # the asset's first key (usually its only one): its amounts as they are
            balance = entry.balance
            acc[base] = [
                balance if tradable else ZERO,
                entry.hold_trade,
                entry.credit,
                entry.credit_used,
                ZERO if tradable else balance,
            ]
            keys[base] = [key]
            continue
        keys[base].append(key)
        # Exact sums: the ambient context would round beyond 28 digits.
        if tradable:
            sums[0] = _add(sums[0], entry.balance)
        else:
            sums[4] = _add(sums[4], entry.balance)
        sums[1] = _add(sums[1], entry.hold_trade)
        sums[2] = _add(sums[2], entry.credit)
        sums[3] = _add(sums[3], entry.credit_used)
    return {
        asset: FoldedBalance(
            asset=asset,
            balance=s[0],
            hold_trade=s[1],
            credit=s[2],
            credit_used=s[3],
            earn=s[4],
            keys=tuple(keys[asset]),
        )
        for asset, s in acc.items()
    }
