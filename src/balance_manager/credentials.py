"""API credentials that never print themselves.

A :class:`Secret` holds a string that must not reach logs, reprs, exception
messages or status output: its ``str`` and ``repr`` are masked and only
:meth:`Secret.reveal` gives the value (to the signer). :func:`load_credentials`
reads them from the environment or from a file, never from the command line
(which other users can read in the process list).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from balance_manager.exceptions import ConfigError

__all__ = [
    "REDIS_SCHEMES",
    "SECRET_BYTES",
    "SIMULATED_KEY_PREFIX",
    "Credentials",
    "Secret",
    "load_credentials",
    "mask_key",
    "redact_url",
    "redact_webhook_url",
]

logger = logging.getLogger(__name__)

ENV_API_KEY = "KRAKEN_API_KEY"
ENV_API_SECRET = "KRAKEN_API_SECRET"  # noqa: S105 - the variable's name, not a secret
ENV_CREDENTIALS_FILE = "KRAKEN_CREDENTIALS_FILE"
#: The largest credentials file read: a key and a secret are two short lines.
MAX_FILE_BYTES = 64 * 1024
#: The longest API key accepted (Kraken's are 56 characters).
MAX_KEY_LENGTH = 256

#: Length of a Kraken API secret once base64-decoded: the HMAC-SHA512 key.
SECRET_BYTES = 64


class Secret:
    """A string that is masked whenever it is printed.

    >>> s = Secret("kQH5HW/8p1uG")
    >>> str(s), repr(s), f"{s}"
    ('***', "Secret('***')", '***')
    >>> s.reveal()
    'kQH5HW/8p1uG'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret holds a str, got {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """The secret value itself. Pass it only to code that must use it."""
        return self._value

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return "Secret('***')"

    def __format__(self, format_spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> str:
        raise TypeError("a Secret cannot be pickled")

    def __copy__(self) -> Secret:
        return self  # immutable: a copy is the same secret, never its text

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        return self


def mask_key(api_key: str) -> str:
    """A public API key shortened for display (``abcd…wxyz``)."""
    if len(api_key) <= 8:
        return "***"
    return f"{api_key[:4]}…{api_key[-4:]}"


#: How the built-in simulator's API keys begin (``-`` is not in Kraken's base64 keys).
SIMULATED_KEY_PREFIX = "sim-"


def _check_secret(secret: Secret) -> None:
    """A Kraken API secret is the base64 text of 64 bytes; the message never shows it."""
    if not secret:
        raise ConfigError("api_secret", "***", "must not be empty")
    try:
        key = base64.b64decode(secret.reveal(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            "api_secret",
            "***",
            f"is not valid base64 (a Kraken API secret is base64 of {SECRET_BYTES} bytes, "
            "as Kraken shows it when the key is created)",
        ) from None
    if len(key) != SECRET_BYTES:
        raise ConfigError(
            "api_secret",
            "***",
            f"decodes to {len(key)} bytes; a Kraken API secret is base64 of {SECRET_BYTES} bytes",
        )


@dataclass(frozen=True, slots=True)
class Credentials:
    """A Kraken API key and its base64 secret, checked for shape before any I/O.

    The key must be printable ASCII without blanks and the secret base64 of
    64 bytes, so a mistyped or truncated secret is refused at once, with a
    :class:`~balance_manager.exceptions.ConfigError` naming the field, rather
    than after a network round trip. The key is shown shortened in ``repr``;
    the secret is a :class:`Secret`.
    """

    api_key: str
    api_secret: Secret

    def __post_init__(self) -> None:
        if not isinstance(self.api_key, str):
            raise ConfigError("api_key", type(self.api_key).__name__, "must be a str")
        if not self.api_key:
            raise ConfigError("api_key", "", "must not be empty")
        key = self.api_key
        if len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()) or " " in key:
            raise ConfigError(
                "api_key",
                mask_key(key[:MAX_KEY_LENGTH]),
                f"must be at most {MAX_KEY_LENGTH} printable ASCII characters without spaces, "
                "as Kraken's keys are",
            )
        if not isinstance(self.api_secret, Secret):
            raise ConfigError("api_secret", "***", "must be a Secret (use Credentials.of)")
        _check_secret(self.api_secret)

    @classmethod
    def of(cls, api_key: str, api_secret: str | Secret) -> Credentials:
        """Build from plain strings (blanks around either are dropped).

        Raises:
            ConfigError: the key or the secret is not text or does not have the shape
                of Kraken's (never showing the secret).
        """
        if not isinstance(api_key, str):
            raise ConfigError("api_key", type(api_key).__name__, "must be a str")
        if isinstance(api_secret, Secret):
            text = api_secret.reveal()
        elif isinstance(api_secret, str):
            text = api_secret
        else:
            raise ConfigError("api_secret", "***", "must be a str or a Secret")
        return cls(api_key=api_key.strip(), api_secret=Secret(text.strip()))

    def __repr__(self) -> str:
        return f"Credentials(api_key={mask_key(self.api_key)!r}, api_secret=Secret('***'))"

    @property
    def fingerprint(self) -> str:
        """A short, stable identifier of the key, safe to show and store.

        The first 16 hex digits of a SHA-256 of the key: it tells accounts
        apart (history is kept per key) without revealing the key.
        """
        digest = hashlib.sha256(b"balance-manager/account/v1:" + self.api_key.encode())
        return digest.hexdigest()[:16]

    @property
    def simulated(self) -> bool:
        """Whether this is a key issued by the built-in simulator.

        The simulator's keys start with :data:`SIMULATED_KEY_PREFIX`, which
        holds a character no Kraken key contains (they are standard base64).
        """
        return self.api_key.startswith(SIMULATED_KEY_PREFIX)


def load_credentials(
    env: dict[str, str] | None = None, *, path: str | os.PathLike[str] | None = None
) -> Credentials | None:
    """Credentials from a file or the environment, or ``None`` when none are set.

    Order: ``path`` if given, else the file named by ``KRAKEN_CREDENTIALS_FILE``,
    else ``KRAKEN_API_KEY`` and ``KRAKEN_API_SECRET``. A credentials file holds
    two lines, ``key`` then ``secret`` (or ``KEY=...`` / ``SECRET=...`` lines);
    a warning is logged when other users can read it.

    Raises:
        ConfigError: only one of key and secret is set, or the file is unreadable,
            not UTF-8 text, larger than :data:`MAX_FILE_BYTES` or holds an unusable key.
    """
    environ = os.environ if env is None else env
    file = path if path is not None else environ.get(ENV_CREDENTIALS_FILE)
    if file:
        return _read_credentials_file(Path(file))
    key = environ.get(ENV_API_KEY, "").strip()
    secret = environ.get(ENV_API_SECRET, "").strip()
    if not key and not secret:
        return None
    if not key or not secret:
        missing = ENV_API_KEY if not key else ENV_API_SECRET
        raise ConfigError(missing, "", "both KRAKEN_API_KEY and KRAKEN_API_SECRET must be set")
    return Credentials.of(key, secret)


def _read_credentials_file(path: Path) -> Credentials:
    try:
        mode = path.stat().st_mode
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError("credentials_file", str(path), f"cannot read: {exc.strerror}") from None
    # Neither error shows the content: it may hold a secret.
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            "credentials_file",
            str(path),
            f"too large for a credentials file (over {MAX_FILE_BYTES // 1024} KiB); is it the "
            "right file?",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            "credentials_file", str(path), "not UTF-8 text (expected a key line and a secret line)"
        ) from None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        logger.warning(
            "credentials file %s is readable by other users; run: chmod 600 %s", path, path
        )
    values: dict[str, str] = {}
    plain: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if sep and name.strip().upper() in {"KEY", "API_KEY", "SECRET", "API_SECRET"}:
            values["secret" if "SECRET" in name.upper() else "key"] = value.strip()
        else:
            plain.append(line)
    key = values.get("key") or (plain[0] if plain else "")
    secret = values.get("secret") or (plain[1] if len(plain) > 1 else "")
    if not key or not secret:
        raise ConfigError("credentials_file", str(path), "needs a key line and a secret line")
    return Credentials.of(key, secret)


#: Query parameters of a database URL whose value is a secret (libpq's and redis-py's names).
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})

#: The URL schemes redis-py understands (``redis_url``).
REDIS_SCHEMES = ("redis", "rediss", "unix")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for a message or a log line.

    The one masker of every URL the package is given (``history_url``,
    ``redis_url``): masks the password of the user part
    (``postgresql://user:pw@host/db``), the ``password`` / ``sslpassword`` query
    parameters and, in a Redis URL, a user part without a colon (often the
    password alone: ``redis://pw@host``); anything else is kept. Text that is
    not a URL is returned unchanged.

    >>> redact_url("postgresql://bot:hunter2@db.example/history?sslmode=require")
    'postgresql://bot:***@db.example/history?sslmode=require'
    >>> redact_url("redis://hunter2@127.0.0.1:6379/0")
    'redis://***@127.0.0.1:6379/0'
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an invalid IPv6 host: say nothing of what it holds
        return "<unparsable URL>" if "@" in url or "password" in url.lower() else url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = f"{userinfo.split(':', 1)[0]}:***"
        elif parts.scheme in REDIS_SCHEMES:
            userinfo = "***"
        netloc = f"{userinfo}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() in _SECRET_PARAMETERS for key, _ in pairs):
            query = urlencode(
                [(k, "***" if k.lower() in _SECRET_PARAMETERS else v) for k, v in pairs],
                safe="*/:",
            )
    if not netloc and url.startswith(f"{parts.scheme}://"):  # unix:///path keeps its slashes
        shown = f"{parts.scheme}://{parts.path}"
        return f"{shown}?{query}" if query else shown
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_webhook_url(url: str) -> str:
    """A webhook ``url`` with everything that may carry a token hidden: ``https://host/***``.

    Webhook services put their token in the path (``/services/T0/B0/XXXX``) or
    the query (``?token=...``): only the scheme, the host and the port are
    kept; a user part becomes ``***@``.

    >>> redact_webhook_url("https://hooks.example.com/services/T0/B0/secret?x=1")
    'https://hooks.example.com/***'
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return "<unparsable URL>"
    host = parts.netloc.rpartition("@")[2]
    netloc = f"***@{host}" if "@" in parts.netloc else host
    hidden = parts.path.strip("/") or parts.query or parts.fragment
    return urlunsplit((parts.scheme, netloc, "/***" if hidden else parts.path, "", ""))
