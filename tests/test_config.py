"""Tests of balance_manager.config: defaults, validation, TOML and environment loading."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import fractions
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from balance_manager.config import (
    ENV_PREFIX,
    KRAKEN_REST_URL,
    KRAKEN_WS_URL,
    OPTION_BOUNDS,
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
    """The default history file lives under $XDG_STATE_HOME/balance-manager/{account}/."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    expected = tmp_path / "balance-manager" / "{account}" / "history.sqlite3"
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


@pytest.mark.parametrize(
    "text",
    [
        "cache_max_size = " + "[" * 100_000 + "]" * 100_000,
        "x = " + "{a = " * 10_000 + "1" + "}" * 10_000,
    ],
    ids=["array", "inline-table"],
)
def test_deeply_nested_toml_is_a_config_error(tmp_path: Path, text: str) -> None:
    """TOML nested too deeply to parse is a ConfigError naming the file, not a RecursionError."""
    with pytest.raises(ConfigError, match="nested too deeply") as info:
        BalanceManagerConfig.from_toml(write(tmp_path, text))
    assert info.value.option == "config_file"


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


# -- bounds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("websocket_timeout", 10**400),
        ("websocket_timeout", Decimal("sNaN")),
        ("cache_default_ttl", Decimal("NaN")),
        ("rest_api_timeout", Decimal("-Infinity")),
        ("change_threshold_absolute", Decimal("sNaN")),
        ("cache_max_size", 10**5000),
        ("metrics_port", 10**5000),
    ],
    ids=["int-1e400", "sNaN", "NaN", "-Infinity", "decimal-sNaN", "int-5000-digits", "port-huge"],
)
def test_values_that_crashed_are_config_errors(option: str, value: object) -> None:
    """Huge ints and signaling NaNs raise ConfigError naming the option, not Overflow/ValueError."""
    with pytest.raises(ConfigError) as info:
        make(**{option: value})
    assert info.value.option == option
    assert option in str(info.value)
    assert len(str(info.value)) < 500


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("history_flush_interval", 1e-9),
        ("rest_poll_interval", 1e-6),
        ("websocket_ping_interval", 0.0001),
        ("force_update_interval", 1e300),
        ("cache_default_ttl", 10**30),
        ("websocket_timeout", 1e12),
        ("history_retention_hours", 1e15),
        ("default_decimals", 10**12),
        ("default_decimals", 29),
        ("cache_max_size", 10**12),
        ("history_max_entries", 10**12),
        ("rest_max_retries", 10**6),
        ("circuit_half_open_max_calls", 10**9),
        ("circuit_failure_threshold", 10**12),
        ("change_threshold_absolute", Decimal("1e40")),
        ("change_threshold_absolute", Decimal("1e-999999")),
        ("change_threshold_percent", Decimal("1e40")),
        ("source_tolerance_percent", 1000),
        ("unrealistic_balance_threshold", "1e999999"),
    ],
)
def test_absurd_values_are_refused_by_name(option: str, value: object) -> None:
    """Values far outside any sane range (a flush every nanosecond...) raise ConfigError."""
    with pytest.raises(ConfigError) as info:
        make(**{option: value})
    assert info.value.option == option


class Hostile:
    """An object whose comparisons, truth and repr raise."""

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparing me")

    def __bool__(self) -> bool:
        raise RuntimeError("no truth in me")

    def __repr__(self) -> str:
        raise RuntimeError("no repr of me")


OPTIONS = [spec.name for spec in dataclasses.fields(BalanceManagerConfig)]

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.builds(
        lambda digits, sign: sign * 10**digits, st.integers(0, 6000), st.sampled_from([1, -1])
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [Decimal("sNaN"), Decimal("-sNaN"), Decimal("NaN"), Decimal("1e999999"), Decimal("-0")]
    ),
    st.fractions(),
    st.complex_numbers(),
    st.text(max_size=50),
    st.from_regex(r"\A-?[0-9]{1,40}(\.[0-9]{0,40})?(e-?[0-9]{1,7})?\Z"),
    st.binary(max_size=20),
    st.sampled_from(
        [
            "starter",
            "stale_data",
            "http://127.0.0.1:1",
            "ws://127.0.0.1:1",
            ":memory:",
            Path("history.sqlite3"),
            datetime.date(1979, 5, 27),
            datetime.timedelta(seconds=5),
            fractions.Fraction(1, 3),
            Credentials.of("my-public-api-key-123", SECRET),
            object(),
            Hostile(),
            int,
        ]
    ),
)
ANY_VALUE = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.lists(SCALARS, max_size=3).map(tuple),
    st.dictionaries(st.text(max_size=5), SCALARS, max_size=2),
)


@settings(max_examples=1500, deadline=None)
@given(option=st.sampled_from(OPTIONS), value=ANY_VALUE)
def test_any_value_gives_a_config_or_a_config_error_naming_the_option(
    option: str, value: object
) -> None:
    """Any value of any type for any option: a valid config, or ConfigError naming the option."""
    refused: ConfigError | None = None
    try:
        config = make(**{option: value})
    except ConfigError as exc:
        refused = exc
    if refused is None:
        assert BalanceManagerConfig(**config.as_values()) == config
    else:
        # A cross-option rule (ping below timeout) names both options in its message.
        assert refused.option == option or option in str(refused)
        assert len(str(refused)) < 1000


def test_every_numeric_option_has_a_bound() -> None:
    """Each option whose default is a number (not a bool) has a range in OPTION_BOUNDS."""
    numeric = {
        spec.name
        for spec in dataclasses.fields(BalanceManagerConfig)
        if isinstance(spec.default, int | float | Decimal) and not isinstance(spec.default, bool)
    }
    assert numeric == set(OPTION_BOUNDS)


def test_every_default_is_within_its_bound() -> None:
    """The defaults themselves sit inside the documented ranges."""
    config = make()
    for name, bound in OPTION_BOUNDS.items():
        assert bound.minimum <= getattr(config, name) <= bound.maximum, name


def _with_partners(name: str, value: object) -> dict[str, object]:
    """``{name: value}`` plus what the cross-option rules need for it to be valid alone."""
    options: dict[str, object] = {name: value}
    if name == "websocket_timeout":
        options["websocket_ping_interval"] = OPTION_BOUNDS["websocket_ping_interval"].minimum
    if name == "websocket_ping_interval":
        options["websocket_timeout"] = OPTION_BOUNDS["websocket_timeout"].maximum
    if name == "reconnect_initial_delay":
        options["reconnect_max_delay"] = OPTION_BOUNDS["reconnect_max_delay"].maximum
    if name == "reconnect_max_delay":
        options["reconnect_initial_delay"] = OPTION_BOUNDS["reconnect_initial_delay"].minimum
    return options


def _beyond(value: float | int | Decimal, direction: int) -> float | int | Decimal:
    """The nearest value past ``value`` in ``direction`` (+1 up, -1 down) of the same type."""
    if isinstance(value, float):
        return math.nextafter(value, math.inf * direction)
    if isinstance(value, int):
        return value + direction
    return value + direction * Decimal("1e-28")


@pytest.mark.parametrize("name", sorted(OPTION_BOUNDS))
def test_each_bound_is_inclusive_and_enforced_at_both_ends(name: str) -> None:
    """The minimum and maximum are accepted; the nearest values past them are refused by name."""
    bound = OPTION_BOUNDS[name]
    for edge in (bound.minimum, bound.maximum):
        assert getattr(make(**_with_partners(name, edge)), name) == edge
    for outside in (_beyond(bound.minimum, -1), _beyond(bound.maximum, +1)):
        with pytest.raises(ConfigError, match="between") as info:
            make(**_with_partners(name, outside))
        assert info.value.option == name


def test_decimal_options_refuse_more_than_28_decimal_places() -> None:
    """An amount option finer than 1e-28 is refused; trailing zeros do not count."""
    with pytest.raises(ConfigError, match="28 decimal places") as info:
        make(change_threshold_absolute=Decimal("1e-29"))
    assert info.value.option == "change_threshold_absolute"
    padded = Decimal("0.1" + "0" * 40)
    assert make(change_threshold_absolute=padded).change_threshold_absolute == Decimal("0.1")


def test_decimal_seconds_are_compared_as_written() -> None:
    """Decimal("0.01") is exactly the 10 ms minimum of history_flush_interval, and accepted."""
    assert make(history_flush_interval=Decimal("0.01")).history_flush_interval == 0.01


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("WEBSOCKET_TIMEOUT", "1e400"),
        ("HISTORY_FLUSH_INTERVAL", "1e-9"),
        ("DEFAULT_DECIMALS", "1000000000000"),
        ("CACHE_MAX_SIZE", "9" * 5000),
        ("CHANGE_THRESHOLD_PERCENT", "sNaN"),
    ],
)
def test_absurd_env_values_are_refused_by_name(name: str, raw: str) -> None:
    """The same bounds apply to values read from the environment."""
    with pytest.raises(ConfigError) as info:
        BalanceManagerConfig.from_env({f"{ENV_PREFIX}{name}": raw})
    assert info.value.option == name.lower()


def test_absurd_toml_values_are_refused_by_name(tmp_path: Path) -> None:
    """The same bounds apply to values read from TOML (a date is not a number of seconds)."""
    for text, option in [
        ("history_flush_interval = 1e-9\n", "history_flush_interval"),
        ("websocket_timeout = 1979-05-27\n", "websocket_timeout"),
        ("default_decimals = 9223372036854775807\n", "default_decimals"),
    ]:
        with pytest.raises(ConfigError) as info:
            BalanceManagerConfig.from_toml(write(tmp_path, text))
        assert info.value.option == option


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("rest_url", "https://" + "a" * 3000),
        ("rest_url", "https://api.kraken.com/\n0/private"),
        ("ws_url", "wss://ws-auth.kraken.com/v2 extra"),
        ("metrics_host", "h" * 300),
        ("metrics_host", "local host"),
        ("metrics_host", "127.0.0.1\x00"),
        ("history_db_path", "data/" + "p" * 5000),
    ],
    ids=["url-3000", "url-newline", "ws-space", "host-300", "host-space", "host-nul", "path-5000"],
)
def test_text_options_are_bounded_too(option: str, value: str) -> None:
    """URLs, hosts and paths of absurd length or with spaces/control characters: ConfigError."""
    with pytest.raises(ConfigError) as info:
        make(**{option: value})
    assert info.value.option == option
    assert len(str(info.value)) < 500


# -- history_url ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        "postgresql://bot@db.example:5432/history?sslmode=require",
        "postgres://db/history",
        "postgresql://postgres:@/test?host=/tmp/pg_socket",
        "sqlite:/var/lib/bm/history.db",
        "sqlite:///var/lib/bm/{account}/history.db",
        "/var/lib/bm/my history.db",
        "relative/history.db",
    ],
)
def test_history_url_takes_postgres_urls_sqlite_and_paths(value: str | None) -> None:
    """history_url accepts a postgresql:// URL, sqlite:PATH, a path, or None."""
    assert make(history_url=value).history_url == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "mysql://bot:hunter2@db/history",
        "PostgreSQL://bot:hunter2@db/history",
        "postgresql://bot:hunter2@db/my history",
        "postgresql://bot:hunter2@db/" + "x" * 3000,
        5,
    ],
)
def test_bad_history_urls_name_the_option_and_never_the_password(value: object) -> None:
    """A bad history_url is a ConfigError naming history_url, with no password in it."""
    with pytest.raises(ConfigError) as info:
        make(history_url=value)
    assert info.value.option == "history_url"
    assert "hunter2" not in str(info.value)


def test_history_url_password_never_shows_in_repr_or_as_dict() -> None:
    """repr() and as_dict() mask the password of history_url; as_values() keeps it for use."""
    url = "postgresql://bot:hunter2@db.example/history?password=hunter3"
    config = make(history_url=url)
    assert "hunter2" not in repr(config)
    assert "hunter3" not in repr(config)
    assert "bot:***@db.example" in repr(config)
    assert "hunter2" not in str(config.as_dict())
    assert config.as_values()["history_url"] == url


def test_history_url_from_the_environment() -> None:
    """BALANCE_MANAGER_HISTORY_URL sets it; 'off' or 'none' leaves it unset."""
    url = "postgresql://bot@db.example/history"
    assert BalanceManagerConfig.from_env({"BALANCE_MANAGER_HISTORY_URL": url}).history_url == url
    for off in ("off", "none", ""):
        env = {"BALANCE_MANAGER_HISTORY_URL": off}
        assert BalanceManagerConfig.from_env(env).history_url is None


# -- alerts ------------------------------------------------------------------------------------


def test_alert_thresholds_from_a_mapping_pairs_or_the_environment(tmp_path: Path) -> None:
    """Low-balance thresholds are exact Decimals, however they are given."""
    expected = (("USD", Decimal("100")), ("BTC", Decimal("0.01")))
    given: Any = {"USD": "100", "BTC": "0.01"}  # normalised to the pairs the field holds
    assert BalanceManagerConfig(alert_low_balance=given).alert_low_balance == expected
    given = [("USD", 100), ("BTC", "0.01")]
    assert BalanceManagerConfig(alert_low_balance=given).alert_low_balance == expected
    env = {"BALANCE_MANAGER_ALERT_LOW_BALANCE": "USD=100, BTC=0.01"}
    assert BalanceManagerConfig.from_env(env).alert_low_balance == expected
    path = tmp_path / "config.toml"
    path.write_text("[balance_manager.alert_low_balance]\nUSD = 100\nBTC = 0.01\n")
    assert BalanceManagerConfig.from_toml(path).alert_low_balance == expected
    hash(BalanceManagerConfig(alert_low_balance=given))  # still a hashable value


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ({"USD": "-1"}, "alert_low_balance[USD]"),
        ({"USD": "lots"}, "alert_low_balance[USD]"),
        ("USD=1", "alert_low_balance"),
        ({"": "1"}, "alert_low_balance"),
        (["USD"], "alert_low_balance"),
    ],
)
def test_bad_alert_thresholds_name_the_option(value: object, shown: str) -> None:
    """A bad threshold is a ConfigError naming the option (and the asset)."""
    with pytest.raises(ConfigError) as info:
        BalanceManagerConfig(alert_low_balance=value)  # type: ignore[arg-type]
    assert info.value.option == shown


def test_unknown_alert_rule_lists_the_known_ones() -> None:
    """disabled_alerts takes the built-in alert rules' names only."""
    assert BalanceManagerConfig(disabled_alerts=["stale_price"]).disabled_alerts == ("stale_price",)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="balance_anomaly"):
        BalanceManagerConfig(disabled_alerts=("no_such_alert",))


def test_webhook_url_token_never_shows() -> None:
    """The webhook URL's path and query may hold a token: repr, as_dict and errors hide them."""
    url = "https://hooks.example.com/services/T0/B0/sekrit-token?key=sekrit2"
    config = BalanceManagerConfig(alert_webhook_url=url)
    assert config.alert_webhook_url == url
    for text in (repr(config), str(config.as_dict())):
        assert "sekrit" not in text
        assert "https://hooks.example.com/***" in text
    with pytest.raises(ConfigError) as info:
        BalanceManagerConfig(alert_webhook_url="ftp://hooks.example.com/sekrit")
    assert "sekrit" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        BalanceManagerConfig(alert_webhook_url="https://hooks.example.com/sekrit token")
    assert "sekrit" not in str(info.value)
    assert (
        BalanceManagerConfig.from_env(
            {"BALANCE_MANAGER_ALERT_WEBHOOK_URL": "none"}
        ).alert_webhook_url
        is None
    )
