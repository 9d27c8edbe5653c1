"""Frame sources: network streams, video files, capture devices (OpenCV's FFmpeg backend) and the synthetic ward.

A source is opened, then ``grab()`` blocks until its next frame is there (a live
camera's pace; a file played in real time; the synthetic ward's clock) and
``retrieve()`` returns that frame with its capture time.  Errors raise
:class:`SourceError` (the reader backs off and reconnects); a file that ends
raises :class:`EndOfStream` (unless looped).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from areya.source_url import ENCRYPTED_PREFIX, NETWORK_SCHEMES, UNREADABLE, mask_source_url

if TYPE_CHECKING:
    from areya.camera.url_policy import CameraUrlPolicy

DEFAULT_OPEN_TIMEOUT_MS = 5000
DEFAULT_READ_TIMEOUT_MS = 5000


class SourceError(RuntimeError):
    """The source cannot be opened or read (the message never holds credentials)."""


class EndOfStream(SourceError):
    """A (non-looped) video file has no more frames."""


class FrameSource(Protocol):
    name: str

    def open(self) -> None: ...

    def grab(self) -> None: ...

    def retrieve(self) -> tuple[np.ndarray, float]: ...

    def clock(self) -> float:
        """Seconds on the clock sampling follows: wall time for live sources, media time for unpaced files."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # network | file | device | synthetic
    target: str  # URL, file path, device index or synthetic URI
    loop: bool = False
    realtime: bool = True


def parse_source(url: str, *, loop: bool | None = None, realtime: bool = True) -> SourceSpec:
    """A camera ``source_url`` -> :class:`SourceSpec`.

    Files: ``file:///path?loop=1`` or a plain path (``loop`` argument overrides).
    """
    url = url.strip()
    if url.startswith(ENCRYPTED_PREFIX):
        raise SourceError(f"camera URL cannot be decrypted: {UNREADABLE}")
    if url.startswith("synthetic:"):
        return SourceSpec("synthetic", url, realtime=realtime)
    if url.startswith("device:"):
        index = url[len("device:") :]
        if not index.isdigit():
            raise SourceError(f"device source must be device:N, got {url!r}")
        return SourceSpec("device", index, realtime=True)
    scheme = url.split(":", 1)[0].lower() if "://" in url else ""
    if scheme in NETWORK_SCHEMES:
        return SourceSpec("network", url, realtime=True)
    file_loop = False
    path = url
    if scheme == "file":
        parts = urlsplit(url)
        path = unquote(parts.path)
        file_loop = parse_qs(parts.query).get("loop", ["0"])[0].lower() in ("1", "true", "yes")
    elif scheme:
        raise SourceError(f"unsupported camera source scheme {scheme!r}")
    return SourceSpec("file", path, loop=file_loop if loop is None else loop, realtime=realtime)


class OpenCVSource:
    """An OpenCV ``VideoCapture``: FFmpeg backend for URLs and files, the default backend for devices."""

    def __init__(
        self,
        spec: SourceSpec,
        *,
        open_timeout_ms: int = DEFAULT_OPEN_TIMEOUT_MS,
        read_timeout_ms: int = DEFAULT_READ_TIMEOUT_MS,
        policy: CameraUrlPolicy | None = None,
    ) -> None:
        self.spec = spec
        self.policy = policy
        self.name = mask_source_url(spec.target) if spec.kind == "network" else spec.target
        self.open_timeout_ms = open_timeout_ms
        self.read_timeout_ms = read_timeout_ms
        self._cap = None
        self._media_fps = 0.0
        self._started = 0.0
        self._frames = 0
        self._grab_time = 0.0

    def open(self) -> None:
        import cv2  # noqa: PLC0415

        self.close()
        if self.spec.kind == "file" and not os.path.isfile(self.spec.target):
            raise SourceError(f"video file not found: {self.spec.target}")
        if self.spec.kind == "network" and self.policy is not None:
            self._check_network()
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            self.open_timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            self.read_timeout_ms,
        ]
        if self.spec.kind == "device":
            cap = cv2.VideoCapture(int(self.spec.target), cv2.CAP_ANY, params)
        else:
            cap = cv2.VideoCapture(self.spec.target, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.spec.kind} source {self.name}")
        self._cap = cap
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._media_fps = fps if 0.5 <= fps <= 240 else 25.0
        self._started = time.monotonic()
        self._frames = 0

    def _check_network(self) -> None:
        """The host may be connected to (resolved now: a changed DNS answer counts); HTTP(S) through the egress
        proxy, which checks every connection FFmpeg makes (redirects) at the address it checked."""
        from areya.camera import egress  # noqa: PLC0415
        from areya.camera.url_policy import CameraUrlRefused  # noqa: PLC0415

        assert self.policy is not None
        try:
            self.policy.connect_addresses(urlsplit(self.spec.target).hostname or "")
        except CameraUrlRefused as exc:
            raise SourceError(f"camera URL refused: {exc}") from None
        if urlsplit(self.spec.target).scheme.lower() in ("http", "https"):
            egress.route_ffmpeg_http(self.policy)

    def grab(self) -> None:
        if self._cap is None:
            raise SourceError("source is not open")
        if self.spec.kind == "file" and self.spec.realtime:
            # play the file at its own frame rate, like a live camera
            due = self._started + self._frames / self._media_fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if not self._cap.grab():
            if self.spec.kind == "file":
                if self.spec.loop and self._frames > 0:
                    self.open()
                    if self._cap is not None and self._cap.grab():
                        self._frames = 1
                        self._grab_time = time.time()
                        return
                raise EndOfStream(f"end of video file {self.name}")
            raise SourceError(f"no frame from {self.spec.kind} source {self.name} (timeout or disconnect)")
        self._frames += 1
        self._grab_time = time.time()

    def retrieve(self) -> tuple[np.ndarray, float]:
        if self._cap is None:
            raise SourceError("source is not open")
        ok, frame = self._cap.retrieve()
        if not ok or frame is None:
            raise SourceError(f"cannot decode frame from {self.name}")
        return frame, self._grab_time

    @property
    def media_time(self) -> float:
        """Seconds of media since open (files: frame count / fps)."""
        return self._frames / self._media_fps if self._media_fps else 0.0

    def clock(self) -> float:
        if self.spec.kind == "file" and not self.spec.realtime:
            return self.media_time
        return time.monotonic()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class SyntheticSource:
    """The synthetic ward as a live camera producing ``fps`` frames per second of scenario time."""

    def __init__(self, uri: str, fps: float = 2.0, *, realtime: bool = True, start_time: float | None = None) -> None:
        from areya.camera.synthetic import ward_from_uri  # noqa: PLC0415

        self.name = uri
        self.ward = ward_from_uri(uri)
        self.fps = fps
        self.realtime = realtime
        self.start_time = start_time
        self._index = 0
        self._t = 0.0

    def open(self) -> None:
        if self.start_time is None:
            self.start_time = time.time()

    def scenario_time(self, captured_at: float) -> float:
        assert self.start_time is not None
        return captured_at - self.start_time

    def grab(self) -> None:
        assert self.start_time is not None, "open() first"
        due = self.start_time + self._index / self.fps
        if self.realtime:
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
        self._t = due
        self._index += 1

    def retrieve(self) -> tuple[np.ndarray, float]:
        assert self.start_time is not None
        return self.ward.render(self._t - self.start_time), self._t

    def clock(self) -> float:
        return time.monotonic() if self.realtime else self._index / self.fps

    def close(self) -> None:
        pass


def open_source(
    url: str,
    *,
    fps: float = 2.0,
    loop: bool | None = None,
    realtime: bool = True,
    policy: CameraUrlPolicy | None = None,
) -> FrameSource:
    """The source object for a camera URL (not opened yet).  ``policy``: the camera URL policy a network source
    is checked against at every open, and its HTTP(S) connections too (redirects included; areya.camera.egress)."""
    spec = parse_source(url, loop=loop, realtime=realtime)
    if spec.kind == "synthetic":
        return SyntheticSource(spec.target, fps=fps, realtime=realtime)
    return OpenCVSource(spec, policy=policy)
