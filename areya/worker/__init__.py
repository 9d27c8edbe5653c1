"""The batching worker: frames from the stream -> faces -> beds -> patients -> emotions -> observations."""

from __future__ import annotations

from typing import Any

from areya.worker.worker import Classifier, Detector, Worker, WorkerConfig, frame_id


def load_classifier(settings: Any) -> Classifier:
    """The emotion classifier named by ``settings.emotion_model`` (heavy: imports TensorFlow/Keras)."""
    from areya.emotion.inference import EmotionClassifier  # noqa: PLC0415

    return EmotionClassifier.load(settings.emotion_model)


def load_detector(settings: Any) -> Detector:
    """The face detector named by ``settings.detector`` with ``settings.detector_options``."""
    from areya.detectors import detector_from_settings  # noqa: PLC0415

    return detector_from_settings(settings)


def build_worker(settings: Any, *, client: Any = None, engine: Any = None, classifier: Classifier | None = None,
                 detector: Detector | None = None, consumer: str | None = None) -> Worker:
    """A :class:`Worker` wired from settings (Redis client, DB engine, detector and classifier by default)."""
    if client is None:
        from areya.comms.redis_server import connect  # noqa: PLC0415

        client = connect(settings)
    if engine is None:
        from areya.db.engine import create_db_engine  # noqa: PLC0415

        engine = create_db_engine(settings)
    return Worker(client, engine, detector or load_detector(settings), classifier or load_classifier(settings),
                  WorkerConfig.from_settings(settings), consumer=consumer)


__all__ = ["Classifier", "Detector", "Worker", "WorkerConfig", "build_worker", "frame_id", "load_classifier",
           "load_detector"]
