"""Alembic: head matches the models exactly (autogenerate finds nothing) on SQLite and PostgreSQL; up/down work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from areya.config import Settings
from areya.db.engine import create_db_engine
from areya.db.migrate import current_revision, head_revision, upgrade
from areya.db.models import Base

pytestmark = pytest.mark.postgres


def test_head_matches_models(settings: Settings, empty_database_url: str) -> None:
    s = settings.replace(database_url=empty_database_url)
    assert current_revision(s) is None
    upgrade(s)
    assert current_revision(s) == head_revision(s)
    engine = create_db_engine(s)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            diff = compare_metadata(context, Base.metadata)
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; add a revision: {diff}"
    assert set(Base.metadata.tables) <= tables


def test_downgrade_to_base_and_back(settings: Settings, empty_database_url: str) -> None:
    from alembic import command

    from areya.db.migrate import alembic_config

    s = settings.replace(database_url=empty_database_url)
    upgrade(s)
    command.downgrade(alembic_config(s), "base")
    engine = create_db_engine(s)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    upgrade(s)
    assert current_revision(s) == head_revision(s)


def test_cli_upgrade_works_from_any_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"AREYA_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "areya", "db"]
    first = subprocess.run([*run, "upgrade"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([*run, "upgrade"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr  # idempotent
    current = subprocess.run([*run, "current"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert current.returncode == 0 and "(head)" in current.stdout
    assert (tmp_path / "data" / "areya.db").is_file()
