"""Dashboard test fixtures: a real embedded Redis and the test hospital (see web_helpers.build_world)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from web_helpers import World, build_world

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


@pytest.fixture
def world(db_settings: Settings, web_redis: redis.Redis) -> Iterator[World]:
    w = build_world(db_settings, redis_client=web_redis)
    yield w
    w.engine.dispose()
