"""The batching worker: stream batch -> decode -> detect -> bed zone -> patient -> classify -> observations -> ack.

At-least-once without duplicates: frames are acknowledged only after the
observations' transaction commits; a re-delivered frame inserts nothing twice
(unique ``(frame_id, face_index)``, insert ... on conflict do nothing).  Bad
frames go to the dead-letter stream with their reason.  A database or Redis
outage makes the worker back off and retry the same batch, never crash-loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import redis
from sqlalchemy.exc import DBAPIError, OperationalError

from areya.comms.frames import BadFrame, FrameMessage, decode_fields
from areya.metrics import WORKER_GROUP, Metrics
from areya.worker.assign import BedResolver, patient_at
from areya.worker.consumer import Delivery, StreamConsumer
from areya.worker.store import write_observations

log = logging.getLogger(__name__)


class EmotionLike(Protocol):
    probs4: np.ndarray
    probs7: np.ndarray

    @property
    def label4(self) -> str: ...

    @property
    def label7(self) -> str: ...

    @property
    def confidence4(self) -> float: ...


class Classifier(Protocol):
    """What the worker needs of :class:`areya.emotion.inference.EmotionClassifier`."""

    model_version: str

    def classify(self, crops: Sequence[np.ndarray]) -> Sequence[EmotionLike]: ...


class BoxLike(Protocol):
    x: int
    y: int
    w: int
    h: int
    score: float


class Detector(Protocol):
    def detect(self, frame_bgr: np.ndarray) -> Sequence[BoxLike]: ...


class CameraDetectorsLike(Protocol):
    """What the worker needs of :class:`areya.detectors.cameras.CameraDetectors`."""

    def for_camera(self, camera_options: str | None) -> Detector: ...


@dataclass
class WorkerConfig:
    stream: str = "areya:frames"
    group: str = WORKER_GROUP
    dead_letter_stream: str = "areya:deadletter"
    batch_size: int = 16
    batch_ms: int = 200
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    max_deliveries: int = 3
    retry_initial_s: float = 0.5
    retry_max_s: float = 10.0
    crop_margin: float = 0.15

    @classmethod
    def from_settings(cls, settings: Any) -> WorkerConfig:
        return cls(
            stream=settings.frame_stream,
            dead_letter_stream=settings.dead_letter_stream,
            batch_size=settings.worker_batch_size,
            batch_ms=settings.worker_batch_ms,
            claim_idle_ms=settings.claim_idle_ms,
            max_deliveries=settings.max_deliveries,
        )


@dataclass
class _Frame:
    delivery: Delivery
    message: FrameMessage
    image: np.ndarray
    captured: datetime
    faces: list[BoxLike] = field(default_factory=list)


@dataclass
class BatchResult:
    frames: int = 0
    dead: int = 0
    faces: int = 0
    assigned: int = 0
    written: int = 0
    acked: int = 0


class DatabaseUnavailable(RuntimeError):
    pass


def _face_box(box: BoxLike) -> Any:
    from areya.detectors import FaceBox  # noqa: PLC0415

    return FaceBox(
        int(box.x),
        int(box.y),
        int(box.w),
        int(box.h),
        float(box.score),
        float(getattr(box, "roll", 0.0)),  # a rolled face is turned upright for the classifier,
        getattr(box, "eyes", None),
    )  # by its eye line when the detector gave the eyes


def _bed_roles() -> Any:
    """A :class:`areya.detectors.roles.BedRoles` with every cue (None without the detectors package: every face
    in a zone then counts for the bed's patient)."""
    try:
        from areya.detectors.roles import BedRoles  # noqa: PLC0415
    except ImportError:  # pragma: no cover - detectors package not installed
        log.warning("areya.detectors is not installed: every face in a bed zone counts for the bed's patient")
        return None
    return BedRoles()


def crop(image: np.ndarray, box: BoxLike, margin: float) -> np.ndarray:
    try:
        from areya.detectors import crop_face  # noqa: PLC0415

        return crop_face(image, _face_box(box), margin)
    except ImportError:  # detectors package not installed: plain clipped crop
        h, w = image.shape[:2]
        x0, y0 = max(0, int(box.x)), max(0, int(box.y))
        return image[y0 : min(h, int(box.y + box.h)), x0 : min(w, int(box.x + box.w))].copy()


def quality(face_crop: np.ndarray, box: BoxLike, probs4: Any) -> float | None:
    """The observation's face quality (:func:`areya.detectors.quality.face_quality`): the chance its 4-class answer
    is right, from the face's size, sharpness, exposure, roll left after alignment, the detector's score and the
    classifier's certainty; None when it cannot be measured."""
    try:
        from areya.detectors.quality import face_quality  # noqa: PLC0415

        return min(1.0, max(0.0, face_quality(face_crop, _face_box(box), probs4)))
    except (ImportError, ValueError):
        return None


class Worker:
    """One worker process (or thread): :meth:`run` until :meth:`stop`; :meth:`process_once` for one batch."""

    def __init__(
        self,
        client: redis.Redis,
        engine: Any,
        detector: Detector,
        classifier: Classifier,
        config: WorkerConfig | None = None,
        *,
        consumer: str | None = None,
        metrics: Metrics | None = None,
        detectors: CameraDetectorsLike | None = None,
        roles: Any = None,
    ) -> None:
        """``detector``: the global one; ``detectors`` makes the detector of a camera with its own
        ``detector_options`` (:class:`areya.detectors.cameras.CameraDetectors`, whose default is ``detector``).
        Without it such cameras get ``detector`` (logged once per camera).  ``roles``: who is the patient among a
        bed zone's faces (:class:`areya.detectors.roles.BedRoles`; None: a new one with every cue)."""
        from sqlalchemy.orm import sessionmaker  # noqa: PLC0415

        self.client = client
        self.engine = engine
        self.detector = detector
        self.detectors = detectors
        self._options_reported: set[tuple[int, str]] = set()  # (camera, options) already logged as not applied
        self.classifier = classifier
        self.config = config or WorkerConfig()
        c = self.config
        self.consumer = StreamConsumer(
            client,
            c.stream,
            c.group,
            consumer=consumer,
            dead_letter_stream=c.dead_letter_stream,
            claim_idle_ms=c.claim_idle_ms,
            max_deliveries=c.max_deliveries,
        )
        self.resolver = BedResolver(sessionmaker(bind=engine))
        self.roles = roles if roles is not None else _bed_roles()
        self._fixes_applied: dict[int, int] = {}  # bed id -> sequence number of the last correction applied
        self.metrics = metrics or Metrics(client)
        self.stop_event = threading.Event()
        self.batches = 0
        self.latencies: list[float] | None = None  # set to [] to record capture->commit seconds per frame (bench)

    @property
    def name(self) -> str:
        return self.consumer.consumer

    def stop(self) -> None:
        self.stop_event.set()

    def warm_up(self, frame_shape: tuple[int, int, int] = (720, 1280, 3)) -> None:
        """Pay the first-call costs before the first frame (detector and model start-up, Keras tracing batch
        shapes: it traces a new shape twice before generalising) so they do not land on real frames' latency."""
        self._db(self.resolver.zones_now)
        detectors = [self.detector]  # and those of the cameras with their own detector options
        for camera_id in sorted(self.resolver.all_detector_options()):
            detector = self._detector_for(camera_id)
            if all(detector is not d for d in detectors):
                detectors.append(detector)
        for detector in detectors:
            detector.detect(np.zeros(frame_shape, np.uint8))
            on_crops = getattr(detector, "crop_detector", None)  # zone crops' own backend, if any
            if on_crops is not None:
                on_crops.detect(np.zeros((256, 256, 3), np.uint8))
        crop = np.full((64, 64), 128, np.uint8)
        for n in sorted({1, 3, max(1, self.config.batch_size)}):
            self.classifier.classify([crop] * n)

    # -- main loop -----------------------------------------------------------------------------
    def run(self, *, max_batches: int | None = None, idle_exit_s: float | None = None) -> None:
        """Process batches until stopped (or ``max_batches``, or ``idle_exit_s`` without frames)."""
        delay = self.config.retry_initial_s
        idle_since = time.monotonic()
        log.info("worker %s reading %s as group %s", self.name, self.config.stream, self.config.group)
        while not self.stop_event.is_set():
            try:
                result = self.process_once()
                delay = self.config.retry_initial_s
            except DatabaseUnavailable:
                break  # stopped while waiting for the database
            except redis.RedisError as exc:
                self.metrics.inc("areya_worker_errors_total", stage="redis")
                log.warning("redis error (%s); retrying in %.1fs", exc, delay)
                self.stop_event.wait(delay)
                delay = min(self.config.retry_max_s, delay * 2)
                continue
            except Exception:  # noqa: BLE001 - the batch stays pending: re-delivered, dead-lettered after max tries
                self.metrics.inc("areya_worker_errors_total", stage="batch")
                log.exception("batch failed; its frames will be re-delivered (retrying in %.1fs)", delay)
                self.stop_event.wait(delay)
                delay = min(self.config.retry_max_s, delay * 2)
                continue
            if result.frames or result.dead:
                idle_since = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - idle_since >= idle_exit_s:
                break
            if max_batches is not None and self.batches >= max_batches:
                break
        self.metrics.flush()

    def process_once(self) -> BatchResult:
        """Read one batch and see it through to the ack (retrying the DB until it answers or we are stopped)."""
        c = self.config
        deliveries = self.consumer.read_batch(c.batch_size, c.batch_ms, c.block_ms)
        result = BatchResult()
        if not deliveries:
            self.metrics.flush()
            return result
        t_start = time.perf_counter()
        frames = self._decode(deliveries, result)
        t_decoded = time.perf_counter()
        self._detect(frames, result)
        t_detected = time.perf_counter()
        try:
            rows, t_classify = self._build_rows(frames, result)
            t_commit = time.perf_counter()
            result.written = self._db(lambda: write_observations(self.engine, rows))
        except DatabaseUnavailable:
            return result  # stopped while the DB was down: frames stay pending, reclaimed later
        self.metrics.inc("areya_observations_written_total", result.written)
        self.metrics.inc("areya_observations_duplicate_total", len(rows) - result.written)
        t_done = time.perf_counter()
        committed_at = time.time()
        result.acked = self._ack([f.delivery.entry_id for f in frames])
        self.batches += 1
        m = self.metrics
        m.observe("areya_batch_size", len(deliveries))
        m.observe("areya_stage_seconds", t_decoded - t_start, stage="decode")
        m.observe("areya_stage_seconds", t_detected - t_decoded, stage="detect")
        m.observe("areya_stage_seconds", t_classify, stage="classify")
        m.observe("areya_stage_seconds", t_done - t_commit, stage="db")
        m.observe("areya_stage_seconds", t_done - t_start, stage="batch")
        for f in frames:
            latency = max(0.0, committed_at - f.message.captured_at)
            m.observe("areya_frame_latency_seconds", latency)
            if self.latencies is not None:
                self.latencies.append(latency)
            m.inc("areya_frames_processed_total", camera=f.message.camera_id)
        m.set_gauge("areya_worker_last_batch_timestamp", committed_at, worker=self.name)
        m.flush()
        return result

    # -- stages --------------------------------------------------------------------------------
    def _decode(self, deliveries: list[Delivery], result: BatchResult) -> list[_Frame]:
        frames: list[_Frame] = []
        for d in deliveries:
            try:
                if d.deliveries > self.config.max_deliveries:
                    raise BadFrame(
                        f"delivered {d.deliveries} times (max {self.config.max_deliveries}): processing keeps failing"
                    )
                msg = decode_fields(d.fields)
                image = msg.decode_image()
            except BadFrame as exc:
                self._dead(d, exc.reason, result)
                continue
            frames.append(_Frame(d, msg, image, datetime.fromtimestamp(msg.captured_at, UTC)))
        return frames

    def _dead(self, delivery: Delivery, reason: str, result: BatchResult) -> None:
        self.consumer.dead_letter(delivery, reason)
        kind = "max_deliveries" if reason.startswith("delivered ") else "bad_frame"
        self.metrics.inc("areya_frames_dead_lettered_total", reason=kind)
        result.dead += 1

    def _detect(self, frames: list[_Frame], result: BatchResult) -> None:
        for f in list(frames):
            try:
                f.faces = list(self._faces(f))
            except ValueError as exc:  # the detector refuses this frame: it will never succeed
                frames.remove(f)
                self._dead(f.delivery, f"face detection failed: {exc}", result)
                continue
            self.metrics.inc("areya_faces_detected_total", len(f.faces), camera=f.message.camera_id)
            result.faces += len(f.faces)
        result.frames = len(frames)

    def _faces(self, f: _Frame) -> Sequence[BoxLike]:
        """The frame's faces, found by its camera's detector (:meth:`_detector_for`): in the camera's bed zones'
        crops too when that detector's ``zone_mode`` says so; with ``track=N`` the zone crops are scanned in full
        every N-th frame of the camera and only around its faces between (the detector's ``tracker``, keyed by
        the camera: :mod:`areya.detectors.tracking`)."""
        camera_id = f.message.camera_id
        detector = self._detector_for(camera_id)
        in_zones = getattr(detector, "detect_in_zones", None)
        if in_zones is None or getattr(detector, "zone_mode", "frame") == "frame":
            return detector.detect(f.image)
        zones = self._db(lambda: self.resolver.zones(camera_id))
        tracker = getattr(detector, "tracker", None)
        if tracker is not None:
            return tracker.detect(detector, f.image, zones, camera_id)
        return in_zones(f.image, zones)

    def _detector_for(self, camera_id: int) -> Detector:
        """The detector for the camera: the global one, or for a camera with its own ``detector_options`` (read
        and refreshed with its zones) the one made for the global options with the camera's laid over them.
        Options the backend refuses (e.g. after the ``detector`` setting changed) are logged once and counted
        (``areya_worker_errors_total{stage="camera_options"}``); the camera then gets the global detector."""
        text = self._db(lambda: self.resolver.detector_options(camera_id))
        if not text:
            return self.detector
        if self.detectors is None:
            self._not_applied(camera_id, text, "this worker was built without per-camera detectors")
            return self.detector
        try:
            return self.detectors.for_camera(text)
        except (ValueError, RuntimeError) as exc:
            self._not_applied(camera_id, text, str(exc))
            return self.detector

    def _not_applied(self, camera_id: int, text: str, reason: str) -> None:
        self.metrics.inc("areya_worker_errors_total", stage="camera_options")
        if (camera_id, text) not in self._options_reported:
            self._options_reported.add((camera_id, text))
            log.error(
                "camera %s: its detector options %r are not applied (%s); using the global detector "
                "(fix them with `areya camera edit %s --detector-options ...`)",
                camera_id,
                text,
                reason,
                camera_id,
            )

    def _build_rows(self, frames: list[_Frame], result: BatchResult) -> tuple[list[dict[str, Any]], float]:
        """Observation rows for the faces in an occupied bed's zone (one classify call for the batch)."""
        targets: list[tuple[_Frame, int, BoxLike, int]] = []  # frame, face index, box, bed id
        for f in frames:
            h, w = f.image.shape[:2]
            for i, box in enumerate(f.faces):
                cx, cy = (box.x + box.w / 2) / w, (box.y + box.h / 2) / h
                bed_id = self._db(lambda f=f, cx=cx, cy=cy: self.resolver.bed_for(f.message.camera_id, cx, cy))
                if bed_id is None:
                    self.metrics.inc("areya_faces_unassigned_total", camera=f.message.camera_id, reason="outside_zones")
                    continue
                targets.append((f, i, box, bed_id))
        stays = {}
        if targets:
            times = [f.captured for f, *_ in targets]
            stays = self._db(lambda: self.resolver.stays({t[3] for t in targets}, min(times), max(times)))
        assigned: list[tuple[_Frame, int, BoxLike, int, int]] = []
        for f, i, box, bed_id in targets:
            patient_id = patient_at(stays, bed_id, f.captured)
            if patient_id is None:
                self.metrics.inc("areya_faces_unassigned_total", camera=f.message.camera_id, reason="empty_bed")
                continue
            assigned.append((f, i, box, bed_id, patient_id))
        assigned = self._patients_only(assigned)
        if not assigned:
            return [], 0.0
        t0 = time.perf_counter()
        crops = [crop(f.image, box, self.config.crop_margin) for f, _, box, _, _ in assigned]
        emotions = self.classifier.classify(crops)
        t_classify = time.perf_counter() - t0
        if len(emotions) != len(crops):
            raise RuntimeError(f"classifier returned {len(emotions)} results for {len(crops)} crops")
        rows = []
        version = str(self.classifier.model_version)[:64]
        for (f, i, box, bed_id, patient_id), emo, face_crop in zip(assigned, emotions, crops, strict=True):
            h, w = f.image.shape[:2]
            p4 = [float(v) for v in np.asarray(emo.probs4, dtype=np.float64)]
            rows.append(
                {
                    "patient_id": patient_id,
                    "bed_id": bed_id,
                    "camera_id": f.message.camera_id,
                    "captured_at": f.captured,
                    "frame_id": frame_id(f.message.camera_id, f.delivery.entry_id),
                    "face_index": i,
                    "box_x": max(0.0, box.x / w),
                    "box_y": max(0.0, box.y / h),
                    "box_w": min(1.0, box.w / w),
                    "box_h": min(1.0, box.h / h),
                    "p_angry": p4[0],
                    "p_happy": p4[1],
                    "p_relaxed": p4[2],
                    "p_sad": p4[3],
                    "probs7": [round(float(v), 6) for v in np.asarray(emo.probs7)],
                    "label4": emo.label4,
                    "label7": emo.label7,
                    "confidence4": min(1.0, max(0.0, float(emo.confidence4))),
                    "model_version": version,
                    "quality": quality(face_crop, box, p4),
                }
            )
            self.metrics.inc("areya_faces_assigned_total", camera=f.message.camera_id)
        result.assigned = len(rows)
        return rows, t_classify

    def _patients_only(
        self, assigned: list[tuple[_Frame, int, BoxLike, int, int]]
    ) -> list[tuple[_Frame, int, BoxLike, int, int]]:
        """The faces that are their bed's patient (:class:`areya.detectors.roles.BedRoles`, frame by frame in
        capture order); the others are counted (``areya_bedside_faces_total{role="other"}`` and the bed's bedside
        state in Redis, :mod:`areya.worker.bedside`), never classified or stored."""
        if self.roles is None or not assigned:
            return assigned
        from areya.detectors.roles import PATIENT, BedGeometry, FaceSeen  # noqa: PLC0415

        self._apply_corrections({a[3] for a in assigned})
        groups: dict[tuple[int, int, int], list[tuple[_Frame, int, BoxLike, int, int]]] = {}
        for item in assigned:  # one frame, one bed: judged together
            f, _, _, bed_id, _ = item
            groups.setdefault((id(f), f.message.camera_id, bed_id), []).append(item)
        kept: list[tuple[_Frame, int, BoxLike, int, int]] = []
        touched: dict[int, tuple[int, int]] = {}  # bed id -> (camera id, bed id): the roles' key published
        for (_, camera_id, bed_id), items in sorted(groups.items(), key=lambda kv: kv[1][0][0].captured):
            f = items[0][0]
            zone = self.resolver.zone_of(camera_id, bed_id)
            if zone is None:  # the zones changed under us: judge on the next frame
                kept.extend(items)
                continue
            h, w = f.image.shape[:2]
            geometry = BedGeometry((zone.x0, zone.y0, zone.x1, zone.y1), zone.head)
            faces = [FaceSeen.of_box(box, f.image) for _, _, box, _, _ in items]
            roles = self.roles.assign((camera_id, bed_id), geometry, faces, w, h, f.captured.timestamp())
            for item, role in zip(items, roles, strict=True):
                self.metrics.inc("areya_bedside_faces_total", camera=camera_id, role=role)
                if role == PATIENT:
                    kept.append(item)
            touched[bed_id] = (camera_id, bed_id)
        self._publish_bedside(touched)
        return kept

    def _apply_corrections(self, bed_ids: set[int]) -> None:
        """Apply the admins' new corrections of these beds (:func:`areya.worker.bedside.read_corrections`)."""
        from areya.worker.bedside import read_corrections  # noqa: PLC0415

        try:
            fixes = read_corrections(self.client, bed_ids)
        except redis.RedisError as exc:
            log.warning("role corrections not read (%s); applied on a later batch", exc)
            return
        for bed_id, fix in fixes.items():
            if self._fixes_applied.get(bed_id, 0) >= fix["n"]:
                continue
            self._fixes_applied[bed_id] = fix["n"]
            track = fix.get("track")
            for key in [k for k in self.roles.beds() if k[1] == bed_id]:
                try:
                    self.roles.correct(key, fix["action"], int(track) if track is not None else None)
                except (ValueError, TypeError):
                    log.warning("bed %s: correction %r not understood", bed_id, fix)

    def _publish_bedside(self, touched: dict[int, tuple[int, int]]) -> None:
        """Each judged bed's tracks and bedside presence, for the tile and the patient page (best effort)."""
        from areya.worker.bedside import publish_states  # noqa: PLC0415

        try:
            publish_states(self.client, {bed_id: self.roles.snapshot(key) for bed_id, key in touched.items()})
        except redis.RedisError as exc:
            log.warning("bedside state not published (%s)", exc)

    def _db(self, fn: Any) -> Any:
        """Run a DB read, retrying with backoff while the database is unavailable."""
        delay = self.config.retry_initial_s
        while True:
            try:
                return fn()
            except DBAPIError as exc:
                if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
                    raise  # not an outage (e.g. an integrity error): the batch fails and is re-delivered
                self.metrics.inc("areya_worker_errors_total", stage="db")
                log.warning("database unavailable (%s); retrying in %.1fs", exc.orig, delay)
                if self.stop_event.wait(delay):
                    raise DatabaseUnavailable("stopped while the database was unavailable") from exc
                delay = min(self.config.retry_max_s, delay * 2)

    def _ack(self, ids: list[str]) -> int:
        """Ack after commit; if Redis is away, keep trying a while (an un-acked frame is re-delivered: no dup)."""
        delay = self.config.retry_initial_s
        for _ in range(5):
            try:
                return self.consumer.ack(ids)
            except redis.RedisError as exc:
                self.metrics.inc("areya_worker_errors_total", stage="ack")
                log.warning("ack failed (%s); retrying in %.1fs", exc, delay)
                if self.stop_event.wait(delay):
                    break
                delay = min(self.config.retry_max_s, delay * 2)
        return 0


def frame_id(camera_id: int, entry_id: str) -> str:
    """The observation key of a frame: its camera and stream entry id (stable across re-deliveries)."""
    return f"{camera_id}:{entry_id}"
