"""One thread per camera: open the source, sample it at the camera's rate, publish frames; back off on errors."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

import redis

from areya.camera.health import CameraHealth, snapshot_key
from areya.camera.sources import EndOfStream, FrameSource, SourceError, open_source, parse_source
from areya.camera.url_policy import CameraUrlPolicy
from areya.comms.frames import DROP_UNPUBLISHED, FramePublisher, make_frame
from areya.source_url import mask_source_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CameraConfig:
    camera_id: int
    source_url: str
    sample_fps: float = 2.0
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"camera {self.camera_id}"


class Backoff:
    """Capped exponential backoff with a little jitter: initial, initial*2, ... up to ``cap`` seconds."""

    def __init__(self, initial: float = 1.0, cap: float = 30.0, factor: float = 2.0, jitter: float = 0.1) -> None:
        if initial <= 0 or cap < initial or factor < 1:
            raise ValueError("backoff needs 0 < initial <= cap and factor >= 1")
        self.initial, self.cap, self.factor, self.jitter = initial, cap, factor, jitter
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * self.factor)
        return delay * (1 + random.uniform(-self.jitter, self.jitter)) if self.jitter else delay

    def reset(self) -> None:
        self._next = self.initial


def _clean_error(exc: BaseException, source_url: str) -> str:
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, SourceError) else str(exc)
    return text.replace(source_url, mask_source_url(source_url)) if source_url else text


class CameraReader(threading.Thread):
    """Reads one camera until stopped; never raises out of ``run`` (errors are health, not crashes)."""

    def __init__(
        self,
        camera: CameraConfig,
        publisher: FramePublisher,
        *,
        jpeg_quality: int = 85,
        snapshot_ttl_s: int = 0,
        backoff: Backoff | None = None,
        source_factory: Callable[[CameraConfig], FrameSource] | None = None,
        stall_min_s: float = 5.0,
        end_on_file_error: bool = False,
        url_policy: CameraUrlPolicy | None = None,
    ) -> None:
        """``end_on_file_error`` (``ingest --until-end``): a video file played once that cannot be opened or read
        (missing, unreadable) ends in error instead of being retried forever (a retry would replay it)."""
        super().__init__(name=f"camera-{camera.camera_id}", daemon=True)
        self.camera = camera
        self.publisher = publisher
        self.jpeg_quality = jpeg_quality
        self.snapshot_ttl_s = snapshot_ttl_s
        self.backoff = backoff or Backoff()
        self.source_factory = source_factory or (
            lambda c: open_source(c.source_url, fps=c.sample_fps, policy=url_policy)
        )
        self.health = CameraHealth(camera.camera_id, sample_fps=camera.sample_fps, stall_min_s=stall_min_s)
        self.stop_event = threading.Event()
        self.seq = 0
        self.published = 0
        self.end_on_file_error = end_on_file_error
        self.ended = False  # a video file that played to its end (not looped), or gave up in error (end_error)
        self.end_error: str | None = None  # why a video file ended in error (end_on_file_error)
        self._unpublished = 0  # frames lost while Redis was unreachable, not yet counted in Redis
        self._last_snapshot = 0.0
        self.source: FrameSource | None = None

    def stop(self) -> None:
        self.stop_event.set()

    @property
    def plays_once(self) -> bool:
        """The camera is a video file that is not looped (it ends)."""
        try:
            spec = parse_source(self.camera.source_url)
        except SourceError:
            return False
        return spec.kind == "file" and not spec.loop

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.source = self.source_factory(self.camera)
                self.source.open()
                log.info("%s: opened %s", self.camera.label, self.source.name)
                self._pump(self.source)
            except EndOfStream as exc:
                self.health.error(str(exc), status="ended")  # finished, not offline: no camera alert
                self.ended = True
                log.info("%s: %s (%d frame(s) published)", self.camera.label, exc, self.published)
                return
            except (SourceError, OSError, ValueError, RuntimeError) as exc:
                if self._ends_in_error(exc):
                    return
                self._failed(exc, status="error" if isinstance(exc, ValueError) else "offline")
            except Exception as exc:  # noqa: BLE001 - a reader thread must survive anything and report it
                log.exception("%s: unexpected error", self.camera.label)
                if self._ends_in_error(exc):
                    return
                self._failed(exc, status="error")
            finally:
                if self.source is not None:
                    try:
                        self.source.close()
                    except Exception:  # noqa: BLE001
                        log.debug("close failed", exc_info=True)
        self.health.error("stopped", status="offline")

    def _ends_in_error(self, exc: BaseException) -> bool:
        """With ``end_on_file_error``, a video file played once that failed has ended, in error (health: error)."""
        if not (self.end_on_file_error and self.plays_once):
            return False
        message = _clean_error(exc, self.camera.source_url)
        self.end_error = message
        self.health.error(f"{message} (video file given up, not retried: ingest --until-end)", status="error")
        self.ended = True
        log.error(
            "%s: %s; video file given up after %d frame(s) published (ingest --until-end does not retry)",
            self.camera.label,
            message,
            self.published,
        )
        return True

    def _failed(self, exc: BaseException, status: str) -> None:
        delay = self.backoff.next()
        message = _clean_error(exc, self.camera.source_url)
        self.health.error(message, status=status, backoff_s=round(delay, 3))
        self.health.reconnecting()
        log.warning("%s: %s; retrying in %.1fs", self.camera.label, message, delay)
        self.stop_event.wait(delay)

    def _pump(self, source: FrameSource) -> None:
        period = 1.0 / self.camera.sample_fps
        next_due = 0.0
        while not self.stop_event.is_set():
            source.grab()
            clock = source.clock()
            if clock + 1e-6 < next_due:
                continue
            next_due = max(next_due + period, clock - period)
            image, captured_at = source.retrieve()
            self.health.frame(captured_at)
            self.backoff.reset()
            self._publish(image, captured_at)

    def _publish(self, image, captured_at: float) -> None:  # noqa: ANN001 - np.ndarray
        frame = make_frame(self.camera.camera_id, self.seq, image, captured_at, quality=self.jpeg_quality)
        self.seq += 1
        try:
            self.publisher.publish(frame)
            self.published += 1
            if self._unpublished:
                self.publisher.count_dropped(self.camera.camera_id, DROP_UNPUBLISHED, self._unpublished)
                self._unpublished = 0
            if self.snapshot_ttl_s > 0 and captured_at - self._last_snapshot >= 1.0:
                self.publisher.client.set(snapshot_key(self.camera.camera_id), frame.jpeg, ex=self.snapshot_ttl_s)
                self._last_snapshot = captured_at
        except redis.RedisError as exc:
            self._unpublished += 1
            self.health.note(f"redis unreachable, frame dropped: {type(exc).__name__}: {exc}")
            if self._unpublished == 1 or self._unpublished % 100 == 0:
                log.warning(
                    "%s: redis unreachable (%s); %d frame(s) dropped so far", self.camera.label, exc, self._unpublished
                )

    @property
    def unpublished(self) -> int:
        return self._unpublished
