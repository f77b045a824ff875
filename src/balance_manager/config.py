"""Configuration: one frozen, keyword-only, validated object.

:class:`BalanceManagerConfig` carries the eight options of the original
specification with its defaults, plus the options our design needs. Every value is checked when the
object is made, each number against its sane range in :data:`OPTION_BOUNDS`;
a bad one raises :class:`~balance_manager.exceptions.ConfigError` naming the
option, whatever its type. It loads from a TOML file (:meth:`BalanceManagerConfig.from_toml`)
and from ``BALANCE_MANAGER_*`` environment variables
(:meth:`BalanceManagerConfig.from_env`). Its ``repr`` never shows a secret.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args

from balance_manager.core.alerts.rules import ALERT_RULE_NAMES, DEFAULT_ALERT_OPTIONS
from balance_manager.core.bounds import DAY, HOUR, MAX_DECIMALS, YEAR, Bound, amount
from balance_manager.core.validation.rules import DEFAULT_RULE_OPTIONS
from balance_manager.credentials import REDIS_SCHEMES, Credentials, redact_url, redact_webhook_url
from balance_manager.exceptions import ConfigError

__all__ = [
    "ACCOUNT_PLACEHOLDER",
    "ENV_PREFIX",
    "KRAKEN_REST_URL",
    "KRAKEN_WS_URL",
    "OPTION_BOUNDS",
    "BalanceManagerConfig",
    "Tier",
]

#: Kraken's REST base URL (public methods under ``/0/public``, private under ``/0/private``).
KRAKEN_REST_URL = "https://api.kraken.com"
#: Kraken's authenticated WebSocket v2 endpoint (docs/kraken.md, 'Hosts').
KRAKEN_WS_URL = "wss://ws-auth.kraken.com/v2"
#: Prefix of the environment variables read by :meth:`BalanceManagerConfig.from_env`.
ENV_PREFIX = "BALANCE_MANAGER_"

Tier = Literal["starter", "intermediate", "pro"]

#: The sane range of every numeric option, inclusive: the one place they are set.
#: Durations are seconds (``history_retention_hours``: hours), amounts exact
#: decimals; the README's configuration table shows each range.
OPTION_BOUNDS: Mapping[str, Bound] = MappingProxyType(
    {
        "cache_max_size": Bound("count", 1, 1_000_000),
        "cache_default_ttl": Bound("seconds", 0.01, YEAR),
        "history_max_entries": Bound("count", 1, 10_000_000),
        "history_retention_hours": Bound("hours", 0.01, 10 * YEAR / HOUR),
        "websocket_timeout": Bound("seconds", 0.1, DAY),
        "rest_api_timeout": Bound("seconds", 0.1, DAY),
        "force_update_interval": Bound("seconds", 0.1, YEAR),
        "history_flush_interval": Bound("seconds", 0.01, HOUR),
        "change_threshold_absolute": Bound("amount", 0, 10**18),
        "change_threshold_percent": Bound("amount", 0, 10_000, "%"),
        "unrealistic_balance_threshold": Bound("amount", 0, 10**30),
        "stale_after": Bound("seconds", 0.01, YEAR),
        "source_tolerance_absolute": Bound("amount", 0, 10**18),
        "source_tolerance_percent": Bound("amount", 0, 100, "%"),
        "default_decimals": Bound("count", 0, MAX_DECIMALS),
        "rest_max_retries": Bound("count", 0, 10),
        "circuit_failure_threshold": Bound("count", 1, 1_000_000),
        "circuit_recovery_timeout": Bound("seconds", 0.01, DAY),
        "circuit_half_open_max_calls": Bound("count", 1, 100),
        "reconnect_initial_delay": Bound("seconds", 0.01, HOUR),
        "reconnect_max_delay": Bound("seconds", 0.01, DAY),
        "websocket_ping_interval": Bound("seconds", 0.01, HOUR),
        "rest_poll_interval": Bound("seconds", 0.1, DAY),
        "metrics_port": Bound("count", 0, 65535),
        "redis_timeout": Bound("seconds", 0.01, 60.0),
        "lease_ttl": Bound("seconds", 0.3, HOUR),
        "shared_stale_after": Bound("seconds", 0.05, DAY),
        "shared_stream_max_len": Bound("count", 1000, 100_000_000),
        "reservation_ttl": Bound("seconds", 0.1, DAY),
        "reservation_settle_timeout": Bound("seconds", 0.1, DAY),
        "alert_cooldown": Bound("seconds", 0, DAY),
        "alert_stale_after": Bound("seconds", 0.01, YEAR),
        "alert_stream_down_after": Bound("seconds", 0.01, DAY),
        "alert_validation_failures": Bound("count", 1, 1_000_000),
        "alert_validation_window": Bound("seconds", 0.01, DAY),
        "alert_anomaly_threshold": Bound("amount", 1, 1000),
        "alert_anomaly_min_samples": Bound("count", 3, 10_000),
        "alert_portfolio_drop_percent": Bound("amount", Decimal("0.01"), 100, "%"),
        "alert_portfolio_window": Bound("seconds", 1, YEAR),
        "alert_webhook_timeout": Bound("seconds", 0.1, 300),
    }
)

#: The longest ``rest_url`` / ``ws_url``, ``metrics_host`` and ``history_db_path``.
MAX_URL_LENGTH = 2048
MAX_HOST_LENGTH = 253
MAX_PATH_LENGTH = 4096

RULE_NAMES = (
    "negative_balance",
    "negative_free_balance",
    "hold_exceeds_balance",
    "source_inconsistency",
    "unrealistic_balance",
    "stale_data",
    "precision_overflow",
)


#: Replaced by the account's fingerprint in ``history_db_path``.
ACCOUNT_PLACEHOLDER = "{account}"


def default_history_path() -> str:
    """``$XDG_STATE_HOME/balance-manager/{account}/history.sqlite3`` (``~/.local/state/...``).

    ``{account}`` becomes the account's fingerprint, so each account has its own file.
    """
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "balance-manager" / ACCOUNT_PLACEHOLDER / "history.sqlite3")


@dataclass(frozen=True, kw_only=True, slots=True)
class BalanceManagerConfig:
    """Every option of balance-manager, validated at construction.

    The first eight are the original specification's, with its defaults.

    Attributes:
        cache_max_size: maximum cache entries (LRU eviction beyond).
        cache_default_ttl: seconds a cached balance is trusted without a live source.
        history_max_entries: maximum history entries kept per asset.
        history_retention_hours: history older than this is pruned.
        enable_validation: run the validation rules on every balance.
        websocket_timeout: seconds of silence after which the stream is dead;
            also the connect and subscribe timeout.
        rest_api_timeout: seconds a REST call may take.
        force_update_interval: seconds between periodic REST refreshes.
        history_db_path: SQLite file for history; ``":memory:"`` keeps it in
            memory; ``None`` disables persistence.
        history_url: where history is kept, replacing ``history_db_path`` when
            set: a ``postgresql://`` URL (the ``postgres`` extra), or
            ``sqlite:PATH`` / a path for SQLite. Its password is never shown.
        history_flush_interval: seconds between batched history writes.
        change_threshold_absolute: a change is significant (``balance_change``)
            only if ``|delta|`` is at least this...
        change_threshold_percent: ...and at least this percent of the old balance
            (any change from zero counts).
        disabled_rules: names of validation rules to turn off.
        unrealistic_balance_threshold: ``unrealistic_balance`` flags amounts above this.
        stale_after: ``stale_data`` flags values not confirmed for this many seconds.
        source_tolerance_absolute: ``source_inconsistency`` tolerance, absolute...
        source_tolerance_percent: ...or relative (percent), whichever is larger.
        default_decimals: decimals assumed by ``precision_overflow`` for an asset
            whose decimals the exchange has not told.
        kraken_tier: the account's verification tier; sets the REST call counter
            (starter 15/-0.33 s, intermediate 20/-0.5 s, pro 20/-1 s).
        rest_max_retries: retries of a retryable REST error (each with a fresh nonce).
        circuit_failure_threshold: consecutive failures that open the circuit.
        circuit_recovery_timeout: seconds the circuit stays open before a probe.
        circuit_half_open_max_calls: probe calls allowed while half-open.
        reconnect_initial_delay: first WebSocket reconnect delay (seconds, before jitter).
        reconnect_max_delay: largest WebSocket reconnect delay.
        websocket_ping_interval: seconds between application pings.
        rest_poll_interval: seconds between REST polls when no stream is live.
        subscribe_executions: also subscribe to ``executions`` to follow holds live.
        rest_url: Kraken REST base URL (or the simulator's ``rest_url``).
        ws_url: Kraken private WebSocket v2 URL (or the simulator's ``ws_url``).
        credentials: API key and secret (the secret is never printed).
        metrics_enabled: expose Prometheus metrics.
        metrics_host: address of the metrics endpoint (loopback by default).
        metrics_port: port of the metrics endpoint; 0 picks a free one.
        redis_url: Redis for shared balances (``redis://[:password@]host:port/db``,
            ``rediss://`` or ``unix://``); ``None`` (the default): one process, no Redis.
            Its password is never shown.
        redis_namespace: prefix of every Redis key (several deployments can share a Redis).
        shared_account: the label of the account in Redis (bound to one exchange
            account by its first leader).
        redis_timeout: seconds a Redis connect or command may take before it fails.
        lease_ttl: seconds the leader's lease lives in Redis without a renewal;
            the leader renews every third of it, a candidate takes over after it.
        shared_stale_after: followers serve a value older than this (by Redis's
            clock) as stale (source ``cache``); reservations need the free
            amount this fresh. The leader beats every quarter of it.
        shared_stream_max_len: entries kept in the Redis stream of updates (about).
        reservation_ttl: seconds a reservation lives before it is committed.
        reservation_settle_timeout: seconds a committed reservation waits for its
            order's hold before it is reaped.
        alerts_enabled: run the alert rules (``manager.alerts``; docs/alerts.md).
        alert_cooldown: seconds after an alert resolved before the same condition
            (rule and asset) may fire again.
        alert_low_balance: ``low_balance`` thresholds: asset → the free amount
            below which it fires (a mapping, or ``"USD=100,BTC=0.01"`` in the
            environment); empty: the rule watches nothing.
        alert_stale_after: ``stale_balance`` / ``stale_price`` fire for a value not
            confirmed by a live source for this many seconds.
        alert_stream_down_after: ``stream_down`` fires when the stream has not
            served for this many seconds.
        alert_validation_failures: ``validation_failures`` fires at this many
            failed validations...
        alert_validation_window: ...within this many seconds.
        alert_anomaly_threshold: ``balance_anomaly`` fires for a change whose
            robust score (MAD-based deviations from the median change) exceeds this.
        alert_anomaly_min_samples: earlier changes of an asset needed before
            ``balance_anomaly`` judges one.
        alert_portfolio_drop_percent: ``portfolio_drop`` fires when the portfolio
            value falls more than this percent...
        alert_portfolio_window: ...from its highest value within this many seconds.
        alert_portfolio_quote: the quote currency whose portfolio value ``portfolio_drop``
            and ``stale_price`` follow, once a tracker in it runs (``portfolio_tracker``).
        disabled_alerts: names of alert rules to turn off.
        alert_webhook_url: where alerts are POSTed as JSON (``http(s)://``);
            ``None``: no webhook. Only its host is ever shown (it may hold a token).
        alert_webhook_timeout: seconds one webhook POST may take.
    """

    # -- the original specification's options --------------------------------------------------
    cache_max_size: int = 1000
    cache_default_ttl: float = 300.0
    history_max_entries: int = 10000
    history_retention_hours: float = 168.0
    enable_validation: bool = True
    websocket_timeout: float = 10.0
    rest_api_timeout: float = 15.0
    force_update_interval: float = 600.0
    # -- history ---------------------------------------------------------------
    history_db_path: str | None = field(default_factory=default_history_path)
    history_url: str | None = None
    history_flush_interval: float = 1.0
    change_threshold_absolute: Decimal = Decimal(0)
    change_threshold_percent: Decimal = Decimal("0.1")
    # -- validation ------------------------------------------------------------
    disabled_rules: tuple[str, ...] = ()
    unrealistic_balance_threshold: Decimal = DEFAULT_RULE_OPTIONS.unrealistic_balance_threshold
    stale_after: float = DEFAULT_RULE_OPTIONS.stale_after
    source_tolerance_absolute: Decimal = DEFAULT_RULE_OPTIONS.source_tolerance_absolute
    source_tolerance_percent: Decimal = DEFAULT_RULE_OPTIONS.source_tolerance_percent
    default_decimals: int = DEFAULT_RULE_OPTIONS.default_decimals
    # -- Kraken and resilience -------------------------------------------------
    kraken_tier: Tier = "starter"
    rest_max_retries: int = 3
    circuit_failure_threshold: int = 5
    circuit_recovery_timeout: float = 30.0
    circuit_half_open_max_calls: int = 1
    reconnect_initial_delay: float = 1.0
    reconnect_max_delay: float = 30.0
    websocket_ping_interval: float = 5.0
    rest_poll_interval: float = 5.0
    subscribe_executions: bool = True
    rest_url: str = KRAKEN_REST_URL
    ws_url: str = KRAKEN_WS_URL
    credentials: Credentials | None = None
    # -- metrics ---------------------------------------------------------------
    metrics_enabled: bool = False
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    # -- shared balances on Redis --------------------------------------------------
    redis_url: str | None = None
    redis_namespace: str = "balance-manager"
    shared_account: str = "default"
    redis_timeout: float = 1.0
    lease_ttl: float = 5.0
    shared_stale_after: float = 3.0
    shared_stream_max_len: int = 100_000
    reservation_ttl: float = 30.0
    reservation_settle_timeout: float = 120.0
    # -- alerts ---------------------------------------------------------------------
    alerts_enabled: bool = True
    alert_cooldown: float = 300.0
    alert_low_balance: tuple[tuple[str, Decimal], ...] = DEFAULT_ALERT_OPTIONS.alert_low_balance
    alert_stale_after: float = DEFAULT_ALERT_OPTIONS.alert_stale_after
    alert_stream_down_after: float = DEFAULT_ALERT_OPTIONS.alert_stream_down_after
    alert_validation_failures: int = DEFAULT_ALERT_OPTIONS.alert_validation_failures
    alert_validation_window: float = DEFAULT_ALERT_OPTIONS.alert_validation_window
    alert_anomaly_threshold: Decimal = DEFAULT_ALERT_OPTIONS.alert_anomaly_threshold
    alert_anomaly_min_samples: int = DEFAULT_ALERT_OPTIONS.alert_anomaly_min_samples
    alert_portfolio_drop_percent: Decimal = DEFAULT_ALERT_OPTIONS.alert_portfolio_drop_percent
    alert_portfolio_window: float = DEFAULT_ALERT_OPTIONS.alert_portfolio_window
    alert_portfolio_quote: str = "USD"
    disabled_alerts: tuple[str, ...] = ()
    alert_webhook_url: str | None = None
    alert_webhook_timeout: float = 5.0

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            checker = _CHECKS.get(spec.name)
            if checker is None:
                continue
            value = getattr(self, spec.name)
            fixed = checker(spec.name, value)
            if fixed is not value:
                object.__setattr__(self, spec.name, fixed)
        if self.websocket_ping_interval >= self.websocket_timeout:
            raise ConfigError(
                "websocket_ping_interval",
                self.websocket_ping_interval,
                f"must be below websocket_timeout ({self.websocket_timeout:g}) so a live "
                "connection is never taken for a silent one",
            )
        if self.reconnect_max_delay < self.reconnect_initial_delay:
            raise ConfigError(
                "reconnect_max_delay",
                self.reconnect_max_delay,
                f"must be >= reconnect_initial_delay ({self.reconnect_initial_delay:g})",
            )

    # -- derived ---------------------------------------------------------------
    @property
    def history_retention_seconds(self) -> float:
        """``history_retention_hours`` in seconds."""
        return self.history_retention_hours * 3600.0

    def replace(self, **changes: Any) -> BalanceManagerConfig:
        """A copy with ``changes`` applied and validated."""
        _reject_unknown(changes)
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Options as a dict for display; credentials and URL passwords appear masked."""
        out: dict[str, Any] = {}
        for spec in dataclasses.fields(self):
            out[spec.name] = _shown_option(spec.name, getattr(self, spec.name))
        return out

    def __repr__(self) -> str:
        changed = [
            f"{spec.name}={_shown_option(spec.name, getattr(self, spec.name))!r}"
            for spec in dataclasses.fields(self)
            if getattr(self, spec.name) != _default_of(spec)
        ]
        return f"BalanceManagerConfig({', '.join(changed)})"

    # -- loading -----------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], **overrides: Any) -> BalanceManagerConfig:
        """Build from a mapping of option names (unknown names are refused)."""
        merged = {**values, **overrides}
        _reject_unknown(merged)
        for name in ("disabled_rules", "disabled_alerts"):
            if name in merged and isinstance(merged[name], list):
                merged[name] = tuple(merged[name])
        return cls(**merged)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], **overrides: Any) -> BalanceManagerConfig:
        """Load from a TOML file: top-level options or a ``[balance_manager]`` table.

        Decimal options keep the file's digits exactly (``0.1`` stays ``0.1``).
        Credentials are not read from this file (see :func:`load_credentials`).
        """
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle, parse_float=Decimal)
        except OSError as exc:
            raise ConfigError("config_file", str(path), f"cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config_file", str(path), f"not valid TOML: {exc}") from None
        except RecursionError:  # tomllib parses nested arrays and tables recursively
            raise ConfigError(
                "config_file", str(path), "not valid TOML: nested too deeply"
            ) from None
        table = data.get("balance_manager", data)
        if not isinstance(table, dict):
            raise ConfigError("balance_manager", table, "must be a table")
        if "credentials" in table:
            raise ConfigError(
                "credentials", "***", "credentials are read from the environment, not TOML"
            )
        return cls.from_mapping(table, **overrides)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> BalanceManagerConfig:
        """Load ``BALANCE_MANAGER_<OPTION>`` variables (e.g. ``BALANCE_MANAGER_CACHE_MAX_SIZE``).

        ``BALANCE_MANAGER_CONFIG`` names a TOML file loaded first; variables
        override it; ``overrides`` override both. Credentials come from
        ``KRAKEN_API_KEY`` / ``KRAKEN_API_SECRET`` or ``KRAKEN_CREDENTIALS_FILE``.
        """
        from balance_manager.credentials import load_credentials

        env = os.environ if environ is None else environ
        base: dict[str, Any] = {}
        config_file = env.get(f"{ENV_PREFIX}CONFIG")
        if config_file:
            base = cls.from_toml(config_file).as_values()
        names = {spec.name for spec in dataclasses.fields(cls)} - {"credentials"}
        for name in sorted(names):
            raw = env.get(f"{ENV_PREFIX}{name.upper()}")
            if raw is not None:
                base[name] = _from_text(name, raw)
        if "credentials" not in overrides:
            credentials = load_credentials(dict(env))
            if credentials is not None:
                base["credentials"] = credentials
        return cls.from_mapping(base, **overrides)

    def as_values(self) -> dict[str, Any]:
        """Options as constructor arguments (credentials included, as objects)."""
        return {spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self)}


# -- validation helpers ---------------------------------------------------------


def _default_of(spec: dataclasses.Field[Any]) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return dataclasses.MISSING


def _reject_unknown(values: Mapping[str, Any]) -> None:
    known = {spec.name for spec in dataclasses.fields(BalanceManagerConfig)}
    for name in values:
        if name not in known:
            close = [k for k in sorted(known) if k.split("_")[0] == name.split("_")[0]]
            hint = f"; did you mean one of: {', '.join(close)}" if close else ""
            raise ConfigError(name, values[name], f"unknown option{hint}")


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(name, value, "must be true or false")
    return value


def _optional_path(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ConfigError(name, value, "must be a file path, ':memory:' or None")
    if len(value) > MAX_PATH_LENGTH:
        raise ConfigError(name, value, f"must be at most {MAX_PATH_LENGTH} characters")
    return value


def _history_url(name: str, value: Any) -> str | None:
    """A ``postgresql://`` URL, ``sqlite:PATH`` or a path; never echoes a password."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ConfigError(name, value, "must be a postgresql:// URL, sqlite:PATH or a file path")
    if value.startswith(("postgresql://", "postgres://")):
        if len(value) > MAX_URL_LENGTH or not _is_token(value):
            raise ConfigError(
                name,
                redact_url(value),
                f"must be at most {MAX_URL_LENGTH} printable characters without spaces",
            )
        return value
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme and not value.lower().startswith("sqlite:") and scheme.isalnum():
        raise ConfigError(
            name, redact_url(value), "unknown scheme: use postgresql://, sqlite:PATH or a path"
        )
    if len(value) > MAX_PATH_LENGTH:
        raise ConfigError(name, value, f"must be at most {MAX_PATH_LENGTH} characters")
    return value


def _url(schemes: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value.startswith(tuple(f"{s}://" for s in schemes)):
            raise ConfigError(name, value, f"must be a URL starting with {' or '.join(schemes)}://")
        if len(value) > MAX_URL_LENGTH or not _is_token(value):
            raise ConfigError(
                name,
                value,
                f"must be at most {MAX_URL_LENGTH} printable characters without spaces",
            )
        return value.rstrip("/") if name == "rest_url" else value

    return check


def _shown_option(name: str, value: Any) -> Any:
    """What ``repr`` and ``as_dict`` show of an option: masked credentials, URLs sans password."""
    if name == "credentials" and value:
        return repr(value)
    if name in ("history_url", "redis_url") and isinstance(value, str):
        return redact_url(value)
    if name == "alert_webhook_url" and isinstance(value, str):
        return redact_webhook_url(value)
    return value


def _optional_redis_url(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(tuple(f"{s}://" for s in REDIS_SCHEMES)):
        shown = redact_url(value) if isinstance(value, str) else value
        raise ConfigError(
            name, shown, "must be None or a URL starting with redis://, rediss:// or unix://"
        )
    if len(value) > MAX_URL_LENGTH or not _is_token(value):
        raise ConfigError(
            name,
            redact_url(value),
            f"must be at most {MAX_URL_LENGTH} printable characters without spaces",
        )
    return value


def _label(name: str, value: Any) -> str:
    if not isinstance(value, str) or _LABEL.fullmatch(value) is None:
        raise ConfigError(
            name, value, "must be 1 to 64 characters among letters, digits and . _ : -"
        )
    return value


#: A Redis namespace or account label (the same rule as ``shared.keys``).
_LABEL = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _tier(name: str, value: Any) -> str:
    if not isinstance(value, str) or value not in get_args(Tier):
        raise ConfigError(name, value, f"must be one of {', '.join(get_args(Tier))}")
    return str(value)


def _rules(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise ConfigError(name, value, "must be a list of rule names")
    for rule in value:
        if not isinstance(rule, str) or rule not in RULE_NAMES:
            raise ConfigError(name, rule, f"unknown rule; known rules: {', '.join(RULE_NAMES)}")
    return tuple(value)


def _alert_names(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise ConfigError(name, value, "must be a list of alert rule names")
    for rule in value:
        if not isinstance(rule, str) or rule not in ALERT_RULE_NAMES:
            raise ConfigError(
                name, rule, f"unknown alert rule; known rules: {', '.join(ALERT_RULE_NAMES)}"
            )
    return tuple(value)


def _thresholds(name: str, value: Any) -> tuple[tuple[str, Decimal], ...]:
    """Asset → amount, from a mapping, pairs, or ``"ASSET=amount"`` texts (the environment)."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, tuple | list):
        items = []
        for item in value:
            if isinstance(item, str) and "=" in item:
                asset, _, text = item.partition("=")
                items.append((asset.strip(), text.strip()))
            elif isinstance(item, tuple | list) and len(item) == 2:
                items.append((item[0], item[1]))
            else:
                raise ConfigError(name, item, "must be ASSET=amount or an (asset, amount) pair")
    else:
        raise ConfigError(name, value, "must map asset names to amounts, e.g. {'USD': '100'}")
    out: dict[str, Decimal] = {}
    for asset, limit in items:
        if not isinstance(asset, str) or not asset or len(asset) > 64 or not _is_token(asset):
            raise ConfigError(name, asset, "asset names are 1 to 64 printable characters")
        out[asset] = amount(f"{name}[{asset}]", limit, minimum=Decimal(0), maximum=Decimal(10**30))
    return tuple(out.items())


def _optional_webhook_url(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        shown = redact_webhook_url(value) if isinstance(value, str) else type(value).__name__
        raise ConfigError(name, shown, "must be None or a URL starting with http:// or https://")
    if len(value) > MAX_URL_LENGTH or not _is_token(value):
        raise ConfigError(
            name,
            redact_webhook_url(value),
            f"must be at most {MAX_URL_LENGTH} printable characters without spaces",
        )
    return value


def _credentials(name: str, value: Any) -> Credentials | None:
    if value is not None and not isinstance(value, Credentials):
        raise ConfigError(name, "***", "must be a Credentials (see Credentials.of)")
    return value


def _host(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(name, value, "must be a host name or address")
    if len(value) > MAX_HOST_LENGTH or not _is_token(value):
        raise ConfigError(
            name, value, f"must be at most {MAX_HOST_LENGTH} printable characters without spaces"
        )
    return value


def _is_token(text: str) -> bool:
    """Printable, without whitespace: what a URL or a host name can be."""
    return text.isprintable() and not any(char.isspace() for char in text)


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    **{name: bound.check for name, bound in OPTION_BOUNDS.items()},
    "enable_validation": _boolean,
    "history_db_path": _optional_path,
    "history_url": _history_url,
    "disabled_rules": _rules,
    "kraken_tier": _tier,
    "subscribe_executions": _boolean,
    "rest_url": _url(("http", "https")),
    "ws_url": _url(("ws", "wss")),
    "credentials": _credentials,
    "metrics_enabled": _boolean,
    "metrics_host": _host,
    "redis_url": _optional_redis_url,
    "redis_namespace": _label,
    "shared_account": _label,
    "alert_portfolio_quote": _label,
    "alerts_enabled": _boolean,
    "alert_low_balance": _thresholds,
    "disabled_alerts": _alert_names,
    "alert_webhook_url": _optional_webhook_url,
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _from_text(name: str, raw: str) -> Any:
    """Parse an environment variable's text into the option's type."""
    spec = next(s for s in dataclasses.fields(BalanceManagerConfig) if s.name == name)
    default = _default_of(spec)
    text = raw.strip()
    if isinstance(default, bool):
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(name, raw, "must be true or false")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(name, raw, "must be an integer") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(name, raw, "must be a number") from None
    if isinstance(default, Decimal):
        return text
    if isinstance(default, tuple):
        return tuple(part.strip() for part in text.split(",") if part.strip())
    nullable = ("history_db_path", "history_url", "redis_url", "alert_webhook_url")
    if name in nullable and text.lower() in {"", "none", "off"}:
        return None
    return text
