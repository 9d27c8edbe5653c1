"""The ingest service: one process, one reader thread per enabled camera, health published to Redis and the DB."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

from areya.camera.health import publish_health
from areya.camera.reader import Backoff, CameraConfig, CameraReader
from areya.camera.sources import FrameSource
from areya.camera.url_policy import CameraUrlPolicy
from areya.camera.waiting import waiting_for_zones
from areya.comms.frames import FramePublisher

log = logging.getLogger(__name__)


def load_cameras(session_factory: Any, camera_ids: list[int] | None = None) -> list[CameraConfig]:
    """Enabled cameras from the database, less the video files still waiting for a bed zone
    (:func:`waiting_for_zones`); or exactly ``camera_ids``, enabled or not."""
    from sqlalchemy import select  # noqa: PLC0415

    from areya.db.models import Camera  # noqa: PLC0415

    with session_factory() as session:
        query = select(Camera).order_by(Camera.id)
        query = query.where(Camera.id.in_(camera_ids)) if camera_ids else query.where(Camera.enabled.is_(True))
        waiting = set() if camera_ids else waiting_for_zones(session)
        cameras = [c for c in session.scalars(query) if c.id not in waiting]
        return [CameraConfig(c.id, c.source_url, c.sample_fps, c.name) for c in cameras]


def write_health_to_db(session_factory: Any, rows: dict[int, dict[str, Any]]) -> None:
    """Camera.last_frame_at / last_error / health_status from health snapshots."""
    from sqlalchemy import update  # noqa: PLC0415

    from areya.db.models import Camera  # noqa: PLC0415

    with session_factory() as session, session.begin():
        for camera_id, snap in rows.items():
            values: dict[str, Any] = {
                "health_status": snap["status"]
                if snap["status"] in ("unknown", "online", "offline", "error", "ended")
                else "unknown"
            }
            if snap.get("last_frame_at"):
                values["last_frame_at"] = datetime.fromtimestamp(snap["last_frame_at"], UTC)
            values["last_error"] = snap.get("last_error")
            session.execute(update(Camera).where(Camera.id == camera_id).values(**values))


class IngestService:
    """Starts a reader per camera; publishes health every ``health_interval_s``; reloads cameras from the DB.

    ``cameras`` fixes the camera list (tests, demo); otherwise it is read from the DB through
    ``session_factory`` every ``reload_interval_s`` (cameras added, removed, disabled or changed are picked up).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        stream: str,
        maxlen: int,
        jpeg_quality: int = 85,
        snapshot_ttl_s: int = 0,
        cameras: list[CameraConfig] | None = None,
        session_factory: Any = None,
        camera_ids: list[int] | None = None,
        health_interval_s: float = 1.0,
        db_health_interval_s: float = 5.0,
        reload_interval_s: float = 15.0,
        backoff_factory: Callable[[], Backoff] = Backoff,
        source_factory: Callable[[CameraConfig], FrameSource] | None = None,
        stall_min_s: float = 5.0,
        url_policy: CameraUrlPolicy | None = None,
    ) -> None:
        """``url_policy``: the camera URL policy every network camera is checked against when it connects."""
        if cameras is None and session_factory is None:
            raise ValueError("IngestService needs cameras or a session_factory to read them from")
        self.client = client
        self.publisher = FramePublisher(client, stream, maxlen)
        self.jpeg_quality = jpeg_quality
        self.snapshot_ttl_s = snapshot_ttl_s
        self.fixed_cameras = cameras
        self.session_factory = session_factory
        self.camera_ids = camera_ids
        self.health_interval_s = health_interval_s
        self.db_health_interval_s = db_health_interval_s
        self.reload_interval_s = reload_interval_s
        self.backoff_factory = backoff_factory
        self.source_factory = source_factory
        self.stall_min_s = stall_min_s
        self.url_policy = url_policy
        self.until_ended = False  # set by run(until_ended=...): video files that fail end in error, not retried
        self.readers: dict[int, CameraReader] = {}
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_db_health: dict[int, tuple[Any, ...]] = {}

    # -- cameras -------------------------------------------------------------------------------
    def _wanted(self) -> list[CameraConfig]:
        if self.fixed_cameras is not None:
            return list(self.fixed_cameras)
        return load_cameras(self.session_factory, self.camera_ids)

    def sync_cameras(self) -> None:
        """Start readers for new/changed cameras, stop readers of removed/changed ones."""
        try:
            wanted = {c.camera_id: c for c in self._wanted()}
        except Exception as exc:  # noqa: BLE001 - DB down: keep the cameras we have
            log.warning("cannot load cameras from the database (%s); keeping %d reader(s)", exc, len(self.readers))
            return
        dropped: dict[int, dict[str, Any]] = {}
        for camera_id, reader in list(self.readers.items()):
            if wanted.get(camera_id) != reader.camera:  # removed, disabled or changed
                reader.stop()
                del self.readers[camera_id]
                snap = reader.health.snapshot()
                snap.update(status="offline", last_error="reader stopped: camera disabled, removed or changed")
                dropped[camera_id] = snap
        if dropped:
            self._write_health(dropped)
        for camera_id, camera in wanted.items():
            if camera_id not in self.readers:
                reader = CameraReader(
                    camera,
                    self.publisher,
                    jpeg_quality=self.jpeg_quality,
                    snapshot_ttl_s=self.snapshot_ttl_s,
                    backoff=self.backoff_factory(),
                    source_factory=self.source_factory,
                    stall_min_s=self.stall_min_s,
                    end_on_file_error=self.until_ended,
                    url_policy=self.url_policy,
                )
                self.readers[camera_id] = reader
                reader.start()
                log.info("reading %s (id %d) at %.2f fps", camera.label, camera_id, camera.sample_fps)

    # -- health --------------------------------------------------------------------------------
    def health(self) -> dict[int, dict[str, Any]]:
        now = time.time()
        return {cid: r.health.snapshot(now) for cid, r in self.readers.items()}

    def _write_health(self, snaps: dict[int, dict[str, Any]]) -> None:
        """Health of readers that are gone, to Redis and the DB (best effort)."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for camera_id, snap in snaps.items():
                publish_health(pipe, camera_id, snap)  # type: ignore[arg-type]
            pipe.execute()
        except redis.RedisError as exc:
            log.debug("health not published to redis: %s", exc)
        if self.session_factory is not None:
            try:
                write_health_to_db(self.session_factory, snaps)
            except Exception as exc:  # noqa: BLE001
                log.warning("camera health not written to the database: %s", exc)

    def publish_health(self) -> None:
        snaps = self.health()
        try:
            pipe = self.client.pipeline(transaction=False)
            for camera_id, snap in snaps.items():
                publish_health(pipe, camera_id, snap)  # type: ignore[arg-type]
            pipe.execute()
        except redis.RedisError as exc:
            log.debug("health not published to redis: %s", exc)

    def write_db_health(self) -> None:
        if self.session_factory is None:
            return
        snaps = self.health()
        changed = {}
        for cid, snap in snaps.items():
            key = (snap["status"], snap["last_error"], round(snap["last_frame_at"] or 0))
            if self._last_db_health.get(cid) != key:
                changed[cid] = snap
        if not changed:
            return
        try:
            write_health_to_db(self.session_factory, changed)
        except Exception as exc:  # noqa: BLE001 - DB down: retry next interval
            log.warning("camera health not written to the database: %s", exc)
            return
        for cid, snap in changed.items():
            self._last_db_health[cid] = (snap["status"], snap["last_error"], round(snap["last_frame_at"] or 0))

    # -- lifecycle -----------------------------------------------------------------------------
    def all_files_ended(self) -> bool:
        """Every reader is a video file that has ended, at its end or in error (and there is at least one)."""
        readers = list(self.readers.values())
        return bool(readers) and all(r.ended for r in readers)

    def files_ended_in_error(self) -> dict[int, str]:
        """Camera id -> why its video file ended in error (``until_ended`` only: missing or unreadable file)."""
        return {cid: r.end_error for cid, r in self.readers.items() if r.end_error is not None}

    def run(self, duration: float | None = None, *, until_ended: bool = False) -> None:
        """Run until :meth:`stop` (or for ``duration`` seconds; with ``until_ended``, until every camera is a
        video file that has ended: looping files, live cameras and the synthetic ward never end).

        With ``until_ended`` a video file that cannot be opened or read ends in error (health ``error``, see
        :meth:`files_ended_in_error`) instead of being retried forever."""
        self.until_ended = until_ended
        deadline = time.monotonic() + duration if duration else None
        self.sync_cameras()
        last_reload = last_db = time.monotonic()
        while not self.stop_event.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if until_ended and self.all_files_ended():
                failed = self.files_ended_in_error()
                if failed:
                    log.error(
                        "every camera's video file has ended, %d in error (camera id(s) %s)",
                        len(failed),
                        ", ".join(map(str, sorted(failed))),
                    )
                else:
                    log.info("every camera's video file has ended")
                break
            if self.fixed_cameras is None and now - last_reload >= self.reload_interval_s:
                self.sync_cameras()
                last_reload = now
            self.publish_health()
            if now - last_db >= self.db_health_interval_s:
                self.write_db_health()
                last_db = now
            self.stop_event.wait(self.health_interval_s)
        self._shutdown()

    def start(self) -> IngestService:
        self._thread = threading.Thread(target=self.run, name="ingest", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _shutdown(self) -> None:
        for reader in self.readers.values():
            reader.stop()
        for reader in self.readers.values():
            reader.join(timeout=6.0)
        self.publish_health()
        self.write_db_health()
