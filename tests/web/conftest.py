"""Dashboard test fixtures: a real embedded Redis and the test hospital (see web_helpers.build_world)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from web_helpers import World, build_world, make_world, populate

from areya.comms.redis_server import EmbeddedRedis
from areya.config import Settings


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
    try:
        ids, tokens = populate(engine)
    finally:
        engine.dispose()
    return path, ids, tokens


@pytest.fixture
def world(db_settings: Settings, db_backend: str, web_redis: redis.Redis, request: pytest.FixtureRequest
          ) -> Iterator[World]:
    """The test hospital in this test's database (SQLite: a copy of the session's; PostgreSQL: built anew)."""
    if db_backend == "sqlite":
        path, ids, tokens = request.getfixturevalue("_sqlite_world")
        target = db_settings.database_url.removeprefix("sqlite:///")
        shutil.copyfile(path, target)
        w = make_world(db_settings, ids, tokens, redis_client=web_redis)
    else:
        w = build_world(db_settings, redis_client=web_redis)
    yield w
    w.engine.dispose()
