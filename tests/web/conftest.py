"""Dashboard test fixtures: a real embedded Redis and the test hospital (see web_helpers.populate)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from web_helpers import World, make_world, populate

from areya.comms.redis_server import EmbeddedRedis
from areya.config import Settings
from areya.db.secret_url import attach_cipher

# the test hospital is built once and copied into each test's database: one secret key (camera URLs are encrypted
# with a key derived from it) for the world and the apps over its copies
WORLD_SECRET_KEY = "web-tests-world-secret-key-0123456789"


@pytest.fixture
def web_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    """A real embedded redis-server for the test."""
    server = EmbeddedRedis(tmp_path / "redis").start()
    client = server.client(socket_timeout=5, socket_connect_timeout=2)
    yield client
    client.close()
    server.stop()


@pytest.fixture(scope="session")
def _sqlite_world(tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Path) -> tuple[Path, dict, dict]:
    """The test hospital built once in a SQLite file (argon2 hashing is slow); each test gets a copy."""
    from areya.db.engine import create_db_engine

    path = tmp_path_factory.mktemp("web-world") / "world.db"
    shutil.copyfile(_sqlite_template, path)
    engine = create_db_engine(f"sqlite:///{path}")
    attach_cipher(engine, WORLD_SECRET_KEY)
    try:
        ids, tokens = populate(engine)
    finally:
        engine.dispose()
    return path, ids, tokens


@pytest.fixture(scope="session")
def _pg_world(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict, dict]]:
    """PostgreSQL: the test hospital built once in a template database; each test gets a copy of it."""
    from areya.db.engine import create_db_engine

    url = _pg_create(template=request.getfixturevalue("_pg_template"))
    engine = create_db_engine(url)
    attach_cipher(engine, WORLD_SECRET_KEY)
    try:
        ids, tokens = populate(engine)
    finally:
        engine.dispose()
    yield url, ids, tokens
    _pg_drop(url)


def _pg_admin() -> Any:
    from sqlalchemy import create_engine

    return create_engine(os.environ["AREYA_TEST_POSTGRES_URL"], isolation_level="AUTOCOMMIT")


def _pg_create(template: str) -> str:
    from sqlalchemy.engine import make_url

    name = f"areya_w_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        admin.dispose()
    return make_url(os.environ["AREYA_TEST_POSTGRES_URL"]).set(database=name).render_as_string(hide_password=False)


def _pg_drop(url: str) -> None:
    from sqlalchemy.engine import make_url

    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def world(
    db_settings: Settings, db_backend: str, web_redis: redis.Redis, request: pytest.FixtureRequest
) -> Iterator[World]:
    """The test hospital in this test's database: a copy of the one built once per session and backend."""
    db_settings = db_settings.replace(secret_key=WORLD_SECRET_KEY)
    if db_backend == "sqlite":
        path, ids, tokens = request.getfixturevalue("_sqlite_world")
        shutil.copyfile(path, db_settings.database_url.removeprefix("sqlite:///"))
        w = make_world(db_settings, ids, tokens, redis_client=web_redis)
        yield w
        w.engine.dispose()
        return
    from sqlalchemy.engine import make_url

    template_url, ids, tokens = request.getfixturevalue("_pg_world")
    url = _pg_create(template=make_url(template_url).database or "")
    w = make_world(db_settings.replace(database_url=url), ids, tokens, redis_client=web_redis)
    try:
        yield w
    finally:
        w.engine.dispose()
        _pg_drop(url)
