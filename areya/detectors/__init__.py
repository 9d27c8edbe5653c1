"""Pluggable face detection: ``create_detector(name, **opts)`` -> :class:`FaceDetector`.

Backends (heavy imports happen only when one is created):

* ``blazeface`` (default) - MediaPipe BlazeFace full-range model: faces up to about 5 m, for ward cameras.
* ``blazeface-short`` - BlazeFace short-range model: fastest, only faces within about 2 m / large in frame.
* ``blazeface-full-sparse`` - full-range model with sparse weights.
* ``haar`` - OpenCV's Haar cascade: no extra model files, less accurate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from areya.detectors.base import FaceBox, FaceDetector, validate_frame
from areya.detectors.crop import DEFAULT_MARGIN, crop_face

DEFAULT_DETECTOR = "blazeface"


def _blazeface(model: str) -> Callable[..., FaceDetector]:
    def make(**opts: Any) -> FaceDetector:
        from areya.detectors.blazeface import BlazeFaceDetector

        opts.setdefault("model", model)
        return BlazeFaceDetector(**opts)

    return make


def _haar(**opts: Any) -> FaceDetector:
    from areya.detectors.haar import HaarDetector

    return HaarDetector(**opts)


_REGISTRY: dict[str, Callable[..., FaceDetector]] = {
    "blazeface": _blazeface("full"),
    "blazeface-short": _blazeface("short"),
    "blazeface-full-sparse": _blazeface("full_sparse"),
    "haar": _haar,
}


def available_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return list(_REGISTRY)


def create_detector(name: str | None = None, **opts: Any) -> FaceDetector:
    """A new detector instance (one per thread).  ``name`` None: :data:`DEFAULT_DETECTOR`.

    Unknown names and bad options raise ``ValueError``; missing model files raise ``RuntimeError``.
    """
    key = (name or DEFAULT_DETECTOR).strip().lower().replace("_", "-")
    if key not in _REGISTRY:
        raise ValueError(f"unknown face detector {name!r}: valid names are {', '.join(_REGISTRY)}")
    try:
        return _REGISTRY[key](**opts)
    except TypeError as exc:  # an option the backend does not take
        raise ValueError(f"bad option for face detector {key!r}: {exc}") from exc


__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_MARGIN",
    "FaceBox",
    "FaceDetector",
    "available_detectors",
    "create_detector",
    "crop_face",
    "validate_frame",
]
