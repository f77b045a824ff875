"""The simulator's assets and trading pairs, in every spelling Kraken uses.

Assets come from :data:`balance_manager.kraken.protocol.assets.DEFAULT_ASSETS` (REST
key, ``altname``, ledger decimals; docs/kraken.md, 'Asset names'). Pairs carry
the four names a client may use: the REST pair name ``XXBTZUSD``, its ``altname``
``XBTUSD``, the legacy ``wsname`` ``XBT/USD`` and the WebSocket v2 symbol
``BTC/USD`` (the canonical one here).

Earn wallets map to suffixed REST keys. Which suffix goes with which v2 wallet
is not documented (docs/kraken.md, 'WebSocket v2 names'); the simulator's
choice follows ``kraken/protocol/assets.py``: ``liquid`` (Kraken Rewards) ↔ ``.F``, ``flex`` and
``flexible`` ↔ ``.B``, ``bonded`` and ``locked`` ↔ ``.S``. A ``.F`` key uses
the asset's ``altname`` (``XBT.F``, not ``XXBT.F``), as observed (docs/kraken.md,
'Suffixes').
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from balance_manager.exceptions import ExchangeError, UnknownAssetError
from balance_manager.kraken.protocol.assets import DEFAULT_ASSETS

__all__ = [
    "DEFAULT_PAIRS",
    "EARN_WALLET_SUFFIX",
    "SIM_ASSETS",
    "AssetSpec",
    "Instruments",
    "PairSpec",
]

#: REST key suffix of each earn wallet id (see module docs).
EARN_WALLET_SUFFIX = {
    "liquid": "F",
    "flex": "B",
    "flexible": "B",
    "bonded": "S",
    "locked": "S",
}


@dataclass(frozen=True, slots=True)
class AssetSpec:
    """One asset the simulator knows.

    Attributes:
        name: WebSocket v2 name (``BTC``), the canonical one.
        rest_key: REST key (``XXBT``).
        altname: Kraken ISO code (``XBT``).
        decimals: ledger decimals (REST ``Assets.decimals``).
        display_decimals: display decimals.
    """

    name: str
    rest_key: str
    altname: str
    decimals: int
    display_decimals: int


@dataclass(frozen=True, slots=True)
class PairSpec:
    """One trading pair.

    Attributes:
        symbol: WebSocket v2 symbol, ``BTC/USD`` (canonical).
        rest_name: REST pair key, ``XXBTZUSD``.
        altname: REST ``altname``, ``XBTUSD``.
        wsname: legacy WebSocket name, ``XBT/USD``.
        base: canonical base asset, ``BTC``.
        quote: canonical quote asset, ``USD``.
        pair_decimals: price decimals.
        lot_decimals: quantity decimals.
        cost_decimals: cost decimals.
        ordermin: minimum order quantity.
        costmin: minimum order cost in quote units.
        start_price: the market price when a simulator starts.
    """

    symbol: str
    rest_name: str
    altname: str
    wsname: str
    base: str
    quote: str
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int
    ordermin: Decimal
    costmin: Decimal
    start_price: Decimal

    @property
    def tick_size(self) -> Decimal:
        """Smallest price step."""
        return Decimal(1).scaleb(-self.pair_decimals)


_DISPLAY = {"BTC": 5, "ETH": 5, "USD": 2, "EUR": 2, "USDT": 4, "DOT": 4, "SOL": 4}


def _sim_assets() -> tuple[AssetSpec, ...]:
    specs = []
    for info in DEFAULT_ASSETS:
        if info.name in _DISPLAY and info.decimals is not None:
            specs.append(
                AssetSpec(
                    name=info.name,
                    rest_key=info.rest_key,
                    altname=info.altname,
                    decimals=info.decimals,
                    display_decimals=_DISPLAY[info.name],
                )
            )
    return tuple(specs)


#: The assets of the default simulator.
SIM_ASSETS: tuple[AssetSpec, ...] = _sim_assets()


def _pair(
    symbol: str,
    rest_name: str,
    altname: str,
    wsname: str,
    pair_decimals: int,
    ordermin: str,
    start_price: str,
) -> PairSpec:
    base, quote = symbol.split("/")
    return PairSpec(
        symbol=symbol,
        rest_name=rest_name,
        altname=altname,
        wsname=wsname,
        base=base,
        quote=quote,
        pair_decimals=pair_decimals,
        lot_decimals=8,
        cost_decimals=5,
        ordermin=Decimal(ordermin),
        costmin=Decimal("0.5"),
        start_price=Decimal(start_price),
    )


#: Pairs of the default simulator (names as on Kraken's ``AssetPairs``).
DEFAULT_PAIRS: tuple[PairSpec, ...] = (
    _pair("BTC/USD", "XXBTZUSD", "XBTUSD", "XBT/USD", 1, "0.0001", "60000.0"),
    _pair("ETH/USD", "XETHZUSD", "ETHUSD", "ETH/USD", 2, "0.002", "3000.00"),
    _pair("BTC/EUR", "XXBTZEUR", "XBTEUR", "XBT/EUR", 1, "0.0001", "55000.0"),
    _pair("ETH/BTC", "XETHXXBT", "ETHXBT", "ETH/XBT", 5, "0.002", "0.05000"),
    _pair("USDT/USD", "USDTZUSD", "USDTUSD", "USDT/USD", 5, "5", "1.00020"),
    _pair("DOT/USD", "DOTUSD", "DOTUSD", "DOT/USD", 4, "0.5", "7.5000"),
    _pair("SOL/USD", "SOLUSD", "SOLUSD", "SOL/USD", 2, "0.02", "150.00"),
)


class Instruments:
    """Assets and pairs, looked up by any of their spellings.

    Args:
        assets: the assets to know.
        pairs: the pairs to know (their base and quote must be among ``assets``).
    """

    __slots__ = ("_asset_by", "_assets", "_pair_by", "_pairs")

    def __init__(
        self, assets: Iterable[AssetSpec] = SIM_ASSETS, pairs: Iterable[PairSpec] = DEFAULT_PAIRS
    ) -> None:
        self._assets: dict[str, AssetSpec] = {}
        self._asset_by: dict[str, AssetSpec] = {}
        for spec in assets:
            self._assets[spec.name] = spec
            for spelling in (spec.name, spec.rest_key, spec.altname):
                self._asset_by[spelling.upper()] = spec
        self._pairs: dict[str, PairSpec] = {}
        self._pair_by: dict[str, PairSpec] = {}
        for pair in pairs:
            for asset in (pair.base, pair.quote):
                if asset not in self._assets:
                    raise UnknownAssetError(asset, f"pair {pair.symbol} needs it")
            self._pairs[pair.symbol] = pair
            for spelling in (pair.symbol, pair.rest_name, pair.altname, pair.wsname):
                self._pair_by[spelling.upper()] = pair

    @property
    def assets(self) -> tuple[AssetSpec, ...]:
        """Every asset, in table order."""
        return tuple(self._assets.values())

    @property
    def pairs(self) -> tuple[PairSpec, ...]:
        """Every pair, in table order."""
        return tuple(self._pairs.values())

    def asset(self, name: str) -> AssetSpec:
        """The asset of any spelling (``BTC``, ``XBT``, ``XXBT``).

        Raises:
            UnknownAssetError: no such asset.
        """
        spec = self._asset_by.get(name.upper()) if isinstance(name, str) else None
        if spec is None:
            raise UnknownAssetError(name, "not traded on the simulator")
        return spec

    def has_asset(self, name: str) -> bool:
        """Whether ``name`` spells a known asset."""
        return isinstance(name, str) and name.upper() in self._asset_by

    def pair(self, name: str) -> PairSpec:
        """The pair of any spelling (``BTC/USD``, ``XBTUSD``, ``XXBTZUSD``, ``XBT/USD``).

        Raises:
            ExchangeError: ``EQuery:Unknown asset pair``, as Kraken answers.
        """
        pair = self._pair_by.get(name.upper()) if isinstance(name, str) else None
        if pair is None:
            raise ExchangeError("EQuery:Unknown asset pair")
        return pair

    def decimals(self, asset: str) -> int:
        """Ledger decimals of an asset."""
        return self.asset(asset).decimals

    def rest_key(self, asset: str, wallet_type: str = "spot", wallet_id: str = "main") -> str:
        """The REST balance key of one wallet: ``XXBT`` for spot, ``XBT.F`` for earn ``liquid``."""
        spec = self.asset(asset)
        if wallet_type == "spot":
            return spec.rest_key
        suffix = EARN_WALLET_SUFFIX.get(wallet_id, "B")
        return f"{spec.altname}.{suffix}"

    def __repr__(self) -> str:
        return f"Instruments({len(self._assets)} assets, {len(self._pairs)} pairs)"
