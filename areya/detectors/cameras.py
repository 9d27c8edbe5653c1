"""Per-camera detector options: one detector per distinct effective option set.

A camera's ``detector_options`` (e.g. ``rotations=90`` for a camera mounted on its side, ``min_face_px=40``) are
laid over the global ones (``detector_options`` setting, and a worker's ``--detector-option``).  A camera without
overrides, or whose overrides change nothing, gets the global detector: no extra instances by default.  Cameras
with the same effective options share one instance (keyed by the frozen, sorted option tuple).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from areya.detectors import create_detector, settings_options
from areya.detectors.options import check_camera_options

OptionsKey = tuple[tuple[str, Any], ...]


def options_key(options: Mapping[str, Any]) -> OptionsKey:
    """The hashable, order-free form of typed options (values are numbers, strings, bools or tuples)."""
    return tuple(sorted(options.items()))


class CameraDetectors:
    """The detector for each camera's ``detector_options`` text; instances are made on first use and kept.

    ``backend`` and ``options`` (typed) are the global choice; ``default`` is its detector (made here when not
    given).  :meth:`for_camera` raises ``ValueError`` for options the backend does not take (the caller decides
    what to do: the worker logs it and uses the global detector).  Not thread-safe: one per worker.
    """

    def __init__(
        self,
        backend: str,
        options: Mapping[str, Any],
        default: Any = None,
        *,
        factory: Callable[..., Any] = create_detector,
    ) -> None:
        self.backend = backend
        self.options = dict(options)
        self.factory = factory
        self.default = default if default is not None else factory(backend, **self.options)
        self.detectors: dict[OptionsKey, Any] = {options_key(self.options): self.default}
        self._keys: dict[str, OptionsKey] = {}  # camera options text -> its effective options' key

    @classmethod
    def from_settings(
        cls, settings: Any, name: str | None = None, options: Mapping[str, Any] | None = None, default: Any = None
    ) -> CameraDetectors:
        """The global choice of the settings (``name`` / ``options``: a worker's command-line overrides)."""
        backend, typed = settings_options(settings, name, options)
        return cls(backend, typed, default)

    def effective(self, camera_options: str | Mapping[str, Any] | None) -> dict[str, Any]:
        """The global options with the camera's laid over them (``ValueError`` for a bad camera option)."""
        if not camera_options:
            return dict(self.options)
        return {**self.options, **check_camera_options(self.backend, camera_options)}

    def for_camera(self, camera_options: str | None) -> Any:
        """The detector for a camera with these ``detector_options`` (None / empty: the global detector)."""
        if not camera_options:
            return self.default
        key = self._keys.get(camera_options)
        if key is None:
            key = options_key(self.effective(camera_options))
            self._keys[camera_options] = key
        detector = self.detectors.get(key)
        if detector is None:
            detector = self.factory(self.backend, **dict(key))
            self.detectors[key] = detector
        return detector

    def close(self) -> None:
        """Close the detectors made here (not a ``default`` that was passed in: its owner closes it)."""
        for detector in self.detectors.values():
            close = getattr(detector, "close", None)
            if detector is not self.default and close is not None:
                close()


__all__ = ["CameraDetectors", "OptionsKey", "options_key"]
