"""The batching worker: frames from the stream -> faces -> beds -> patients -> emotions -> observations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from areya.worker.worker import Classifier, Detector, Worker, WorkerConfig, frame_id


def load_classifier(settings: Any) -> Classifier:
    """The emotion classifier named by ``settings.emotion_model``, its int8 members on ``settings.emotion_threads``
    CPU threads each (0: one per CPU) (heavy: imports TensorFlow/Keras)."""
    from areya.emotion.inference import EmotionClassifier  # noqa: PLC0415

    return EmotionClassifier.load(settings.emotion_model, num_threads=settings.emotion_threads)


def load_detector(settings: Any) -> Detector:
    """The face detector named by ``settings.detector`` with ``settings.detector_options``."""
    from areya.detectors import detector_from_settings  # noqa: PLC0415

    return detector_from_settings(settings)


def build_worker(
    settings: Any,
    *,
    client: Any = None,
    engine: Any = None,
    classifier: Classifier | None = None,
    detector: Detector | None = None,
    consumer: str | None = None,
    detector_name: str | None = None,
    detector_options: Mapping[str, Any] | None = None,
) -> Worker:
    """A :class:`Worker` wired from settings (Redis client, DB engine, detector and classifier by default).

    The detector is the settings' (``detector_name`` / ``detector_options``: a worker's command-line overrides,
    as :func:`areya.detectors.settings_options`), or ``detector`` when given; a camera with its own
    ``detector_options`` gets one made for those options laid over these
    (:class:`areya.detectors.cameras.CameraDetectors`).  Bad options raise ``ValueError``.
    """
    from areya.detectors.cameras import CameraDetectors  # noqa: PLC0415

    if client is None:
        from areya.comms.redis_server import connect  # noqa: PLC0415

        client = connect(settings)
    if engine is None:
        from areya.db.engine import create_db_engine  # noqa: PLC0415

        engine = create_db_engine(settings)
    detectors = CameraDetectors.from_settings(settings, detector_name, detector_options, default=detector)
    return Worker(
        client,
        engine,
        detectors.default,
        classifier or load_classifier(settings),
        WorkerConfig.from_settings(settings),
        consumer=consumer,
        detectors=detectors,
    )


__all__ = [
    "Classifier",
    "Detector",
    "Worker",
    "WorkerConfig",
    "build_worker",
    "frame_id",
    "load_classifier",
    "load_detector",
]
