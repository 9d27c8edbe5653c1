"""Per-camera health: kept in memory by the reader, published to Redis (and the DB by the ingest service).

Redis hash ``areya:camera:<id>:health`` fields: status (online | offline | error | ended | unknown; ended = a
video file that played to its end),
last_frame_at (epoch s), actual_fps, last_error, last_error_at, frames, reconnects, backoff_s, updated_at.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import redis

HEALTH_KEY = "areya:camera:{camera_id}:health"
SNAPSHOT_KEY = "areya:camera:{camera_id}:snapshot"
FPS_WINDOW_S = 10.0


def health_key(camera_id: int) -> str:
    return HEALTH_KEY.format(camera_id=camera_id)


def snapshot_key(camera_id: int) -> str:
    return SNAPSHOT_KEY.format(camera_id=camera_id)


@dataclass
class CameraHealth:
    """Thread-safe health record of one camera (written by its reader, read by the publisher)."""

    camera_id: int
    sample_fps: float = 2.0
    status: str = "unknown"
    last_frame_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    frames: int = 0
    reconnects: int = 0
    backoff_s: float = 0.0
    stall_min_s: float = 5.0  # an online camera with no frame for max(this, 3 frame periods) reads as offline
    _times: deque[float] = field(default_factory=lambda: deque(maxlen=600), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def frame(self, at: float | None = None) -> None:
        at = time.time() if at is None else at
        with self._lock:
            self.status = "online"
            self.last_frame_at = at
            self.frames += 1
            self.backoff_s = 0.0
            self._times.append(at)

    def error(self, message: str, *, status: str = "offline", backoff_s: float = 0.0) -> None:
        with self._lock:
            self.status = status
            self.last_error = message[:500]
            self.last_error_at = time.time()
            self.backoff_s = backoff_s

    def note(self, message: str) -> None:
        """An error that does not change the camera's status (e.g. Redis briefly unreachable)."""
        with self._lock:
            self.last_error = message[:500]
            self.last_error_at = time.time()

    def reconnecting(self) -> None:
        with self._lock:
            self.reconnects += 1

    def actual_fps(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        with self._lock:
            recent = [t for t in self._times if now - t <= FPS_WINDOW_S]
        if len(recent) < 2:
            return 0.0
        span = max(now - recent[0], recent[-1] - recent[0])
        return (len(recent) - 1) / span if span > 0 else 0.0

    def stall_after_s(self) -> float:
        return max(self.stall_min_s, 3.0 / max(self.sample_fps, 1e-3))

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """The health as published; an 'online' camera with no frame for a while reads as offline (stalled)."""
        now = time.time() if now is None else now
        fps = self.actual_fps(now)
        with self._lock:
            status, last_error, last_error_at = self.status, self.last_error, self.last_error_at
            stale = self.last_frame_at is not None and now - self.last_frame_at > self.stall_after_s()
            if status == "online" and stale and self.last_frame_at is not None:
                status = "offline"
                last_error = f"stalled: no frame for {now - self.last_frame_at:.0f}s"
                last_error_at = now
            return {
                "status": status,
                "last_frame_at": self.last_frame_at,
                "actual_fps": round(fps, 3),
                "last_error": last_error,
                "last_error_at": last_error_at,
                "frames": self.frames,
                "reconnects": self.reconnects,
                "backoff_s": self.backoff_s,
                "updated_at": now,
            }


def publish_health(client: redis.Redis, camera_id: int, snap: dict[str, Any]) -> None:
    mapping = {k: ("" if v is None else str(v)) for k, v in snap.items()}
    client.hset(health_key(camera_id), mapping=mapping)


def read_health(client: redis.Redis, camera_id: int) -> dict[str, Any]:
    """The published health of a camera (typed; {} if none)."""
    raw = {k.decode(): v.decode() for k, v in client.hgetall(health_key(camera_id)).items()}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("last_frame_at", "actual_fps", "last_error_at", "backoff_s", "updated_at"):
            out[key] = float(value) if value else None
        elif key in ("frames", "reconnects"):
            out[key] = int(value) if value else 0
        else:
            out[key] = value or None
    return out


def latest_snapshot(client: redis.Redis, camera_id: int) -> bytes | None:
    """The latest JPEG of a camera kept for the zone editor (None if expired or disabled)."""
    value = client.get(snapshot_key(camera_id))
    return bytes(value) if value is not None else None
