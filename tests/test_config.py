"""Tests of balance_manager.config: defaults, validation, TOML and environment loading."""

from __future__ import annotations

import copy
import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from balance_manager.config import (
    ENV_PREFIX,
    KRAKEN_REST_URL,
    KRAKEN_WS_URL,
    BalanceManagerConfig,
)
from balance_manager.credentials import Credentials
from balance_manager.exceptions import ConfigError

SECRET = "c2VjcmV0LXZhbHVlLW5ldmVyLXByaW50ZWRzZWNyZXQtdmFsdWUtbmV2ZXItcHJpbnRlZHNlY3JldC12YWx1ZQ=="


def make(**options: Any) -> BalanceManagerConfig:
    """A config that does not touch the user's state directory."""
    options.setdefault("history_db_path", None)
    return BalanceManagerConfig(**options)


def test_defaults_equal_the_seed_table() -> None:
    """The seed's eight options default to the seed's documented values."""
    config = BalanceManagerConfig()
    assert config.cache_max_size == 1000
    assert config.cache_default_ttl == 300.0
    assert config.history_max_entries == 10000
    assert config.history_retention_hours == 168
    assert config.enable_validation is True
    assert config.websocket_timeout == 10.0
    assert config.rest_api_timeout == 15.0
    assert config.force_update_interval == 600.0


def test_other_defaults_are_safe() -> None:
    """Kraken URLs, starter tier, no credentials, metrics off and on loopback by default."""
    config = BalanceManagerConfig()
    assert (config.rest_url, config.ws_url) == (KRAKEN_REST_URL, KRAKEN_WS_URL)
    assert config.kraken_tier == "starter"
    assert config.credentials is None
    assert config.metrics_enabled is False
    assert config.metrics_host == "127.0.0.1"
    assert config.history_retention_seconds == 168 * 3600.0


def test_default_history_path_follows_xdg_state_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The default history file lives under $XDG_STATE_HOME/balance-manager/."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    expected = tmp_path / "balance-manager" / "history.sqlite3"
    assert BalanceManagerConfig().history_db_path == str(expected)


def test_seed_usage_works() -> None:
    """The seed's constructor call is accepted as written."""
    config = make(cache_default_ttl=300.0, history_retention_hours=24 * 7, enable_validation=True)
    assert config.history_retention_hours == 168.0


def test_config_is_frozen() -> None:
    """Options cannot be changed after construction."""
    config = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.cache_max_size = 5  # type: ignore[misc]  # frozen on purpose


def test_config_is_keyword_only() -> None:
    """Positional arguments are refused."""
    with pytest.raises(TypeError):
        BalanceManagerConfig(1000)  # type: ignore[call-arg]  # positional on purpose


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("cache_max_size", 0),
        ("cache_max_size", -1),
        ("cache_max_size", 10.5),
        ("cache_max_size", True),
        ("cache_default_ttl", 0),
        ("cache_default_ttl", -1.0),
        ("cache_default_ttl", float("nan")),
        ("cache_default_ttl", float("inf")),
        ("cache_default_ttl", "300"),
        ("history_max_entries", 0),
        ("history_retention_hours", 0),
        ("enable_validation", 1),
        ("websocket_timeout", 0.0),
        ("rest_api_timeout", -5),
        ("force_update_interval", 0),
        ("change_threshold_percent", Decimal(-1)),
        ("change_threshold_absolute", "abc"),
        ("disabled_rules", ("no_such_rule",)),
        ("disabled_rules", "stale_data"),
        ("default_decimals", -1),
        ("kraken_tier", "gold"),
        ("rest_max_retries", -1),
        ("circuit_failure_threshold", 0),
        ("circuit_half_open_max_calls", 0),
        ("rest_url", "ftp://example"),
        ("ws_url", "https://ws.kraken.com"),
        ("history_db_path", ""),
        ("metrics_port", 70000),
        ("metrics_host", ""),
    ],
)
def test_each_bad_value_names_its_option(option: str, value: object) -> None:
    """A bad value raises ConfigError whose option and message name the option."""
    with pytest.raises(ConfigError) as info:
        make(**{option: value})
    assert info.value.option == option
    assert option in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_rule_name_lists_known_rules() -> None:
    """An unknown rule in disabled_rules is named, with the known rules listed."""
    with pytest.raises(ConfigError, match="stale_data") as info:
        make(disabled_rules=["stale_dat"])
    assert info.value.value == "stale_dat"


def test_ping_interval_must_be_below_the_timeout() -> None:
    """websocket_ping_interval >= websocket_timeout is refused, naming the ping option."""
    with pytest.raises(ConfigError) as info:
        make(websocket_timeout=5.0, websocket_ping_interval=5.0)
    assert info.value.option == "websocket_ping_interval"


def test_reconnect_max_must_not_be_below_initial() -> None:
    """reconnect_max_delay < reconnect_initial_delay is refused, naming reconnect_max_delay."""
    with pytest.raises(ConfigError) as info:
        make(reconnect_initial_delay=10.0, reconnect_max_delay=5.0)
    assert info.value.option == "reconnect_max_delay"


def test_numbers_are_normalised() -> None:
    """Integer seconds become floats; Decimal options become exact (a float by its repr)."""
    config = make(cache_default_ttl=60, change_threshold_percent=0.1, change_threshold_absolute="5")
    assert config.cache_default_ttl == 60.0
    assert isinstance(config.cache_default_ttl, float)
    assert config.change_threshold_percent == Decimal("0.1")
    assert config.change_threshold_absolute == Decimal(5)


def test_rest_url_loses_its_trailing_slash() -> None:
    """rest_url is stored without a trailing slash."""
    assert make(rest_url="http://127.0.0.1:8080/").rest_url == "http://127.0.0.1:8080"


def test_disabled_rules_list_becomes_a_tuple() -> None:
    """disabled_rules accepts a list and stores a tuple (the config stays hashable-friendly)."""
    assert make(disabled_rules=["stale_data"]).disabled_rules == ("stale_data",)


def test_replace_validates_and_refuses_unknown_options() -> None:
    """replace() checks the new values and refuses unknown names."""
    config = make()
    assert config.replace(cache_max_size=5).cache_max_size == 5
    with pytest.raises(ConfigError):
        config.replace(cache_max_size=0)
    with pytest.raises(ConfigError, match="unknown option") as info:
        config.replace(cache_size=5)
    assert info.value.option == "cache_size"


def test_unknown_option_in_mapping_is_refused_with_a_hint() -> None:
    """from_mapping() refuses an unknown option and suggests near names."""
    with pytest.raises(ConfigError, match="did you mean one of: cache_default_ttl, cache_max_size"):
        BalanceManagerConfig.from_mapping({"cache_size": 10})


# -- TOML ----------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_top_level_options(tmp_path: Path) -> None:
    """A TOML file with top-level options loads them."""
    path = write(tmp_path, "cache_max_size = 50\nhistory_db_path = ':memory:'\n")
    config = BalanceManagerConfig.from_toml(path)
    assert config.cache_max_size == 50
    assert config.history_db_path == ":memory:"


def test_toml_balance_manager_table_keeps_decimals_exact(tmp_path: Path) -> None:
    """A [balance_manager] table loads, and TOML floats for Decimal options stay exact."""
    path = write(
        tmp_path,
        """
        [balance_manager]
        cache_default_ttl = 12.5
        change_threshold_percent = 0.1
        unrealistic_balance_threshold = 123456789.123456789
        disabled_rules = ["stale_data"]
        history_db_path = ":memory:"
        """.replace("        ", ""),
    )
    config = BalanceManagerConfig.from_toml(path)
    assert config.cache_default_ttl == 12.5
    assert config.change_threshold_percent == Decimal("0.1")
    assert str(config.unrealistic_balance_threshold) == "123456789.123456789"
    assert config.disabled_rules == ("stale_data",)


def test_toml_overrides_win(tmp_path: Path) -> None:
    """Keyword overrides take precedence over the file."""
    path = write(tmp_path, "cache_max_size = 50\n")
    config = BalanceManagerConfig.from_toml(path, cache_max_size=9, history_db_path=None)
    assert config.cache_max_size == 9


@pytest.mark.parametrize(
    ("text", "option"),
    [
        ("cache_size = 5\n", "cache_size"),
        ("cache_max_size = 0\n", "cache_max_size"),
        ("this is not toml", "config_file"),
        ("balance_manager = 5\n", "balance_manager"),
        ("[credentials]\napi_key = 'k'\n", "credentials"),
    ],
)
def test_bad_toml_is_refused_by_name(tmp_path: Path, text: str, option: str) -> None:
    """Unknown options, bad values, broken TOML and credentials in the file raise ConfigError."""
    with pytest.raises(ConfigError) as info:
        BalanceManagerConfig.from_toml(write(tmp_path, text))
    assert info.value.option == option


def test_missing_toml_file_is_a_config_error(tmp_path: Path) -> None:
    """A file that cannot be read raises ConfigError naming the file."""
    missing = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="cannot read") as info:
        BalanceManagerConfig.from_toml(missing)
    assert info.value.value == str(missing)


# -- environment ------------------------------------------------------------------------


def test_env_variables_are_parsed_per_option(tmp_path: Path) -> None:
    """BALANCE_MANAGER_<OPTION> variables are parsed to each option's type."""
    env = {
        f"{ENV_PREFIX}CACHE_MAX_SIZE": "7",
        f"{ENV_PREFIX}CACHE_DEFAULT_TTL": "2.5",
        f"{ENV_PREFIX}ENABLE_VALIDATION": "off",
        f"{ENV_PREFIX}SUBSCRIBE_EXECUTIONS": "Yes",
        f"{ENV_PREFIX}CHANGE_THRESHOLD_ABSOLUTE": "0.00000001",
        f"{ENV_PREFIX}DISABLED_RULES": "stale_data, precision_overflow",
        f"{ENV_PREFIX}HISTORY_DB_PATH": "none",
        f"{ENV_PREFIX}KRAKEN_TIER": "pro",
    }
    config = BalanceManagerConfig.from_env(env)
    assert config.cache_max_size == 7
    assert config.cache_default_ttl == 2.5
    assert config.enable_validation is False
    assert config.subscribe_executions is True
    assert config.change_threshold_absolute == Decimal("0.00000001")
    assert config.disabled_rules == ("stale_data", "precision_overflow")
    assert config.history_db_path is None
    assert config.kraken_tier == "pro"


def test_env_names_a_toml_file_that_variables_override(tmp_path: Path) -> None:
    """BALANCE_MANAGER_CONFIG loads a TOML file first; variables then overrides win over it."""
    path = write(tmp_path, "cache_max_size = 50\ncache_default_ttl = 20.0\n")
    env = {f"{ENV_PREFIX}CONFIG": str(path), f"{ENV_PREFIX}CACHE_MAX_SIZE": "8"}
    config = BalanceManagerConfig.from_env(env, cache_default_ttl=3.0, history_db_path=None)
    assert config.cache_max_size == 8
    assert config.cache_default_ttl == 3.0


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("CACHE_MAX_SIZE", "many"),
        ("CACHE_DEFAULT_TTL", "soon"),
        ("ENABLE_VALIDATION", "maybe"),
        ("CACHE_MAX_SIZE", "0"),
    ],
)
def test_bad_env_values_name_the_option(name: str, raw: str) -> None:
    """An unparsable or invalid environment value raises ConfigError naming the option."""
    with pytest.raises(ConfigError) as info:
        BalanceManagerConfig.from_env({f"{ENV_PREFIX}{name}": raw})
    assert info.value.option == name.lower()


def test_env_credentials_are_loaded_and_masked() -> None:
    """KRAKEN_API_KEY / KRAKEN_API_SECRET give credentials that print masked."""
    env = {"KRAKEN_API_KEY": "my-public-api-key-123", "KRAKEN_API_SECRET": SECRET}
    config = BalanceManagerConfig.from_env(env, history_db_path=None)
    assert config.credentials is not None
    assert config.credentials.api_secret.reveal() == SECRET
    assert SECRET not in repr(config)
    assert "my-public-api-key-123" not in repr(config)


def test_empty_environment_gives_the_defaults() -> None:
    """from_env() with no variables equals the default config."""
    assert BalanceManagerConfig.from_env({}) == BalanceManagerConfig()


# -- display ----------------------------------------------------------------------------


def test_repr_shows_only_changed_options_and_never_a_secret() -> None:
    """repr() lists the options that differ from the defaults, with credentials masked."""
    credentials = Credentials.of("my-public-api-key-123", SECRET)
    config = make(cache_max_size=5, credentials=credentials)
    text = repr(config)
    assert text.startswith("BalanceManagerConfig(cache_max_size=5, history_db_path=None")
    assert "Secret('***')" in text
    assert SECRET not in text
    assert "cache_default_ttl" not in text


def test_as_dict_masks_credentials() -> None:
    """as_dict() gives every option, with the credentials as their masked repr."""
    config = make(credentials=Credentials.of("my-public-api-key-123", SECRET))
    data = config.as_dict()
    assert data["cache_max_size"] == 1000
    assert SECRET not in str(data)
    assert data["credentials"] == repr(config.credentials)


def test_as_values_round_trips() -> None:
    """as_values() gives constructor arguments that rebuild an equal config."""
    config = make(cache_max_size=5)
    assert BalanceManagerConfig(**config.as_values()) == config


def test_credentials_must_be_a_credentials_object() -> None:
    """A plain string as credentials is refused, masked in the error."""
    with pytest.raises(ConfigError) as info:
        make(credentials=SECRET)
    assert SECRET not in str(info.value)


def test_config_with_credentials_can_be_deep_copied() -> None:
    """copy.deepcopy() of a config with credentials works and keeps the secret."""
    config = make(credentials=Credentials.of("my-public-api-key-123", SECRET))
    clone = copy.deepcopy(config)
    assert clone == config
