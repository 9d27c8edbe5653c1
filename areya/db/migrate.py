"""Alembic helpers: locate ``migrations/`` from the package (works from any cwd), upgrade, current revision."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from areya.config import Settings

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"


class MigrationError(RuntimeError):
    pass


def migrations_dir() -> Path:
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise MigrationError(
            f"Alembic migrations not found at {MIGRATIONS_DIR}; install Areya from a source checkout (pip install -e .)"
        )
    return MIGRATIONS_DIR


def alembic_config(settings: Settings, engine: Engine | None = None) -> Config:
    """An Alembic Config pointing at ``migrations/`` and ``settings.database_url``.

    With ``engine`` given, env.py runs on a connection of that engine (used by tests and by ``upgrade``).
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    cfg.attributes["areya_settings"] = settings
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(settings: Settings, revision: str = "head", engine: Engine | None = None) -> None:
    from alembic import command

    from areya.db.engine import create_db_engine

    own = engine is None
    engine = engine or create_db_engine(settings)
    try:
        command.upgrade(alembic_config(settings, engine), revision)
    finally:
        if own:
            engine.dispose()


def current_revision(settings: Settings, engine: Engine | None = None) -> str | None:
    """The revision the database is at (None: not under Alembic yet)."""
    from alembic.runtime.migration import MigrationContext

    from areya.db.engine import create_db_engine

    own = engine is None
    engine = engine or create_db_engine(settings)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        if own:
            engine.dispose()


def head_revision(settings: Settings) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
