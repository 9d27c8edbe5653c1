"""Alembic environment: the database URL comes from Areya's Settings (or the engine handed in by areya.db.migrate)."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

import areya.db.models  # noqa: F401  (registers every table on Base.metadata)
from areya.config import load_settings
from areya.db.base import Base
from areya.db.secret_url import SecretUrl
from areya.db.types import UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render Areya's column types as what they store in revision files (UTCDateTime, SecretUrl)."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, SecretUrl):
        return "sa.Text()"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    settings = config.attributes.get("areya_settings") or load_settings()
    return settings.database_url


def run_offline() -> None:
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True, render_item=render_item
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = config.attributes.get("engine")
    own = engine is None
    if own:
        from areya.db.engine import create_db_engine

        engine = create_db_engine(_url())
    try:
        with engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                # Batch migrations copy and drop tables: with foreign keys ON, dropping a referenced table would run
                # its ON DELETE actions.  Off for the migration (set outside any transaction), checked, then back on.
                conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            try:
                _configure(conn)
                conn.commit()
                if sqlite:
                    problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    conn.commit()
                    if problems:
                        raise RuntimeError(f"foreign key violations after migration: {problems[:5]}")
            finally:
                if sqlite:
                    conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
    finally:
        if own:
            engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
