"""Engine and session creation (SQLite pragmas: foreign keys on, WAL, busy timeout, secure delete; write transactions).

SQLite allows one writer at a time. A transaction that has read and then writes fails at once ("database is
locked", no busy wait) if another connection committed since its read began; so code that writes in a
transaction that may have read first calls :func:`begin_write` (or uses :func:`write_scope`): on SQLite the
transaction then starts with ``BEGIN IMMEDIATE``, which waits its turn (``busy_timeout``) for the write lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from areya.config import Settings
from areya.db.secret_url import attach_cipher
from areya.private_files import sqlite_files, tighten_files

log = logging.getLogger(__name__)
T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_MS = 10_000
WRITE_OPTION = "areya_write"  # connection execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide transaction boundaries ("BEGIN" emitted below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # overwritten and deleted content (an old camera URL, a discharged patient's rows) is zeroed, not left in free
    # space of the database file
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")


def create_db_engine(settings_or_url: Settings | str, **kwargs: Any) -> Engine:
    """An Engine for ``settings.database_url`` (or a URL); SQLite gets foreign keys ON and its directory created."""
    settings = settings_or_url if isinstance(settings_or_url, Settings) else None
    url = settings.database_url if settings is not None else str(settings_or_url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            database = Path(parsed.database).expanduser()
            database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tighten_files(sqlite_files(database))  # it holds password hashes and camera credentials
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
    if settings is not None and settings.secret_key:
        attach_cipher(engine, settings.secret_key)
    return engine


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def writer(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions are write transactions (SQLite: ``BEGIN IMMEDIATE``)."""
    return engine.execution_options(**{WRITE_OPTION: True})


def in_write_transaction(session: Session) -> bool:
    """True while the session's transaction is one :func:`begin_write` started."""
    transaction = session.get_transaction()
    return transaction is not None and session.info.get(WRITE_OPTION) is transaction


def begin_write(session: Session) -> Session:
    """Make the session's transaction a write transaction before it writes (a no-op if it is one already).

    A read-only transaction in progress is committed first (objects stay loaded: the factories do not expire on
    commit); one with pending changes is left alone, as they belong to it.
    """
    if in_write_transaction(session):
        return session
    if session.in_transaction():
        if session.new or session.dirty or session.deleted:
            return session
        session.commit()
    session.connection(execution_options={WRITE_OPTION: True})
    session.info[WRITE_OPTION] = session.get_transaction()
    return session


@contextmanager
def session_scope(factory: sessionmaker[Session], *, write: bool = False) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error (``write``: begun as a write transaction)."""
    session = factory()
    try:
        if write:
            begin_write(session)
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def write_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one write transaction (SQLite: ``BEGIN IMMEDIATE``), committed at the end."""
    with session_scope(factory, write=True) as session:
        yield session


def is_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked" / "busy" (the write lock was not free within busy_timeout)."""
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError) and ("database is locked" in text or "busy" in text)


def run_write(factory: sessionmaker[Session], work: Callable[[Session], T], *, attempts: int = 3) -> T:
    """``work(session)`` in a write transaction of its own, committed; retried if SQLite stays busy past its
    busy timeout (for rows that must not be lost, such as security audit events)."""
    for attempt in range(1, attempts + 1):
        try:
            with write_scope(factory) as session:
                return work(session)
        except OperationalError as exc:
            if attempt >= attempts or not is_busy(exc):
                raise
            log.warning("database busy (attempt %d of %d): retrying the write", attempt, attempts)
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")
