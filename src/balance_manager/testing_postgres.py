"""A real PostgreSQL for tests and benchmarks, wherever they run.

:func:`postgres_url` finds a server in this order:

1. ``BALANCE_MANAGER_TEST_POSTGRES``, when set: a ``postgresql://`` URL to use,
   or ``throwaway`` to skip straight to step 3;
2. the machine's own server at ``127.0.0.1:5432``, database ``test``, user
   ``postgres`` (trust authentication), when it answers within two seconds;
3. a throwaway server started from the ``pgserver`` package, which ships the
   PostgreSQL binaries in its wheel (a ``dev`` dependency), in a temporary
   directory deleted when the context ends. PostgreSQL refuses to run as
   root: run as root, pgserver runs it as a ``pgserver`` system user it
   creates.

Tests never share tables: :func:`scratch_schema` gives each one a schema of its
own, dropped (with everything in it) when it ends, so a test run leaves
nothing behind in the server.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import warnings
from collections.abc import Iterator

import psycopg
from psycopg import sql

__all__ = [
    "ENV_POSTGRES",
    "LOCAL_POSTGRES_URL",
    "drop_schema",
    "postgres_url",
    "scratch_schema",
]

#: The environment variable naming the server to test against (or ``throwaway``).
ENV_POSTGRES = "BALANCE_MANAGER_TEST_POSTGRES"
#: The machine's own server, used when it answers.
LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


@contextlib.contextmanager
def postgres_url(environ: dict[str, str] | None = None) -> Iterator[str]:
    """The URL of a PostgreSQL server that answers, for as long as the context lasts.

    Raises:
        RuntimeError: no server answers and pgserver cannot start one.
    """
    env = os.environ if environ is None else environ
    wanted = env.get(ENV_POSTGRES, "").strip()
    if wanted and wanted != "throwaway":
        yield wanted
        return
    if not wanted and _answers(LOCAL_POSTGRES_URL):
        yield LOCAL_POSTGRES_URL
        return
    with _throwaway_server() as url:
        yield url


@contextlib.contextmanager
def _throwaway_server() -> Iterator[str]:
    """A PostgreSQL server from the pgserver package, in a directory deleted afterwards."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        try:
            from pgserver.postgres_server import get_server
        except ImportError as exc:
            raise RuntimeError(
                "no PostgreSQL answers at 127.0.0.1:5432 and pgserver is not installed "
                "(pip install -e '.[dev]')"
            ) from exc
    directory = tempfile.mkdtemp(prefix="balance-manager-pg-")
    server = get_server(directory, cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def drop_schema(url: str, schema: str) -> None:
    """Drop ``schema`` and everything in it, if it exists."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


@contextlib.contextmanager
def scratch_schema(url: str, prefix: str = "bm_test") -> Iterator[str]:
    """A fresh schema name (not created: the store creates it), dropped at the end."""
    schema = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        yield schema
    finally:
        drop_schema(url, schema)
