"""Pipeline test fixtures: a real embedded redis-server per test, the demo ward in the per-test database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
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


class FixedClassifier:
    """A stand-in for processes whose classifier is not under test (no Keras start-up in subprocesses).

    Returns 'relaxed' for every crop; the worker code path is the same as with the real classifier.
    """

    model_version = "fixed-test"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def classify(self, crops):  # noqa: ANN001, ANN201
        import time

        from areya.emotion.inference import EmotionResult

        if self.delay_s:
            time.sleep(self.delay_s)
        p4 = np.array([0.1, 0.1, 0.7, 0.1], np.float32)
        p7 = np.array([0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.7], np.float32)
        return [EmotionResult(p4, p7) for _ in crops]


def requires(path: Path) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not available")


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
