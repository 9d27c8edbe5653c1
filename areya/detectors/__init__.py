"""Pluggable face detection: ``create_detector(name, **opts)`` -> :class:`FaceDetector`.

Backends (heavy imports happen only when one is created):

* ``blazeface`` (default) - MediaPipe BlazeFace full-range model: faces up to about 5 m, for ward cameras.
* ``blazeface-short`` - BlazeFace short-range model: fastest, only faces within about 2 m / large in frame.
* ``blazeface-full-sparse`` - full-range model with sparse weights.
* ``haar`` - OpenCV's Haar cascade: no extra model files, less accurate.

Every backend also takes ``min_face_px`` (faces whose box side is smaller are dropped), ``rotations`` (extra passes
on the frame turned by these clockwise angles, :mod:`areya.detectors.rotation`), ``zone_mode`` / ``zone_pad``
(how :meth:`FaceDetector.detect_in_zones` uses a camera's bed zones, :mod:`areya.detectors.zones`), ``zone_turns``
(zone windows without a face looked at turned: patients lying on their side), ``zone_relook`` (zones without a face
looked at again in smaller windows), ``redetect_roll``, ``orient_check`` (each face turned the way the detector is
surest is upright) and ``track``
(full zone scans every N-th frame of a camera, tracking the faces between: :mod:`areya.detectors.tracking`).  Services
build their detector with :func:`detector_from_settings` (the ``detector`` and ``detector_options`` settings, and
a camera's own ``detector_options`` laid over them); the worker keeps one per distinct option set
(:class:`areya.detectors.cameras.CameraDetectors`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from areya.detectors.base import FaceDetector
from areya.detectors.boxes import FaceBox, validate_frame
from areya.detectors.crop import DEFAULT_MARGIN, crop_face
from areya.detectors.options import (
    MAX_TRACK,
    ZONE_MODES,
    check_camera_options,
    check_options,
    parse_rotations,
    parse_turns,
    parse_zone_mode,
    valid_options,
)
from areya.detectors.rotation import ORIENT_CHECK, REDETECT_ROLL
from areya.detectors.tracking import DEFAULT_TRACK, ZoneTracker, detect_for_camera
from areya.detectors.zones import DEFAULT_ZONE_MODE, DEFAULT_ZONE_PAD, DEFAULT_ZONE_RELOOK, DEFAULT_ZONE_TURNS

DEFAULT_DETECTOR = "blazeface"
# zone_detector=auto: the backend run on zone crops (the bench: short range finds more faces in crops, faster)
# options naming a backend's own model file: never handed to another backend (the zone crops' one)
OWN_MODEL_OPTIONS = frozenset({"model_path", "cascade_file"})
AUTO_ZONE_BACKENDS = {"blazeface": "blazeface-short", "blazeface-full-sparse": "blazeface-short"}


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


def detector_key(name: str | None) -> str:
    """The registered name for ``name`` (None: :data:`DEFAULT_DETECTOR`); unknown -> ``ValueError``."""
    key = (name or DEFAULT_DETECTOR).strip().lower().replace("_", "-")
    if key not in _REGISTRY:
        raise ValueError(f"unknown face detector {name!r}: valid names are {', '.join(_REGISTRY)}")
    return key


def create_detector(
    name: str | None = None,
    *,
    min_face_px: int = 0,
    rotations: Sequence[int] | str | int = (0,),
    zone_mode: str = DEFAULT_ZONE_MODE,
    zone_pad: float = DEFAULT_ZONE_PAD,
    zone_window_px: int = 0,
    zone_detector: str = "auto",
    track: int = DEFAULT_TRACK,
    redetect_roll: int = REDETECT_ROLL,
    zone_turns: Sequence[int] | str | int = DEFAULT_ZONE_TURNS,
    zone_relook: float = DEFAULT_ZONE_RELOOK,
    orient_check: float = ORIENT_CHECK,
    **opts: Any,
) -> FaceDetector:
    """A new detector instance (one per thread).  ``name`` None: :data:`DEFAULT_DETECTOR`.

    Any backend: ``min_face_px`` > 0 drops faces whose box side is smaller; ``rotations`` (clockwise degrees,
    default ``(0,)``) adds passes on turned frames; ``zone_mode`` (``frame``, ``zones``, ``both``), ``zone_pad``
    ``zone_window_px`` and ``zone_detector`` (:func:`zone_backend`) say what :meth:`FaceDetector.detect_in_zones`
    does with a camera's bed zones.  ``track`` N > 1: the worker's zone scan runs in full on a camera's first
    and then every N-th frame, and between only around the faces found last time, with the zones left without a
    face scanned again on that frame (:mod:`areya.detectors.tracking`; the detector's ``tracker``).
    ``redetect_roll`` (degrees, 0 = off): a face whose eyes say it is rolled that much is found again in a
    window turned upright around it (:func:`areya.detectors.rotation.redetect_rolled`).
    ``zone_turns`` (clockwise degrees; ``()`` or 0: off): a zone window holding no face is looked at again
    turned by each (:func:`areya.detectors.zones.turned_looks`: patients lying on their side).
    ``zone_relook`` (a share of the zone window's side, in [0, 1); 0: off): a zone where the upright passes found
    no face is looked at again in windows that much smaller (:func:`areya.detectors.zones.relook_zones`).
    ``orient_check`` (a detector score margin in [0, 1); 0: off): on a full scan each face is turned the way the
    detector is surest is upright, another quarter or half turn winning by that margin
    (:func:`areya.detectors.rotation.check_orientation`: eye points read upside down on a small dim face).
    ``opts`` go to the backend.
    Unknown names and bad options raise ``ValueError``; missing model files raise ``RuntimeError``.
    """
    key = detector_key(name)
    if isinstance(min_face_px, bool) or not isinstance(min_face_px, int) or min_face_px < 0:
        raise ValueError(f"min_face_px must be an integer >= 0, got {min_face_px!r}")
    angles = parse_rotations(rotations)
    mode = parse_zone_mode(zone_mode)
    if isinstance(zone_pad, bool) or not isinstance(zone_pad, int | float) or not 0.0 <= zone_pad <= 1.0:
        raise ValueError(f"zone_pad must be a number in [0, 1], got {zone_pad!r}")
    if isinstance(zone_window_px, bool) or not isinstance(zone_window_px, int) or zone_window_px < 0:
        raise ValueError(f"zone_window_px must be an integer >= 0, got {zone_window_px!r}")
    if isinstance(track, bool) or not isinstance(track, int) or not 0 <= track <= MAX_TRACK:
        raise ValueError(f"track must be an integer in [0, {MAX_TRACK}], got {track!r}")
    if isinstance(redetect_roll, bool) or not isinstance(redetect_roll, int) or not 0 <= redetect_roll <= 90:
        raise ValueError(f"redetect_roll must be an integer in [0, 90], got {redetect_roll!r}")
    if isinstance(zone_relook, bool) or not isinstance(zone_relook, int | float) or not 0.0 <= zone_relook < 1.0:
        raise ValueError(f"zone_relook must be a number in [0, 1), got {zone_relook!r}")
    if isinstance(orient_check, bool) or not isinstance(orient_check, int | float) or not 0.0 <= orient_check < 1.0:
        raise ValueError(f"orient_check must be a number in [0, 1), got {orient_check!r}")
    detector = _wrapped(key, opts, angles, min_face_px)
    detector.redetect_roll = redetect_roll
    detector.orient_check = float(orient_check)
    detector.zone_relook = float(zone_relook)
    detector.zone_turns = parse_turns(zone_turns)
    detector.zone_mode, detector.zone_pad, detector.zone_window_px = mode, float(zone_pad), zone_window_px
    crop_key = zone_backend(key, zone_detector)
    if crop_key != key:  # zone crops get their own backend, with the options of ours that it takes
        accepted = set(valid_options(crop_key)) - OWN_MODEL_OPTIONS  # our model file is not the crop backend's
        detector.crop_detector = _wrapped(
            crop_key, {k: v for k, v in opts.items() if k in accepted}, angles, min_face_px
        )
    detector.track = track
    detector.tracker = ZoneTracker(track) if track > 1 else None
    return detector


def zone_backend(key: str, zone_detector: str | None) -> str:
    """The backend run on zone crops: ``auto`` (BlazeFace models: the short-range one, whose 128 px input suits
    crops; others: the same), ``same``, or a registered name."""
    choice = (zone_detector or "auto").strip().lower()
    if choice == "same":
        return key
    if choice == "auto":
        return AUTO_ZONE_BACKENDS.get(key, key)
    return detector_key(choice)


def _wrapped(key: str, opts: Mapping[str, Any], angles: tuple[int, ...], min_face_px: int) -> FaceDetector:
    """Backend ``key`` with its options, wrapped for rotated passes and the minimum face size."""
    try:
        detector = _REGISTRY[key](**opts)
    except TypeError as exc:  # an option the backend does not take
        raise ValueError(f"bad option for face detector {key!r}: {exc}") from exc
    if angles != (0,):
        from areya.detectors.rotated import RotatedPasses

        detector = RotatedPasses(detector, angles)
    return MinFaceSize(detector, min_face_px) if min_face_px else detector


def settings_options(
    settings: Any, name: str | None = None, options: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The backend and typed options the settings describe (``detector`` + ``detector_options``).

    ``name`` overrides the backend: configured options it does not take are left out.  ``options`` (raw values,
    e.g. strings from the command line) override configured ones; they are checked like the settings'
    (unknown option or bad value -> ``ValueError`` naming the valid ones).
    """
    key = detector_key(name or settings.detector)
    accepted = valid_options(key)
    configured = check_options(key, {k: v for k, v in settings.detector_options if k in accepted})
    return key, {**configured, **check_options(key, options or {})}


def detector_from_settings(
    settings: Any,
    name: str | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    camera_options: str | Mapping[str, Any] | None = None,
) -> FaceDetector:
    """The detector the settings describe (``detector`` + ``detector_options``): what the worker, ``areya
    predict`` and ``areya demo`` run.

    ``name`` and ``options``: as :func:`settings_options`.  ``camera_options``: a camera's own
    ``detector_options`` (:func:`areya.detectors.options.check_camera_options`), laid over the configured options
    and under ``options`` (settings < camera < command line); a bad one raises ``ValueError``.
    """
    key, opts = settings_options(settings, name)
    if camera_options:
        opts.update(check_camera_options(key, camera_options))
    opts.update(check_options(key, options or {}))
    return create_detector(key, **opts)


class MinFaceSize(FaceDetector):
    """Wraps a detector and drops faces whose box width or height is below ``min_face_px`` pixels.

    Other attributes (``tiles``, ``min_score``...) are read from the wrapped detector, ``inner``.
    """

    def __init__(self, inner: FaceDetector, min_face_px: int) -> None:
        self.inner = inner
        self.min_face_px = min_face_px
        self.name = inner.name

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        return self._keep(self.inner.detect(frame_bgr))

    def detect_batch(self, frames: Sequence[np.ndarray] | Iterable[np.ndarray]) -> list[list[FaceBox]]:
        return [self._keep(faces) for faces in self.inner.detect_batch(frames)]

    def close(self) -> None:
        self.inner.close()

    def _keep(self, faces: Iterable[FaceBox]) -> list[FaceBox]:
        return [f for f in faces if min(f.w, f.h) >= self.min_face_px]

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(attr)
        return getattr(self.inner, attr)


__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_TRACK",
    "DEFAULT_ZONE_MODE",
    "DEFAULT_ZONE_PAD",
    "DEFAULT_ZONE_RELOOK",
    "DEFAULT_ZONE_TURNS",
    "ZONE_MODES",
    "DEFAULT_MARGIN",
    "FaceBox",
    "FaceDetector",
    "MinFaceSize",
    "available_detectors",
    "create_detector",
    "detect_for_camera",
    "crop_face",
    "detector_from_settings",
    "detector_key",
    "settings_options",
    "zone_backend",
    "validate_frame",
]
