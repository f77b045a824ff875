"""Fixtures of the store tests: ``backend`` is each history backend in turn.

SQLite (a file in the test's temporary directory) and PostgreSQL (a schema of
the test's own in a real server, dropped when the test ends): the
``history_backend`` fixture of ``tests/conftest.py``; see
``balance_manager.testing_postgres`` for which server.
"""

from __future__ import annotations

import pytest

from .backends import Backend


@pytest.fixture
def backend(history_backend: Backend) -> Backend:
    """Each history backend in turn, on a database of this test's own."""
    return history_backend
