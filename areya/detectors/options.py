"""Which options each face detector backend takes from configuration, and their checks.

Options are written ``name=value`` separated by commas (``tiles=2,min_score=0.6``): in ``AREYA_DETECTOR_OPTIONS``,
``areya predict --detector-option``, a camera's own ``detector_options`` or, in a TOML file, also as an inline
table (``{ tiles = 2 }``).  :func:`check_options` turns them into the typed keyword arguments
:func:`areya.detectors.create_detector` takes; a misspelt option or a bad value raises ``ValueError`` naming the
option and the valid ones.  :func:`check_camera_options` checks a camera's overrides (no global-only options).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from areya.parsing import float_range, int_range, non_empty, parse_bool

OptionParser = Callable[[Any], Any]

ZONE_MODES = ("frame", "zones", "both")  # as areya.detectors.zones.ZONE_MODES (kept here: no NumPy import)
MAX_TRACK = 100  # largest track=N: a full zone scan at least every 100 frames of a camera


def parse_zone_mode(value: Any) -> str:
    """``frame``, ``zones`` or ``both`` (see :mod:`areya.detectors.zones`)."""
    text = str(value).strip().lower() if isinstance(value, str) else value
    if text not in ZONE_MODES:
        raise ValueError(f"must be one of {', '.join(ZONE_MODES)}, got {value!r}")
    return text


def parse_zone_detector(value: Any) -> str:
    """``auto``, ``same`` or a backend name (see :func:`areya.detectors.zone_backend`)."""
    text = non_empty(value).strip().lower().replace("_", "-")
    names = ["auto", "same", *BACKEND_OPTIONS]
    if text not in names:
        raise ValueError(f"must be one of {', '.join(names)}, got {value!r}")
    return text


def parse_rotations(value: Any) -> tuple[int, ...]:
    """Clockwise angles in degrees to try: ``"0/90/270"`` (also ``;``, ``|`` or spaces between them: commas
    separate options), an integer, or a list -> distinct integers in [0, 360), in the order given."""
    if isinstance(value, bool):
        raise ValueError(f"must be angles in degrees like 0/90/270, got {value!r}")
    if isinstance(value, int | float):
        items: list[Any] = [value]
    elif isinstance(value, str):
        items = [p for p in re.split(r"[/;|\s]+", value.strip()) if p]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(f"must be angles in degrees like 0/90/270, got {value!r}")
    angles: list[int] = []
    for item in items:
        try:
            angle = float(item)
        except (TypeError, ValueError):
            raise ValueError(f"must be angles in degrees like 0/90/270, got {value!r}") from None
        if isinstance(item, bool) or not -360.0 < angle < 360.0 or angle != round(angle):
            raise ValueError(f"must be whole degrees between -359 and 359, got {item!r}")
        angles.append(int(round(angle)) % 360)
    if not angles:
        raise ValueError("must name at least one angle (0 = upright)")
    return tuple(dict.fromkeys(angles))


def parse_turns(value: Any) -> tuple[int, ...]:
    """Turns for zone windows without a face: angles as :func:`parse_rotations` reads them, 0 left out; ``0``
    or ``none``: off."""
    if (
        value is None
        or (isinstance(value, str) and value.strip().lower() in ("none", "off", ""))
        or (isinstance(value, list | tuple) and not value)
    ):
        return ()
    return tuple(a for a in parse_rotations(value) if a != 0)


# every backend: applied by create_detector itself
GENERIC_OPTIONS: dict[str, OptionParser] = {
    "min_face_px": int_range(0, 4096),  # faces whose box side is smaller are dropped; 0 = keep all
    "zone_mode": parse_zone_mode,  # frame | zones | both: detect in the whole frame, bed zones' crops, or both
    "zone_pad": float_range(0.0, 1.0),  # zone crops reach this share of the zone's shorter side beyond it
    "zone_window_px": int_range(0, 4096),  # largest zone crop side, pixels (0 = twice the detector's input)
    "zone_detector": parse_zone_detector,  # backend run on zone crops: auto, same or a backend name
    "rotations": parse_rotations,  # clockwise angles the frame is turned by for extra passes (0 = upright)
    "zone_turns": parse_turns,  # zone windows without a face are looked at turned by these (none: off)
    "zone_relook": float_range(0.0, 1.0, hi_open=True),  # zones without a face looked at again: window share; 0 = off
    "orient_check": float_range(0.0, 1.0, hi_open=True),  # another turn of a face wins by this score margin; 0 = off
    "redetect_roll": int_range(0, 90),  # faces rolled this many degrees (eye line) are found again upright; 0 = off
    "track": int_range(0, MAX_TRACK),  # full zone scan every N-th frame of a camera, tracking between (0/1: always)
}

_BLAZEFACE: dict[str, OptionParser] = {
    "min_score": float_range(0.0, 1.0, lo_open=True, hi_open=True),
    "nms_iou": float_range(0.0, 1.0, lo_open=True),
    "num_threads": int_range(1, 64),
    "tiles": int_range(0, 6),
    "model_path": non_empty,
    "box_scale": float_range(0.5, 2.0),  # box calibration: side x this (1 = the network's raw box)
    "box_shift": float_range(-0.5, 0.5),  # box calibration: centre moved by this share of its height (0 = raw)
}

_HAAR: dict[str, OptionParser] = {
    "scale_factor": float_range(1.0, 3.0, lo_open=True),
    "min_neighbors": int_range(0, 100),
    "min_size": int_range(1, 4096),
    "max_width": int_range(32, 16384),
    "equalize": parse_bool,
    "cascade_file": non_empty,
}

# backend name (as areya.detectors registers it) -> its own options
BACKEND_OPTIONS: dict[str, dict[str, OptionParser]] = {
    "blazeface": _BLAZEFACE,
    "blazeface-short": _BLAZEFACE,
    "blazeface-full-sparse": _BLAZEFACE,
    "haar": _HAAR,
}

# options only the deployment sets, never one camera: files the worker loads and its CPU threads
GLOBAL_ONLY_OPTIONS: dict[str, str] = {
    "model_path": "a model file is part of the deployment",
    "cascade_file": "a model file is part of the deployment",
    "num_threads": "a worker's CPU threads are part of the deployment",
}
MAX_CAMERA_OPTIONS_LEN = 1000  # characters of a camera's detector_options text

_NAME = re.compile(r"[a-z][a-z0-9_]*")


def valid_options(backend: str) -> list[str]:
    """Option names ``backend`` accepts: its own, then the generic ones."""
    return [*BACKEND_OPTIONS[backend], *GENERIC_OPTIONS]


def parse_options_text(value: Any) -> dict[str, Any]:
    """``"tiles=2, min_score=0.6"``, ``["tiles=2", ...]``, a mapping or ``(name, value)`` pairs -> ``{name: raw}``.

    Only the form is checked here (names, ``=``, no repeats); :func:`check_options` checks names and values.
    """
    if isinstance(value, str):
        pairs = [_split_pair(part) for part in value.split(",") if part.strip()]
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list | tuple) and all(isinstance(p, str) for p in value):
        pairs = [_split_pair(part) for part in value]
    elif isinstance(value, list | tuple) and all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
        pairs = [tuple(p) for p in value]
    else:
        raise ValueError(f"must be 'name=value' pairs separated by commas (e.g. tiles=2,min_score=0.6), got {value!r}")
    return _no_repeats(pairs)


def _split_pair(part: str) -> tuple[str, str]:
    name, sep, raw = part.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"must be 'name=value' pairs separated by commas (e.g. tiles=2,min_score=0.6), got {part!r}")
    return name.strip(), raw.strip()


def _no_repeats(pairs: Iterable[tuple[Any, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in pairs:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"option names are lower-case words like min_score, got {name!r}")
        if name in out:
            raise ValueError(f"option {name!r} given twice")
        out[name] = raw
    return out


def check_options(backend: str, options: Mapping[str, Any], *, listed: Iterable[str] | None = None) -> dict[str, Any]:
    """Typed options for ``backend`` (a registered name); unknown option or bad value -> ``ValueError`` naming the
    valid options (``listed``, default: all of the backend's)."""
    accepted = {**BACKEND_OPTIONS[backend], **GENERIC_OPTIONS}
    choices = ", ".join(valid_options(backend) if listed is None else listed)
    out: dict[str, Any] = {}
    for name, raw in options.items():
        if name not in accepted:
            raise ValueError(f"unknown option {name!r} for detector {backend!r}; valid options: {choices}")
        try:
            out[name] = accepted[name](raw)
        except ValueError as exc:
            raise ValueError(f"option {name!r} of detector {backend!r} {exc} (valid options: {choices})") from None
    return out


def check_camera_options(backend: str, value: Any) -> dict[str, Any]:
    """A camera's ``detector_options`` (text as the settings', or a mapping) typed for ``backend`` (a registered
    name): bad form, unknown option, bad value or an option only the settings may set -> ``ValueError``."""
    if isinstance(value, str) and len(value) > MAX_CAMERA_OPTIONS_LEN:
        raise ValueError(f"must be at most {MAX_CAMERA_OPTIONS_LEN} characters")
    raw = parse_options_text(value if value is not None else "")
    camera_ok = [n for n in valid_options(backend) if n not in GLOBAL_ONLY_OPTIONS]
    for name in raw:
        if name in GLOBAL_ONLY_OPTIONS:
            raise ValueError(
                f"option {name!r} cannot be set per camera ({GLOBAL_ONLY_OPTIONS[name]}: set it in "
                f"detector_options / AREYA_DETECTOR_OPTIONS); per-camera options: {', '.join(camera_ok)}"
            )
    return check_options(backend, raw, listed=camera_ok)


def camera_options_text(backend: str, value: Any) -> str | None:
    """A camera's ``detector_options`` as stored: checked (:func:`check_camera_options`) and written in one
    canonical form (``rotations=90,min_face_px=40``); empty -> None (the camera uses the global options)."""
    typed = check_camera_options(backend, value)
    return format_options(typed.items()) or None


def format_options(options: Iterable[tuple[str, Any]]) -> str:
    """``(name, value)`` pairs -> ``"tiles=2,min_score=0.6"`` (the form :func:`parse_options_text` reads)."""
    return ",".join(f"{name}={_format_value(value)}" for name, value in options)


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "/".join(str(v) for v in value)
    return str(value)
