"""Pipeline test fixtures: a real embedded redis-server per test, the demo ward in the per-test database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from areya.comms.redis_server import EmbeddedRedis

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
FER_TEST = SHARED / "fer2013" / "publictest"
CLIP = SHARED / "video" / "expressions-720x576.mp4"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def rclient(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis_server.client(socket_timeout=5, socket_connect_timeout=2)
    yield client
    client.close()


@pytest.fixture(scope="session")
def untrained_classifier():  # noqa: ANN201 - keras-backed EmotionClassifier
    """The real inference API with a tiny untrained network (imports Keras once per session)."""
    from areya.emotion.inference import EmotionClassifier

    return EmotionClassifier.untrained(seed=0)


@pytest.fixture
def haar():  # noqa: ANN201
    from areya.detectors import create_detector

    return create_detector("haar")


def requires(path: Path) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not available")


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
