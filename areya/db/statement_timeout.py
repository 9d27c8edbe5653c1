"""A time limit on the statements of one unit of work, on both backends: PostgreSQL ``SET LOCAL
statement_timeout`` (until the transaction ends), SQLite a progress handler that interrupts a statement running
past the deadline. A statement stopped this way raises :class:`StatementTimeout` (the transaction is rolled back)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

SQLITE_CHECK_EVERY = 10_000  # virtual-machine instructions between two looks at the clock


class StatementTimeout(RuntimeError):
    """A statement ran past the time limit and was cancelled."""


def _cancelled(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return "interrupted" in message or "statement timeout" in message or "canceling statement" in message


@contextmanager
def statement_timeout(session: Session, seconds: float) -> Iterator[None]:
    """Statements of ``session`` inside the block are cancelled after ``seconds`` (each on PostgreSQL, all
    together on SQLite)."""
    connection = session.connection()
    dialect = connection.dialect.name
    raw = None
    if dialect == "postgresql":
        connection.execute(text(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}"))
    elif dialect == "sqlite":
        raw = connection.connection.dbapi_connection
        deadline = time.monotonic() + seconds
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), SQLITE_CHECK_EVERY)  # type: ignore[union-attr]
    try:
        yield
    except (OperationalError, DBAPIError) as exc:
        if not _cancelled(exc):
            raise
        _clear(raw)  # before the rollback, which the expired deadline would interrupt too
        session.rollback()
        raise StatementTimeout(f"a statement ran past {seconds:g} s and was cancelled") from exc
    finally:
        _clear(raw)


def _clear(raw: object) -> None:
    if raw is not None:
        raw.set_progress_handler(None, SQLITE_CHECK_EVERY)  # type: ignore[attr-defined]


__all__ = ["StatementTimeout", "statement_timeout"]
