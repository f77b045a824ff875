"""Tests of balance_manager.credentials: secrets that never print, loaded from env or file."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import pytest

from balance_manager.config import BalanceManagerConfig
from balance_manager.credentials import (
    Credentials,
    Secret,
    load_credentials,
    mask_key,
    redact_url,
    redact_webhook_url,
)
from balance_manager.exceptions import ConfigError

SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
KEY = "public-api-key-abcdef-123456"


# -- Secret ---------------------------------------------------------------------------


def test_secret_is_masked_everywhere() -> None:
    """str, repr, format and f-strings of a Secret show only stars."""
    secret = Secret(SECRET)
    assert str(secret) == "***"
    assert repr(secret) == "Secret('***')"
    assert f"{secret}" == "***"
    assert f"{secret!r}" == "Secret('***')"
    assert f"{secret:>20}" == "***"
    assert "%s" % (secret,) == "***"  # noqa: UP031 - the %-format path is what is tested
    assert SECRET not in repr([secret, {"s": secret}])


def test_secret_reveals_only_on_request() -> None:
    """reveal() gives the value back."""
    assert Secret(SECRET).reveal() == SECRET


def test_secret_compares_by_value_and_is_truthy_when_set() -> None:
    """Secrets with the same value are equal and hash alike; an empty one is falsy."""
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert hash(Secret("a")) == hash(Secret("a"))
    assert bool(Secret("")) is False
    assert bool(Secret("x")) is True


def test_secret_holds_only_strings() -> None:
    """A non-str value is refused with TypeError that does not show it."""
    with pytest.raises(TypeError) as info:
        Secret(b"raw-bytes-secret")  # type: ignore[arg-type]  # bad on purpose
    assert "raw-bytes-secret" not in str(info.value)


def test_secret_has_no_instance_dict() -> None:
    """A Secret has slots only, so vars() cannot dump its value."""
    with pytest.raises(TypeError):
        vars(Secret(SECRET))


def test_secret_and_credentials_refuse_pickling() -> None:
    """Pickling a Secret or Credentials raises, so the secret never lands on disk by accident."""
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(SECRET))
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Credentials.of(KEY, SECRET))


# -- Credentials ---------------------------------------------------------------------------


def test_credentials_repr_masks_key_and_secret() -> None:
    """repr() and str() of Credentials show a shortened key and a masked secret."""
    credentials = Credentials.of(KEY, SECRET)
    text = repr(credentials)
    assert text == "Credentials(api_key='publ…3456', api_secret=Secret('***'))"
    assert str(credentials) == text
    assert SECRET not in text
    assert KEY not in text


def test_mask_key_hides_short_keys_completely() -> None:
    """Keys of 8 characters or fewer are shown as stars only."""
    assert mask_key("12345678") == "***"
    assert mask_key("123456789") == "1234…6789"


def test_credentials_of_strips_the_key_and_wraps_the_secret() -> None:
    """Credentials.of() strips whitespace around the key and wraps a str secret in Secret."""
    credentials = Credentials.of(f"  {KEY}\n", SECRET)
    assert credentials.api_key == KEY
    assert isinstance(credentials.api_secret, Secret)
    assert Credentials.of(KEY, Secret(SECRET)) == credentials


@pytest.mark.parametrize(
    ("key", "secret", "field"),
    [("", SECRET, "api_key"), (KEY, "", "api_secret")],
)
def test_empty_key_or_secret_is_refused(key: str, secret: str, field: str) -> None:
    """An empty key or secret raises ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        Credentials.of(key, secret)
    assert info.value.option == field


@pytest.mark.parametrize(
    ("key", "secret", "field"),
    [
        (123, SECRET, "api_key"),
        (None, SECRET, "api_key"),
        (KEY, 123, "api_secret"),
        (KEY, b"bytes-secret", "api_secret"),
        ("key\x00with-nul", SECRET, "api_key"),
        ("key with spaces", SECRET, "api_key"),
        ("clé-non-ascii", SECRET, "api_key"),
        ("k" * 1000, SECRET, "api_key"),
    ],
    ids=["int-key", "none-key", "int-secret", "bytes-secret", "nul", "spaces", "non-ascii", "long"],
)
def test_unusable_key_or_secret_is_a_config_error(key: object, secret: object, field: str) -> None:
    """A key or secret that is not text, or a key no HTTP header can carry, is a ConfigError."""
    with pytest.raises(ConfigError) as info:
        Credentials.of(key, secret)  # type: ignore[arg-type]  # bad on purpose
    assert info.value.option == field
    assert SECRET not in str(info.value)
    assert "bytes-secret" not in str(info.value)


def test_plain_string_secret_is_refused_without_showing_it() -> None:
    """Credentials(api_secret=<str>) is refused and the message masks the value."""
    with pytest.raises(ConfigError) as info:
        Credentials(api_key=KEY, api_secret=SECRET)  # type: ignore[arg-type]  # on purpose
    assert SECRET not in str(info.value)


# -- loading from the environment --------------------------------------------------------


def test_no_credentials_in_env_gives_none() -> None:
    """Without the variables, load_credentials() returns None."""
    assert load_credentials({}) is None


def test_env_credentials_are_loaded() -> None:
    """KRAKEN_API_KEY and KRAKEN_API_SECRET give Credentials (whitespace trimmed)."""
    credentials = load_credentials({"KRAKEN_API_KEY": f" {KEY} ", "KRAKEN_API_SECRET": SECRET})
    assert credentials is not None
    assert credentials.api_key == KEY
    assert credentials.api_secret.reveal() == SECRET


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"KRAKEN_API_KEY": KEY}, "KRAKEN_API_SECRET"),
        ({"KRAKEN_API_SECRET": SECRET}, "KRAKEN_API_KEY"),
    ],
)
def test_half_set_env_is_refused(env: dict[str, str], missing: str) -> None:
    """Only one of key and secret set raises ConfigError naming the missing one, not the secret."""
    with pytest.raises(ConfigError) as info:
        load_credentials(env)
    assert info.value.option == missing
    assert SECRET not in str(info.value)


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no mapping given, load_credentials() reads os.environ."""
    monkeypatch.delenv("KRAKEN_CREDENTIALS_FILE", raising=False)
    monkeypatch.setenv("KRAKEN_API_KEY", KEY)
    monkeypatch.setenv("KRAKEN_API_SECRET", SECRET)
    credentials = load_credentials()
    assert credentials == Credentials.of(KEY, SECRET)


# -- loading from a file -------------------------------------------------------------------


def write_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "kraken.key"
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def test_two_line_file_is_loaded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A private file with a key line then a secret line loads without a warning."""
    path = write_file(tmp_path, f"# my key\n{KEY}\n\n{SECRET}\n")
    with caplog.at_level(logging.WARNING, logger="balance_manager.credentials"):
        credentials = load_credentials({}, path=path)
    assert credentials == Credentials.of(KEY, SECRET)
    assert caplog.records == []


def test_named_lines_file_is_loaded(tmp_path: Path) -> None:
    """KEY=... / SECRET=... lines load too, and base64 '=' padding survives."""
    path = write_file(tmp_path, f"SECRET={SECRET}\nkey = {KEY}\n")
    credentials = load_credentials({}, path=path)
    assert credentials is not None
    assert credentials.api_secret.reveal() == SECRET
    assert credentials.api_key == KEY


def test_file_named_by_env_wins_over_env_values(tmp_path: Path) -> None:
    """KRAKEN_CREDENTIALS_FILE is read in preference to KRAKEN_API_KEY / SECRET."""
    path = write_file(tmp_path, f"{KEY}\n{SECRET}\n")
    env = {
        "KRAKEN_CREDENTIALS_FILE": str(path),
        "KRAKEN_API_KEY": "other",
        "KRAKEN_API_SECRET": "x",
    }
    credentials = load_credentials(env)
    assert credentials is not None
    assert credentials.api_key == KEY


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_world_or_group_readable_file_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    """A credentials file readable by others logs a warning with a chmod hint, not the secret."""
    path = write_file(tmp_path, f"{KEY}\n{SECRET}\n", mode=mode)
    with caplog.at_level(logging.WARNING, logger="balance_manager.credentials"):
        credentials = load_credentials({}, path=path)
    assert credentials is not None
    assert "readable by other users" in caplog.text
    assert "chmod 600" in caplog.text
    assert SECRET not in caplog.text


def test_file_without_a_secret_line_is_refused(tmp_path: Path) -> None:
    """A file with only a key raises ConfigError naming the file."""
    path = write_file(tmp_path, f"{KEY}\n")
    with pytest.raises(ConfigError, match="needs a key line and a secret line") as info:
        load_credentials({}, path=path)
    assert info.value.value == str(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    """An unreadable credentials file raises ConfigError naming the path."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_credentials({}, path=tmp_path / "absent.key")


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00\x01binary\x80\x81" * 10,
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    ],
    ids=["binary", "png"],
)
def test_binary_file_is_a_config_error_that_shows_no_content(
    tmp_path: Path, content: bytes
) -> None:
    """A file that is not UTF-8 text raises ConfigError naming the file, not UnicodeDecodeError."""
    path = tmp_path / "kraken.key"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="not UTF-8 text") as info:
        load_credentials({}, path=path)
    assert info.value.option == "credentials_file"
    assert info.value.value == str(path)
    assert "binary" not in str(info.value).replace(str(path), "")


def test_file_with_control_characters_is_a_config_error(tmp_path: Path) -> None:
    """UTF-8 text whose key line holds control characters is refused, naming api_key."""
    path = write_file(tmp_path, f"key\x01\x02\n{SECRET}\n")
    with pytest.raises(ConfigError) as info:
        load_credentials({}, path=path)
    assert info.value.option == "api_key"
    assert SECRET not in str(info.value)


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    """A credentials file far larger than two lines is refused (a wrong path, not a key file)."""
    path = write_file(tmp_path, f"{KEY}\n{SECRET}\n" + "#" * 200_000)
    with pytest.raises(ConfigError, match="too large") as info:
        load_credentials({}, path=path)
    assert info.value.option == "credentials_file"


# -- the shape of a Kraken key pair, checked before any I/O ------------------------------


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("garbage", "not valid base64"),
        ("not base64 at all!", "not valid base64"),
        (SECRET[:-1], "not valid base64"),  # cut short: bad padding
        ("c2VjcmV0", "decodes to 6 bytes"),  # valid base64, too short
        (SECRET[:-4], "decodes to 63 bytes"),
        (SECRET[:-2] + "AAAA==", "decodes to 67 bytes"),
    ],
)
def test_a_secret_that_is_not_base64_of_64_bytes_is_refused(secret: str, reason: str) -> None:
    """A Kraken secret is base64 of 64 bytes; anything else is a ConfigError that never shows it."""
    with pytest.raises(ConfigError) as info:
        Credentials.of(KEY, secret)
    assert info.value.option == "api_secret"
    assert reason in str(info.value)
    assert secret not in str(info.value)


@pytest.mark.parametrize("key", ["key with spaces", "key\twith-tab", "ké-non-ascii", "key\x00"])
def test_a_key_that_is_not_printable_ascii_is_refused(key: str) -> None:
    """An API key must be printable ASCII without blanks; the error names api_key."""
    with pytest.raises(ConfigError) as info:
        Credentials.of(key, SECRET)
    assert info.value.option == "api_key"
    assert key not in str(info.value)


def test_a_malformed_secret_in_the_environment_is_refused_at_load() -> None:
    """load_credentials() refuses KRAKEN_API_SECRET=garbage at once, naming the variable's field."""
    with pytest.raises(ConfigError) as info:
        load_credentials({"KRAKEN_API_KEY": KEY, "KRAKEN_API_SECRET": "garbage"})
    assert info.value.option == "api_secret"
    assert "garbage" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://bot:hunter2@db.example:5432/history?sslmode=require",
            "postgresql://bot:***@db.example:5432/history?sslmode=require",
        ),
        ("postgresql://bot:p%40ss@db/h", "postgresql://bot:***@db/h"),
        (
            "postgresql://bot@db/h?password=hunter2&sslmode=x",
            "postgresql://bot@db/h?password=***&sslmode=x",
        ),
        ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/test"),
        ("/var/lib/bm/history.sqlite3", "/var/lib/bm/history.sqlite3"),
        ("postgresql://a:hunter2@[::1/db", "<unparsable URL>"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:hunter2@host:6379", "redis://:***@host:6379"),
        ("rediss://user:hunter2@host/1", "rediss://user:***@host/1"),
        # Redis URLs are often written with the password alone before the @: masked too
        ("redis://hunter2@host", "redis://***@host"),
        ("unix:///tmp/r.sock?password=hunter2&db=1", "unix:///tmp/r.sock?password=***&db=1"),
        ("unix:///tmp/r.sock?db=1", "unix:///tmp/r.sock?db=1"),
    ],
)
def test_redact_url_masks_every_password(url: str, shown: str) -> None:
    """redact_url hides the password of the user part and of the query, and nothing else."""
    assert redact_url(url) == shown
    assert "hunter2" not in redact_url(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com/services/T0/B0/XXXX", "https://hooks.example.com/***"),
        ("http://127.0.0.1:8080/hook?token=abc", "http://127.0.0.1:8080/***"),
        ("https://user:pw@hooks.example.com/", "https://***@hooks.example.com/"),
        ("https://hooks.example.com", "https://hooks.example.com"),
        ("http://[::1/x", "<unparsable URL>"),
    ],
)
def test_redact_webhook_url_keeps_only_the_host(url: str, shown: str) -> None:
    """redact_webhook_url hides the path, query and user part, where tokens live."""
    assert redact_webhook_url(url) == shown


@pytest.mark.parametrize(
    "url", ["redis://hunter2@host", "redis://:hunter2@host:6379", "unix:///r.sock?password=hunter2"]
)
def test_config_never_shows_a_redis_password(url: str) -> None:
    """The configuration's repr and as_dict mask a Redis password as the shared layer does.

    Two maskers once disagreed: ``redis://hunter2@host`` was masked in the shared
    layer's messages but shown whole in the configuration's repr.
    """
    config = BalanceManagerConfig(redis_url=url)
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config.as_dict())
