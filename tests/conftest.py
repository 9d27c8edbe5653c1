"""Shared fixtures (core helper).  Concern-specific fixtures go in each concern's own test files / folders.

- ``settings``: validated Settings with a temporary data_dir and SQLite database (no AREYA_* env leaks in).
- ``engine`` / ``session`` / ``db_settings``: a fresh migrated database per test, parametrized over SQLite and
  PostgreSQL; the PostgreSQL variant runs only when ``AREYA_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it),
  otherwise it is skipped.
- ``empty_database_url``: a fresh, empty (unmigrated) database URL per backend, for migration tests.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from areya.config import Settings, load_settings
from areya.db.engine import create_db_engine, create_session_factory

PG_ENV = "AREYA_TEST_POSTGRES_URL"
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql", marks=pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"{PG_ENV} not set (see .ci/run)")
    ),
]


@pytest.fixture(autouse=True)
def _isolate_areya_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's AREYA_* variables (config file, database, ...) must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("AREYA_") and not name.startswith("AREYA_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env={"AREYA_DATA_DIR": str(tmp_path / "var")})


# --------------------------------------------------------------------------- PostgreSQL helpers


def _pg_admin_engine() -> Engine:
    return create_engine(os.environ[PG_ENV], isolation_level="AUTOCOMMIT")


def _pg_create_database(template: str | None = None) -> str:
    """Create a uniquely named database (optionally a copy of ``template``); return its URL."""
    name = f"areya_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_engine()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template or "template0"}"')
    finally:
        admin.dispose()
    return make_url(os.environ[PG_ENV]).set(database=name).render_as_string(hide_password=False)


def _pg_drop_database(url: str) -> None:
    name = make_url(url).database
    admin = _pg_admin_engine()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


# --------------------------------------------------------------------------- migrated templates (once per session)


def _migrate(url: str, data_dir: Path) -> None:
    from areya.db.migrate import upgrade

    upgrade(load_settings(env={"AREYA_DATA_DIR": str(data_dir), "AREYA_DATABASE_URL": url}))


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("sqlite-template")
    path = base / "template.db"
    _migrate(f"sqlite:///{path}", base)
    return path


@pytest.fixture(scope="session")
def _pg_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = _pg_create_database()
    _migrate(url, tmp_path_factory.mktemp("pg-template"))
    yield make_url(url).database or ""
    _pg_drop_database(url)


# --------------------------------------------------------------------------- per-test databases


@pytest.fixture(params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh migrated database (copy of the session's migrated template)."""
    if db_backend == "sqlite":
        path = tmp_path / "areya-test.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = _pg_create_database(template=request.getfixturevalue("_pg_template"))
    yield url
    _pg_drop_database(url)


@pytest.fixture
def empty_database_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database, not migrated."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = _pg_create_database()
    yield url
    _pg_drop_database(url)


@pytest.fixture
def db_settings(settings: Settings, database_url: str) -> Settings:
    """``settings`` pointing at the per-test migrated database (same backend as ``engine``)."""
    return settings.replace(database_url=database_url)


@pytest.fixture
def engine(db_settings: Settings) -> Iterator[Engine]:
    eng = create_db_engine(db_settings)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> Callable[[], Session]:
    return create_session_factory(engine)


@pytest.fixture
def session(session_factory: Callable[[], Session]) -> Iterator[Session]:
    with session_factory() as sess:
        yield sess
